"""Compare the registered methods at CPU scale, from one warm start, at a matched budget.

Every method trains from the same warm-started model with the same optimizer settings, the same
prompts per step × group size (so the same number of rollouts) and the same number of optimizer
steps (one per batch: μ = 1 for every method here), for each seed. Branching methods cost more
per step, so wall-clock and model forward passes (sequences through the network, rollout +
learner, evaluation excluded) are reported next to accuracy. Held-out accuracy uses d1's protocol
(greedy, the run's eval settings) on the same problems before and after training.

    python scripts/compare_methods.py configs/tiny_countdown.yaml --steps 100 --seeds 0 1 2

writes docs/RESULTS.md and docs/compare_curve.png (and one run directory per method × seed under
--runs). The last printed line is a JSON object with every run's figures.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import time
from pathlib import Path

from dllmrl_core.drive import loop
from dllmrl_core.drive.config import RunConfig, load_run_config
from dllmrl_core.drive.driver import DriverCore
from dllmrl_core.models import MaskPredictor
from dllmrl_core.objectives import OBJECTIVES
from dllmrl_core.training.warm_start import ensure_warm_start

RESULT = "compare.json"  # a finished run's figures, reused by --reuse
METHODS = tuple(OBJECTIVES)
# two-sided 95% Student-t quantiles by degrees of freedom (seeds − 1)
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


class ForwardCounter:
    """Sequences (and tokens) passed through the network by any MaskPredictor call: rollout,
    branching and learner; evaluation is paused out. Installed by wrapping MaskPredictor.__call__."""

    def __init__(self):
        self.sequences, self.tokens, self.paused = 0, 0, False
        call = MaskPredictor.__call__

        def counted(predictor, input_ids, attention_mask=None):
            if not self.paused:
                self.sequences += int(input_ids.shape[0])
                self.tokens += int(input_ids.numel())
            return call(predictor, input_ids, attention_mask)
        MaskPredictor.__call__ = counted
        DriverCore.evaluate = self.pausing(DriverCore.evaluate)

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
    records = [json.loads(x) for x in (Path(cfg.checkpoint.dir) / "metrics.jsonl").read_text().splitlines()]
    curve = [(r["step"], r["eval/accuracy"]) for r in records if "eval/accuracy" in r]
    result = {**summary, "run_s": round(time.perf_counter() - start, 1), "train_s": round(sum(step_s), 1),
              "forward_sequences": counter.sequences, "forward_tokens": counter.tokens, "curve": curve,
              "reward": [(r["step"], r["reward/mean"]) for r in records if "reward/mean" in r]}
    (Path(cfg.checkpoint.dir) / RESULT).write_text(json.dumps(result))
    return result


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and 95% half-width over seeds (Student t)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))


def table(results: dict[str, list[dict]], steps: int) -> str:
    rows = ["| method | seeds | held-out accuracy after (%) | Δ vs warm start (points) | well-formed after (%) | "
            "per-seed after | wall-clock per run (s) | forward sequences / step |", "|---|---|---|---|---|---|---|---|"]
    for method, runs in results.items():
        after, ci = mean_ci([r["accuracy_after"] for r in runs])
        delta, dci = mean_ci([r["delta"] for r in runs])
        wf = statistics.fmean(r["well_formed_after"] for r in runs)
        per_seed = ", ".join(f"{r['accuracy_after']:.1f}" for r in runs)
        sps = statistics.fmean(r["run_s"] for r in runs)
        fwd = statistics.fmean(r["forward_sequences"] for r in runs) / steps
        rows.append(f"| {method} | {len(runs)} | {after:.1f} ± {ci:.1f} | {delta:+.1f} ± {dci:.1f} | {wf:.0f} | {per_seed} | "
                    f"{sps:.0f} | {fwd:.0f} |")
    return "\n".join(rows)


def plot(results: dict[str, list[dict]], before: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc, rew) = plt.subplots(1, 2, figsize=(11, 4))
    for method, runs in results.items():
        steps = [s for s, _ in runs[0]["curve"]]
        acc.plot(steps, [statistics.fmean(r["curve"][i][1] for r in runs) for i in range(len(steps))], "o-",
                 label=method)
        steps = [s for s, _ in runs[0]["reward"]]
        window = max(1, len(steps) // 10)
        mean = [statistics.fmean(r["reward"][i][1] for r in runs) for i in range(len(steps))]
        smooth = [statistics.fmean(mean[max(0, i - window + 1): i + 1]) for i in range(len(mean))]
        rew.plot(steps, smooth, label=method)
    acc.axhline(before, color="grey", ls="--", lw=1, label="warm start")
    acc.set(xlabel="optimizer step", ylabel="held-out accuracy (%, mean over seeds)")
    rew.set(xlabel="optimizer step", ylabel=f"train reward (mean over seeds, {window}-step average)")
    acc.legend()
    rew.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", help="key.path=value for every run")
    parser.add_argument("--methods", nargs="+", default=list(METHODS),
                        help="method names, or name:key=value,... for a variant (e.g. diffu_grpo:optim.lr=1e-4)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--evals", type=int, default=4, help="held-out evaluations per run (learning curve)")
    parser.add_argument("--runs", default="runs/compare")
    parser.add_argument("--docs", default="docs")
    parser.add_argument("--reuse", action="store_true", help="keep the figures of runs that already finished")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: write the docs from the runs that finished (fewer seeds where some did not)")
    args = parser.parse_args(argv)
    base = load_run_config(args.config, args.overrides)
    if base.warm_start is not None and not args.report_only:
        ensure_warm_start(base.warm_start, base.task, base.model.device)
    counter = ForwardCounter()
    results: dict[str, list[dict]] = {}
    for method in args.methods:
        name, _, variant = method.partition(":")
        if name not in METHODS:
            parser.error(f"--methods: unknown method {name!r} (valid: {', '.join(METHODS)})")
        for seed in args.seeds:
            cfg = load_run_config(args.config, [
                *args.overrides, *filter(None, variant.split(",")), f"algorithm.name={name}", f"train.seed={seed}",
                f"train.steps={args.steps}",
                "eval.before=true", "eval.after=true", f"eval.every={max(1, args.steps // args.evals)}",
                f"checkpoint.dir={args.runs}/{method.replace(':', '-')}-s{seed}", "checkpoint.save_every=0"])
            assert cfg.iterations == 1, f"{method}: the matched budget needs one optimizer step per batch"
            done = Path(cfg.checkpoint.dir) / RESULT
            if (args.reuse or args.report_only) and done.is_file():
                results.setdefault(method, []).append(json.loads(done.read_text()))
                continue
            if args.report_only:
                continue
            shutil.rmtree(cfg.checkpoint.dir, ignore_errors=True)  # no metrics left from an unfinished run
            results.setdefault(method, []).append(run_one(cfg, counter))
            r = results[method][-1]
            print(f"{method} seed {seed}: {r['accuracy_before']:.1f} -> {r['accuracy_after']:.1f} "
                  f"({r['run_s']:.0f} s, {r['forward_sequences']} forward sequences)", flush=True)
    write_docs(args, base, results)
    print(json.dumps({m: [{k: r[k] for k in ("accuracy_before", "accuracy_after", "delta", "run_s",
                                             "forward_sequences")} for r in runs] for m, runs in results.items()}))
    return 0


def write_docs(args, base: RunConfig, results: dict[str, list[dict]]) -> None:
    docs = Path(args.docs)
    docs.mkdir(parents=True, exist_ok=True)
    before = statistics.fmean(r["accuracy_before"] for runs in results.values() for r in runs)
    plot(results, before, docs / "compare_curve.png")
    command = " ".join(["python scripts/compare_methods.py", args.config, *args.overrides, "--methods",
                        *args.methods, "--steps", str(args.steps), "--seeds", *map(str, args.seeds),
                        "--evals", str(args.evals)])
    n_eval, rollouts = base.eval.num_examples, base.train.prompts_per_step * base.train.group_size
    out = docs / "RESULTS.md"
    # the hand-written reading of the table survives a regeneration (--reuse, --report-only)
    reading = out.read_text().partition(READING)[2] if out.is_file() else ""
    out.write_text(RESULTS.format(
        command=command, steps=args.steps, seeds=len(args.seeds), rollouts=rollouts, n_eval=n_eval,
        before=before, table=table(results, args.steps), task=base.task.name, lr=base.optim.lr,
        config=args.config, evals=args.evals + 1) + READING + (reading or "\n"))


RESULTS = """# Method comparison at CPU scale

The methods train the tiny LLaDA-architecture model from the same warm start
(`{config}`: {task}, LoRA, AdamW lr {lr}) for {steps} optimizer steps of
{rollouts} rollouts each (one optimizer step per batch for every method), {seeds} seeds each.
Held-out accuracy: d1's protocol, greedy, on the same {n_eval} problems before and after; the
warm start scores **{before:.1f}%**. ± is the 95% interval over seeds (Student t). Forward
sequences per step (sequences through the network in rollout, branching and the learner;
evaluation excluded) are what a step costs each method, independent of the machine; wall-clock
per run (setup and {evals} evaluations included) depends on the machine and on what else ran on it,
so compare it only roughly.

Reproduce (about an hour on 2 CPU cores):

```bash
{command}
```

{table}

![learning curves](compare_curve.png)

"""
READING = "## Reading the table\n"


if __name__ == "__main__":
    sys.exit(main())
