"""The single-process RL loop: sample → score → step → repeat, on `dllmrl_core` alone.

    python -m dllmrl_core.loop CFG.yaml [key.path=value ...]

The reference the distributed system must match (same config, same seeds, same adapter) and the
baseline of the benchmarks. Batch b is sampled with a generator seeded by (seed, b), so the
stream does not depend on who generates it; checkpoints (checkpoint.save_every) make a resumed
run continue exactly. Its last printed line is a JSON summary:
{"steps", "reward_mean" (last batch), "adapter_sha256", "adapter_norm", ...}.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from dllmrl_core.contract.jsontext import dumps
from dllmrl_core.contract.types import ScoredBatch
from dllmrl_core.contract.verdict import TRAINING_PROTOCOL
from dllmrl_core.drive.config import RunConfig, load_run_config
from dllmrl_core.drive.driver import DriverCore
from dllmrl_core.drive.heldout import Generate, evaluate_local
from dllmrl_core.drive.metrics import PhaseTimes, RewardStats, StepRecord
from dllmrl_core.drive.preflight import preflight
from dllmrl_core.objectives import get_objective
from dllmrl_core.planning import Topology, micro_rows
from dllmrl_core.rollout.generate import batch_generator, generate_rollouts
from dllmrl_core.rollout.prompts import group_prompts
from dllmrl_core.training.learner import Learner
from dllmrl_core.training.policy import load_policy
from dllmrl_core.training.warm_start import warm_start_with_progress
from dllmrl_core.verify.batch import completions_to_verify, scored_batch
from dllmrl_core.verify.pool import VerifierPool


def sample_batch(cfg: RunConfig, policy, tokenizer, task, examples: list, generator: torch.Generator):
    """G completions per example, with the method's records and branches; (RolloutBatch, row examples)."""
    ids, mask, groups, rows = group_prompts(tokenizer, task, examples, cfg.train.group_size, cfg.task.prompt_style,
                                            policy.device)
    rollout = generate_rollouts(policy, ids, mask, groups, cfg.sampler, get_objective(cfg.algorithm.name),
                                cfg.algorithm.selected, generator)
    return rollout, rows


def score_batch(tokenizer, rollout, rows: list, verifier: VerifierPool) -> tuple[ScoredBatch, list]:
    """Verify every completion on `verifier`: the scored batch and the verdicts (main rows, then branches)."""
    verdicts = verifier.map(completions_to_verify(rollout, tokenizer, rows, TRAINING_PROTOCOL))
    return scored_batch(rollout, verdicts), verdicts


def rollout_batch(cfg: RunConfig, policy, tokenizer, task, examples: list, generator: torch.Generator,
                  verifier: VerifierPool) -> tuple[ScoredBatch, list]:
    """Sample a batch and score it (`sample_batch`, then `score_batch`)."""
    return score_batch(tokenizer, *sample_batch(cfg, policy, tokenizer, task, examples, generator), verifier)


def local_generate(cfg: RunConfig, policy, tokenizer, task, verifier: VerifierPool) -> Generate:
    """Evaluation in this process: greedy sampling, verification on `verifier`, eval.batch_rows rows at a time."""
    def generate(examples: list, sampler):
        return evaluate_local(policy, tokenizer, task, examples, cfg.task.prompt_style, sampler, verifier,
                              cfg.eval.batch_rows or 64)
    return generate


def verifier_pool(cfg: RunConfig) -> VerifierPool:
    """The loop's verifier processes: the run's reward set, its evaluation protocol for evaluation
    items, each item under verify.timeout_s (as on the reward actors)."""
    return VerifierPool(cfg.task, cfg.verify.timeout_s, cfg.verify.processes)


def run(cfg: RunConfig, on_step=None) -> dict:
    """Train for cfg.train.steps; `on_step(step, scored, metrics, seconds)` replaces the printed line.
    The paths the config names are checked first (`preflight`)."""
    preflight(cfg)
    with verifier_pool(cfg) as verifier:
        return _train(cfg, verifier, on_step)


def _train(cfg: RunConfig, verifier: VerifierPool, on_step) -> dict:
    start = time.perf_counter()
    torch.manual_seed(cfg.train.seed)
    policy, tokenizer = load_policy(cfg.model)
    core = DriverCore(cfg)
    learner = Learner.build(cfg.learn_settings(), policy,
                            micro_rows(cfg, Topology.single_process(policy.device), policy.device))
    first, stream = core.resume(cfg.checkpoint.resume, learner.load)
    generate, mu, task = local_generate(cfg, policy, tokenizer, core.task, verifier), cfg.iterations, core.task
    before = core.evaluate(first, generate) if cfg.eval.before else []
    for step in range(first, cfg.train.steps):
        t0 = t1 = t2 = time.perf_counter()  # a step that reuses its batch samples and scores nothing
        if step % mu == 0:
            gen = batch_generator(cfg.train.seed, step // mu, 0, policy.device)
            rollout, rows = sample_batch(cfg, policy, tokenizer, task, stream.next(cfg.train.prompts_per_step), gen)
            t1 = time.perf_counter()
            scored, verdicts = score_batch(tokenizer, rollout, rows, verifier)
            t2 = time.perf_counter()
            learner.prepare(scored)
        metrics = learner.step(step % mu)
        times = PhaseTimes(rollout=t1 - t0, reward=t2 - t1, learn=time.perf_counter() - t2)
        B = scored.rollout.batch_size
        record = StepRecord(RewardStats.of(verdicts[:B], verdicts[B:]), metrics, times,
                            weight_version=scored.rollout.weight_version, staleness=step % mu)
        core.record_step(step + 1, record, echo=on_step is None)
        if on_step is not None:
            on_step(step + 1, scored, metrics, times.total)
        core.checkpoint(step + 1, stream.state(), learner.save)
        if core.eval_due(step + 1):
            core.evaluate(step + 1, generate)
    return core.finish(cfg.train.steps, learner, generate, before, start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="run config YAML")
    parser.add_argument("overrides", nargs="*", help="key.path=value")
    args = parser.parse_args(argv)
    try:
        cfg = load_run_config(args.config, args.overrides)
        preflight(cfg)  # before the warm start, which can take minutes
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if cfg.warm_start is not None:
        warm_start_with_progress(cfg.warm_start, cfg.task, cfg.model.device)
    print(dumps(run(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
