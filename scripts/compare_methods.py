"""Compare the registered methods at CPU scale, from one warm start, at a matched budget.

Every method trains from the same warm-started model with the same prompts per step × group size
(so the same number of rollouts) and the same number of optimizer steps (one per batch: μ = 1 for
every method here), for each seed. With --lrs, each method first runs once per learning rate at
--sweep-seed and keeps the one whose training reward ends highest (held-out data takes no part).
Branching methods cost more per step, so train seconds and model forward passes (sequences through
the network, rollout + learner, evaluation excluded) are reported next to accuracy. Held-out
accuracy uses d1's protocol (greedy, the run's eval settings) on the same problems before and after
training; differences between methods are paired by seed.

    python scripts/compare_methods.py configs/tiny_countdown.yaml --steps 100 --seeds 0 1 2 3 4 \\
        --lrs 1e-4 3e-4 1e-3 --jobs 2 --threads 1

writes docs/RESULTS.md and docs/compare_curve.png (and one run directory per method × seed under
--runs). The last printed line is a JSON object with every run's figures.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dllmrl_core.drive import loop
from dllmrl_core.drive.config import RunConfig, load_run_config
from dllmrl_core.drive.driver import DriverCore
from dllmrl_core.drive.runtime import configure_process
from dllmrl_core.models import MaskPredictor
from dllmrl_core.objectives import OBJECTIVES
from dllmrl_core.training.warm_start import ensure_warm_start

RESULT = "compare.json"  # a finished run's figures, reused by --reuse
METHODS = tuple(OBJECTIVES)
# two-sided 95% Student-t quantiles by degrees of freedom (seeds − 1)
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


class ForwardCounter:
    """Sequences (and tokens) passed through the network by any MaskPredictor forward: rollout and
    branching (`__call__`) and the learner (`__call__`, or `hidden` on the gathered path);
    evaluation is paused out. Installed by wrapping those two methods."""

    def __init__(self):
        self.sequences, self.tokens, self.paused = 0, 0, False
        for name in ("__call__", "hidden"):
            setattr(MaskPredictor, name, self.counting(getattr(MaskPredictor, name)))
        DriverCore.evaluate = self.pausing(DriverCore.evaluate)

    def counting(self, forward):
        def counted(predictor, input_ids, *args, **kwargs):
            if not self.paused:
                self.sequences += int(input_ids.shape[0])
                self.tokens += int(input_ids.numel())
            return forward(predictor, input_ids, *args, **kwargs)
        return counted

    def pausing(self, fn):
        def wrapped(*args, **kwargs):
            self.paused = True
            try:
                return fn(*args, **kwargs)
            finally:
                self.paused = False
        return wrapped


def run_one(cfg: RunConfig, counter: ForwardCounter) -> dict:
    counter.sequences = counter.tokens = 0
    start, step_s = time.perf_counter(), []
    summary = loop.run(cfg, on_step=lambda step, scored, metrics, seconds: step_s.append(seconds))
    records = read_records(Path(cfg.checkpoint.dir))
    curve = [(r["step"], r["eval/accuracy"]) for r in records if "eval/accuracy" in r]
    result = {**summary, "run_s": round(time.perf_counter() - start, 1), "train_s": round(sum(step_s), 1),
              "seed": cfg.train.seed, "step_s": median_step_s(records),
              "forward_sequences": counter.sequences, "forward_tokens": counter.tokens, "curve": curve,
              "reward": [(r["step"], r["reward/mean"]) for r in records if "reward/mean" in r]}
    (Path(cfg.checkpoint.dir) / RESULT).write_text(json.dumps(result))
    return result


def read_records(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def median_step_s(records: list[dict]) -> float:
    """Median seconds per optimizer step (a run paused for a while still reads true)."""
    return statistics.median(r["time/step_s"] for r in records if "time/step_s" in r)


LR = "optim.lr="


def method_of(label: str) -> str:
    return label.partition(":")[0]


def variant(label: str) -> list[str]:
    """A label's key=value settings: method:key=value,... (none for a bare method name)."""
    return list(filter(None, label.partition(":")[2].split(",")))


def label_lr(label: str) -> str | None:
    """The lr a label sets, else None (the config's)."""
    return next((kv[len(LR):] for kv in variant(label) if kv.startswith(LR)), None)


