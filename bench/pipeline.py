"""The Ray system against the single-process loop on identical work.

    OMP_NUM_THREADS=1 python -m bench.pipeline [--steps 12] [--rounds 3] [--threads 1] [--quick]

Runs configs/tiny_countdown.yaml with the work the figures were measured on (AGRPO, k = 4, 12 denoising
steps; no evaluation, no status server, fresh checkpoint directories)
for --steps steps, and measures:

  loop            dllmrl_core.drive.loop.run in this process (--threads torch threads), with timing hooks
                  on the policy's forward passes and on backward (model compute), per phase
  ray_sync        services.launch.run on a private local Ray instance, train.max_staleness 0; rollout
                  worker and learner with --threads CPUs (= torch threads) each, like the loop
                  (the shipped config gives each phase 2; the default here is 1 on both sides)
  ray_stale1      the same with train.max_staleness 1 (rollout of batch b+1 overlaps learning on b)
                  and the rollout worker and the learner on 1 CPU / 1 torch thread each
  publish_pull    the adapter round trip of one step, through the real actors: LearnerGroup.publish
                  (learner rank 0 -> WeightStore, as the controller calls it) and
                  RolloutWorker._use_version (the pull a worker makes before generating)
  rollout_scaling completions/s of 1, 2, 4 RolloutWorkers (1 logical CPU, 1 thread each) on the
                  same batches, split as the controller splits them; efficiency = thr_n / (n * thr_1)

Step times are the intervals between consecutive optimizer steps (loop: the on_step callback;
Ray: the moment each step's record appears in <checkpoint.dir>/metrics.jsonl, polled every 5 ms).
Steady state leaves out the first 2 steps (model loading, first-call costs) and the last (under
max_staleness 1 it has no rollout to overlap). Each --rounds round runs loop, sync and stale1 back
to back, and every ratio is taken within a round, then the median over rounds: the speed of this
shared VM's cores drifts by up to ~1.8x over minutes (identical generate calls measured 1.5 s and
2.8 s), and a round's runs see the same drift. Besides wall time, every run reports CPU seconds per
step (the loop's process; for Ray every process of the private instance: driver, GCS, raylet,
workers, by role), which shows work the Ray system adds on top of the loop's, and each Ray run
reports from Ray's task timeline the seconds per step inside generate / score / learn / publish and
the time when none of them was running (the orchestration the loop does not have).
Ray workers run at niceness 0 like the loop (RAY_worker_niceness=0; Ray's default is 15).
The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import torch

from bench import emit
from bench.procs import cpu_per_step, tree_cpu
from dllmrl_core.drive.runtime import configure_process

CONFIG = "configs/tiny_countdown.yaml"
SKIP = 2  # steps left out at the start


# --- configuration --------------------------------------------------------------------------------
def make_config(config: str, steps: int, out: Path, *extra: str):
    from services.settings import load_system_config

    return load_system_config(config, [f"train.steps={steps}", "eval.before=false", "eval.after=false", "eval.every=0",
                                    "status.enabled=false", f"checkpoint.dir={out}", "checkpoint.save_every=0",
                                    "train.max_staleness=0",
                                    # the work the figures were measured on (docs/performance.md), pinned:
                                    # the default now runs EGSPO (K = 2) with 6 denoising steps
                                    "algorithm.name=agrpo", "sampler.steps=12", "algorithm.agrpo.mc_samples=4",
                                    *extra])


def ensure_model(cfg) -> str:
    """The warm-started model: reused when the directory exists (never rebuilt here), else built."""
    path = Path(cfg.model.path)
    if (path / "config.json").is_file():
        return "reused"
    from dllmrl_core.training.warm_start import ensure_warm_start

    ensure_warm_start(cfg.warm_start, cfg.task, device=cfg.model.device)
    return "built"


def steady_steps(times: dict[int, float], steps: int) -> list[int]:
    """The steady-state steps SKIP+1 .. steps-1 (2 .. steps if there are too few) that were timed."""
    wanted = range(SKIP + 1, steps) if steps - 1 > SKIP else range(2, steps + 1)
    return [s for s in wanted if s in times and s - 1 in times]


def steady(times: dict[int, float], steps: int) -> list[float]:
    """Step times t[s] - t[s-1] of the steady-state steps."""
    return [times[s] - times[s - 1] for s in steady_steps(times, steps)]


def describe(intervals: list[float]) -> dict:
    return {"step_s": round(statistics.fmean(intervals), 4), "step_s_median": round(statistics.median(intervals), 4),
            "step_s_all": [round(x, 3) for x in intervals], "steady_steps": len(intervals)}


# --- the single-process loop, instrumented ------------------------------------------------------
class ComputeProbe:
    """Wall time inside the policy's forward passes (by phase) and inside backward, per step."""

    def __init__(self):
        self.phase = "other"
        self.acc: dict[str, float] = defaultdict(float)
        self.steps: list[dict[str, float]] = []
        self._t0 = 0.0

    def install(self, policy) -> None:
        policy.model.register_forward_pre_hook(self._pre)
        policy.model.register_forward_hook(self._post)

    def _pre(self, *_):
        self._t0 = time.perf_counter()

    def _post(self, *_):
        self.acc[f"fwd_{self.phase}"] += time.perf_counter() - self._t0
        self.acc[f"fwd_calls_{self.phase}"] += 1

    def phased(self, name: str, fn):
        def wrapper(*args, **kwargs):
            self.phase, t0 = name, time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.acc[f"phase_{name}"] += time.perf_counter() - t0
                self.phase = "other"
        return wrapper

    def timed_backward(self, fn):
        def backward(tensor, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(tensor, *args, **kwargs)
            finally:
                self.acc["bwd"] += time.perf_counter() - t0
        return backward

    def end_step(self) -> None:
        self.steps.append(dict(self.acc))
        self.acc.clear()


def run_loop(cfg) -> dict:
    import dllmrl_core.drive.loop as loop
    from dllmrl_core.training.learner import Learner

    probe, times, cpu = ComputeProbe(), {}, {}

    def load_policy(*args, **kwargs):
        policy, tokenizer = real_load_policy(*args, **kwargs)
        probe.install(policy)
        return policy, tokenizer

    def on_step(step, scored, metrics, seconds):
        times[step] = time.perf_counter()
        cpu[step] = {os.getpid(): (time.process_time(), "loop")}
        probe.end_step()

    real_load_policy = loop.load_policy
    start = time.perf_counter()
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(loop, "load_policy", load_policy))
        stack.enter_context(mock.patch.object(loop, "rollout_batch", probe.phased("rollout", loop.rollout_batch)))
        stack.enter_context(mock.patch.object(Learner, "prepare", probe.phased("prepare", Learner.prepare)))
        stack.enter_context(mock.patch.object(Learner, "step", probe.phased("learn", Learner.step)))
        stack.enter_context(mock.patch.object(torch.Tensor, "backward", probe.timed_backward(torch.Tensor.backward)))
        summary = loop.run(cfg, on_step=on_step)
    wall = time.perf_counter() - start
    steps = cfg.train.steps
    intervals = steady(times, steps)
    wanted = steady_steps(times, steps)
    per = [probe.steps[s - 1] for s in wanted]  # the probe records of the steady steps

    def mean(key: str) -> float:
        return statistics.fmean(p.get(key, 0.0) for p in per)

    fwd = {k: mean(f"fwd_{k}") for k in ("rollout", "prepare", "learn")}
    compute = sum(fwd.values()) + mean("bwd")
    step_s = statistics.fmean(intervals)
    phases = {"rollout_s (sample + verify)": mean("phase_rollout"), "prepare_s": mean("phase_prepare"),
              "learn_s (optimizer step)": mean("phase_learn")}
    breakdown = {"fwd_rollout_s": fwd["rollout"], "fwd_prepare_s": fwd["prepare"], "fwd_learn_s": fwd["learn"],
                 "bwd_s": mean("bwd"), "forward_calls_per_step": {k: mean(f"fwd_calls_{k}") for k in fwd},
                 "model_compute_s": compute,
                 "outside_model_s": step_s - compute}
    used = statistics.fmean(cpu[s][os.getpid()][0] - cpu[s - 1][os.getpid()][0] for s in wanted)
    return {**describe(intervals), "cpu_s_per_step": round(used, 4), "wall_s": round(wall, 1),
            "adapter_sha256": summary["adapter_sha256"],
            "adapter_norm": summary["adapter_norm"], "reward_mean": summary["reward_mean"],
            "phases": {k: round(v, 4) for k, v in phases.items()},
            "compute": {k: (round(v, 4) if isinstance(v, float) else {a: round(b, 1) for a, b in v.items()})
                        for k, v in breakdown.items()},
            "compute_share": round(compute / step_s, 4)}


