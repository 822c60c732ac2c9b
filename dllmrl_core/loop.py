"""The single-process RL loop: sample → score → step → repeat, on `dllmrl_core` alone.

    python -m dllmrl_core.loop CFG.yaml [key.path=value ...]

The reference the distributed system must match (same config, same seeds, same adapter) and the
baseline of the benchmarks. Its last printed line is a JSON summary:
{"steps", "reward_mean" (last batch), "adapter_sha256", "adapter_norm", ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from functools import partial

import torch

from dllmrl_core.config import RunConfig, load_run_config
from dllmrl_core.data import PromptStream, group_prompts
from dllmrl_core.objectives import get_objective
from dllmrl_core.objectives.common import PolicyTerm
from dllmrl_core.rollout import generate_rollouts, special_tokens
from dllmrl_core.scoring import completions_to_verify, scored_batch, verify
from dllmrl_core.tasks import load_split
from dllmrl_core.training.lora import adapter_digest, adapter_state
from dllmrl_core.training.optim import build_optimizer
from dllmrl_core.training.policy import load_policy
from dllmrl_core.training.step import StepMetrics, freeze_old_and_ref, train_step
from dllmrl_core.types import ScoredBatch


@dataclass
class Learner:
    """Everything one learner process holds: policy, optimizer, schedule, the method."""

    cfg: RunConfig
    policy: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    objective: object
    generator: torch.Generator  # CPU: estimator draws (mask seeds, sampled steps)
    iterations: list[list[PolicyTerm]] = field(default_factory=list)

    @classmethod
    def build(cls, cfg: RunConfig, policy) -> Learner:
        opt, sched = build_optimizer(policy.model.parameters(), cfg.optim, cfg.train.steps)
        return cls(cfg, policy, opt, sched, get_objective(cfg.algorithm.name),
                   torch.Generator().manual_seed(cfg.train.seed + 1))

    def prepare(self, scored: ScoredBatch) -> None:
        """Advantages and queries for the μ iterations of a new batch; old/ref log-probs frozen now."""
        algo = self.cfg.algorithm.selected
        self.iterations = self.objective.prepare(scored, algo, special_tokens(self.policy), self.generator)
        freeze_old_and_ref(self.policy, self.iterations, self.objective.needs_ref(algo), self.cfg.optim.micro_batch_rows)

    def step(self, k: int) -> StepMetrics:
        algo = self.cfg.algorithm.selected
        return train_step(self.policy, self.optimizer, self.scheduler, self.iterations[k],
                          partial(self.objective.loss, cfg=algo), max_grad_norm=self.cfg.optim.max_grad_norm,
                          micro_rows=self.cfg.optim.micro_batch_rows)


def rollout_batch(cfg: RunConfig, policy, tokenizer, task, examples: list, generator: torch.Generator) -> ScoredBatch:
    """Generate G completions per example (with the method's branches) and score them all."""
    objective = get_objective(cfg.algorithm.name)
    ids, mask, groups, rows = group_prompts(tokenizer, task, examples, cfg.train.group_size, cfg.task.prompt_style,
                                            policy.device)
    rollout = generate_rollouts(policy, ids, mask, groups, cfg.sampler, objective, cfg.algorithm.selected, generator)
    texts, items = completions_to_verify(rollout, tokenizer, rows)
    return scored_batch(rollout, [verify(task, cfg.task.reward_set, cfg.task.eval_protocol, t, ex)
                                  for t, ex in zip(texts, items)])


def summary_line(step: int, scored: ScoredBatch, m: StepMetrics, seconds: float) -> str:
    return (f"step {step:4d}  reward {float(scored.rewards.mean()):.3f}  correct {float(scored.correct.float().mean()):.2f}"
            f"  loss {m.loss:+.4f}  kl {m.kl:.4f}  clip {m.clip_frac:.3f}  |g| {m.grad_norm:.3f}  {seconds:.1f}s")


def run(cfg: RunConfig, on_step=None) -> dict:
    """Train for cfg.train.steps; `on_step(step, scored, metrics, seconds)` replaces the printed line."""
    torch.manual_seed(cfg.train.seed)
    policy, tokenizer = load_policy(cfg.model)
    task, train = cfg.task.task, load_split(cfg.task, "train")
    stream = PromptStream(train.examples, seed=cfg.train.seed)
    learner = Learner.build(cfg, policy)
    sample_gen = torch.Generator(policy.device).manual_seed(cfg.train.seed)
    mu = learner.objective.num_iterations(cfg.algorithm.selected)
    scored, start = None, time.perf_counter()
    for step in range(cfg.train.steps):
        t0 = time.perf_counter()
        if step % mu == 0:
            scored = rollout_batch(cfg, policy, tokenizer, task, stream.next(cfg.train.prompts_per_step), sample_gen)
            learner.prepare(scored)
        metrics = learner.step(step % mu)
        if on_step is not None:
            on_step(step + 1, scored, metrics, time.perf_counter() - t0)
        elif (step + 1) % cfg.train.log_every == 0:
            print(summary_line(step + 1, scored, metrics, time.perf_counter() - t0), flush=True)
    sha, norm = adapter_digest(adapter_state(policy.model))
    return {"steps": cfg.train.steps, "algorithm": cfg.algorithm.name,
            "reward_mean": None if scored is None else round(float(scored.rewards.mean()), 6),
            "adapter_sha256": sha, "adapter_norm": norm, "skipped_rows": train.skipped,
            "wall_s": round(time.perf_counter() - start, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="run config YAML")
    parser.add_argument("overrides", nargs="*", help="key.path=value")
    args = parser.parse_args(argv)
    try:
        cfg = load_run_config(args.config, args.overrides)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(run(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
