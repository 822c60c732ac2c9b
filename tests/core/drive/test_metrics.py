"""The step record: hand-computed clip fraction, KL and batch statistics, the metric names both
drivers log, and the logging backends (jsonl, TensorBoard; W&B offline and an MLflow file store when
their extras are installed)."""

import json
import math

import pytest
import torch
from pytest import approx

from dllmrl_core.contract.types import RolloutBatch, ScoredBatch
from dllmrl_core.contract.verdict import Verdict
from dllmrl_core.drive.backends import LoggingConfig
from dllmrl_core.drive.metrics import MetricsLog, PhaseTimes, RewardStats, StepRecord
from dllmrl_core.objectives.common import LossStats, token_pg_loss
from dllmrl_core.training.step import BatchStats, StepMetrics, batch_stats
from tests.core.objectives.test_math import term


def test_clip_fraction_and_kl_are_hand_computed_and_leave_the_loss_alone():
    # counted tokens: ρ = 1.5 (A = +1, clipped at 1.2), ρ = 1 (A = +1, inside), ρ = 0.5 (A = −1, clipped at 0.8)
    lr = torch.tensor([[math.log(1.5), 0.0, 9.0], [math.log(0.5), 9.0, 9.0]])
    t = term(lr, torch.tensor([[1, 1, 0], [1, 0, 0]]), [1.0, -1.0], normalizer=3.0)
    logp = torch.zeros(2, 3)
    t.ref_logp = torch.tensor([[-0.5, -1.0, 0.0], [math.log(2.0), 0.0, 0.0]])
    entropy = torch.tensor([[0.3, 0.6, 50.0], [0.9, 50.0, 50.0]])
    plain = token_pg_loss(t, logp, entropy, eps_low=0.2, eps_high=0.2, beta=0.0)
    out = token_pg_loss(t, logp, entropy, eps_low=0.2, eps_high=0.2, beta=0.1)
    # k3 = e^Δ − Δ − 1 with Δ = ref − logp: e^−0.5 − 0.5 = 0.106531, e^−1 = 0.367879, 2 − log 2 − 1 = 0.306853
    kl = [math.exp(-0.5) + 0.5 - 1, math.exp(-1.0), 1.0 - math.log(2.0)]
    assert out.stats.count == 3 and out.stats.clipped / out.stats.count == approx(2 / 3)
    assert out.stats.kl_sum / out.stats.count == approx(sum(kl) / 3, abs=1e-6)
    assert out.stats.entropy_sum / out.stats.count == approx(0.6, abs=1e-6)
    assert out.loss.item() == approx(plain.loss.item() + 0.1 * sum(kl) / 3, abs=1e-6)  # stats change nothing
    assert plain.loss.item() == approx(-1.4 / 3)


def metrics(**extra) -> StepMetrics:
    values = dict(loss=0.5, kl=0.02, clip_frac=0.25, ratio_mean=1.0, ratio_max=1.3, grad_norm=2.0, entropy=1.1,
                  adv_mean=0.0, adv_std=0.5, adv_abs_max=1.0, lr=1e-3, tokens=40.0)
    return StepMetrics(**{**values, **extra})


def rollout(completions: list[list[int]], groups: list[int]) -> RolloutBatch:
    ids = torch.tensor(completions)
    B, L = ids.shape
    zeros = torch.zeros(B, L)
    return RolloutBatch(prompt_ids=torch.zeros(B, 2, dtype=torch.long), prompt_mask=torch.ones(B, 2, dtype=torch.bool),
                        completion_ids=ids, reveal_step=torch.zeros(B, L, dtype=torch.long), behaviour_logp=zeros,
                        model_logp=zeros, token_entropy=zeros, steps=1, block_length=L, temperature=1.0, mask_id=99,
                        group_ids=torch.tensor(groups))


def test_batch_stats_count_tokens_to_the_first_eos_and_groups_without_signal():
    eos = 7
    batch = rollout([[1, 2, 7, 7], [1, 7, 7, 7], [1, 2, 3, 4], [7, 7, 7, 7]], groups=[0, 0, 1, 1])
    same = ScoredBatch(batch, rewards=torch.tensor([1.0, 1.0, 0.0, 1.0]), components={},
                       correct=torch.zeros(4, dtype=torch.bool))
    stats = batch_stats(same, eos)
    assert (stats.completion_len_mean, stats.completion_len_max, stats.completion_tokens) == (2.5, 4.0, 10.0)
    assert stats.zero_adv_share == 0.5  # group 0 scored 1, 1: no advantage; group 1 scored 0, 1


