"""Evaluate a checkpoint with d1's protocol, spread over rollout workers.

    python -m services.evaluate CFG.yaml --checkpoint DIR [--tasks countdown,sudoku]
        [--gen-lengths 128,256,512] [--limit N] [--out DIR] [key.path=value ...]

Greedy decoding, block 32, steps = gen_length / 2, each task's evaluation prompt and prefill.
DIR is a PEFT adapter directory, a run directory (its final/ or latest checkpoint is used) or
`base` for the model without adapter. Writes per task and length a d1-compatible generations file
(`dllmrl score` re-scores it), then summary.json and results.md; the last line printed is a JSON
object with the accuracies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from dllmrl_core.config import RunConfig, load_run_config
from dllmrl_core.evaluation import eval_sampler, summarize, write_generations
from dllmrl_core.tasks import TaskConfig, load_split
from dllmrl_core.training import checkpoint


def adapter_dir(path: str) -> str | None:
    """The PEFT adapter directory a --checkpoint argument points at (None for 'base')."""
    if path == "base":
        return None
    root = Path(path)
    for candidate in (root, root / "adapter", root / "final" / "adapter"):
        if (candidate / "adapter_config.json").is_file():
            return str(candidate)
    latest = checkpoint.resolve(root, "latest")
    if latest is not None and (latest / "adapter" / "adapter_config.json").is_file():
        return str(latest / "adapter")
    raise FileNotFoundError(f"--checkpoint {path}: no PEFT adapter there (adapter_config.json)")


def task_config(cfg: RunConfig, name: str) -> TaskConfig:
    """The run's task section for its own task; d1's defaults for any other task."""
    if name == cfg.task.name:
        return cfg.task
    return TaskConfig.parse({"name": name, "eval_protocol": cfg.task.eval_protocol})


def evaluate(cfg: RunConfig, adapter: str | None, tasks: list[str], lengths: list[int], limit: int | None,
             out: Path) -> dict:
    import ray

    from dllmrl_core.models import load_tokenizer
    from services.jobs import RolloutPool, eval_jobs, score, texts
    from services.rewards import RewardActor
    from services.rollout import RolloutWorker

    rc, model = cfg.rollout, cfg.model.model_copy(update={"adapter": adapter})
    pool = RolloutPool([RolloutWorker.options(num_cpus=rc.num_cpus_per_worker, num_gpus=rc.num_gpus_per_worker,
                                              resources=rc.resources).remote(model, cfg.algorithm, cfg.train.seed,
                                                                             None, max(1, int(rc.num_cpus_per_worker)))
                        for _ in range(rc.num_workers)])
    tokenizer, results = load_tokenizer(cfg.model.path), {}
    for name in tasks:
        tc = task_config(cfg, name)
        examples = load_split(tc, "test").examples[:limit]
        rewards = [RewardActor.options(num_cpus=cfg.reward.num_cpus_per_actor).remote(
            name, tc.reward_set, tc.eval_protocol, cfg.reward.processes_per_actor, cfg.reward.timeout_s)
            for _ in range(cfg.reward.num_actors)]
        for length in lengths:
            sampler = eval_sampler(length, cfg.eval.block_length)
            chunks = pool.submit(eval_jobs(tokenizer, tc.task, examples, tc.prompt_style, sampler, None,
                                           len(pool.workers)))
            chunks, main, _ = score(pool, rewards, chunks)
            write_generations(out / f"{name}_{length}_generations.json", tc.task, examples, texts(chunks), main,
                              sampler)
            results.setdefault(name, {})[length] = summarize(main)
            print(f"{name} @ {length}: {results[name][length].accuracy:.2f}%", flush=True)
        for actor in rewards:
            ray.kill(actor)
    pool.shutdown()
    return results


def table(results: dict) -> str:
    lengths = sorted({n for per_task in results.values() for n in per_task})
    lines = ["| task | " + " | ".join(f"{n} tokens" for n in lengths) + " |", "|---|" + "---|" * len(lengths)]
    for name, per in results.items():
        cells = [f"{per[n].accuracy:.1f} ± {per[n].ci95:.1f} (n={per[n].items})" if n in per else "–" for n in lengths]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\nAccuracy in percent (Sudoku: cell accuracy) ± 95% interval half-width.\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", help="key.path=value")
    parser.add_argument("--checkpoint", required=True, help="adapter dir, run dir, or 'base'")
    parser.add_argument("--tasks", default=None, help="comma-separated (default: the config's task)")
    parser.add_argument("--gen-lengths", default=None, help="comma-separated (default: the config's eval length)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N test problems only")
    parser.add_argument("--out", default=None, help="output directory (default: <checkpoint.dir>/eval)")
    args = parser.parse_args(argv)
    try:
        cfg = load_run_config(args.config, args.overrides)
        adapter = adapter_dir(args.checkpoint)
        tasks = args.tasks.split(",") if args.tasks else [cfg.task.name]
        default_length = cfg.eval.gen_length or cfg.sampler.gen_length
        lengths = [int(x) for x in args.gen_lengths.split(",")] if args.gen_lengths else [default_length]
        for name in tasks:
            task_config(cfg, name)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out or Path(cfg.checkpoint.dir) / "eval")
    out.mkdir(parents=True, exist_ok=True)
    import ray

    from services.launch import connect

    start = time.perf_counter()
    owned = connect(cfg)
    try:
        results = evaluate(cfg, adapter, tasks, lengths, args.limit, out)
    finally:
        if owned:
            ray.shutdown()
    summary = {name: {str(n): r.__dict__ for n, r in per.items()} for name, per in results.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "results.md").write_text(table(results))
    print(json.dumps({"checkpoint": args.checkpoint, "out": str(out), "wall_s": round(time.perf_counter() - start, 1),
                      "accuracy": {name: {str(n): round(r.accuracy, 2) for n, r in per.items()}
                                   for name, per in results.items()}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
