"""The driver core: everything a driver does besides deciding where the work runs.

The single-process loop (drive/loop.py) and the Ray Controller (services/controller.py) differ
only in how they dispatch rollout, reward and learning. What a run reads and writes, and in what
order, is here, once:

    core = DriverCore(cfg)                         config.yaml, metrics.jsonl + TensorBoard, the splits
    step, stream = core.resume(resume, load)       a checkpoint's step, data position and learner state
    before = core.evaluate(step, generate)         if eval.before: eval/ files, eval/... metrics, lines
    for every optimizer step:
        core.record_step(step, main, branch, version, metrics, seconds)   metrics + the step line
        core.checkpoint(step, stream.state(), save)  when checkpoint.save_every says so
        if core.eval_due(step): core.evaluate(step, generate)
    summary = core.finish(step, learner, generate, before, start)

`finish` saves the final adapter *first*: an evaluation, a plot or anything else after training
that fails can no longer lose the trained weights.

`generate(examples, sampler) -> (texts, verdicts)` is the one thing an evaluation needs from a
driver: the loop samples and verifies in-process, the Controller on its actors.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from dllmrl_core.contract.verdict import Verdict
from dllmrl_core.drive.config import RunConfig, dump_config
from dllmrl_core.drive.heldout import (Generate, ItemScore, across_lengths, before_after, eval_file, eval_metrics,
                                       evaluate_once, summarize)
from dllmrl_core.drive.metrics import MetricsLog, batch_metrics, zero_adv_share
from dllmrl_core.drive.plots import plot_run
from dllmrl_core.rollout.prompts import PromptStream
from dllmrl_core.tasks import load_split, training_split
from dllmrl_core.training import checkpoint
from dllmrl_core.training.step import StepMetrics


class TrainedAdapter(Protocol):
    """What `finish` needs of the learner: a `Learner`, or the Ray system's `LearnerGroup`."""

    def save_final(self, directory: Path) -> None: ...

    def digest(self) -> tuple[str, float]: ...


def step_line(step: int, values: dict[str, float], m: StepMetrics, seconds: float) -> str:
    """The line printed after an optimizer step."""
    return (f"step {step:4d}  reward {values['reward/mean']:.3f}  correct {values['reward/correct']:.2f}"
            f"  loss {m.loss:+.4f}  kl {m.kl:.4f}  clip {m.clip_frac:.3f}  |g| {m.grad_norm:.3f}  {seconds:.1f}s")


def due(every: int, step: int) -> bool:
    return bool(every) and step % every == 0


