"""bench/memory.py and bench/gpu_smoke.py run in their quick / tiny CPU modes and end with one JSON
line. The memory figures at LLaDA-8B width (docs/gpu.md) need ~10 GiB and minutes: not run here."""

import json

from bench import gpu_smoke, memory


def last_json_line(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_memory_quick_measures_a_learner_and_a_rollout_step_next_to_the_plan(capsys):
    returned = memory.main(["--quick", "--inprocess"])
    result = last_json_line(capsys)
    assert result == json.loads(json.dumps(returned))
    assert set(result["cases"]) == {"learner:diffu_grpo:gathered@1", "rollout:diffu_grpo:gathered@1"}
    for case in result["cases"].values():
        assert case["measured"] > case["resident"] > 0 and case["step_peak"] > 0
        assert case["plan"] > 0 and abs(case["plan_error"]) < 0.5  # the 15 % claim is at full width


def test_gpu_smoke_tiny_runs_every_method_on_cpu(capsys, tmp_path):
    returned = gpu_smoke.main(["--tiny", "--methods", "agrpo", "dispo", "--out", str(tmp_path)])
    result = last_json_line(capsys)
    assert result == json.loads(json.dumps(returned)) == json.loads((tmp_path / "gpu_smoke.json").read_text())
    assert [m["method"] for m in result["methods"]] == ["agrpo", "dispo"] and result["device"] == "cpu"
    for m in result["methods"]:
        assert m["rollout"]["uncached_tokens_per_s"] > 0 and m["rollout"]["dual_tokens_per_s"] > 0
        assert m["learner"]["tokens_per_s"] > 0 and m["learner"]["micro_batch_rows"] == 2
        assert m["plan"]["learner_gib"] > 0
