"""The driver core: everything a driver does besides deciding where the work runs.

The single-process loop (drive/loop.py) and the Ray Controller (services/controller.py) differ
only in how they dispatch rollout, reward and learning. What a run reads and writes, and in what
order, is here, once:

    core = DriverCore(cfg)                         config.yaml, metrics.jsonl + TensorBoard, the splits
    step, stream = core.resume(resume, load)       a checkpoint's step, data position and learner state
    before = core.evaluate(step, generate)         if eval.before: eval/ files, eval/... metrics, lines
    for every optimizer step:
        core.record_step(step, record)             a StepRecord (drive/metrics.py) + the step line
        core.checkpoint(step, stream.state(), save)  when checkpoint.save_every says so
        if core.eval_due(step): core.evaluate(step, generate)
    summary = core.finish(step, learner, generate, before, start)

`finish` saves the final adapter *first*: an evaluation, a plot or anything else after training
that fails can no longer lose the trained weights.

`generate(examples, sampler) -> (texts, verdicts)` is the one thing an evaluation needs from a
driver: the loop samples and verifies in-process, the Controller on its actors.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dllmrl_core.drive.config import RunConfig, dump_config
from dllmrl_core.drive.heldout import (Generate, ItemScore, across_lengths, before_after, eval_file, eval_metrics,
                                       evaluate_once, summarize)
from dllmrl_core.drive.metrics import MetricsLog, StepRecord
from dllmrl_core.drive.plots import plot_run
from dllmrl_core.drive.preflight import data_change, refusal
from dllmrl_core.rollout.prompts import PromptStream
from dllmrl_core.tasks import load_split, training_split
from dllmrl_core.training import checkpoint
from dllmrl_core.training.step import StepMetrics


class TrainedAdapter(Protocol):
    """What `finish` needs of the learner: a `Learner`, or the Ray system's `LearnerGroup`."""

    def save_final(self, directory: Path) -> None: ...

    def digest(self) -> tuple[str, float]: ...


@dataclass(frozen=True)
class Resumed:
    """Where a resumed run continued from."""

    path: Path
    step: int


def step_line(step: int, record: StepRecord) -> str:
    """The line printed after an optimizer step."""
    r, m = record.reward, record.learner
    return (f"step {step:4d}  reward {r.mean:.3f}  correct {r.correct:.2f}"
            f"  loss {m.loss:+.4f}  kl {m.kl:.4f}  clip {m.clip_frac:.3f}  |g| {m.grad_norm:.3f}"
            f"  {record.times.total:.1f}s")


def skip_line(step: int, m: StepMetrics) -> str:
    """The line printed (to stderr) when a step's gradient was not finite and its update was skipped."""
    return (f"warning: step {step}: gradient not finite (|g| {m.grad_norm}, loss {m.loss}): update skipped, the "
            "adapter keeps its last good weights (learner/skipped)")


def data_fingerprint(examples: list, seed: int) -> str:
    """sha256 of the training examples in order and the seed of their order (a checkpoint's data
    position is only meaningful for the same ones)."""
    digest = hashlib.sha256(f"{seed}\n".encode())
    for example in examples:
        digest.update(repr(example).encode() + b"\n")
    return digest.hexdigest()


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
        self.data_id = data_fingerprint(self.train.examples, cfg.train.seed)
        self.log = MetricsLog(self.dir, cfg.logging, cfg.model_dump(mode="json"))
        self.last: dict[str, float] = {}
        self.skipped_steps = 0  # optimizer steps of this process whose update was skipped (gradient not finite)
        self.resumed: Resumed | None = None  # the checkpoint this run continued from, if any
        self.restarting = False  # whether `resume` ran before: a restart within this run

    # --- start ----------------------------------------------------------------------------------
    def resume(self, resume: str | None, load: Callable[[Path], None]) -> tuple[int, PromptStream]:
        """The step and data stream to continue from: checkpoint `resume` ('latest', a directory,
        or None = a fresh start), whose learner state is handed to `load`. A checkpoint of other
        training data is refused (drive/preflight.py). A resume is printed with its step and
        checkpoint, and kept in `resumed`; so is a 'latest' that found nothing. metrics.jsonl forgets
        the steps after the one resumed from (also after a restart within this run), so each step is
        logged once."""
        found = checkpoint.resolve(self.dir, resume)
        step, position = 0, {}
        if found is not None:
            state = checkpoint.read_state(found)
            if state.get("data", self.data_id) != self.data_id:
                change = data_change(found, self.cfg) or "the training examples themselves changed"
                raise ValueError(refusal(found, change))
            load(found)
            step, position = state["step"], state["stream"]
            self.resumed = Resumed(found, step)
            print(f"resumed at step {step} from {found}", flush=True)
        elif resume is not None:
            print(f"checkpoint.resume: {resume}: no checkpoint under {self.dir} yet; starting at step 0", flush=True)
        if found is not None or self.restarting:
            self.log.rewind(step)
        self.restarting = True
        return step, PromptStream(self.train.examples, seed=self.cfg.train.seed, **position)

    # --- every step -----------------------------------------------------------------------------
    def record_step(self, step: int, record: StepRecord, echo: bool = True) -> dict[str, float]:
        """Log optimizer step `step` and print its line every train.log_every steps unless `echo` is
        False; returns the logged values. A batch whose every group scored equal rewards is warned
        about: its group-relative advantages are all zero and it trains nothing."""
        values = record.as_dict()
        batch = record.learner.batch
        if batch is not None and batch.zero_adv_share == 1.0:
            print(f"warning: step {step}: every group's rewards are equal (rollout/zero_adv_share 1), so every "
                  "group-relative advantage is zero and this batch trains nothing", file=sys.stderr, flush=True)
        self.log.log(step, values)
        self.last.update(values)
        if record.learner.skipped:
            self.skipped_steps += 1
            print(skip_line(step, record.learner), file=sys.stderr, flush=True)
        if echo and due(self.cfg.train.log_every, step):
            print(step_line(step, record), flush=True)
        return values

    def checkpoint(self, step: int, stream_state: dict, save: Callable[[Path], None]) -> Path | None:
        """Every checkpoint.save_every steps: `save` writes the learner's part into a temporary
        directory, which then becomes `step-…/` with the state (step, version, data position) and
        config. Returns the checkpoint, or None when none is due."""
        if not due(self.cfg.checkpoint.save_every, step):
            return None
        tmp = checkpoint.temp_dir(self.dir, step)
        save(tmp)
        state = {"step": step, "version": step, "stream": stream_state, "data": self.data_id}
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
        if "jsonl" in self.cfg.logging.backends:  # the curve is drawn from metrics.jsonl
            plot_run(self.dir / "metrics.jsonl", self.dir / "curve.png", f"{self.cfg.algorithm.name} on "
                     f"{self.cfg.task.name}")
        reward = self.last.get("reward/mean")
        summary = {"steps": step, "algorithm": self.cfg.algorithm.name,
                   "reward_mean": None if reward is None else round(reward, 6), "adapter_sha256": sha,
                   "adapter_norm": norm, "wall_s": round(time.perf_counter() - start, 2),
                   "skipped_rows": self.train.skipped, "skipped_steps": self.skipped_steps, **extra}
        return {**summary, **(before_after(before, after) if before and after else {})}