class DriverCore:
    """One run's data and records. `last` holds the newest logged values (step and evaluation)."""

    def __init__(self, cfg: RunConfig):
        self.cfg, self.dir = cfg, Path(cfg.checkpoint.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.yaml").write_text(dump_config(cfg))
        self.task, self.train = cfg.task.task, training_split(cfg.task)
        if self.train.skipped:
            print(f"task: {self.train.describe()}", flush=True)
        self.test = load_split(cfg.task, "test") if cfg.eval.active else None
        self.log = MetricsLog(self.dir)
        self.last: dict[str, float] = {}

    # --- start ----------------------------------------------------------------------------------
    def resume(self, resume: str | None, load: Callable[[Path], None]) -> tuple[int, PromptStream]:
        """The step and data stream to continue from: checkpoint `resume` ('latest', a directory,
        or None = a fresh start), whose learner state is handed to `load`."""
        found = checkpoint.resolve(self.dir, resume)
        if found is None:
            return 0, PromptStream(self.train.examples, seed=self.cfg.train.seed)
        state = checkpoint.read_state(found)
        load(found)
        return state["step"], PromptStream(self.train.examples, seed=self.cfg.train.seed, **state["stream"])

    # --- every step -----------------------------------------------------------------------------
    def record_step(self, step: int, main: list[Verdict], branch: list[Verdict], version: int, metrics: StepMetrics,
                    seconds: float, extra: dict[str, float] | None = None, echo: bool = True) -> dict[str, float]:
        """Log optimizer step `step` (the batch's verdicts: main rows, then branches) and print its
        line every train.log_every steps unless `echo` is False; returns the logged values."""
        values = {**batch_metrics(main, branch, version), **metrics.as_dict(), **(extra or {})}
        values["reward/zero_adv_share"] = zero_adv_share(main, self.cfg.train.group_size)
        if values["reward/zero_adv_share"] == 1.0 and (step - 1) % self.cfg.iterations == 0:
            print(f"warning: step {step}: every group's rewards are equal (reward/zero_adv_share 1), so every "
                  "group-relative advantage is zero and this batch trains nothing", file=sys.stderr, flush=True)
        self.log.log(step, values)
        self.last.update(values)
        if echo and due(self.cfg.train.log_every, step):
            print(step_line(step, values, metrics, seconds), flush=True)
        return values

    def checkpoint(self, step: int, stream_state: dict, save: Callable[[Path], None]) -> Path | None:
        """Every checkpoint.save_every steps: `save` writes the learner's part into a temporary
        directory, which then becomes `step-…/` with the state (step, version, data position) and
        config. Returns the checkpoint, or None when none is due."""
        if not due(self.cfg.checkpoint.save_every, step):
            return None
        tmp = checkpoint.temp_dir(self.dir, step)
        save(tmp)
        state = {"step": step, "version": step, "stream": stream_state}
        return checkpoint.finalize(self.dir, tmp, step, state, dump_config(self.cfg), self.cfg.checkpoint.keep)

    def eval_due(self, step: int) -> bool:
        """An evaluation during training (eval.every), never at the last step (`finish` does that one)."""
        return due(self.cfg.eval.every, step) and step < self.cfg.train.steps

    # --- evaluation -----------------------------------------------------------------------------
    def evaluate(self, step: int, generate: Generate) -> list[ItemScore]:
        """d1-protocol evaluation of the first eval.num_examples test problems at every evaluation
        length: writes each length's generations, logs eval/... (and eval/<length>/... with several
        lengths) at `step`, prints the accuracy; returns each problem's score averaged over the lengths."""
        examples = self.test.examples[: self.cfg.eval.num_examples]
        samplers = self.cfg.eval.samplers(self.cfg.sampler.gen_length)
        per_length = {}
        for sampler in samplers:
            length = sampler.gen_length if len(samplers) > 1 else None
            verdicts = evaluate_once(generate, self.task, examples, sampler, eval_file(self.dir, step, length))
            per_length[sampler.gen_length] = verdicts
            if length is not None:
                at = summarize(verdicts)
                print(f"eval at step {step}, {length} tokens: accuracy {at.accuracy:.1f}% ± {at.ci95:.1f}", flush=True)
        metrics, scores = eval_metrics(per_length), across_lengths(per_length)
        self.log.log(step, metrics)
        self.last.update(metrics)
        result = summarize(scores)
        average = f", the average over {len(samplers)} lengths" if len(samplers) > 1 else ""
        print(f"eval at step {step}: accuracy {result.accuracy:.1f}% ± {result.ci95:.1f} "
              f"(well-formed {result.well_formed:.0f}%, {result.items} problems{average})", flush=True)
        return scores

    # --- end ------------------------------------------------------------------------------------
    def finish(self, step: int, learner: TrainedAdapter, generate: Generate, before: list[ItemScore],
               start: float, **extra) -> dict:
        """Save the final adapter (PEFT format, `final/adapter`) before anything else, then the
        closing evaluation (eval.after or eval.every), the curve and the run's JSON summary
        (`extra` adds the driver's own fields)."""
        learner.save_final(self.dir / "final")
        sha, norm = learner.digest()
        try:
            after = self.evaluate(step, generate) if self.cfg.eval.after or self.cfg.eval.every else []
        finally:
            self.log.close()
        title = f"{self.cfg.algorithm.name} on {self.cfg.task.name}"
        plot_run(self.dir / "metrics.jsonl", self.dir / "curve.png", title)
        reward = self.last.get("reward/mean")
        summary = {"steps": step, "algorithm": self.cfg.algorithm.name,
                   "reward_mean": None if reward is None else round(reward, 6), "adapter_sha256": sha,
                   "adapter_norm": norm, "wall_s": round(time.perf_counter() - start, 2),
                   "skipped_rows": self.train.skipped, **extra}
        return {**summary, **(before_after(before, after) if before and after else {})}
