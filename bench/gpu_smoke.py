"""GPU smoke run: LLaDA-8B-shaped random weights in bf16 on one GPU; for each method at its recipe
(configs/llada8b/<method>_gsm8k.yaml), one rollout and one learner step at the planned micro-batch,
with measured peak memory next to the memory plan, rollout tokens/s (uncached and dual cache),
learner tokens/s and model FLOP utilisation (docs/gpu.md).

On a bare single-GPU machine with torch, transformers, peft and accelerate but no Ray and no network:

    here (any machine with pip):  bash bench/gpu_wheels.sh        # Python 3.12 wheels into .whl/
    there, from the repository:   python3 -m pip install -q --no-index --find-links .whl --target /tmp/site \\
                                      pydantic pyyaml && export PYTHONPATH=/tmp/site:.
                                  python3 -m bench.gpu_smoke --out runs/gpu-smoke

Nothing is downloaded: the weights are random (`torch.nn.init.normal_` on the GPU), prompts are
random token ids of `plan.prompt_tokens` length (what the plan assumes). Protocol per method:

- rollout: the rows one rollout worker generates (the recipe's prompts × G over its 4 workers), the
  recipe's sampler and the method's records and branching (`generate_rollouts`), but 2 steps per
  block instead of the recipe's (same per-step shapes, so the same peak memory): the uncached and
  dual-cache step times are measured and the recipe's rollout time is extrapolated from them
  (blocks × (first step + (steps per block − 1) × later step); uncached steps all cost the same).
- learner: one `train_step` on one micro-batch of the planned size (`optim.micro_batch_rows: auto`
  resolved for this GPU), rows shaped as the method scores them (bench/memory.py), after one
  warm-up step; peak = torch.cuda.max_memory_allocated over the step.
- FLOPs: forward 2·N per token (N = parameters in the blocks and the head's scored rows) plus
  attention 4·T·d per token and layer; the learner's backward 2× the forward (input gradients; the
  frozen base needs no weight gradients); MFU against the GPU's dense bf16 peak (table below).

Prints a table and, last, one JSON object; `--out DIR` also writes it to DIR/gpu_smoke.json.
`--tiny` runs the same code on CPU at a tiny width (the test suite's check that it is not broken).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from bench import emit
from dllmrl_core.objectives import OBJECTIVES

ROOT = Path(__file__).resolve().parent.parent
METHODS = tuple(OBJECTIVES)  # every registered method
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16 tensor-core peaks


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> tuple[object, float]:
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def peak_of(fn, device: torch.device) -> tuple[object, float, int]:
    """(fn(), seconds, peak bytes allocated on the device during fn; 0 on CPU)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    out, seconds = timed(fn, device)
    return out, seconds, torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0


TINY = ["model.lora.r=4", "train.prompts_per_step=4", "train.group_size=2", "sampler.gen_length=32",
        "sampler.block_length=16", "sampler.steps=8", "plan.prompt_tokens=8", "eval.num_examples=8",
        "eval.gen_length=32"]


def recipe(method: str, overrides: list[str]):
    from services.settings import load_system_config

    return load_system_config(ROOT / "configs" / "llada8b" / f"{method}_gsm8k.yaml", overrides)


def build_base(layers: int, tiny: bool, device: torch.device):
    """LLaDA-8B's shape (or a tiny one) with random weights, in the device's dtype, built in place."""
    from dllmrl_core.models.llada import LLaDAConfig, LLaDAModelLM
    from dllmrl_core.models.loading import default_dtype

    width = dict(d_model=64, n_heads=4, mlp_hidden_size=128, vocab_size=512, embedding_size=512, mask_token_id=511,
                 eos_token_id=510, pad_token_id=509) if tiny else {}
    cfg = LLaDAConfig(n_layers=layers, **width)
    with torch.device("meta"):
        model = LLaDAModelLM(cfg)
    model = model.to_empty(device=device).to(default_dtype(device))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    return model.eval()


def policy_for(base, cfg):
    from dllmrl_core.models import MaskPredictor
    from dllmrl_core.training.lora import add_lora

    model = add_lora(base, cfg.model.lora)
    c = base.config
    return MaskPredictor(model=model, mask_id=c.mask_token_id, eos_id=c.eos_token_id, pad_id=c.pad_token_id)


def block_flops(base, tokens: int, T: int) -> float:
    """Forward FLOPs of the blocks over `tokens` tokens of sequences of length T."""
    c = base.config
    per_layer = sum(p.numel() for n, p in base.model.transformer["blocks"][0].named_parameters() if "norm" not in n)
    return c.n_layers * tokens * (2 * per_layer + 4 * T * c.d_model)


