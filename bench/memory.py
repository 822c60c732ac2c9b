"""Memory benchmark: peak bytes of one learner step and one rollout step at full LLaDA-8B width,
measured, next to the memory planner's figure for the same shapes (docs/gpu.md).

    OMP_NUM_THREADS=2 .venv/bin/python -m bench.memory                 # LLaDA-8B width, 1 and 2 layers (~10 GiB)
    .venv/bin/python -m bench.memory --quick                            # small width, seconds (the test's smoke run)
    .venv/bin/python -m bench.memory --cases learner:diffu_grpo:full    # one case

Model: the native LLaDA module built in memory at LLaDA-8B's width (d_model 4096, 32 heads, MLP 12288,
vocabulary 126,464) with `--layers` blocks, random weights, fp32 on this CPU, LoRA on every block
linear (rank 128 by default). Nothing is downloaded or written.

Cases (`--cases`, each `kind:method:mode`):
- `learner:<method>:<mode>`: one optimizer step (`train_step`) on one micro-batch of `--rows` rows of
  `--prompt` + `--gen` tokens (6 × 456 by default), as the method scores it: diffu-GRPO every completion
  position; AGRPO the tokens one step reveals (block / steps per block), tempered and restricted to a
  top-k 150 support; EGSPO the same without support, one ratio per row; DiSPO's step term a third of
  the completion. mode `full` = every position's logits and no checkpointing (today's reference path
  `gather_logits=False`; run from the commit before this work it is that commit's learner),
  `gathered` = logits at the scored positions (the chunked head), `ckpt` = gathered + activation
  checkpointing.
- `rollout:<method>:<mode>`: `--sampler-steps` denoising steps (`sample`) of `--rollout-rows` rows,
  block 32 (mode `full` / `gathered` as above; EGSPO records greedy fills, so it needs the completion's
  logits at every step).

Measurement: torch's profiler with `profile_memory=True` records every CPU allocation and free with the
running total of allocated bytes; the peak of that total during the case, plus the bytes already
allocated when it starts (weights, adapter, AdamW moments after one warm-up step), is the case's peak.
The planner's figure for the same shapes comes from `dllmrl_core.planning` (CPU precision). Each case
runs in a fresh subprocess (one model build each) unless `--inprocess`.

Against an older commit, check it out and run this file from there with
`--cases learner:<method>:full` (the `full` mode uses only the oldest interfaces).
The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import torch

from bench import emit

ROOT = Path(__file__).resolve().parent.parent
LLADA_8B = dict(d_model=4096, n_heads=32, mlp=12288, vocab=126464)
QUICK = dict(d_model=256, n_heads=4, mlp=768, vocab=126464)
DEFAULT_CASES = ([f"learner:{m}:{mode}" for m in ("diffu_grpo", "agrpo", "egspo", "dispo") for mode in ("gathered", "ckpt")]
                 + ["rollout:diffu_grpo:full", "rollout:diffu_grpo:gathered", "rollout:egspo:gathered"])


def peak_allocated(fn) -> tuple[object, int]:
    """(fn(), the highest running total of CPU bytes allocated during fn, relative to its start)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        prof.export_chrome_trace(f.name)
        events = json.load(open(f.name))["traceEvents"]
    totals = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"]
    return out, max(totals, default=0)


def live_bytes(*modules_or_tensors) -> int:
    """Bytes of the distinct storages behind these modules' parameters/buffers and these tensors."""
    seen = {}
    for obj in modules_or_tensors:
        tensors = [*obj.parameters(), *obj.buffers()] if isinstance(obj, torch.nn.Module) else list(obj)
        for t in tensors:
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


def build_policy(args, shape: dict, layers: int):
    from dllmrl_core.models import MaskPredictor
    from dllmrl_core.models.llada import LLaDAConfig, LLaDAModelLM
    from dllmrl_core.training.lora import LoraSettings, add_lora

    V = shape["vocab"]
    cfg = LLaDAConfig(d_model=shape["d_model"], n_heads=shape["n_heads"], n_layers=layers,
                      mlp_hidden_size=shape["mlp"], vocab_size=V, embedding_size=V, mask_token_id=V - 1,
                      eos_token_id=V - 2, pad_token_id=V - 3)
    torch.manual_seed(0)
    with torch.device("meta"):
        model = LLaDAModelLM(cfg)
    model = model.to_empty(device="cpu")
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    model = add_lora(model, LoraSettings(r=args.rank, alpha=args.rank, dropout=args.dropout, targets="all"))
    for name, p in model.named_parameters():  # a non-zero adapter, so every LoRA path carries gradient
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.01)
    return MaskPredictor(model=model, mask_id=V - 1, eos_id=V - 2, pad_id=V - 3), cfg