@dataclass(frozen=True)
class Spec:
    """One run: `label` names the row (method, or method:key=value,... for a variant), `seed` the seed."""
    label: str
    seed: int

    @property
    def method(self) -> str:
        return method_of(self.label)

    @property
    def variant(self) -> list[str]:
        return variant(self.label)

    def directory(self, runs: str) -> str:
        return f"{runs}/{self.label.replace(':', '-')}-s{self.seed}"


def spec_config(spec: Spec, args) -> RunConfig:
    cfg = load_run_config(args.config, [
        *args.overrides, *spec.variant, f"algorithm.name={spec.method}", f"train.seed={spec.seed}",
        f"train.steps={args.steps}", "eval.before=true", "eval.after=true",
        f"eval.every={max(1, args.steps // args.evals)}", f"checkpoint.dir={spec.directory(args.runs)}",
        "checkpoint.save_every=0"])
    if cfg.iterations != 1:
        raise SystemExit(f"{spec.label}: {cfg.iterations} optimizer steps per batch; the matched budget needs one "
                         f"(set algorithm.{spec.method}.num_iterations=1)")
    return cfg


_COUNTER: ForwardCounter | None = None


def _start_process(threads: int | None) -> None:
    global _COUNTER
    configure_process(threads)
    if _COUNTER is None:  # once per process: a second would count every forward twice
        _COUNTER = ForwardCounter()


def _run_spec(spec: Spec, args) -> dict:
    cfg = spec_config(spec, args)
    shutil.rmtree(cfg.checkpoint.dir, ignore_errors=True)  # no metrics left from an unfinished run
    result = run_one(cfg, _COUNTER)
    print(f"{spec.label} seed {spec.seed}: {result['accuracy_before']:.1f} -> {result['accuracy_after']:.1f} "
          f"({result['run_s']:.0f} s, {result['forward_sequences']} forward sequences)", flush=True)
    return result


def execute(specs: list[Spec], args) -> dict[Spec, dict]:
    """Every spec's figures: reused from a finished run (--reuse, --report-only) or run now, --jobs at once
    (each a process with --threads torch threads)."""
    results, todo = {}, []
    for spec in specs:
        done = Path(spec.directory(args.runs)) / RESULT
        if (args.reuse or args.report_only) and done.is_file():
            result = {"seed": spec.seed, **json.loads(done.read_text())}
            if "step_s" not in result:  # written before run_one stored it
                result["step_s"] = median_step_s(read_records(done.parent))
            results[spec] = result
        elif not args.report_only:
            todo.append(spec)
    if args.jobs == 1:
        _start_process(args.threads)
        results.update({spec: _run_spec(spec, args) for spec in todo})
    elif todo:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_process, initargs=(args.threads,)) as pool:
            results.update(zip(todo, pool.map(_run_spec, todo, [args] * len(todo))))
    return results


