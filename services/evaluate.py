"""Evaluate a checkpoint with d1's protocol, spread over rollout workers; optionally sweep the steps.

    python -m services.evaluate CFG.yaml --checkpoint DIR [--tasks countdown,sudoku]
        [--gen-lengths 128,256,512] [--steps 32,64,128] [--limit N] [--out DIR] [key.path=value ...]

Greedy decoding, block 32, each task's evaluation prompt and prefill; steps = gen_length / 2
(d1) unless `--steps` lists step counts (each evaluated at every length: AGRPO's fewer-steps
claim, SAPO's step sweep) or the config sets `eval.steps`. Lengths default to the config's
`eval.gen_length`. DIR is a PEFT adapter directory, a run directory (its final/ or latest
checkpoint is used) or `base` for the model without adapter. Writes per task, length and step
count a d1-compatible generations file `<task>_<length>_<steps>_generations.json` (`dllmrl score`
re-scores it), then summary.json and results.md (one table: a row per task and step count, a
column per length and their average); the last line printed is a JSON object with the accuracies.
Everything goes into `--out`, by default `<RUN>/eval` of the run the checkpoint belongs to (the
directory holding its config.yaml), never the config's checkpoint.dir. `dllmrl eval` is this command.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dllmrl_core.contract.jsontext import dumps
from dllmrl_core.drive.heldout import EvalSummary, eval_sampler, evaluate_once, summarize
from dllmrl_core.tasks import TaskConfig, get_task, load_split
from dllmrl_core.drive.trained import find_adapter, locate
from services.settings import SystemConfig, load_system_config


def adapter_dir(path: str) -> str | None:
    """The PEFT adapter directory a --checkpoint argument points at (None for 'base')."""
    return None if path == "base" else str(find_adapter(path))


def results_dir(checkpoint_arg: str, out: str | None) -> Path:
    """--out, else `<RUN>/eval` for the run the checkpoint belongs to (its adapter's directory when
    no config.yaml is beside it): never the config's checkpoint.dir, which may be another run."""
    if out is not None:
        return Path(out)
    if checkpoint_arg == "base":
        raise ValueError("--out: evaluating the base model (--checkpoint base) needs an output directory")
    run = locate(checkpoint_arg)
    return (run.root or run.adapter) / "eval"


def task_config(cfg: SystemConfig, name: str) -> TaskConfig:
    """The run's task section for its own task; for any other task its default data with the run's
    evaluation protocol, prompt style (where the task has it) and data_dir."""
    if name == cfg.task.name:
        return cfg.task
    own = {"name": name, "eval_protocol": cfg.task.eval_protocol, "data_dir": cfg.task.data_dir}
    if cfg.task.prompt_style in get_task(name).prompt_styles:
        own["prompt_style"] = cfg.task.prompt_style
    return TaskConfig.parse(own)


Results = dict[str, dict[str, dict[int, EvalSummary]]]  # task -> steps ("L/2" or a count) -> length -> summary


def sweep(cfg: SystemConfig, lengths: list[int], steps: list[int | None]) -> list[tuple[str, object]]:
    """(steps label, greedy sampler) for every step setting and length; None steps = gen_length / 2
    (label "L/2"). A step count that does not fit a length is a ValueError naming both."""
    return [("L/2" if s is None else str(s), eval_sampler(n, cfg.eval.block_length, s)) for s in steps for n in lengths]


def evaluate(cfg: SystemConfig, adapter: str | None, tasks: list[str], samplers: list[tuple[str, object]],
             limit: int | None, out: Path) -> Results:
    import ray

    from dllmrl_core.models import load_tokenizer
    from services.jobs import RolloutPool, remote_generate
    from services.reward_actors import start_reward_actors

    model = cfg.model.model_copy(update={"adapter": adapter})
    pool = RolloutPool.start(cfg.rollout, model, cfg.algorithm, cfg.train.seed, None)
    tokenizer, results = load_tokenizer(cfg.model.path, trust_remote_code=cfg.model.trust_remote_code), {}
    for name in tasks:
        tc = task_config(cfg, name)
        examples = load_split(tc, "test").examples[:limit]
        rewards = start_reward_actors(cfg.reward, tc, cfg.verify)
        generate = remote_generate(pool, rewards, tokenizer, tc.task, tc.prompt_style, None, cfg.eval.batch_rows)
        for label, sampler in samplers:
            path = out / f"{name}_{sampler.gen_length}_{sampler.steps}_generations.json"
            verdicts = evaluate_once(generate, tc.task, examples, sampler, path)
            result = results.setdefault(name, {}).setdefault(label, {})[sampler.gen_length] = summarize(verdicts)
            print(f"{name} @ {sampler.gen_length} tokens, {sampler.steps} steps: {result.accuracy:.2f}%", flush=True)
        for actor in rewards:
            ray.kill(actor)
    pool.shutdown()
    return results


