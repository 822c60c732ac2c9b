"""Weight transfer at real scale, and what a RolloutBatch costs to move.

    OMP_NUM_THREADS=1 python -m bench.weights [--quick] [--dtype bf16|fp32] [--workers 1,2,4]

1. Adapter publish + pull: random tensors shaped like a rank-128 LoRA over every linear layer
   of LLaDA-8B (32 blocks; q/k/v/attn_out 4096x4096, ff_proj/up_proj 4096->12288, ff_out
   12288->4096): 335.5 M parameters, 0.67 GB in bf16 (1.34 GB in fp32). Published through the
   WeightStore as the learner does (`services.weight_store.publish`), then pulled concurrently by
   1, 2 and 4 actors the way a RolloutWorker pulls a version (`services.weight_store.fetch`), each
   phase timed: store lookup + `ray.get` (zero-copy views of the object store), `to_torch`
   (`AdapterWire.unpack`: tensors viewing those arrays, no copy), and the one copy into
   preallocated parameters (what `load_adapter_state` does in a worker). bf16 travels as bf16
   (`AdapterWire`: int16 views of the same bytes, viewed back on arrival).
2. RolloutBatch transport: a batch the size of one AGRPO/GSM8K batch on LLaDA-8B (128 rows,
   prompt 256, generation 384, top-k support 150) is returned by one actor and fetched twice by
   another, which reports where each tensor's memory lives (/proc/self/maps: the object store's
   shared-memory file, or private anonymous memory = a copy) and how long `ray.get` took.
   Compared: RolloutBatch as the code pickles it now, the same tensors as a plain dict of torch
   tensors (torch's own pickling: what RolloutBatch did before it packed tensors as numpy), and
   as a dict of numpy arrays.

The last printed line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

import numpy as np
import torch

from bench import emit

LLADA_8B = {"d_model": 4096, "n_layers": 32, "mlp": 12288}
GB = 1e9


def lora_shapes(r: int, d_model: int = 4096, n_layers: int = 32, mlp: int = 12288) -> dict[str, tuple[int, int]]:
    """PEFT adapter tensor names and shapes: lora_A [r, in], lora_B [out, r] for every linear."""
    linears = {"q_proj": (d_model, d_model), "k_proj": (d_model, d_model), "v_proj": (d_model, d_model),
               "attn_out": (d_model, d_model), "ff_proj": (d_model, mlp), "up_proj": (d_model, mlp),
               "ff_out": (mlp, d_model)}
    shapes = {}
    for layer in range(n_layers):
        for name, (fan_in, fan_out) in linears.items():
            prefix = f"base_model.model.model.transformer.blocks.{layer}.{name}"
            shapes[f"{prefix}.lora_A.weight"] = (r, fan_in)
            shapes[f"{prefix}.lora_B.weight"] = (fan_out, r)
    return shapes


def random_adapter(shapes: dict[str, tuple[int, int]], dtype: torch.dtype, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=gen, dtype=torch.float32).to(dtype) for k, s in shapes.items()}


def wire(state: dict[str, torch.Tensor]):
    """What `services.weight_store.publish` sends."""
    from services.weight_store import AdapterWire

    return AdapterWire.pack(state)


def shared_region(ptr: int) -> str:
    """The mapping of this process that holds address `ptr`: a file name (the object store's
    shared memory is /dev/shm/plasma...) or '[anon]' (private memory: a copy)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= ptr < hi:
                return parts[5] if len(parts) > 5 else "[anon]"
    return "?"