# --- the Ray system ------------------------------------------------------------------------------
class MetricsTail(threading.Thread):
    """Timestamps each optimizer step's record as it appears in metrics.jsonl."""

    def __init__(self, path: Path, poll_s: float = 0.005):
        super().__init__(daemon=True)
        self.path, self.poll_s = path, poll_s
        self.times: dict[int, float] = {}
        self.cpu: dict[int, dict] = {}
        self.epoch: dict[int, float] = {}  # wall clock, to line steps up with Ray's task timeline
        self.done = threading.Event()

    def run(self) -> None:
        handle, buffer = None, ""
        while not self.done.is_set():
            if handle is None and self.path.exists():
                handle = self.path.open()
            if handle is not None:
                chunk = handle.read()
                now = time.perf_counter()
                buffer += chunk
                *lines, buffer = buffer.split("\n")
                for line in lines:
                    record = json.loads(line)
                    if "learner/loss" in record and int(record["step"]) not in self.times:
                        self.times[int(record["step"])] = now
                        self.epoch[int(record["step"])] = time.time()
                        self.cpu[int(record["step"])] = tree_cpu(os.getpid())
            self.done.wait(self.poll_s)
        if handle is not None:
            handle.close()


def run_ray(cfg, tag: str) -> dict:
    from services.launch import run

    tail = MetricsTail(Path(cfg.checkpoint.dir) / "metrics.jsonl")
    tail.start()
    start = time.perf_counter()
    try:
        summary = run(cfg, name=f"bench-{tag}/")
    finally:
        time.sleep(0.05)
        tail.done.set()
        tail.join()
    wall = time.perf_counter() - start
    steps = cfg.train.steps
    wanted = steady_steps(tail.times, steps)
    return {**describe(steady(tail.times, steps)), **cpu_per_step(tail.cpu, wanted),
            "tasks_per_step": task_times(tail.epoch, wanted), "wall_s": round(wall, 1),
            "adapter_sha256": summary["adapter_sha256"], "adapter_norm": summary["adapter_norm"],
            "reward_mean": summary["reward_mean"]}


