"""Our dual-cache sampler against Fast-dLLM's own `generate_with_dual_cache`,
side by side on the same weights.

    git clone https://github.com/NVlabs/Fast-dLLM runs/Fast-dLLM      # once; runs/ is git-ignored
    OMP_NUM_THREADS=1 .venv/bin/python -m bench.fastdllm               # 26M model, batch 1 and 8, 3 rounds
    OMP_NUM_THREADS=1 .venv/bin/python -m bench.fastdllm --quick       # small model, seconds

Nothing of Fast-dLLM is part of this repository: the bench imports `llada/generate.py` and
`llada/model/` from --fastdllm-dir (default runs/Fast-dLLM) at run time and, if that folder is
missing, says how to get it and ends with {"skipped": ...}.

Setup (docs/performance.md): the `large` model of bench/sampler.py (LLaDA architecture, d_model 512,
8 layers, 8 heads, MLP 1376, the tiny character tokenizer, random weights, seed 0), written once and
loaded twice: by our native module and by Fast-dLLM's modeling code. Prompt: --prompt ordinary
tokens (seeded), no padding (Fast-dLLM's loop has no attention mask); gen 256, block 32, 128 steps,
greedy, low-confidence remasking, fp32, one torch thread.
- ours: `dllmrl_core.sampling.generate(..., cache="dual")`, the RolloutBatch with its trajectory
  records (reveal step, behaviour/model log-probs, entropy), LM head on the block only.
- theirs: `generate_with_dual_cache(model, prompt, steps, gen_length, block_length, temperature=0,
  remasking="low_confidence", mask_id)`. It builds x as (1, P + L): batch 1 only, so its time per
  sequence at any batch size is its batch-1 time (8 sequences = 8 calls).

Load-time shims for their code under transformers 5.23 (their files are not edited):
- `einops` is stubbed when not installed (only their block-diffusion block calls `rearrange`);
- the config is theirs (`LLaDAConfig`) built from our config.json plus the architecture keys that
  LLaDA-8B-Instruct's config.json sets and ours omits (block_type llama, RoPE, RMSNorm, SiLU, no weight
  tying, no biases, dropouts 0), then `LLaDAModelLM(config)` + `load_state_dict(strict=True)` of our
  safetensors: their `__init__` never calls `post_init()`, which transformers 5's `from_pretrained` needs;
- `config.use_cache = False` (transformers 5 no longer keeps it as a config attribute; their forward
  reads it);
- a forward hook sets the [MASK] logit to −inf, as our sampler does (and as bench/sampler.py's plain
  LLaDA loop does): a random-weight model would otherwise draw [MASK], and their loop, which runs until
  a block has no mask left, would index past its schedule.
Their `@torch.compile` on the attention wrapper is kept; the warm-up run pays for compilation.

Timing: process CPU time (one thread: the compute a run took even when other jobs share the cores),
wall time recorded too; --rounds interleaved rounds (ours B=1, theirs B=1, ours B=8, ...), medians
reported, os.getloadavg() recorded per round. Agreement: the share of completion tokens where both
greedy outputs at batch 1 are equal (same weights, same cache semantics: it should be 1).
The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

from bench import emit
from dllmrl_core.drive.runtime import configure_process

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "runs" / "Fast-dLLM"
HOW_TO_GET = "git clone https://github.com/NVlabs/Fast-dLLM {dir}"
# Architecture keys of LLaDA-8B-Instruct's config.json that our TinySpec checkpoints leave implicit.
LLADA_ARCH = dict(block_type="llama", activation_type="silu", layer_norm_type="rms", layer_norm_with_affine=True,
                  rope=True, rope_full_precision=True, alibi=False, include_bias=False, include_qkv_bias=False,
                  weight_tying=False, scale_logits=False, input_emb_norm=False, flash_attention=False,
                  attention_dropout=0.0, residual_dropout=0.0, embedding_dropout=0.0)


def import_fastdllm(root: Path):
    """(generate module, modeling module, configuration module) of Fast-dLLM's llada/ folder."""
    try:
        import einops  # noqa: F401
    except ImportError:  # only LLaDABlockDiffBlock uses it; the llama block never does
        def rearrange(*_, **__):
            raise RuntimeError("einops stub: install einops for Fast-dLLM's block-diffusion block")
        sys.modules["einops"] = types.SimpleNamespace(rearrange=rearrange)
    sys.path.insert(0, str(root / "llada"))
    import generate as fd_generate  # noqa: E402  (their llada/generate.py)
    from model import configuration_llada, modeling_llada  # noqa: E402

    return fd_generate, modeling_llada, configuration_llada


def load_theirs(modeling, configuration, path: Path, mask_id: int) -> torch.nn.Module:
    """Fast-dLLM's LLaDAModelLM holding the weights of our checkpoint at `path` (see the shims above)."""
    from safetensors.torch import load_file

    ours = json.loads((path / "config.json").read_text())
    config = configuration.LLaDAConfig(**{**ours, **LLADA_ARCH})
    model = modeling.LLaDAModelLM(config)
    model.load_state_dict(load_file(path / "model.safetensors"), strict=True)
    model.config.use_cache = False
    model.eval()

    def never_mask(_module, _args, out):
        out.logits[..., mask_id] = float("-inf")

    model.register_forward_hook(never_mask)
    return model


