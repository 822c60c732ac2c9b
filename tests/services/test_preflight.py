"""Every path a run config names is checked before any work (and before Ray starts), in both
command lines: a missing model, data file or checkpoint, or an evaluation that cannot run, is one
line naming the field."""

import pytest
import yaml

from dllmrl_core.drive import loop
from services import launch
from tests.core.drive.test_loop import config


def write_config(tmp_path, warm_dir, overrides: dict) -> str:
    cfg = config(warm_dir, "diffu_grpo", steps=1, out=tmp_path / "run")
    for key, value in overrides.items():
        section, name = key.split(".")
        cfg[section] = {**cfg[section], name: value}  # a copy: the task section is shared
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


BAD = {
    "model.path": ({"model.path": "/nowhere/llada"}, "model.path: model directory not found: /nowhere/llada"),
    "train_source": ({"task.train_source": "/nowhere/train.jsonl"},
                     "task.train_source: no such data file: /nowhere/train.jsonl"),
    "resume typo": ({"checkpoint.resume": "latesst"},
                    "checkpoint.resume: 'latesst' is neither 'latest' nor a checkpoint directory"),
    "eval blocks": ({"sampler.gen_length": 48, "sampler.block_length": 48, "sampler.steps": 24},
                    "eval: evaluation at gen_length 48: gen_length (48) must be divisible by block_length (32)"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_paths_fail_before_any_work_with_one_line(warm_dir, tmp_path, capsys, monkeypatch, case):
    overrides, needle = BAD[case]
    path = write_config(tmp_path, warm_dir, overrides)
    extra = ["eval.after=true", "eval.num_examples=2"]

    def never(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(loop, "run", never)
    monkeypatch.setattr(launch, "connect", never)
    assert loop.main([path, *extra]) == 2
    assert launch.main([path, *extra, "status.enabled=false"]) == 2  # before Ray starts
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: {needle}"] * 2