def rollout_probe(policy, base, cfg, device) -> dict:
    """Peak memory of the method's rollout (its records and branches) and uncached / dual step times."""
    from dllmrl_core.objectives import get_objective
    from dllmrl_core.planning.plan import chunk_rows
    from dllmrl_core.rollout.generate import generate_rollouts
    from dllmrl_core.sampling import sample

    rows, P, s = chunk_rows(cfg, cfg.topology().samplers), cfg.plan.prompt_tokens, cfg.sampler
    g = torch.Generator(device).manual_seed(0)
    ids = torch.randint(0, base.config.embedding_size - 3, (rows, P), generator=g, device=device)
    groups = torch.arange(rows, device=device) // cfg.train.group_size
    probe = s.model_copy(update={"steps": 2 * s.num_blocks})
    objective = get_objective(cfg.algorithm.name)
    _, _, peak = peak_of(lambda: generate_rollouts(policy, ids, None, groups, probe, objective,
                                                   cfg.algorithm.selected, g), device)
    _, seconds = timed(lambda: sample(policy, ids, None, probe, generator=g), device)
    step = seconds / probe.steps                                  # uncached: every step a full forward
    first, later = dual_steps(policy, ids, probe, g, device)
    uncached_s, dual_s = s.steps * step, s.num_blocks * (first + (s.steps_per_block - 1) * later)
    T = P + s.gen_length
    return {"rows": rows, "peak_bytes": peak, "uncached_tokens_per_s": rows * s.gen_length / uncached_s,
            "dual_tokens_per_s": rows * s.gen_length / dual_s, "rollout_s_uncached": uncached_s,
            "rollout_s_dual": dual_s, "step_s_uncached": step, "dual_block_start_s": first, "dual_later_step_s": later,
            "flops_per_step": block_flops(base, rows * T, T)}


def dual_steps(policy, ids, probe, g, device) -> tuple[float, float]:
    """Dual cache: a block-start step (a full forward) and a later step (the block only), from the
    sampler's time with 1 and with 2 steps per block."""
    from dllmrl_core.sampling import sample

    one = probe.model_copy(update={"cache": "dual", "steps": probe.num_blocks})
    two = probe.model_copy(update={"cache": "dual", "steps": 2 * probe.num_blocks})
    _, t1 = timed(lambda: sample(policy, ids, None, one, generator=g), device)
    _, t2 = timed(lambda: sample(policy, ids, None, two, generator=g), device)
    first = t1 / probe.num_blocks
    return first, max(t2 / probe.num_blocks - first, 1e-9)


def learner_probe(policy, base, cfg, device, micro: int) -> dict:
    """One train_step on `micro` rows shaped as the method scores them (its widest term)."""
    from types import SimpleNamespace

    from bench.memory import learner_term, loss_fn
    from dllmrl_core.models.llada import set_activation_checkpointing
    from dllmrl_core.training.optim import OptimConfig, build_optimizer
    from dllmrl_core.training.step import train_step

    s, method = cfg.sampler, cfg.algorithm.name
    kind = {"sapo": "diffu_grpo"}.get(method, method)  # SAPO's learner term is diffu-GRPO's
    shape = SimpleNamespace(rows=micro, prompt=cfg.plan.prompt_tokens, gen=s.gen_length, block=s.block_length,
                            steps=s.steps)
    term, positions = learner_term(shape, kind, base.config.embedding_size, policy.mask_id, device)
    opt, sched = build_optimizer(policy.model.parameters(), OptimConfig(lr=1e-6), total_steps=10)
    step = lambda: train_step(policy, opt, sched, [term], loss_fn(kind), max_grad_norm=1.0)  # noqa: E731
    set_activation_checkpointing(policy.model, cfg.optim.activation_checkpointing)  # as the recipe's learner
    try:
        step()  # warm-up: AdamW allocates its moments
        _, seconds, peak = peak_of(step, device)
    finally:
        set_activation_checkpointing(policy.model, False)
    T = shape.prompt + shape.gen
    head = 2 * micro * positions * base.config.d_model * base.config.embedding_size
    return {"micro_batch_rows": micro, "peak_bytes": peak, "step_s": seconds, "tokens_per_s": micro * T / seconds,
            "flops": 3 * (block_flops(base, micro * T, T) + head)}


def planned(cfg, capacity_gib: float | None, micro: int) -> dict:
    """The plan's figures for what this script measures: one worker's sampling (base + adapter, the
    sampler's phases) and one learner step at `micro` rows (base + adapter with AdamW), in GiB."""
    from dllmrl_core.planning.estimate import GiB
    from dllmrl_core.planning.plan import adapter, learner_phases, precision, sampler_phases, setting, weights

    if capacity_gib is not None:
        cfg = cfg.model_copy(update={"plan": cfg.plan.model_copy(update={"gpu_memory_gib": capacity_gib})})
    topo = cfg.topology()
    s, prec, world = setting(cfg), precision(cfg, topo.learner_gpus), topo.learner_ranks

    def total(items):
        return sum(i.bytes for i in items) / GiB

    sampling = {k: total(v) for k, v in sampler_phases(cfg, s, prec, topo.samplers).items() if k != "evaluation"}
    resident = [weights(s, prec)]
    return {"rollout_gib": total(resident + adapter(s, False, 1, prec)) + max(sampling.values()),
            "rollout_phase_gib": sampling,
            "learner_gib": total(resident + adapter(s, True, world, prec))
            + total(learner_phases(cfg, s, prec, world, micro)["learner step"])}


