"""Sampler memory benchmark: peak bytes of one denoising step's full-vocabulary work.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.step_memory            # V = 126464 (LLaDA-8B), batch 1 and 8
    OMP_NUM_THREADS=1 .venv/bin/python -m bench.step_memory --quick    # V = 4096, seconds

Peak = the largest "Total Allocated" of the `[memory]` events in a torch.profiler trace
(`profile(activities=[CPU], profile_memory=True)` + `export_chrome_trace`): bytes allocated since
profiling began, so what existed before (the model, the input logits of `block`) is not counted.
Figures are given per (row · block position · V), V the vocabulary size.

- `block`: the block work of one step on given logits [B, W, V] (fp32, N(0, 3²), seeded), every
  block position still masked (a block's first step), 2 tokens committed per row: drawing x̂0,
  confidences, the choice, the commit and the trace's records (`commit_block` + `Trace.commit`).
- `step`: whole steps through the public API: `generate` of one block of W positions in W / 2 steps
  (2 tokens per step) after a prompt of --prompt tokens, on a one-layer LLaDA-architecture model
  with d_model 16 and vocabulary V (random weights); the peak over those steps: the forward, the
  logits it returns and the block work. `generate` has the same signature in earlier versions, so
  `--measure step` also runs on another checkout (put that checkout's package first on PYTHONPATH).

Cases: greedy (temperature 0, low confidence: evaluation); sampled (T 0.9: diffu-GRPO); truncated
(T 0.9, top-k 50, top-p 0.9, supports recorded: AGRPO's sampler); random remasking (T 0.9).
The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import torch
from torch.profiler import ProfilerActivity, profile

from bench import emit
from dllmrl_core.drive.runtime import configure_process

CASES = {
    "greedy": dict(),
    "sampled": dict(temperature=0.9),
    "truncated": dict(temperature=0.9, top_k=50, top_p=0.9),
    "random": dict(temperature=0.9, remasking="random"),
}


def peak_bytes(fn) -> int:
    """Largest total of bytes allocated while `fn()` runs (CPU allocator, via the profiler), after one
    unmeasured call: one-time lazy allocations (kernel workspaces, generator state) are not the step's."""
    fn()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        prof.export_chrome_trace(f.name)
        events = json.load(open(f.name))["traceEvents"]
    return max((e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"), default=0)


def predictor(vocab: int):
    """A one-layer LLaDA-architecture predictor with d_model 16 and `vocab` entries (random weights)."""
    from dllmrl_core.models.llada import LLaDAConfig, LLaDAModelLM
    from dllmrl_core.models.predictor import MaskPredictor

    mask_id, eos_id = vocab - 2, vocab - 3
    cfg = LLaDAConfig(d_model=16, n_heads=2, n_layers=1, mlp_hidden_size=32, vocab_size=vocab, embedding_size=vocab,
                      max_sequence_length=4096, mask_token_id=mask_id, eos_token_id=eos_id, pad_token_id=eos_id)
    torch.manual_seed(0)
    return MaskPredictor(model=LLaDAModelLM(cfg).eval(), mask_id=mask_id, eos_id=eos_id, pad_id=eos_id)


def block_work(model, B: int, W: int, case: dict) -> int:
    """Peak bytes of commit_block + Trace.commit on fixed logits [B, W, V] (all W positions masked)."""
    from dllmrl_core.sampling.draw import truncates
    from dllmrl_core.sampling.config import SamplerConfig
    from dllmrl_core.sampling.denoise import commit_block
    from dllmrl_core.sampling.trace import Trace

    cfg = SamplerConfig.parse(dict(gen_length=W, steps=W // 2, block_length=W, **case))
    V = model.model.config.vocab_size
    logits = 3 * torch.randn(B, W, V, generator=torch.Generator().manual_seed(0))
    x = torch.full((B, W), model.mask_id)
    trace = Trace(B, W, cfg.steps, x.device, keep_logits_steps=None, greedy_fills=False, support=truncates(cfg))
    generator = torch.Generator().manual_seed(1)

    def step():
        commit, x0 = commit_block(model, x, logits, 0, cfg, torch.full((B,), 2), generator)
        trace.commit(0, 0, commit, x0, logits, cfg)

    return peak_bytes(step)


def whole_step(model, B: int, W: int, P: int, case: dict) -> int:
    """Peak bytes of `generate` of one block of W positions in W / 2 steps after P prompt tokens."""
    from dllmrl_core.sampling import generate

    prompt = torch.randint(0, model.eos_id, (B, P), generator=torch.Generator().manual_seed(2))
    record = {"record_support": True} if "top_k" in case else {}
    return peak_bytes(lambda: generate(model, prompt, gen_length=W, steps=W // 2, block_length=W,
                                       generator=torch.Generator().manual_seed(3), **case, **record))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="V 4096, batch 1 and 2")
    p.add_argument("--vocab", type=int, default=None, help="vocabulary size V (default 126464; quick 4096)")
    p.add_argument("--batches", type=int, nargs="+", default=None, help="rows B (default 1 8; quick 1 2)")
    p.add_argument("--block", type=int, default=32, help="block length W")
    p.add_argument("--prompt", type=int, default=288, help="prompt tokens P of the `step` measurement")
    p.add_argument("--measure", nargs="+", default=["block", "step"], choices=["block", "step"])
    args = p.parse_args(argv)
    args.vocab = args.vocab or (4096 if args.quick else 126464)
    args.batches = args.batches or ([1, 2] if args.quick else [1, 8])
    configure_process(1)
    start = time.perf_counter()
    model = predictor(args.vocab)
    rows = []
    for what in args.measure:
        for B in args.batches:
            for name, case in CASES.items():
                if what == "block":
                    peak = block_work(model, B, args.block, case)
                else:
                    peak = whole_step(model, B, args.block, args.prompt, case)
                per = peak / (B * args.block * args.vocab)
                rows.append(dict(measure=what, batch=B, case=name, peak_bytes=peak, bytes_per_entry=round(per, 2)))
                print(f"{what:5s} B={B} W={args.block} V={args.vocab} {name:9s} peak {peak / 2**20:9.1f} MiB = "
                      f"{per:6.2f} bytes per (row·position·V)", flush=True)
    return emit({"bench": "step_memory", "quick": args.quick, "vocab": args.vocab, "block": args.block,
                 "prompt": args.prompt, "torch": torch.__version__, "rows": rows,
                 "wall_s": round(time.perf_counter() - start, 1)})


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