def timed(fn) -> tuple[float, float, object]:
    """(process CPU seconds, wall seconds, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, out


def runners(args, ours, theirs, fd_generate, prompts):
    """{name: zero-argument call returning completions [B, L]} for ours at each batch and theirs at B=1."""
    from dllmrl_core.sampling import generate

    kw = dict(gen_length=args.gen, steps=args.steps, block_length=args.block)
    P = prompts.shape[1]
    calls = {}
    for B in sorted(args.batches):
        calls[f"ours/b{B}"] = (lambda B=B: generate(ours, prompts[:B], None, cache="dual", **kw).completion_ids)
        if B == min(args.batches):  # a round: ours b1, theirs b1, ours b8
            calls["theirs/b1"] = lambda: fd_generate.generate_with_dual_cache(
                theirs, prompts[:1], steps=args.steps, gen_length=args.gen, block_length=args.block,
                temperature=0.0, remasking="low_confidence", mask_id=ours.mask_id)[0][:, P:]
    return calls


def measure(args, calls) -> list[dict]:
    """Interleaved rounds over the calls; per call the CPU and wall seconds of every round."""
    rounds = []
    for _ in range(args.rounds):
        load = os.getloadavg()
        row = {"loadavg": [round(x, 2) for x in load]}
        for name, fn in calls.items():
            cpu, wall, _ = timed(fn)
            row[name] = {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3)}
            print(f"  {name:10s} {cpu:7.3f} s cpu  {wall:7.3f} s wall   load {load[0]:.2f}", flush=True)
        rounds.append(row)
    return rounds


def summarize(args, rounds: list[dict], names) -> dict:
    clock = "cpu_s" if args.clock == "cpu" else "wall_s"
    med = {n: statistics.median(r[n][clock] for r in rounds) for n in names}
    theirs = med["theirs/b1"]
    out = {"clock": args.clock, "median_s": {n: round(v, 3) for n, v in med.items()}, "per_sequence_s": {},
           "theirs_over_ours_per_sequence": {}}
    for B in args.batches:
        per_seq = med[f"ours/b{B}"] / B
        out["per_sequence_s"][f"ours/b{B}"] = round(per_seq, 4)
        out["theirs_over_ours_per_sequence"][f"b{B}"] = round(theirs / per_seq, 3)
    out["per_sequence_s"]["theirs/b1"] = round(theirs, 4)
    out["ours_b1_at_least_as_fast"] = med.get("ours/b1", float("inf")) <= theirs
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fastdllm-dir", default=str(DEFAULT_DIR), help="a checkout of NVlabs/Fast-dLLM (its llada/)")
    p.add_argument("--quick", action="store_true", help="small model, gen 64, one round")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="our batch sizes (theirs: 1)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; quick 1)")
    p.add_argument("--prompt", type=int, default=64)
    p.add_argument("--gen", type=int, default=None, help="default 256 (quick 64)")
    p.add_argument("--block", type=int, default=32)
    p.add_argument("--steps", type=int, default=None, help="default gen / 2")
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    args = p.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.gen = args.gen or (64 if args.quick else 256)
    args.steps = args.steps or args.gen // 2
    return args


def main(argv: list[str] | None = None) -> dict:
    from bench.sampler import LARGE_SPEC, QUICK_LARGE_SPEC, filler_ids
    from dllmrl_core.models import load_mask_predictor, load_tokenizer
    from dllmrl_core.models.tiny import TinySpec, write_tiny

    args = parse_args(argv)
    root = Path(args.fastdllm_dir)
    head = {"bench": "fastdllm", "fastdllm_dir": str(root)}
    if not (root / "llada" / "generate.py").is_file():
        print(f"Fast-dLLM not found at {root} (no llada/generate.py): get it with "
              f"`{HOW_TO_GET.format(dir=root)}` (or pass --fastdllm-dir); skipping", flush=True)
        return emit({**head, "skipped": f"no Fast-dLLM checkout at {root}"})
    configure_process(1)
    fd_generate, modeling, configuration = import_fastdllm(root)
    spec = QUICK_LARGE_SPEC if args.quick else LARGE_SPEC
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-fastdllm-") as tmp:
        path = write_tiny(Path(tmp) / "model", seed=0, spec=TinySpec(**spec))
        tokenizer = load_tokenizer(path)
        ours = load_mask_predictor(path, device="cpu", tokenizer=tokenizer)
        theirs = load_theirs(modeling, configuration, path, ours.mask_id)
    prompts = filler_ids(tokenizer, (max(args.batches), args.prompt), seed=0)
    calls = runners(args, ours, theirs, fd_generate, prompts)
    warm = {n: fn() for n, fn in calls.items()}  # warm-up (their torch.compile), and the outputs
    agreement = float((warm["ours/b1"] == warm["theirs/b1"]).float().mean()) if "ours/b1" in warm else None
    params = sum(p.numel() for p in ours.model.parameters())
    print(f"model: {params / 1e6:.2f}M parameters {spec}; prompt {args.prompt}, gen {args.gen}, block {args.block}, "
          f"steps {args.steps}; agreement ours vs theirs at batch 1: {agreement}", flush=True)
    rounds = measure(args, calls)
    result = {**head, "quick": args.quick, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "model": {"params": params, "spec": spec}, "prompt": args.prompt, "gen_length": args.gen,
              "block_length": args.block, "steps": args.steps, "rounds": rounds, "agreement_b1": agreement,
              **summarize(args, rounds, list(calls)), "wall_s": round(time.perf_counter() - start, 1)}
    ratios = result["theirs_over_ours_per_sequence"].items()
    print(f"median {args.clock} s: " + ", ".join(f"{n} {v}" for n, v in result["median_s"].items()), flush=True)
    print("Fast-dLLM / ours per sequence: " + ", ".join(f"{b} {v}" for b, v in ratios), flush=True)
    return emit(result)


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
