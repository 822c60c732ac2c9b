"""Learner benchmark: step time and peak memory of each method's loss at one batch.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.learner            # 4 prompts × G 8, gen 64 (see docs/performance.md)
    OMP_NUM_THREADS=1 .venv/bin/python -m bench.learner --quick    # smoke run, in-process, seconds

Times are process CPU seconds when torch runs one thread (the default: the compute a step took, even
while other jobs share the machine), wall seconds otherwise.

Setup: configs/tiny_countdown.yaml (the tiny model's warm start runs/tiny-sft + its LoRA adapter, r 16,
every block linear; each registered method's settings from that file: μ = 1 for the five it sets, AGRPO 4
Monte-Carlo steps and EGSPO 4 selected steps (both pinned), SAPO 2 continuations, DiSPO 2 fillings; the
methods it does not set at their defaults, e.g. ESPO's and SPG's 2 masked copies per completion; one step
is timed either way), the same 4 Countdown prompts
(test split: the train split's generator alone takes ~15 s) × G 8 = 32 rollouts, sampler gen 64 /
32 steps / block 32 at the config's temperature. If runs/tiny-sft is missing, a random-init tiny
model stands in (timing and memory do not depend on the weights); nothing is built.

Per method the parent process generates one scored batch with the loop's own `rollout_batch` (sampling,
the method's branching, real Countdown rewards) and saves it. Then, in a fresh subprocess per method
(`--inprocess` to skip that), a `Learner` is built exactly as the loop builds it and the batch is loaded:
- prepare_s: `Learner.prepare` (advantages, queries, frozen old / reference log-probs: no-grad forwards)
- step_s:    `Learner.step(0)` (forward with grad, loss, backward, clip, AdamW), median of --steps runs
- forward calls and rows per step (counted by a pre-hook on the first transformer block): a batched
             hot path makes one call per policy term, whatever the number of rows
- peak memory: ru_maxrss (the process's resident high-water mark) before `prepare` (model, adapter,
             optimizer and batch loaded) and after the timed steps; the difference is the learner's own
             peak working set. tracemalloc cannot see torch's CPU allocations; on a GPU use
             torch.cuda.max_memory_allocated instead. In-process runs (--inprocess, --quick) share one
             high-water mark, so their deltas are only an upper bound for the first method and 0 after it.
- hot_path_loops: every `for` statement in dllmrl_core/likelihood/, dllmrl_core/objectives/ and
             dllmrl_core/training/step.py with what it iterates over (an audit: none walks over rows).

The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import ast
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench import emit
from dllmrl_core.drive.runtime import configure_process
from dllmrl_core.objectives import OBJECTIVES

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "tiny_countdown.yaml"
METHODS = tuple(OBJECTIVES)  # every registered method
HOT_PATH = ("dllmrl_core/likelihood", "dllmrl_core/objectives", "dllmrl_core/training/step.py")


def clock(args) -> float:
    """Process CPU time with one torch thread (the compute, even on a shared machine), else wall time."""
    return time.process_time() if args.threads == 1 else time.perf_counter()


def maxrss_mb() -> float:
    """This process's resident-set high-water mark in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_config(args, method: str, run_dir: str):
    from dllmrl_core.drive.config import load_run_config

    gen = args.gen
    return load_run_config(CONFIG, [
        f"model.path={args.tiny_dir}", "warm_start=null", f"algorithm.name={method}", f"sampler.gen_length={gen}",
        f"sampler.steps={gen // 2}", f"sampler.block_length={min(32, gen)}",
        # the figures' k and K (docs/performance.md); the default now samples k = 2 and selects K = 2
        "algorithm.agrpo.mc_samples=4", "algorithm.egspo.num_steps=4",
        f"train.prompts_per_step={args.prompts}", f"train.group_size={args.group}", f"checkpoint.dir={run_dir}"])


def hot_path_loops() -> list[str]:
    """`file:line: for <target> in <iter>` for every for-loop (and comprehension) on the learner's hot path."""
    found = []
    for root in HOT_PATH:
        path = ROOT / root
        for file in sorted([path] if path.is_file() else path.glob("*.py")):
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, (ast.For, ast.comprehension)):
                    line = getattr(node, "lineno", getattr(node.iter, "lineno", 0))
                    found.append(f"{file.relative_to(ROOT)}:{line}: for {ast.unparse(node.target)} in "
                                 f"{ast.unparse(node.iter)}")
    return found


