"""The driver core both drivers share: the final adapter is saved before anything after training
that can fail, checkpoints and evaluations fall where the config says, the step line follows
train.log_every."""

import json
import time

import pytest

from dllmrl_core.drive import loop
from dllmrl_core.drive.config import RunConfig
from dllmrl_core.drive.driver import DriverCore, Resumed
from dllmrl_core.drive.loop import run
from tests.conftest import WARM_TASK
from tests.core.drive.test_loop import config


class FakeLearner:
    """The two calls `finish` makes of a Learner or LearnerGroup, recorded."""

    def __init__(self, calls):
        self.calls = calls

    def save_final(self, directory):
        self.calls.append(("save_final", directory))

    def digest(self):
        self.calls.append("digest")
        return "0" * 64, 1.0


def small_config(tmp_path, **sections) -> RunConfig:
    return RunConfig.parse({"task": WARM_TASK, "checkpoint": {"dir": str(tmp_path)},
                            "sampler": {"gen_length": 24, "steps": 12, "block_length": 24, "temperature": 1.0},
                            "algorithm": {"diffu_grpo": {"num_iterations": 1}}, "train": {"steps": 4}, **sections})


def test_finish_saves_the_final_adapter_before_the_closing_evaluation_runs(tmp_path):
    core = DriverCore(small_config(tmp_path, eval={"after": True, "num_examples": 2}))
    calls = []

    def generate(examples, sampler):
        calls.append("evaluate")
        raise RuntimeError("the evaluation crashed")

    with pytest.raises(RuntimeError, match="the evaluation crashed"):
        core.finish(4, FakeLearner(calls), generate, [], time.perf_counter())
    assert calls == [("save_final", tmp_path / "final"), "digest", "evaluate"]


def test_a_loop_whose_final_evaluation_fails_keeps_its_trained_adapter(warm_dir, tmp_path, monkeypatch):
    cfg = config(warm_dir, "diffu_grpo", steps=1, out=tmp_path)
    cfg = RunConfig.parse({**cfg, "eval": {"after": True, "num_examples": 2, "batch_rows": 2}})

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory in the evaluation")

    monkeypatch.setattr(loop, "evaluate_local", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        run(cfg, on_step=lambda *_: None)
    assert (tmp_path / "final" / "adapter" / "adapter_model.safetensors").is_file()
    assert [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1]


def test_checkpoints_and_evaluations_fall_where_the_config_says(tmp_path):
    core = DriverCore(small_config(tmp_path, checkpoint={"dir": str(tmp_path), "save_every": 2},
                                   eval={"every": 2, "num_examples": 2}))
    saved = []
    assert core.checkpoint(1, {"epoch": 0, "cursor": 1}, saved.append) is None and saved == []
    path = core.checkpoint(2, {"epoch": 0, "cursor": 2}, saved.append)
    assert path == tmp_path / "step-00000002" and json.loads((path / "state.json").read_text()) == {
        "step": 2, "version": 2, "stream": {"epoch": 0, "cursor": 2}, "data": core.data_id}
    assert (tmp_path / "latest").read_text() == "step-00000002" and (tmp_path / "config.yaml").is_file()
    # every 2 steps, but not at the last one: `finish` evaluates there
    assert [s for s in range(1, 5) if core.eval_due(s)] == [2]
    step, stream = core.resume("latest", saved.append)
    assert step == 2 and (stream.epoch, stream.cursor) == (0, 2) and saved[-1] == path


def test_the_step_line_follows_log_every(tmp_path, capsys):
    from dllmrl_core.contract.verdict import Verdict
    from dllmrl_core.drive.metrics import PhaseTimes, RewardStats, StepRecord
    from dllmrl_core.training.step import StepMetrics

    core = DriverCore(small_config(tmp_path, train={"steps": 4, "log_every": 2}))
    metrics = StepMetrics(*[0.0] * 12)

    def record(*verdicts):
        return StepRecord(RewardStats.of(list(verdicts), []), metrics, PhaseTimes(learn=0.1), 0, 0)

    for step in (1, 2):
        core.record_step(step, record(Verdict(reward=1.0, points=1.0)))
    core.record_step(4, record(Verdict(reward=0.5)), echo=False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("step    2  reward 1.000  correct 1.00")
    assert core.last["reward/mean"] == 0.5


def test_timeouts_and_crashed_verifiers_are_counted_apart():
    from dllmrl_core.contract.verdict import Verdict
    from dllmrl_core.drive.metrics import RewardStats

    stats = RewardStats.of([Verdict(1.0), Verdict(0.0, timed_out=True)], [Verdict(0.0, crashed=True)])
    assert (stats.timeouts, stats.crashes) == (1, 1)


def test_a_resume_says_from_where_and_at_which_step(tmp_path, capsys):
    core = DriverCore(small_config(tmp_path, checkpoint={"dir": str(tmp_path), "save_every": 2}))
    step, _ = core.resume("latest", lambda path: None)
    assert step == 0 and core.resumed is None
    said = capsys.readouterr().out
    assert said == f"checkpoint.resume: latest: no checkpoint under {tmp_path} yet; starting at step 0\n"
    path = core.checkpoint(2, {"epoch": 0, "cursor": 2}, lambda tmp: None)
    again = DriverCore(small_config(tmp_path, checkpoint={"dir": str(tmp_path), "resume": "latest"}))
    step, _ = again.resume("latest", lambda found: None)
    assert step == 2 and again.resumed == Resumed(path, 2)
    assert capsys.readouterr().out == f"resumed at step 2 from {path}\n"
