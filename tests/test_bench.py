"""bench/sampler.py, bench/learner.py, bench/step_memory.py and bench/fastdllm.py run (--quick) and end with
one JSON line holding their figures.

Speed is never asserted: only the shape of the output and the counts that do not depend on the machine.
"""

import json

import pytest

from bench import fastdllm, learner, sampler, step_memory

SAMPLER_MODES = {"plain", "uncached", "prefix", "dual", "dual+threshold"}


def last_json_line(capsys) -> dict:
    lines = capsys.readouterr().out.strip().splitlines()
    return json.loads(lines[-1])


def test_sampler_quick_ends_with_one_json_object(capsys):
    returned = sampler.main(["--quick", "--eval-examples", "8"])
    result = last_json_line(capsys)
    assert result == json.loads(json.dumps(returned))
    assert {"bench", "threads", "clock", "models", "cells", "heldout", "targets", "wall_s"} <= result.keys()
    assert set(result["models"]) == {"tiny", "large"} and all(m["params"] > 0 for m in result["models"].values())
    cells = result["cells"]
    assert {c["mode"] for c in cells} == SAMPLER_MODES
    assert {c["timing"] for c in cells} == {"full", "blocks"}  # the quick grid exercises both ways of timing
    for c in cells:
        assert {"model", "batch", "gen_length", "steps", "seconds", "wall_s", "tokens_per_s", "forwards",
                "token_positions", "agreement", "speedup_vs_uncached"} <= c.keys()
        assert c["seconds"] > 0 and c["tokens_per_s"] > 0
        if c["mode"] in ("plain", "uncached", "prefix", "dual"):  # the fixed schedule: one forward per step
            assert c["forwards"] == c["steps"]
        if c["mode"] == "uncached":
            assert c["token_positions"] == c["batch"] * (64 + c["gen_length"]) * c["steps"]
        if c["timing"] == "full":
            assert 0 <= c["agreement"] <= 1
        else:
            assert c["agreement"] is None
    assert {r["mode"] for r in result["heldout"]} == SAMPLER_MODES - {"plain"}
    assert all(r["examples"] == 8 and 0 <= r["accuracy"] <= 100 for r in result["heldout"])
    targets = result["targets"]
    for key in ("uncached_ge_plain", "dual_ge_4x_at_target_batch", "dual_accuracy_within_2"):
        assert isinstance(targets[key], bool), key
    assert targets["target_batch"] == 2


def test_learner_quick_ends_with_one_json_object(capsys):
    returned = learner.main(["--quick"])
    result = last_json_line(capsys)
    assert result == json.loads(json.dumps(returned))
    assert {"bench", "threads", "clock", "memory_method", "methods", "hot_path_loops", "wall_s"} <= result.keys()
    assert set(result["methods"]) == set(learner.METHODS)
    for name, m in result["methods"].items():
        assert {"rollout_s", "prepare_s", "step_s", "rows_per_step", "step_forward_calls", "peak_rss_mb",
                "learner_peak_delta_mb"} <= m.keys(), name
        assert m["step_s"] > 0 and m["peak_rss_mb"] > 0
        # batched hot path: one forward call per policy term, however many rows it holds
        assert m["step_forward_calls"] == len(m["terms"]), name
        assert m["step_forward_rows"] == m["rows_per_step"], name
    assert result["methods"]["agrpo"]["rows_per_step"] == 2 * 4 * 4  # prompts × G × mc_samples
    assert all(":" in line and " in " in line for line in result["hot_path_loops"])


def test_step_memory_quick_ends_with_one_json_object(capsys):
    returned = step_memory.main(["--quick", "--batches", "1"])
    result = last_json_line(capsys)
    assert result == json.loads(json.dumps(returned))
    rows = result["rows"]
    assert {(r["measure"], r["case"]) for r in rows} == {(m, c) for m in ("block", "step") for c in step_memory.CASES}
    for r in rows:  # allocator counts do not depend on the machine: the block's float64 copies stay gone
        assert 0 < r["bytes_per_entry"] < 32, r


def test_fastdllm_without_a_checkout_says_how_to_get_it(tmp_path, capsys):
    result = fastdllm.main(["--fastdllm-dir", str(tmp_path / "missing")])
    out = capsys.readouterr().out
    assert "git clone https://github.com/NVlabs/Fast-dLLM" in out and json.loads(out.strip().splitlines()[-1]) == result
    assert result["skipped"]


@pytest.mark.skipif(not (fastdllm.DEFAULT_DIR / "llada" / "generate.py").is_file(),
                    reason=f"no Fast-dLLM checkout at {fastdllm.DEFAULT_DIR} (bench/fastdllm.py says how to get one)")
def test_fastdllm_quick_runs_both_samplers_on_the_same_weights(capsys):
    result = fastdllm.main(["--quick", "--batches", "1", "2"])
    assert result == last_json_line(capsys)
    assert result["agreement_b1"] == 1.0  # same weights, same dual-cache semantics, greedy: the same tokens
    assert set(result["median_s"]) == {"ours/b1", "theirs/b1", "ours/b2"} and all(v > 0 for v in result["median_s"].values())
    assert len(result["rounds"]) == 1 and len(result["rounds"][0]["loadavg"]) == 3