def union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def task_times(epoch: dict[int, float], steps: list[int]) -> dict:
    """From Ray's task timeline: mean seconds per steady step inside each actor method, and the
    time in which no generate/score/learn/publish task was running (controller work, task
    dispatch, object transfer: the orchestration the loop does not have)."""
    import ray

    tasks = defaultdict(list)
    for e in ray.timeline():
        if e.get("ph") == "X" and e.get("name") in ("generate", "score", "learn", "publish"):
            start = e["ts"] / 1e6
            tasks[e["cat"].removeprefix("task::")].append((start, start + e["dur"] / 1e6))
    out, idle = defaultdict(float), 0.0
    for s in steps:
        lo, hi = epoch[s - 1], epoch[s]
        clipped = {k: [(max(a, lo), min(b, hi)) for a, b in v if b > lo and a < hi] for k, v in tasks.items()}
        for k, v in clipped.items():
            out[k] += union(v) / len(steps)
        idle += (hi - lo - union([i for v in clipped.values() for i in v])) / len(steps)
    return {**{f"{k}_s": round(v, 4) for k, v in sorted(out.items())}, "no_task_running_s": round(idle, 4)}


def publish_pull(cfg, rounds: int) -> dict:
    """One adapter version through the real actors: learner rank 0 publishes, a worker pulls it."""
    import ray

    from services.learner_group import LearnerGroup
    from services.rollout_worker import RolloutWorker
    from services.weight_store import WeightStore

    store = WeightStore.options(name="bench-pp/weights").remote(keep=3)
    group = LearnerGroup(cfg, name="bench-pp/")
    worker = RolloutWorker.options(name="bench-pp/rollout", num_cpus=1).remote(cfg.model, cfg.algorithm,
                                                                              cfg.train.seed, store, 1)
    ray.get(worker.__ray_ready__.remote())
    pubs, pulls = [], []
    try:
        for version in range(rounds + 1):  # version 0 warms up, not counted
            t0 = time.perf_counter()
            group.publish(store, version)
            t1 = time.perf_counter()
            ray.get(worker._use_version.remote(version))
            t2 = time.perf_counter()
            if version:
                pubs.append(t1 - t0)
                pulls.append(t2 - t1)
        wire = ray.get(ray.get(store.get.remote(rounds))[0])
        nbytes = sum(a.nbytes for a in wire.arrays.values())
    finally:
        ray.kill(worker, no_restart=True)
        ray.kill(store, no_restart=True)
        group.shutdown()
    return {"adapter_bytes": nbytes, "publish_s": round(statistics.median(pubs), 4),
            "pull_s": round(statistics.median(pulls), 4), "publish_s_all": [round(x, 4) for x in pubs],
            "pull_s_all": [round(x, 4) for x in pulls]}