class CallCounter:
    """Forward calls and rows through the policy's native module (pre-hook on the first block)."""

    def __init__(self, policy):
        from dllmrl_core.sampling.cached import native_module

        native_module(policy, "none").transformer["blocks"][0].register_forward_pre_hook(self._hook)
        self.calls = self.rows = self.positions = 0

    def _hook(self, module, args) -> None:
        self.calls += 1
        self.rows += args[0].shape[0]
        self.positions += args[0].shape[0] * args[0].shape[1]

    def take(self) -> dict:
        out = {"calls": self.calls, "rows": self.rows, "positions": self.positions}
        self.calls = self.rows = self.positions = 0
        return out


def build_batches(args, run_dir: Path) -> dict[str, dict]:
    """One scored batch per method from the same prompts and sampling seed, saved under run_dir."""
    from dllmrl_core.drive.loop import rollout_batch, verifier_pool
    from dllmrl_core.tasks import load_split
    from dllmrl_core.rollout.generate import batch_generator
    from dllmrl_core.training.policy import load_policy

    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = make_config(args, METHODS[0], str(run_dir))
    torch.manual_seed(cfg.train.seed)
    policy, tokenizer = load_policy(cfg.model)
    examples = load_split(cfg.task, "test").examples[:args.prompts]  # the train split's generator takes ~15 s
    counter = CallCounter(policy)
    verifier = verifier_pool(cfg)  # the task and reward set are the same for every method
    out = {}
    for method in args.methods:
        cfg = make_config(args, method, str(run_dir))
        start = clock(args)
        scored, _ = rollout_batch(cfg, policy, tokenizer, cfg.task.task, examples,
                                  batch_generator(cfg.train.seed, 0, 0, policy.device), verifier)
        seconds = clock(args) - start
        calls = counter.take()
        path = run_dir / f"{method}.pt"
        torch.save(scored, path)
        branches = scored.rollout.branches
        out[method] = {"file": str(path), "rollout_s": round(seconds, 3), "rollout_forward_calls": calls["calls"],
                       "rollout_forward_rows": calls["rows"], "rollouts": scored.rollout.batch_size,
                       "branches": 0 if branches is None else branches.size,
                       "reward_mean": round(float(scored.rewards.mean()), 4)}
        print(f"rollout {method:10s} {seconds:6.2f}s  forward calls {calls['calls']:4d}  rows {calls['rows']:6d}  "
              f"branches {out[method]['branches']}", flush=True)
    verifier.close()
    return out


def learner_run(args, method: str, batch_file: str, run_dir: str) -> dict:
    """Build the Learner as the loop does, load the batch, time prepare and --steps steps, measure memory."""
    from dllmrl_core.planning import Topology, micro_rows
    from dllmrl_core.training.learner import Learner
    from dllmrl_core.training.policy import load_policy

    cfg = make_config(args, method, run_dir)
    torch.manual_seed(cfg.train.seed)
    policy, _ = load_policy(cfg.model)
    learner = Learner.build(cfg.learn_settings(), policy,
                            micro_rows(cfg, Topology.single_process(policy.device), policy.device))
    scored = torch.load(batch_file, weights_only=False)
    counter = CallCounter(policy)
    gc.collect()
    rss_before = maxrss_mb()
    start = clock(args)
    learner.prepare(scored)
    prepare_s = clock(args) - start
    prepare_calls = counter.take()
    terms = learner.batch_terms[0]
    step_s, metrics = [], None
    for _ in range(args.steps):
        start = clock(args)
        metrics = learner.step(0)
        step_s.append(clock(args) - start)
    step_calls = counter.take()
    rss_after = maxrss_mb()
    n = len(step_s)
    return {"method": method, "terms": [t.kind for t in terms], "rows_per_step": sum(len(t) for t in terms),
            "prepare_s": round(prepare_s, 4), "step_s": round(statistics.median(step_s), 4),
            "step_s_all": [round(s, 4) for s in step_s],
            "prepare_forward_calls": prepare_calls["calls"], "prepare_forward_rows": prepare_calls["rows"],
            "step_forward_calls": step_calls["calls"] / n, "step_forward_rows": step_calls["rows"] / n,
            "step_token_positions": step_calls["positions"] / n,
            "rss_before_mb": round(rss_before, 1), "peak_rss_mb": round(rss_after, 1),
            "learner_peak_delta_mb": round(rss_after - rss_before, 1),
            "loss": metrics.loss, "grad_norm": metrics.grad_norm, "tokens": metrics.tokens}


