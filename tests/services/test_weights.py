"""Adapters on the wire: in their own dtype (bf16 as bf16), zero-copy, and what a rollout worker
computes with a received adapter is what the learner computes with its own. The WeightStore holds
only the versions a rollout can still ask for."""

import pickle

import pytest
import ray
import torch

from dllmrl_core.models.predictor import MaskPredictor
from dllmrl_core.rollout.prompts import group_prompts
from dllmrl_core.tasks import load_split
from dllmrl_core.training.learner import Learner
from dllmrl_core.training.lora import adapter_params, load_adapter_state
from dllmrl_core.training.policy import load_policy
from services.controller import Controller
from services.rollout_worker import RolloutJob, RolloutWorker, run_job
from services.settings import SystemConfig
from services.weight_store import AdapterWire, WeightStore, fetch, publish
from tests.services.conftest import run_config


def mixed_state() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {"a.lora_A.weight": torch.randn(8, 4, generator=gen).to(torch.bfloat16),
            "a.lora_B.weight": torch.randn(4, 8, generator=gen),
            "b.lora_A.weight": torch.randn(2, 3, generator=gen).half()}


def trained_learner(model_dir, out) -> tuple[Learner, SystemConfig]:
    """A learner whose adapter is no longer the identity (B != 0), as after some training, and its config."""
    cfg = SystemConfig.parse(run_config(model_dir, out))
    torch.manual_seed(cfg.train.seed)
    policy, _ = load_policy(cfg.model)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in adapter_params(policy.model).values():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return Learner.build(cfg.learn_settings(), policy), cfg


def test_every_dtype_arrives_as_itself_out_of_band_bf16_in_half_the_bytes_of_fp32():
    state = mixed_state()
    wire = AdapterWire.pack(state)
    buffers = []
    data = pickle.dumps(wire, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == len(state)  # every tensor out of band (zero-copy through the object store)
    back = pickle.loads(data, buffers=[b.raw() for b in buffers]).unpack()
    for name, sent in state.items():
        assert back[name].dtype == sent.dtype and torch.equal(back[name], sent)
    assert wire.arrays["a.lora_A.weight"].nbytes == 2 * state["a.lora_A.weight"].numel()


@pytest.mark.ray
def test_a_bf16_adapter_is_fetched_as_bf16_views_of_the_object_store(ray_session):
    state, store = mixed_state(), WeightStore.remote(keep=1)
    try:
        publish(store, 3, state)
        fetched = fetch(store, 3)
        [ref] = ray.get(store.get.remote(3))
        served = ray.get(ref)
    finally:
        ray.kill(store)
    assert {k: v.dtype for k, v in fetched.items()} == {k: v.dtype for k, v in state.items()}
    assert all(torch.equal(fetched[k], state[k]) for k in state)
    assert not any(a.flags.writeable for a in served.arrays.values())  # shared memory, not a copy


def test_under_the_bf16_policy_the_bf16_adapter_computes_exactly_what_the_learner_does(warm_dir, tmp_path,
                                                                                       monkeypatch):
    # the CUDA policy (bf16 autocast around every forward), run on CPU
    monkeypatch.setattr(MaskPredictor, "autocast_dtype", property(lambda self: torch.bfloat16))
    learner, cfg = trained_learner(warm_dir, tmp_path)
    sent = learner.forward_adapter()
    assert all(v.dtype == torch.bfloat16 for v in sent.values())
    received = pickle.loads(pickle.dumps(AdapterWire.pack(sent), protocol=5)).unpack()
    worker, _ = load_policy(cfg.model)
    load_adapter_state(worker.model, received)  # into the worker's fp32 LoRA parameters
    ids = torch.randint(0, 20, (3, 16), generator=torch.Generator().manual_seed(2))
    learner.policy.model.eval()
    worker.model.eval()
    with torch.no_grad():
        assert torch.equal(worker(ids), learner.policy(ids))
        # not a vacuous equality: in full precision the rounded adapter computes something else
        assert not torch.equal(worker.model(ids).logits, learner.policy.model(ids).logits)


@pytest.mark.ray
def test_a_rollout_worker_samples_with_the_published_adapter_exactly_as_the_learner(ray_session, warm_dir,
                                                                                     tmp_path):
    learner, cfg = trained_learner(warm_dir, tmp_path)
    store = WeightStore.remote(keep=1)
    publish(store, 1, learner.forward_adapter())  # fp32 on CPU
    from dllmrl_core.models import load_tokenizer

    tokenizer = load_tokenizer(cfg.model.path)
    examples = load_split(cfg.task, "train").examples[:2]
    ids, mask, groups, rows = group_prompts(tokenizer, cfg.task.task, examples, 2, cfg.task.prompt_style,
                                            torch.device("cpu"))
    job = RolloutJob(5, 0, 1, ids, mask, groups, rows, cfg.sampler)
    worker = RolloutWorker.remote(cfg.model, cfg.algorithm, cfg.train.seed, store, 1)
    try:
        batch_ref, _ = worker.generate.remote(job)
        remote = ray.get(batch_ref)
    finally:
        ray.kill(worker)
        ray.kill(store)
    local, _ = run_job(learner.policy, tokenizer, cfg.algorithm, cfg.train.seed, job)
    for name in ("completion_ids", "reveal_step", "behaviour_logp", "model_logp", "token_entropy"):
        assert torch.equal(getattr(remote, name), getattr(local, name)), name


def held_versions(store, versions) -> list[int]:
    """The versions among `versions` the store still serves (asked one by one, as rollouts do)."""
    held = []
    for version in versions:
        try:
            ray.get(store.get.remote(version))
            held.append(version)
        except ray.exceptions.RayTaskError:  # KeyError: not held
            pass
    return held


@pytest.mark.ray
def test_the_weight_store_holds_only_the_versions_a_rollout_can_still_ask_for(ray_session, warm_dir, tmp_path):
    cfg = SystemConfig.parse(run_config(warm_dir, tmp_path, steps=3, train={"max_staleness": 1}))
    controller = Controller.options(name="t-keep/controller").remote(cfg, "t-keep/")
    try:
        ray.get(controller.setup.remote())
        ray.get(controller.run.remote())
        held = held_versions(ray.get_actor("t-keep/weights"), range(4))
    finally:
        ray.get(controller.shutdown.remote())
        ray.kill(controller)
    # μ = 1: versions 0..3 were published and batch b was generated with version b - 1; the newest
    # two (max_staleness + 1) are all a rollout could still ask for
    assert held == [2, 3]