def rollout_scaling(cfg, counts: list[int], batches: int) -> dict:
    """Completions/s of n RolloutWorkers on the same `batches` batches (plus one warm-up batch)."""
    import ray

    from dllmrl_core.rollout.prompts import PromptStream, group_prompts
    from dllmrl_core.models import load_tokenizer
    from dllmrl_core.tasks import load_split
    from services.controller import split_groups
    from services.jobs import submit
    from services.rollout_worker import RolloutJob, RolloutWorker
    from services.weight_store import WeightStore

    tokenizer = load_tokenizer(cfg.model.path)
    task, train = cfg.task.task, load_split(cfg.task, "train")
    out = {}
    for n in counts:
        store = WeightStore.remote(keep=1)
        workers = [RolloutWorker.options(num_cpus=1).remote(cfg.model, cfg.algorithm, cfg.train.seed, store, 1)
                   for _ in range(n)]
        ray.get([w.__ray_ready__.remote() for w in workers])
        stream = PromptStream(train.examples, seed=cfg.train.seed)  # the same prompts for every n

        def jobs(b: int) -> list:
            examples = stream.next(cfg.train.prompts_per_step)
            ids, mask, groups, rows = group_prompts(tokenizer, task, examples, cfg.train.group_size,
                                                    cfg.task.prompt_style, torch.device("cpu"))
            return [RolloutJob(b, c, None, ids[r], mask[r], groups[r], [rows[i] for i in r.tolist()], cfg.sampler)
                    for c, r in enumerate(split_groups(groups, n))]

        warm = submit(workers, jobs(0))  # first calls (allocations, imports) not counted
        ray.get([chunk.batch for chunk in warm])
        work = [job for b in range(1, batches + 1) for job in jobs(b)]
        t0 = time.perf_counter()
        chunks = submit(workers, work)
        done = ray.get([chunk.batch for chunk in chunks])
        wall = time.perf_counter() - t0
        completions = sum(batch.batch_size + (batch.branches.size if batch.branches is not None else 0)
                          for batch in done)
        out[str(n)] = {"completions": completions, "wall_s": round(wall, 2),
                       "completions_per_s": round(completions / wall, 2)}
        for w in workers:
            ray.kill(w, no_restart=True)
        ray.kill(store, no_restart=True)
    one = out[str(counts[0])]["completions_per_s"] / counts[0]
    for n in counts:
        out[str(n)]["scaling_efficiency"] = round(out[str(n)]["completions_per_s"] / (n * one), 3)
    return out