def table(results: Results) -> str:
    """One markdown table: a row per task and step setting, a column per length and, with several
    lengths, their average (the papers' "Avg.")."""
    lengths = sorted({n for per_task in results.values() for per_steps in per_task.values() for n in per_steps})
    avg = len(lengths) > 1
    lines = ["| task | steps | " + " | ".join(f"{n} tokens" for n in lengths) + (" | avg |" if avg else " |"),
             "|---|---|" + "---|" * (len(lengths) + avg)]
    for name, per_task in results.items():
        for label, per_length in per_task.items():
            cells = [f"{per_length[n].accuracy:.1f} ± {per_length[n].ci95:.1f} (n={per_length[n].items})"
                     if n in per_length else "–" for n in lengths]
            if avg:
                cells.append(f"{sum(r.accuracy for r in per_length.values()) / len(per_length):.1f}")
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return ("\n".join(lines) + "\n\nAccuracy in percent (Sudoku: cell accuracy; under eval_protocol agrpo the mean "
            "share per puzzle) ± 95% interval half-width; steps L/2 = d1's gen_length / 2; avg = the mean over "
            "the lengths.\n")


def int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"{what}: expected comma-separated integers, got {text!r}") from None
    if any(v < 1 for v in values):
        raise ValueError(f"{what}: expected positive integers, got {text!r}")
    return values


def register(parser: argparse.ArgumentParser) -> None:
    """The arguments of `python -m services.evaluate` and `dllmrl eval`."""
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", help="key.path=value")
    parser.add_argument("--checkpoint", required=True, help="adapter dir, run dir, or 'base'")
    parser.add_argument("--tasks", default=None, help="comma-separated (default: the config's task)")
    parser.add_argument("--gen-lengths", default=None, help="comma-separated (default: the config's eval lengths)")
    parser.add_argument("--steps", default=None, help="comma-separated step counts, each evaluated at every length "
                                                      "(default: eval.steps, else gen_length / 2)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N test problems only")
    parser.add_argument("--out", default=None, help="output directory (default: <RUN>/eval, RUN being the run the "
                                                    "checkpoint belongs to; required with --checkpoint base)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_system_config(args.config, args.overrides)
        adapter = adapter_dir(args.checkpoint)
        tasks = args.tasks.split(",") if args.tasks else [cfg.task.name]
        lengths = (int_list(args.gen_lengths, "--gen-lengths") if args.gen_lengths
                   else cfg.eval.lengths(cfg.sampler.gen_length))
        steps = int_list(args.steps, "--steps") if args.steps else [cfg.eval.steps]
        samplers = sweep(cfg, lengths, steps)
        for name in tasks:
            task_config(cfg, name)
        out = results_dir(args.checkpoint, args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    import ray

    from services.launch import connect

    start = time.perf_counter()
    owned = connect(cfg)
    try:
        results = evaluate(cfg, adapter, tasks, samplers, args.limit, out)
    finally:
        if owned:
            ray.shutdown()
    summary = {name: {label: {str(n): r.__dict__ for n, r in per_length.items()} for label, per_length in per.items()}
               for name, per in results.items()}
    (out / "summary.json").write_text(dumps(summary, indent=1))
    (out / "results.md").write_text(table(results))
    print(dumps({"checkpoint": args.checkpoint, "out": str(out), "wall_s": round(time.perf_counter() - start, 1),
                      "accuracy": {name: {label: {str(n): round(r.accuracy, 2) for n, r in per_length.items()}
                                          for label, per_length in per.items()}
                                   for name, per in results.items()}}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    register(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