def run_worker(args, method: str, batch_file: str, run_dir: str) -> dict:
    """learner_run in a fresh interpreter (its own ru_maxrss); returns its last printed line."""
    cmd = [sys.executable, "-m", "bench.learner", "--worker", method, "--batch-file", batch_file,
           "--run-dir", run_dir, "--tiny-dir", args.tiny_dir, "--prompts", str(args.prompts),
           "--group", str(args.group), "--gen", str(args.gen), "--steps", str(args.steps),
           "--threads", str(args.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"learner worker {method} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 prompts × G 4, gen 32, one step, in-process")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--prompts", type=int, default=None, help="prompts per batch (default 4; quick 2)")
    p.add_argument("--group", type=int, default=None, help="G completions per prompt (default 8; quick 4)")
    p.add_argument("--gen", type=int, default=None, help="completion length (default 64; quick 32)")
    p.add_argument("--steps", type=int, default=None, help="timed learner steps per method (default 3; quick 1)")
    p.add_argument("--inprocess", action="store_true", help="no subprocess per method (memory deltas then shared)")
    p.add_argument("--tiny-dir", default=str(ROOT / "runs" / "tiny-sft"))
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    p.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    p.add_argument("--batch-file", help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    q = args.quick
    args.prompts = args.prompts or (2 if q else 4)
    args.group = args.group or (4 if q else 8)
    args.gen = args.gen or (32 if q else 64)
    args.steps = args.steps or (1 if q else 3)
    args.inprocess = args.inprocess or q
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    configure_process(args.threads)
    if args.worker:
        result = learner_run(args, args.worker, args.batch_file, args.run_dir)
        print(json.dumps(result), flush=True)
        return result
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-learner-") as tmp:
        trained = (Path(args.tiny_dir) / "config.json").is_file()
        if not trained:
            from dllmrl_core.models.tiny import write_tiny

            print(f"{args.tiny_dir} missing: a random-init tiny model stands in", flush=True)
            args.tiny_dir = str(write_tiny(Path(tmp) / "tiny-random", seed=0))
        batches = build_batches(args, Path(tmp) / "run")
        methods = {}
        for method in args.methods:
            file = batches[method]["file"]
            r = (learner_run(args, method, file, str(Path(tmp) / "run")) if args.inprocess
                 else run_worker(args, method, file, str(Path(tmp) / "run")))
            methods[method] = {**{k: v for k, v in batches[method].items() if k != "file"}, **r}
            print(f"learner {method:10s} prepare {r['prepare_s']:7.3f}s  step {r['step_s']:7.3f}s  "
                  f"rows/step {r['rows_per_step']:4d}  calls/step {r['step_forward_calls']:.0f}  "
                  f"peak RSS {r['peak_rss_mb']:7.1f} MB  learner +{r['learner_peak_delta_mb']:.1f} MB", flush=True)
    result = {"bench": "learner", "quick": args.quick, "threads": torch.get_num_threads(),
              "clock": "cpu" if args.threads == 1 else "wall", "torch": torch.__version__,
              "model": "runs/tiny-sft + LoRA r16" if trained else "random-init tiny + LoRA r16",
              "prompts": args.prompts, "group_size": args.group, "gen_length": args.gen, "sampler_steps": args.gen // 2,
              "timed_steps": args.steps,
              "memory_method": "ru_maxrss delta " + ("in one shared process (upper bound for the first method, "
                                                     "0 after)" if args.inprocess else "in a fresh process per method"),
              "methods": methods,
              "step_s_relative_to_diffu_grpo": {m: round(v["step_s"] / methods["diffu_grpo"]["step_s"], 2)
                                                for m, v in methods.items()} if "diffu_grpo" in methods else {},
              "hot_path_loops": hot_path_loops(),
              "wall_s": round(time.perf_counter() - start, 1)}
    return emit(result)


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
