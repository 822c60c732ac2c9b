"""bench/sampler.py and bench/learner.py run (--quick) and end with one JSON line holding their figures.

Speed is never asserted: only the shape of the output and the counts that do not depend on the machine.
"""

import json

from bench import learner, sampler

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
