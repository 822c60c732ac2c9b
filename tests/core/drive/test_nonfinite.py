"""A step whose loss is NaN changes nothing and the run says so (issue 16, item 7): the shared
`train_step` skips the update (adapter and AdamW state keep their last good values), the step is
counted in metrics and the summary, a warning names it, and the printed summary is strict JSON."""

import json
from dataclasses import replace

import torch
import yaml

from dllmrl_core.contract.jsontext import dumps
from dllmrl_core.drive import loop
from dllmrl_core.training import learner as learner_module
from dllmrl_core.training.lora import adapter_state
from dllmrl_core.training.step import unwrap
from tests.core.drive.test_loop import config


def strict_json(line: str):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(line, parse_constant=refuse)


def test_json_output_never_holds_nan_or_infinity():
    text = dumps({"adapter_norm": float("nan"), "curve": [1.5, float("inf"), (float("-inf"),)], "ok": 2})
    assert strict_json(text) == {"adapter_norm": None, "curve": [1.5, None, [None]], "ok": 2}


def test_a_nan_step_is_skipped_counted_and_reported(tiny_dir, tmp_path, monkeypatch, capsys):
    real_step, adapters = learner_module.train_step, []

    def train_step(policy, optimizer, scheduler, terms, loss_fn, **kwargs):
        """Optimizer step 2 of 3 gets a NaN loss; the adapter is recorded around every step."""
        poisoned = len(adapters) == 1
        if poisoned:
            loss_fn = (lambda fn: lambda *a: replace(fn(*a), loss=fn(*a).loss * float("nan")))(loss_fn)
        before = {k: v.clone() for k, v in adapter_state(unwrap(policy.model)).items()}
        metrics = real_step(policy, optimizer, scheduler, terms, loss_fn, **kwargs)
        adapters.append((before, adapter_state(unwrap(policy.model))))
        return metrics

    monkeypatch.setattr(learner_module, "train_step", train_step)
    cfg = config(tiny_dir, "diffu_grpo", steps=3, out=tmp_path / "run")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    assert loop.main([str(tmp_path / "run.yaml")]) == 0
    out, err = capsys.readouterr()
    summary = strict_json(out.strip().splitlines()[-1])
    assert summary["skipped_steps"] == 1 and "warning: step 2: gradient not finite" in err
    records = [strict_json(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["learner/skipped"] for r in records] == [0.0, 1.0, 0.0]
    (before1, after1), (before2, after2), (_, after3) = adapters
    assert all(torch.equal(before2[k], after2[k]) for k in after2)  # the NaN step left the adapter as it was
    assert not all(torch.equal(before1[k], after1[k]) for k in after1)  # the others did update it
    assert all(bool(torch.isfinite(v).all()) for v in after3.values())
