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
import json
import sys
import time
from pathlib import Path

import torch

from dllmrl_core.drive.config import RunConfig, dump_config, load_run_config
from dllmrl_core.rollout.prompts import PromptStream, group_prompts
from dllmrl_core.drive.heldout import (across_lengths, before_after, eval_file, eval_metrics, evaluate_local,
                                   write_generations)
from dllmrl_core.drive.metrics import MetricsLog, batch_metrics
from dllmrl_core.objectives import get_objective
from dllmrl_core.planning import Topology, micro_rows
from dllmrl_core.drive.plots import plot_run
from dllmrl_core.rollout.generate import batch_generator, generate_rollouts
from dllmrl_core.verify.batch import completions_to_verify, scored_batch
from dllmrl_core.tasks import load_split
from dllmrl_core.training import checkpoint
from dllmrl_core.training.learner import Learner
from dllmrl_core.training.lora import adapter_digest
from dllmrl_core.training.policy import load_policy
from dllmrl_core.training.step import StepMetrics
from dllmrl_core.training.warm_start import warm_start_with_progress
from dllmrl_core.contract.types import ScoredBatch
from dllmrl_core.contract.verdict import TRAINING_PROTOCOL
from dllmrl_core.verify.verifier import verify


def rollout_batch(cfg: RunConfig, policy, tokenizer, task, examples: list,
                  generator: torch.Generator) -> tuple[ScoredBatch, list]:
    """Generate G completions per example (with the method's branches) and score them all;
    returns the scored batch and the verdicts (main rows, then branches)."""
    objective = get_objective(cfg.algorithm.name)
    ids, mask, groups, rows = group_prompts(tokenizer, task, examples, cfg.train.group_size, cfg.task.prompt_style,
                                            policy.device)
    rollout = generate_rollouts(policy, ids, mask, groups, cfg.sampler, objective, cfg.algorithm.selected, generator)
    items = completions_to_verify(rollout, tokenizer, rows)
    verdicts = [verify(task, cfg.task.reward_set, TRAINING_PROTOCOL, i.text, i.example) for i in items]
    return scored_batch(rollout, verdicts), verdicts


def summary_line(step: int, scored: ScoredBatch, m: StepMetrics, seconds: float) -> str:
    return (f"step {step:4d}  reward {float(scored.rewards.mean()):.3f}  correct {float(scored.correct.float().mean()):.2f}"
            f"  loss {m.loss:+.4f}  kl {m.kl:.4f}  clip {m.clip_frac:.3f}  |g| {m.grad_norm:.3f}  {seconds:.1f}s")


def save_checkpoint(cfg: RunConfig, learner: Learner, step: int, stream: PromptStream) -> Path:
    tmp = checkpoint.temp_dir(cfg.checkpoint.dir, step)
    learner.save(tmp)
    state = {"step": step, "version": step, "stream": stream.state()}
    return checkpoint.finalize(cfg.checkpoint.dir, tmp, step, state, dump_config(cfg), cfg.checkpoint.keep)


def final_summary(cfg: RunConfig, learner: Learner, scored: ScoredBatch | None, start: float) -> dict:
    """Save the final adapter (PEFT format) next to the checkpoints and describe the run."""
    learner.policy.model.save_pretrained(Path(cfg.checkpoint.dir) / "final" / "adapter")
    sha, norm = adapter_digest(learner.adapter())
    return {"steps": cfg.train.steps, "algorithm": cfg.algorithm.name,
            "reward_mean": None if scored is None else round(float(scored.rewards.mean()), 6),
            "adapter_sha256": sha, "adapter_norm": norm, "wall_s": round(time.perf_counter() - start, 2)}