def learner_term(args, method: str, V: int, mask_id: int, device: str | torch.device = "cpu"):
    """A PolicyTerm of --rows rows shaped as `method` scores them (see the module docstring): the
    first `positions` completion positions are masked and scored; token values do not matter here."""
    from dllmrl_core.likelihood import LogpQuery
    from dllmrl_core.objectives.common import PolicyTerm

    g = torch.Generator().manual_seed(0)
    R, P, L = args.rows, args.prompt, args.gen
    per_step = -(-args.block // (args.steps // (L // args.block)))
    positions = {"agrpo": per_step, "egspo": per_step, "dispo": L // 3}.get(method)  # dispo: its step term
    if positions is None:  # any other registered method: the widest term its memory shape declares
        from dllmrl_core.objectives import get_objective
        from dllmrl_core.sampling import SamplerConfig

        objective = get_objective(method)
        sampler = SamplerConfig(gen_length=L, steps=args.steps, block_length=args.block)
        positions = max(p for _, p in objective.memory_shape(objective.Config(), sampler, R).terms)
    ids = torch.randint(0, V - 3, (R, P + L), generator=g)
    ids[:, P:P + positions] = mask_id
    target = torch.zeros(R, L, dtype=torch.bool)
    target[:, :positions] = True
    target_ids = torch.randint(0, V - 3, (R, L), generator=g)
    support = None
    if method == "agrpo":  # AGRPO's recipe: top-k 150 support, temperature 0.6
        support = torch.randint(0, V - 3, (R, L, 150), generator=g)
        support[..., 0] = target_ids
    query = LogpQuery(input_ids=ids, attention_mask=torch.ones(R, P + L, dtype=torch.bool), target_ids=target_ids,
                      target_mask=target, temperature=0.6 if method == "agrpo" else 1.0, support_ids=support)
    query = replace(query, **{f.name: getattr(query, f.name).to(device) for f in fields(query)
                              if isinstance(getattr(query, f.name), torch.Tensor)})
    zeros = torch.zeros(R, L, device=device)
    return PolicyTerm(kind="step" if method == "dispo" else "policy", query=query,
                      advantages=torch.randn(R, generator=g).to(device), normalizer=float(R * positions),
                      old_logp=zeros - 10.0, ref_logp=zeros - 10.0), positions


def loss_fn(method: str):
    from dllmrl_core.objectives import get_objective

    objective = get_objective(method)
    cfg = objective.Config()
    return lambda term, logp, entropy: objective.loss(term, logp, entropy, cfg)


def run_learner(args, policy, method: str, mode: str) -> dict:
    from dllmrl_core.training.optim import OptimConfig, build_optimizer
    from dllmrl_core.training.step import train_step

    policy.gather_logits = mode != "full"  # (unknown to older commits: harmless there)
    if mode == "ckpt":
        from dllmrl_core.models.llada import set_activation_checkpointing

        set_activation_checkpointing(policy.model, True)
    term, positions = learner_term(args, method, policy.model.config.embedding_size, policy.mask_id)
    opt, sched = build_optimizer(policy.model.parameters(), OptimConfig(lr=1e-6), total_steps=10)
    step = lambda: train_step(policy, opt, sched, [term], loss_fn(method), max_grad_norm=1.0)  # noqa: E731
    step()  # warm-up: AdamW creates its moments, so the measured step starts from the resident state
    opt.zero_grad(set_to_none=True)
    resident = live_bytes(policy.model, [s for state in opt.state.values() for s in state.values()
                                         if isinstance(s, torch.Tensor)])
    start = time.perf_counter()
    _, peak = peak_allocated(step)
    return {"resident": resident, "step_peak": peak, "measured": resident + peak, "positions": positions,
            "seconds": round(time.perf_counter() - start, 1)}


def run_rollout(args, policy, method: str, mode: str) -> dict:
    from dllmrl_core.sampling import SamplerConfig, sample

    policy.gather_logits = mode != "full"
    g = torch.Generator().manual_seed(0)
    R, P = args.rollout_rows, args.prompt
    V = policy.model.config.embedding_size
    ids = torch.randint(0, V - 3, (R, P), generator=g)
    cfg = SamplerConfig(gen_length=args.rollout_gen, steps=args.sampler_steps, block_length=args.block,
                        temperature=0.9)
    policy.model.eval()
    resident = live_bytes(policy.model)
    run = lambda: sample(policy, ids, None, cfg, generator=g, record_greedy_fills=method == "egspo")  # noqa: E731
    start = time.perf_counter()
    _, peak = peak_allocated(run)
    return {"resident": resident, "step_peak": peak, "measured": resident + peak,
            "seconds": round(time.perf_counter() - start, 1)}


def planned(args, shape: dict, layers: int, case: str, positions: int | None) -> dict:
    """The planner's figure for the same shapes on this CPU (fp32), from the items `dllmrl plan` adds up."""
    from dllmrl_core.planning.estimate import Lora, Precision
    from dllmrl_core.planning.plan import Setting, adapter, learner_step_items, step_items, weights
    from dllmrl_core.planning.shape import ROLES, ModelShape

    kind, method, mode = case.split(":")
    m = ModelShape(d_model=shape["d_model"], n_layers=layers, n_heads=shape["n_heads"], n_kv_heads=shape["n_heads"],
                   mlp=shape["mlp"], vocab=shape["vocab"])
    s = Setting(shape=m, lora=Lora(args.rank, args.dropout, ROLES, m.lora_params("all", args.rank)),
                prompt=args.prompt, gen=args.gen, block=args.block, cfg_rows=1, truncated=False, method=None,
                algo=None)
    prec = Precision.of("cpu")
    if kind == "learner":
        resident = [weights(s, prec), *adapter(s, True, 1, prec)]
        step = learner_step_items(s, prec, args.rows, args.prompt + args.gen, positions, mode == "ckpt")["learner step"]
    else:
        resident = [weights(s, prec), *adapter(s, False, 1, prec)]
        s = replace(s, gen=args.rollout_gen)
        step = step_items(s, prec, args.rollout_rows, args.prompt + args.rollout_gen, args.block, "none", "rollout",
                          sampled=True, completion_logits=method == "egspo")
    res, peak = sum(i.bytes for i in resident), sum(i.bytes for i in step)
    return {"resident": res, "step_peak": peak, "total": res + peak}


def run_case(args, case: str, layers: int) -> dict:
    shape = QUICK if args.quick else LLADA_8B
    policy, _ = build_policy(args, shape, layers)
    kind, method, mode = case.split(":")
    result = (run_learner if kind == "learner" else run_rollout)(args, policy, method, mode)
    try:
        plan = planned(args, shape, layers, case, result.get("positions"))
    except ImportError:  # run from a checkout older than the planner: measurement only
        return {**result, "plan": None}
    result["plan"] = plan["total"]
    result["plan_step"] = plan["step_peak"]
    result["plan_error"] = round(plan["total"] / result["measured"] - 1, 4)
    result["plan_step_error"] = round(plan["step_peak"] / max(result["step_peak"], 1) - 1, 4)
    return result


def describe(key: str, r: dict) -> str:
    text = f"{key:32s} measured {r['measured'] / 2**30:7.2f} GiB (step {r['step_peak'] / 2**30:6.2f})"
    if r["plan"] is not None:
        text += (f"  plan {r['plan'] / 2**30:7.2f} GiB (step {r['plan_step'] / 2**30:6.2f})  "
                 f"error {r['plan_error']:+.1%} (step {r['plan_step_error']:+.1%})")
    return f"{text}  {r['seconds']}s"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rows", type=int, default=6, help="learner micro-batch rows")
    parser.add_argument("--prompt", type=int, default=200)
    parser.add_argument("--gen", type=int, default=256)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--steps", type=int, default=128, help="sampler steps of the recipe (AGRPO/EGSPO targets)")
    parser.add_argument("--rank", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--rollout-rows", type=int, default=4)
    parser.add_argument("--rollout-gen", type=int, default=64)
    parser.add_argument("--sampler-steps", type=int, default=2)
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES)
    parser.add_argument("--quick", action="store_true", help="small width (d_model 256), 1 layer, two cases")
    parser.add_argument("--inprocess", action="store_true", help="run every case in this process")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.rows, args.prompt, args.gen = [1], 2, 16, 64
        args.cases = args.cases if "--cases" in argv else ["learner:diffu_grpo:gathered",
                                                                   "rollout:diffu_grpo:gathered"]
    from dllmrl_core.drive.runtime import configure_process

    configure_process(int(os.environ.get("OMP_NUM_THREADS", "2")))
    if args.child:
        case, layers = args.child.split("@")
        print(json.dumps(run_case(args, case, int(layers))), flush=True)
        return {}
    results = {}
    for layers in args.layers:
        for case in args.cases:
            key = f"{case}@{layers}"
            if args.inprocess:
                results[key] = run_case(args, case, layers)
            else:
                cmd = [sys.executable, "-m", "bench.memory", *argv, "--child", key]
                out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
                results[key] = json.loads(out.stdout.strip().splitlines()[-1])
            print(describe(key, results[key]), flush=True)
    worst = max((abs(r["plan_error"]) for r in results.values() if r["plan"] is not None), default=0.0)
    return emit({"bench": "memory", "width": "quick" if args.quick else "llada-8b", "rows": args.rows,
                 "tokens_per_row": args.prompt + args.gen, "cases": results, "worst_plan_error": worst})


if __name__ == "__main__":
    main()