def compare_runs(result: dict, config: str, steps: int, root: Path, threads: int, rounds: int, skip: set) -> object:
    """Rounds of loop, sync and stale1 runs back to back (drift in the machine's speed then hits a
    round's runs alike); result gets each one's fastest round plus every round's step time. Returns
    the sync run's config (for the publish/pull and scaling parts)."""
    cpus = (f"rollout.num_cpus_per_worker={threads}", f"learner.num_cpus_per_worker={threads}")
    sync_cfg = make_config(config, steps, root / "sync-0", *cpus)
    for i in range(rounds):
        if "loop" not in skip:
            result.setdefault("loop_rounds", []).append(run_loop(make_config(config, steps, root / f"loop-{i}", *cpus)))
        if "sync" not in skip:
            sync_cfg = make_config(config, steps, root / f"sync-{i}", *cpus)
            result.setdefault("ray_sync_rounds", []).append(run_ray(sync_cfg, f"sync{i}"))
        if "stale1" not in skip:
            stale_cfg = make_config(config, steps, root / f"stale1-{i}", "train.max_staleness=1",
                                    "rollout.num_cpus_per_worker=1", "learner.num_cpus_per_worker=1")
            result.setdefault("ray_stale1_rounds", []).append(run_ray(stale_cfg, f"stale1-{i}"))
    for name in ("loop", "ray_sync", "ray_stale1"):
        if f"{name}_rounds" in result:
            runs = result.pop(f"{name}_rounds")
            result[name] = {**min(runs, key=lambda r: r["step_s"]), "step_s_rounds": [r["step_s"] for r in runs]}
            if name == "loop":
                result[name]["model_compute_s_rounds"] = [r["compute"]["model_compute_s"] for r in runs]
    return sync_cfg