def evaluate(cfg: RunConfig, policy, tokenizer, task, test, log: MetricsLog, step: int) -> list:
    """d1-protocol evaluation on the first eval.num_examples test problems at every evaluation length,
    logged at `step`; returns each problem's score averaged over the lengths."""
    examples, samplers = test.examples[: cfg.eval.num_examples], cfg.eval.samplers(cfg.sampler.gen_length)
    per_length = {}
    for sampler in samplers:
        texts, verdicts = evaluate_local(policy, tokenizer, task, examples, cfg.task.prompt_style, sampler,
                                         cfg.task.eval_protocol, cfg.eval.batch_rows or 64)
        length = sampler.gen_length if len(samplers) > 1 else None
        write_generations(eval_file(cfg.checkpoint.dir, step, length), task, examples, texts, verdicts, sampler)
        per_length[sampler.gen_length] = verdicts
    log.log(step, eval_metrics(per_length))
    return across_lengths(per_length)


def run(cfg: RunConfig, on_step=None) -> dict:
    """Train for cfg.train.steps; `on_step(step, scored, metrics, seconds)` replaces the printed line."""
    start = time.perf_counter()
    torch.manual_seed(cfg.train.seed)
    policy, tokenizer = load_policy(cfg.model)
    task, train = cfg.task.task, load_split(cfg.task, "train")
    learner = Learner.build(cfg.learn_settings(), policy,
                            micro_rows(cfg, Topology.single_process(policy.device), policy.device))
    stream, first = PromptStream(train.examples, seed=cfg.train.seed), 0
    resume = checkpoint.resolve(cfg.checkpoint.dir, cfg.checkpoint.resume)
    if resume is not None:
        state = checkpoint.read_state(resume)
        learner.load(resume)
        stream, first = PromptStream(train.examples, seed=cfg.train.seed, **state["stream"]), state["step"]
    Path(cfg.checkpoint.dir).mkdir(parents=True, exist_ok=True)
    (Path(cfg.checkpoint.dir) / "config.yaml").write_text(dump_config(cfg))
    log, mu, scored, verdicts = MetricsLog(cfg.checkpoint.dir), cfg.iterations, None, []
    test = load_split(cfg.task, "test") if cfg.eval.active else None
    before = evaluate(cfg, policy, tokenizer, task, test, log, first) if cfg.eval.before else []
    for step in range(first, cfg.train.steps):
        t0 = time.perf_counter()
        if step % mu == 0:
            gen = batch_generator(cfg.train.seed, step // mu, 0, policy.device)
            scored, verdicts = rollout_batch(cfg, policy, tokenizer, task, stream.next(cfg.train.prompts_per_step), gen)
            learner.prepare(scored)
        metrics = learner.step(step % mu)
        B = scored.rollout.batch_size
        log.log(step + 1, {**batch_metrics(verdicts[:B], verdicts[B:], scored.rollout.weight_version),
                           **metrics.as_dict()})
        if on_step is not None:
            on_step(step + 1, scored, metrics, time.perf_counter() - t0)
        elif (step + 1) % cfg.train.log_every == 0:
            print(summary_line(step + 1, scored, metrics, time.perf_counter() - t0), flush=True)
        if cfg.checkpoint.save_every and (step + 1) % cfg.checkpoint.save_every == 0:
            save_checkpoint(cfg, learner, step + 1, stream)
        if cfg.eval.every and (step + 1) % cfg.eval.every == 0 and step + 1 < cfg.train.steps:
            evaluate(cfg, policy, tokenizer, task, test, log, step + 1)
    after = evaluate(cfg, policy, tokenizer, task, test, log, cfg.train.steps) if (cfg.eval.after or cfg.eval.every) \
        else []
    log.close()
    plot_run(Path(cfg.checkpoint.dir) / "metrics.jsonl", Path(cfg.checkpoint.dir) / "curve.png",
             f"{cfg.algorithm.name} on {cfg.task.name}")
    summary = {**final_summary(cfg, learner, scored, start), "skipped_rows": train.skipped}
    return {**summary, **(before_after(before, after) if before and after else {})}


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
    if cfg.warm_start is not None:
        warm_start_with_progress(cfg.warm_start, cfg.model.path, cfg.task, cfg.model.device)
    print(json.dumps(run(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