def _remote_classes():
    import ray

    @ray.remote(num_cpus=0)
    class Puller:
        """Pulls adapter versions as RolloutWorker._use_version does (fetch, then load into params)."""

        def __init__(self, store, shapes: dict, dtype: str):
            torch.set_num_threads(1)
            self.store, self.dtype = store, getattr(torch, dtype)
            self.params = {k: torch.empty(s, dtype=self.dtype) for k, s in shapes.items()}  # the "model"

        def pull(self, version: int) -> dict:
            t0 = time.perf_counter()
            [ref] = ray.get(self.store.get.remote(version))  # services.weight_store.fetch, split into its phases
            arrays = ray.get(ref)
            t1 = time.perf_counter()
            state = arrays.unpack()
            t2 = time.perf_counter()
            with torch.no_grad():
                for k, v in state.items():
                    self.params[k].copy_(v)
            t3 = time.perf_counter()
            first = next(iter(self.params))
            probe = float(self.params[first].float().sum())
            del arrays, state
            gc.collect()
            return {"get_s": t1 - t0, "to_torch_s": t2 - t1, "load_s": t3 - t2, "pull_s": t3 - t0, "probe": probe}

    @ray.remote(num_cpus=0)
    class Producer:
        def make(self, kind: str, rows: int, prompt: int, length: int, width: int):
            torch.set_num_threads(1)
            fields = rollout_fields(rows, prompt, length, width)
            if kind == "torch_dict":
                return fields
            if kind == "numpy_dict":
                return {k: v.numpy() for k, v in fields.items()}
            return as_rollout_batch(fields)

    @ray.remote(num_cpus=0)
    class Consumer:
        """Fetches a batch twice (as LearnerActor.learn does ray.get(chunks)) and reports where it lives."""

        def inspect(self, refs: list) -> dict:
            gets, regions, pointers, nbytes = [], [], [], 0
            for _ in range(2):
                t0 = time.perf_counter()
                value = ray.get(refs[0])
                gets.append(time.perf_counter() - t0)
                arrays = tensors_of(value)
                nbytes = sum(a.nbytes for a in arrays.values())
                regions.append({k: shared_region(ptr(a)) for k, a in arrays.items()})
                pointers.append({k: ptr(a) for k, a in arrays.items()})
                kinds = sorted({type(a).__name__ for a in arrays.values()})
                writeable = sorted({bool(a.flags.writeable) for a in arrays.values() if isinstance(a, np.ndarray)})
                del value, arrays
            shared = sum(1 for r in regions[0].values() if "plasma" in r)
            return {"bytes": nbytes, "get_s": gets, "types": kinds, "numpy_writeable": writeable,
                    "fields": len(regions[0]), "fields_in_object_store": shared,
                    "regions": sorted(set(regions[0].values())),
                    "same_memory_on_both_gets": pointers[0] == pointers[1]}

    return Puller, Producer, Consumer


def rollout_fields(rows: int, prompt: int, length: int, width: int) -> dict[str, torch.Tensor]:
    """Random tensors with the shapes and dtypes of a RolloutBatch (AGRPO: with support ids)."""
    gen = torch.Generator().manual_seed(0)
    return {"prompt_ids": torch.randint(0, 126000, (rows, prompt), generator=gen),
            "prompt_mask": torch.ones(rows, prompt, dtype=torch.bool),
            "completion_ids": torch.randint(0, 126000, (rows, length), generator=gen),
            "reveal_step": torch.randint(0, 128, (rows, length), generator=gen),
            "behaviour_logp": -torch.rand(rows, length, generator=gen),
            "model_logp": -torch.rand(rows, length, generator=gen),
            "token_entropy": torch.rand(rows, length, generator=gen),
            "group_ids": torch.arange(rows) // 8,
            "support_ids": torch.randint(0, 126000, (rows, length, width), generator=gen)}


def as_rollout_batch(fields: dict[str, torch.Tensor]):
    from dllmrl_core.contract.types import RolloutBatch

    return RolloutBatch(**fields, steps=128, block_length=32, temperature=0.6, mask_id=126336)


def tensors_of(value) -> dict:
    if isinstance(value, dict):
        return value
    return {k: getattr(value, k) for k in ("prompt_ids", "prompt_mask", "completion_ids", "reveal_step",
                                           "behaviour_logp", "model_logp", "token_entropy", "group_ids",
                                           "support_ids")}


def ptr(a) -> int:
    return a.data_ptr() if isinstance(a, torch.Tensor) else a.ctypes.data