def test_the_record_names_every_metric_once_and_kl_only_with_a_reference():
    reward = RewardStats.of([Verdict(1.0, components={"format": 0.5}), Verdict(0.0, timed_out=True)],
                            [Verdict(0.5)])
    batch = BatchStats(completion_len_mean=12.0, completion_len_max=20.0, completion_tokens=48.0, zero_adv_share=0.25)
    sampled = StepRecord(reward, metrics(has_ref=True, batch=batch), PhaseTimes(2.0, 0.5, 1.0, 0.25), 4, 0).as_dict()
    assert sampled["rollout/tokens_per_s"] == 24.0 and sampled["time/step_s"] == 3.75
    assert (sampled["learner/kl"], sampled["learner/clip_frac"], sampled["learner/entropy"]) == (0.02, 0.25, 1.1)
    assert (sampled["rollout/completion_len_mean"], sampled["rollout/zero_adv_share"]) == (12.0, 0.25)
    assert (sampled["reward/format"], sampled["reward/branch_mean"], sampled["reward/timeouts"]) == (0.25, 0.5, 1.0)
    assert (sampled["rollout/weight_version"], sampled["rollout/staleness"]) == (4.0, 0.0)
    reused = StepRecord(reward, metrics(batch=batch), PhaseTimes(learn=1.0), 4, 1).as_dict()
    assert "learner/kl" not in reused and "rollout/tokens_per_s" not in reused  # no reference; nothing sampled
    assert reused["time/rollout_s"] == 0.0 and reused["rollout/staleness"] == 1.0
    assert set(sampled) - set(reused) == {"learner/kl", "rollout/tokens_per_s"}


def test_loss_stats_add_across_chunks():
    a, b = LossStats(2, 1, 2.0, 1.2, 0.1, 1.0), LossStats(3, 0, 3.3, 1.5, 0.2, 2.0)
    assert a + b == LossStats(5, 1, 5.3, 1.5, 0.1 + 0.2, 3.0)


def test_jsonl_and_tensorboard_by_default(tmp_path):
    log = MetricsLog(tmp_path)
    log.log(1, {"reward/mean": 0.5, "learner/kl": float("nan")})
    log.close()
    assert [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == \
        [{"step": 1, "reward/mean": 0.5}]  # non-finite values are dropped
    assert any((tmp_path / "tb").iterdir())


def test_only_the_listed_backends_write(tmp_path):
    log = MetricsLog(tmp_path, LoggingConfig(backends=["jsonl"]))
    log.log(1, {"reward/mean": 0.5})
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_a_missing_extra_is_one_line_naming_it(name, monkeypatch):
    import importlib.util

    from dllmrl_core.drive.config import RunConfig

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda mod, *a: None if mod == name else real(mod, *a))
    with pytest.raises(ValueError) as err:
        RunConfig.parse({"task": {"name": "countdown"}, "logging": {"backends": ["jsonl", name]}})
    message = str(err.value)
    assert "\n" not in message and "logging.backends" in message and f"pip install -e '.[{name}]'" in message


def test_wandb_offline_receives_every_step(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb", reason="the wandb extra is not installed")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    log = MetricsLog(tmp_path, LoggingConfig(backends=["wandb"], project="p", run_name="r"), {"train": {"steps": 2}})
    run = log.backends[0].run
    log.log(1, {"reward/mean": 0.25})
    log.log(2, {"reward/mean": 0.75})
    assert (run.name, run.project, run.config["train"]["steps"], run.offline) == ("r", "p", 2, True)
    assert run.summary["reward/mean"] == 0.25  # step 1 is committed once step 2 arrives; step 2 at the close
    log.close()
    [records] = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    assert records.stat().st_size > 0 and wandb.run is None


def test_mlflow_file_store_receives_every_step(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps file stores behind this switch
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    cfg = LoggingConfig(backends=["mlflow"], project="exp", run_name="r", mlflow_tracking_uri=uri)
    log = MetricsLog(tmp_path / "run", cfg, {"train": {"steps": 2}})
    log.log(1, {"reward/mean": 0.25, "time/step_s": 1.5})
    log.log(2, {"reward/mean": 0.75, "time/step_s": 1.0})
    log.close()
    client = MlflowClient(uri)
    [found] = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert found.info.run_name == "r" and found.info.status == "FINISHED"
    history = client.get_metric_history(found.info.run_id, "reward/mean")
    assert [(m.step, m.value) for m in history] == [(1, 0.25), (2, 0.75)]
