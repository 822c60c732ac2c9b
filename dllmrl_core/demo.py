"""Sampler demo on the embedded tiny default: watch a masked diffusion model fill in a completion.

    python -m dllmrl_core.demo [--out runs/tiny-base]

Builds the tiny LLaDA-architecture checkpoint if it is missing, then denoises a few prompts and
prints the partially masked completion after selected steps (· marks a masked position). The
weights are random until the RL loop lands (issues 4-6), so the text itself is noise: what the
demo shows is the denoising order, the blocks, and the trajectory record.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

PROMPTS = ["Using the numbers [3, 5, 7], create an equation that equals 22.", "Solve the sudoku 1030004020000001"]


def main(argv: list[str] | None = None) -> None:
    from transformers.utils import logging as hf_logging

    from dllmrl_core.models import encode_prompts, load_mask_predictor, load_tokenizer
    from dllmrl_core.models.tiny import write_tiny
    from dllmrl_core.sampling import generate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/tiny-base", help="where the tiny checkpoint lives")
    args = parser.parse_args(argv)
    hf_logging.disable_progress_bar()
    start = time.perf_counter()
    if not (Path(args.out) / "config.json").is_file():
        write_tiny(args.out, seed=0)
        print(f"built the tiny default checkpoint in {args.out}")
    tok = load_tokenizer(args.out)
    model = load_mask_predictor(args.out, device="cpu", tokenizer=tok)
    ids, mask = encode_prompts(tok, PROMPTS)
    batch = generate(model, ids, mask, gen_length=32, steps=16, block_length=16, temperature=0.7,
                     generator=torch.Generator().manual_seed(0))
    for row, prompt in enumerate(PROMPTS):
        print(f"\nprompt: {prompt}")
        for step in (0, 4, 8, 12, 16):
            toks = batch.completion_at(step)[row].tolist()
            text = "".join(show(tok, t, model.mask_id) for t in toks)
            print(f"  before step {step:2d}: {text}")
    summary = {"rows": batch.batch_size, "gen_length": batch.gen_length, "steps": batch.steps,
               "mean_entropy": round(float(batch.token_entropy.mean()), 3),
               "wall_s": round(time.perf_counter() - start, 2)}
    print(json.dumps(summary))


def show(tok, token_id: int, mask_id: int) -> str:
    """One visible character per position: · mask, ▪ special token, ⏎/⇥ for newline/tab."""
    if token_id == mask_id:
        return "·"
    text = tok.decode([token_id], skip_special_tokens=True)
    return {"": "▪", "\n": "⏎", "\t": "⇥"}.get(text, text)


if __name__ == "__main__":
    main()