def run_method(base, method: str, args, device, capacity_gib) -> dict:
    from dllmrl_core.planning import auto_micro_rows

    cfg = recipe(method, args.override)
    policy = policy_for(base, cfg)
    micro = auto_micro_rows(cfg, cfg.topology(), gpu_memory_gib=capacity_gib) if capacity_gib else 2
    try:
        rollout = rollout_probe(policy, base, cfg, device)
        learner = learner_probe(policy, base, cfg, device, micro)
    finally:
        policy.model.unload()  # the base model again, for the next method's adapter
    peak_tflops = args.peak_tflops * 1e12
    learner["mfu"] = learner.pop("flops") / learner["step_s"] / peak_tflops
    rollout["mfu_uncached"] = rollout.pop("flops_per_step") / rollout["step_s_uncached"] / peak_tflops
    plan = planned(cfg, capacity_gib, micro)
    gib = 2**30
    return {"method": method, "rollout": rollout, "learner": learner, "plan": plan,
            "rollout_peak_gib": rollout["peak_bytes"] / gib, "learner_peak_gib": learner["peak_bytes"] / gib}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny width: checks the code path only")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak (default: by GPU name)")
    parser.add_argument("--out", default=None, help="also write DIR/gpu_smoke.json")
    parser.add_argument("--override", nargs="*", default=[], help="key.path=value for every recipe")
    parser.add_argument("--gpu-memory", type=float, default=None,
                        help="plan (micro-batch, figures) for a GPU of this many GiB, e.g. 79.6 for an H100 "
                             "on a larger card (default: this GPU's)")
    args = parser.parse_args(argv)
    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    capacity = torch.cuda.get_device_properties(device).total_memory / 2**30 if device.type == "cuda" else None
    capacity = args.gpu_memory or capacity
    args.peak_tflops = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), 989.0)
    start = time.perf_counter()
    base = build_base(2 if args.tiny else args.layers, args.tiny, device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    print(f"{name}: base model built in {time.perf_counter() - start:.1f} s", flush=True)
    if args.tiny:  # the recipes at a tiny size; the plan reads the tiny model's shape from its config.json
        shape_dir = Path(tempfile.mkdtemp(prefix="gpu-smoke-"))
        base.config.to_json_file(shape_dir / "config.json")
        args.override = [*TINY, f"model.path={shape_dir}", *args.override]
    results = []
    for method in args.methods:
        try:
            r = run_method(base, method, args, device, capacity)
        except Exception as e:  # noqa: BLE001 - one method's failure (an OOM, say) must not lose the others' figures
            r = {"method": method, "error": f"{type(e).__name__}: {e}"[:2000]}
        if device.type == "cuda":
            torch.cuda.empty_cache()
        results.append(r)
        write(args.out, name, capacity, args, base, start, results)
        if "error" in r:
            print(f"{method:11s} FAILED {r['error'][:300]}", flush=True)
            continue
        print(f"{method:11s} rollout {r['rollout_peak_gib']:6.2f} GiB (plan {r['plan']['rollout_gib']:6.2f})  "
              f"{r['rollout']['uncached_tokens_per_s']:8.1f} tok/s uncached, {r['rollout']['dual_tokens_per_s']:8.1f} "
              f"dual | learner {r['learner_peak_gib']:6.2f} GiB (plan {r['plan']['learner_gib']:6.2f}), micro "
              f"{r['learner']['micro_batch_rows']}, {r['learner']['tokens_per_s']:8.1f} tok/s, MFU "
              f"{r['learner']['mfu']:.1%}", flush=True)
    return emit(write(args.out, name, capacity, args, base, start, results))


def write(out: str | None, name: str, capacity: float | None, args, base, start: float, results: list) -> dict:
    """The summary so far; also DIR/gpu_smoke.json with `--out DIR` (after every method: a run cut
    short keeps what it measured)."""
    summary = {"bench": "gpu_smoke", "device": name, "layers": base.config.n_layers, "planned_for_gib": capacity,
               "peak_tflops": args.peak_tflops, "wall_s": round(time.perf_counter() - start, 1),
               "torch": torch.__version__, "methods": results}
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "gpu_smoke.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