# --- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Ray pipeline vs the single-process loop")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help="4 steps, 1-2 rollout workers, few rounds (a smoke run)")
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--workers", default=None, help="rollout worker counts for the scaling run (default 1,2,4)")
    parser.add_argument("--batches", type=int, default=None, help="batches per scaling measurement (default 4)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the loop and of the sync run's rollout worker and learner (default 1)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of loop, sync and stale1 runs back to back; ratios are per round, then the median"
                             " (default 3; 1 with --quick)")
    parser.add_argument("--skip", default="", help="comma list of parts to leave out: loop,sync,stale1,pp,scaling")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Ray starts its workers at niceness 15; on a shared machine they would then lose every contended
    # core to the loop (niceness 0) and the comparison would measure the scheduler, not the system
    os.environ.setdefault("RAY_worker_niceness", "0")
    configure_process(args.threads)
    steps = 4 if args.quick and args.steps == 12 else args.steps
    counts = [int(x) for x in (args.workers or ("1,2" if args.quick else "1,2,4")).split(",")]
    batches = args.batches or (1 if args.quick else 4)
    skip = set(filter(None, args.skip.split(",")))
    root = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    cfg = make_config(args.config, steps, root / "model")
    result: dict = {"bench": "pipeline", "config": args.config, "steps": steps, "quick": args.quick,
                    "model": f"{cfg.model.path} ({ensure_model(cfg)})", "cpu_count": os.cpu_count(),
                    "loadavg_1m_start": round(os.getloadavg()[0], 2),
                    "ray_worker_niceness": int(os.environ["RAY_worker_niceness"]), "torch_threads": args.threads,
                    "work_per_step": {"prompts": cfg.train.prompts_per_step, "group_size": cfg.train.group_size,
                                      "algorithm": cfg.algorithm.name, "gen_length": cfg.sampler.gen_length,
                                      "denoising_steps": cfg.sampler.steps}}
    import ray

    ray.init(address="local", num_cpus=8, include_dashboard=False, object_store_memory=1024**3,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0",
                                       "HF_HUB_OFFLINE": "1"}})
    try:
        sync_cfg = compare_runs(result, args.config, steps, root, args.threads, args.rounds or (1 if args.quick else 3),
                                skip)
        if "pp" not in skip:
            result["publish_pull"] = publish_pull(sync_cfg, 3 if args.quick else 8)
        if "scaling" not in skip:
            result["rollout_scaling"] = rollout_scaling(sync_cfg, counts, batches)
    finally:
        ray.shutdown()
    result["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    result["figures"] = figures(result)
    return emit(result)


def paired(r: dict, num: str, den: str, target: float, at_most: bool = True) -> dict:
    """num/den step time, round by round (the runs of one round ran back to back, so drift in the
    machine's speed hits both alike): the median of the per-round ratios, and whether it meets the target."""
    ratios = [a / b for a, b in zip(r[num]["step_s_rounds"], r[den]["step_s_rounds"])]
    value = statistics.median(ratios)
    return {"value": round(value, 3), "per_round": [round(x, 3) for x in ratios], "target": target,
            "met": value <= target if at_most else value >= target}


def figures(r: dict) -> dict:
    """The targets (docs/performance.md), from the measurements above (absent when a part was skipped)."""
    loop, sync, stale, pp = r.get("loop"), r.get("ray_sync"), r.get("ray_stale1"), r.get("publish_pull")
    out: dict = {}
    if loop and sync:
        out["sync_over_loop"] = paired(r, "ray_sync", "loop", 1.05)
        # CPU seconds per step (every process of the Ray instance vs the loop's process)
        out["sync_over_loop_cpu"] = round(sync["cpu_s_per_step"] / loop["cpu_s_per_step"], 3)
        tasks = sync.get("tasks_per_step", {})
        if "no_task_running_s" in tasks:
            out["sync_no_task_running_share"] = round(tasks["no_task_running_s"] / sync["step_s"], 4)
        out["ray_adapter_equals_loop"] = sync["adapter_sha256"] == loop["adapter_sha256"]
        # with a free core each, overlap hides the shorter of rollout and learning
        p = loop["phases"]
        rollout, learn = p["rollout_s (sample + verify)"], p["prepare_s"] + p["learn_s (optimizer step)"]
        out["stale1_over_sync_predicted_2_free_cores"] = round((loop["step_s"] - min(rollout, learn)) / loop["step_s"],
                                                               3)
    if sync and stale:
        out["stale1_over_sync"] = paired(r, "ray_stale1", "ray_sync", 0.6)
    if pp and sync:
        share = (pp["publish_s"] + pp["pull_s"]) / sync["step_s"]
        out["publish_pull_share"] = {"value": round(share, 5), "target": 0.01, "met": share <= 0.01}
    if loop:
        share = loop["compute_share"]
        out["compute_share_loop"] = {"value": share, "target": 0.9, "met": share >= 0.9}
        if sync:  # the loop's model compute against the Ray step of the same round
            shares = [c / b for c, b in zip(loop["model_compute_s_rounds"], sync["step_s_rounds"])]
            out["compute_share_ray_sync"] = round(statistics.median(shares), 4)
    if "rollout_scaling" in r:
        out["rollout_scaling_efficiency"] = {n: v["scaling_efficiency"] for n, v in r["rollout_scaling"].items()}
    return out


if __name__ == "__main__":
    main()