def final_reward(result: dict) -> float:
    """Mean training reward over the last quarter of the run: the sweep's criterion (no held-out data)."""
    rewards = [r for _, r in result["reward"]]
    return statistics.fmean(rewards[-max(1, len(rewards) // 4):])


def collapsed(result: dict) -> bool:
    """The run ended with less than half the training reward of its first quarter."""
    rewards = [r for _, r in result["reward"]]
    return final_reward(result) < 0.5 * statistics.fmean(rewards[:max(1, len(rewards) // 4)])


def with_lr(method: str, lr: str) -> str:
    return f"{method}{',' if ':' in method else ':'}{LR}{lr}"


def lower(lr: str) -> str:
    """The next lr down the sweep: a third, written as 1e-4 rather than 0.0001."""
    mantissa, _, exponent = f"{float(lr) / 3:.0e}".partition("e")
    return f"{mantissa}e{int(exponent)}"


def choose_lrs(methods: list[str], args) -> tuple[dict[str, str], dict[str, dict[str, dict]]]:
    """Run every method at every --lrs value at --sweep-seed, then at a third of its lowest lr for as
    long as that one collapsed (at most --extend times); each method's label at the lr whose run ends
    with the highest training reward (ties: the smaller lr), and the sweep's figures {method: {lr: run}}."""
    if not args.lrs:
        return {m: m for m in methods}, {}
    sweep: dict[str, dict[str, dict]] = {m: {} for m in methods}
    todo = {m: list(args.lrs) for m in methods}
    for _ in range(args.extend + 1):
        specs = {(m, lr): Spec(with_lr(m, lr), args.sweep_seed) for m, lrs in todo.items() for lr in lrs}
        done = execute(list(specs.values()), args)
        for (m, lr), spec in specs.items():
            if spec in done:
                sweep[m][lr] = done[spec]
        lowest = {m: min(runs, key=float) for m, runs in sweep.items() if runs}
        todo = {m: [lower(lr)] for m, lr in lowest.items() if collapsed(sweep[m][lr])}
    chosen = {m: with_lr(m, max(runs, key=lambda lr: (final_reward(runs[lr]), -float(lr))))
              for m, runs in sweep.items() if runs}
    return chosen, sweep


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and 95% half-width over seeds (Student t)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))


def paired(a: list[dict], b: list[dict]) -> tuple[float, float, int]:
    """Mean and 95% half-width of accuracy-after differences a − b over the seeds both ran (a seed
    fixes the training prompts and sampling noise streams, so the pair shares them), and that count."""
    seeds_b = {r["seed"]: r["accuracy_after"] for r in b}
    diffs = [r["accuracy_after"] - seeds_b[r["seed"]] for r in a if r["seed"] in seeds_b]
    return (*mean_ci(diffs), len(diffs)) if diffs else (float("nan"), float("nan"), 0)


def resolved(mean: float, ci: float) -> bool:
    return math.isfinite(ci) and abs(mean) > ci


def row_name(label: str) -> str:
    """A table row's name: the method, and the variant's settings other than the lr (which has its own
    column), so two variants of one method stay apart: "egspo (algorithm.egspo.num_steps=2)"."""
    rest = [kv for kv in variant(label) if not kv.startswith(LR)]
    return method_of(label) + (f" ({', '.join(rest)})" if rest else "")


def table(results: dict[str, list[dict]], steps: int, reference: str) -> str:
    rows = ["| method | lr | seeds | held-out accuracy after (%) | Δ vs warm start (points) | "
            f"Δ vs {row_name(reference)}, paired (points) | well-formed after (%) | per-seed after | "
            "s / step (median) | forward sequences / step |", "|---|---|---|---|---|---|---|---|---|---|"]
    for label, runs in results.items():
        after, ci = mean_ci([r["accuracy_after"] for r in runs])
        delta, dci = mean_ci([r["delta"] for r in runs])
        ref, rci, _ = paired(runs, results[reference])
        vs = "—" if label == reference else f"{ref:+.1f} ± {rci:.1f}" + (" ✓" if resolved(ref, rci) else "")
        wf = statistics.fmean(r["well_formed_after"] for r in runs)
        per_seed = ", ".join(f"{r['accuracy_after']:.1f}" for r in runs)
        sps = statistics.fmean(r["step_s"] for r in runs)
        fwd = statistics.fmean(r["forward_sequences"] for r in runs) / steps
        lr = label_lr(label) or "config"
        rows.append(f"| {row_name(label)} | {lr} | {len(runs)} | {after:.1f} ± {ci:.1f} | "
                    f"{delta:+.1f} ± {dci:.1f} | {vs} | {wf:.0f} | {per_seed} | {sps:.2f} | {fwd:.0f} |")
    return "\n".join(rows)


def pairs_table(results: dict[str, list[dict]]) -> str:
    """Row − column accuracy-after differences, paired by seed, with 95% intervals; ✓ where the
    interval excludes zero."""
    labels = list(results)
    names = [row_name(label) for label in labels]
    rows = ["| row − column | " + " | ".join(names[1:]) + " |", "|---" * len(labels) + "|"]
    for i, a in enumerate(labels[:-1]):
        cells = []
        for j, b in enumerate(labels[1:], start=1):
            if j <= i:
                cells.append("")
                continue
            mean, ci, _ = paired(results[a], results[b])
            cells.append(f"{mean:+.1f} ± {ci:.1f}" + (" ✓" if resolved(mean, ci) else ""))
        rows.append(f"| {names[i]} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def sweep_table(sweep: dict[str, dict[str, dict]], chosen: dict[str, str]) -> str:
    lrs = sorted({lr for runs in sweep.values() for lr in runs}, key=float)
    rows = ["| method | " + " | ".join(f"lr {lr}" for lr in lrs) + " | chosen |", "|---" * (len(lrs) + 2) + "|"]
    for m, runs in sweep.items():
        cells = [f"{final_reward(runs[lr]):.3f} ({runs[lr]['accuracy_after']:.1f}%"
                 f"{', collapsed' if collapsed(runs[lr]) else ''})" if lr in runs else "—" for lr in lrs]
        rows.append(f"| {m} | " + " | ".join(cells) + f" | {label_lr(chosen[m]) if m in chosen else ''} |")
    return "\n".join(rows)


def plot(results: dict[str, list[dict]], before: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc, rew) = plt.subplots(1, 2, figsize=(11, 4))
    for label, runs in results.items():
        steps = [s for s, _ in runs[0]["curve"]]
        acc.plot(steps, [statistics.fmean(r["curve"][i][1] for r in runs) for i in range(len(steps))], "o-",
                 label=label)
        steps = [s for s, _ in runs[0]["reward"]]
        window = max(1, len(steps) // 10)
        mean = [statistics.fmean(r["reward"][i][1] for r in runs) for i in range(len(steps))]
        smooth = [statistics.fmean(mean[max(0, i - window + 1): i + 1]) for i in range(len(mean))]
        rew.plot(steps, smooth, label=label)
    acc.axhline(before, color="grey", ls="--", lw=1, label="warm start")
    acc.set(xlabel="optimizer step", ylabel="held-out accuracy (%, mean over seeds)")
    rew.set(xlabel="optimizer step", ylabel=f"train reward (mean over seeds, {window}-step average)")
    acc.legend(fontsize=7)
    rew.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", help="key.path=value for every run")
    parser.add_argument("--methods", nargs="+", default=list(METHODS),
                        help="method names, or name:key=value,... for a variant (e.g. diffu_grpo:optim.lr=1e-4)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--evals", type=int, default=4, help="held-out evaluations per run (learning curve)")
    parser.add_argument("--lrs", nargs="+", default=[],
                        help="learning-rate sweep: each method first runs at each of these at --sweep-seed; "
                             "the seeds then run at the one whose run ends with the highest training reward")
    parser.add_argument("--sweep-seed", type=int, default=100, help="the sweep's seed (not one of --seeds)")
    parser.add_argument("--extend", type=int, default=1,
                        help="times the sweep may go down by a third where its lowest lr collapsed")
    parser.add_argument("--reference", help="the method the paired differences are taken against (default: first)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process")
    parser.add_argument("--threads", type=int, help="torch threads per run (default: torch's)")
    parser.add_argument("--runs", default="runs/compare")
    parser.add_argument("--docs", default="docs")
    parser.add_argument("--reuse", action="store_true", help="keep the figures of runs that already finished")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: write the docs from the runs that finished (fewer seeds where some did not)")
    args = parser.parse_args(argv)
    for method in args.methods:
        if method_of(method) not in METHODS:
            parser.error(f"--methods: unknown method {method_of(method)!r} (valid: {', '.join(METHODS)})")
    if args.sweep_seed in args.seeds and args.lrs:
        parser.error(f"--sweep-seed {args.sweep_seed} is one of --seeds: the chosen lr would be judged on its own run")
    if args.reference is not None and args.reference not in [method_of(m) for m in args.methods]:
        parser.error(f"--reference: {args.reference!r} is not among --methods")
    if args.jobs < 1 or (args.threads is not None and args.threads < 1) or args.extend < 0:
        parser.error("--jobs and --threads must be at least 1, --extend at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = load_run_config(args.config, args.overrides)
    if base.warm_start is not None and not args.report_only:
        ensure_warm_start(base.warm_start, base.task, base.model.device)
    for method in args.methods:  # every config error before any run starts
        spec_config(Spec(method, args.seeds[0]), args)
    chosen, sweep = choose_lrs(args.methods, args)
    # seed by seed, so an interrupted comparison (--report-only) has as many seeds of every method
    specs = [Spec(chosen[m], seed) for seed in args.seeds for m in args.methods if m in chosen]
    done = execute(specs, args)
    results: dict[str, list[dict]] = {}
    for label in (chosen[m] for m in args.methods if m in chosen):  # rows in --methods order
        runs = [done[spec] for spec in specs if spec.label == label and spec in done]
        if runs:
            results[label] = runs
    write_docs(args, base, results, sweep, chosen)
    print(json.dumps({label: [{k: r[k] for k in ("seed", "accuracy_before", "accuracy_after", "delta", "run_s",
                                                 "forward_sequences")} for r in runs]
                      for label, runs in results.items()}))
    return 0


def write_docs(args, base: RunConfig, results: dict[str, list[dict]], sweep: dict, chosen: dict[str, str]) -> None:
    docs = Path(args.docs)
    docs.mkdir(parents=True, exist_ok=True)
    before = statistics.fmean(r["accuracy_before"] for runs in results.values() for r in runs)
    plot(results, before, docs / "compare_curve.png")
    command = " ".join(["python scripts/compare_methods.py", args.config, *args.overrides, "--methods",
                        *args.methods, "--steps", str(args.steps), "--seeds", *map(str, args.seeds),
                        "--evals", str(args.evals), *(["--lrs", *args.lrs, "--sweep-seed", str(args.sweep_seed),
                                                       "--extend", str(args.extend)] if args.lrs else []),
                        *(["--reference", args.reference] if args.reference else []),
                        *(["--jobs", str(args.jobs)] if args.jobs > 1 else []),
                        *(["--threads", str(args.threads)] if args.threads else [])])
    n_eval, rollouts = base.eval.num_examples, base.train.prompts_per_step * base.train.group_size
    reference = next((label for label in results if method_of(label) == args.reference), next(iter(results)))
    sweep_text = (SWEEP.format(lrs=", ".join(args.lrs), seed=args.sweep_seed, extend=args.extend,
                               table=sweep_table(sweep, chosen))
                  if sweep else f"Every method at the config's lr ({base.optim.lr}).\n")
    out = docs / "RESULTS.md"
    # the hand-written reading of the tables survives a regeneration (--reuse, --report-only)
    reading = out.read_text().partition(READING)[2] if out.is_file() else ""
    out.write_text(RESULTS.format(
        command=command, steps=args.steps, seeds=len(args.seeds), rollouts=rollouts, n_eval=n_eval,
        before=before, table=table(results, args.steps, reference), task=base.task.name, sweep=sweep_text,
        pairs=pairs_table(results), config=args.config, evals=args.evals + 1,
        jobs=f"{args.jobs} run(s) at once, {args.threads or 'default'} torch thread(s) each")
        + READING + (reading or "\n"))


RESULTS = """# Method comparison at CPU scale

The methods train the tiny LLaDA-architecture model from the same warm start
(`{config}`: {task}, LoRA, AdamW) for {steps} optimizer steps of {rollouts} rollouts each (one
optimizer step per batch for every method: the same rollout budget), {seeds} seeds each.
Held-out accuracy: d1's protocol, greedy, on the same {n_eval} problems before and after; the
warm start scores **{before:.1f}%**. ± is the 95% interval over seeds (Student t); "paired" intervals
are over per-seed differences (runs with the same seed train on the same prompts), and ✓ marks an
interval that excludes zero. Forward sequences per step (sequences through the network in rollout,
branching and the learner; evaluation excluded) are what a step costs each method, independent of
the machine; seconds per step (median over steps, {jobs}) depend on the machine and on what else
ran on it.

Reproduce:

```bash
{command}
```

## Learning rate

{sweep}
## Accuracy and cost

{table}

![learning curves](compare_curve.png)

## Every pair

{pairs}

"""
SWEEP = """Each method ran at lr {lrs} at seed {seed} (not one of the reported seeds), and at a third of its
lowest lr where that run collapsed (ended below half the training reward of its first quarter; at
most {extend} time(s)). It is reported at the lr whose run ended with the highest training reward
(mean of the last quarter of steps), so no held-out problem took part in the choice. Cells: final
training reward (held-out accuracy after, for information; — not run).

{table}

"""
READING = "## Reading the tables\n"


if __name__ == "__main__":
    sys.exit(main())