def bench_adapter(shapes: dict, dtype: torch.dtype, workers: list[int], repeats: int) -> dict:
    import ray

    from services.weight_store import WeightStore

    Puller, _, _ = _remote_classes()
    t0 = time.perf_counter()
    state = random_adapter(shapes, dtype)
    built = time.perf_counter() - t0
    params = sum(v.numel() for v in state.values())
    nbytes = sum(v.numel() * v.element_size() for v in state.values())
    store = WeightStore.remote(keep=2)
    pullers = [Puller.remote(store, shapes, str(dtype).split(".")[-1]) for _ in range(max(workers))]
    expected = float(state[next(iter(state))].float().sum())
    ray.get([a.__ray_ready__.remote() for a in [store, *pullers]])
    version, t0 = 0, time.perf_counter()  # a cold round first (not counted): page faults, first imports
    ray.get(store.publish.remote(version, wire(state)))
    cold = {"publish_s": round(time.perf_counter() - t0, 3),
            "pull_s": [round(r["pull_s"], 3) for r in ray.get([p.pull.remote(version) for p in pullers])]}
    publish_s, by_n = [], {}
    for n in workers:
        runs = []
        for _ in range(repeats):
            version += 1
            t0 = time.perf_counter()
            ray.get(store.publish.remote(version, wire(state)))  # = services.weight_store.publish
            publish_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            results = ray.get([p.pull.remote(version) for p in pullers[:n]])
            wall = time.perf_counter() - t0
            if any(abs(r["probe"] - expected) > 1e-3 * max(1.0, abs(expected)) for r in results):
                raise RuntimeError("a pulled adapter differs from the published one")
            runs.append({"wall_s": wall, "results": results})
        best = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]  # the median run
        per = best["results"]
        by_n[str(n)] = {
            "wall_s": round(best["wall_s"], 3),
            "pull_s_per_worker": [round(r["pull_s"], 3) for r in per],
            "get_s_per_worker": [round(r["get_s"], 4) for r in per],
            "to_torch_s_per_worker": [round(r["to_torch_s"], 3) for r in per],
            "load_s_per_worker": [round(r["load_s"], 3) for r in per],
            "aggregate_GBps": round(n * nbytes / GB / best["wall_s"], 2),
            "per_worker_GBps": round(nbytes / GB / statistics.median(r["pull_s"] for r in per), 2),
        }
    for p in pullers:
        ray.kill(p)
    ray.kill(store)
    pub = statistics.median(publish_s)
    return {"dtype": str(dtype).split(".")[-1], "params": params, "bytes": nbytes, "GB": round(nbytes / GB, 3),
            "tensors": len(state), "build_s": round(built, 1), "cold_round": cold, "publish_s": round(pub, 3),
            "publish_s_all": [round(x, 3) for x in publish_s], "publish_GBps": round(nbytes / GB / pub, 2),
            "pull": by_n}


def bench_rollout_batch(rows: int, prompt: int, length: int, width: int) -> dict:
    import ray

    _, Producer, Consumer = _remote_classes()
    producer, consumer = Producer.remote(), Consumer.remote()
    out = {"shape": {"rows": rows, "prompt": prompt, "gen_length": length, "support_width": width}}
    for kind in ("rollout_batch", "torch_dict", "numpy_dict"):
        ref = producer.make.remote(kind, rows, prompt, length, width)
        ray.wait([ref], fetch_local=False)
        r = ray.get(consumer.inspect.remote([ref]))
        del ref
        r["MB"] = round(r.pop("bytes") / 1e6, 1)
        r["get_s"] = [round(x, 4) for x in r["get_s"]]
        r["GBps_second_get"] = round(r["MB"] / 1e3 / max(r["get_s"][1], 1e-9), 1)
        r["zero_copy"] = r["fields_in_object_store"] == r["fields"] and r["same_memory_on_both_gets"]
        out[kind] = r
    ray.kill(producer)
    ray.kill(consumer)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="adapter publish/pull at LLaDA-8B scale; RolloutBatch transport")
    parser.add_argument("--quick", action="store_true", help="rank-4 adapter (~21 MB bf16) and a small batch")
    parser.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--rank", type=int, default=None, help="LoRA rank (default 128; 4 with --quick)")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--repeats", type=int, default=None, help="publish+pull rounds per worker count")
    parser.add_argument("--object-store-gb", type=float, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_worker_niceness", "0")  # Ray's default (15) starves actors on a shared machine
    torch.set_num_threads(1)
    import ray

    rank = args.rank or (4 if args.quick else 128)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    workers = [int(x) for x in args.workers.split(",")]
    repeats = args.repeats or (1 if args.quick else 3)
    shapes = lora_shapes(rank, **{k: v for k, v in LLADA_8B.items()})
    nbytes = sum(a * b for a, b in shapes.values()) * (2 if dtype == torch.bfloat16 else 4)
    store_gb = args.object_store_gb or max(1.0, round(5 * nbytes / GB + 0.5, 1))
    owned = not ray.is_initialized()
    if owned:
        ray.init(address="local", num_cpus=max(workers) + 2, include_dashboard=False,
                 object_store_memory=int(store_gb * 1024**3),
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}})
    try:
        adapter = bench_adapter(shapes, dtype, workers, repeats)
        batch = bench_rollout_batch(*((16, 64, 64, 16) if args.quick else (128, 256, 384, 150)))
    finally:
        if owned:
            ray.shutdown()
    params_fp32 = sum(a * b for a, b in lora_shapes(128).values())
    result = {"bench": "weights", "quick": args.quick, "lora_rank": rank, "object_store_GB": store_gb,
              "llada8b_r128_params": params_fp32, "llada8b_r128_GB": {"bf16": round(params_fp32 * 2 / GB, 3),
                                                                      "fp32": round(params_fp32 * 4 / GB, 3)},
              "cpu_count": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
              "adapter": adapter, "rollout_batch": batch,
              "rollout_batch_zero_copy": batch["rollout_batch"]["zero_copy"]}
    return emit(result)


if __name__ == "__main__":
    main()
