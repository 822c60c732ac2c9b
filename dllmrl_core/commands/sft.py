"""Masked-diffusion SFT on a task's reference solutions; writes a merged checkpoint."""

from __future__ import annotations

import argparse

from dllmrl_core.contract.jsontext import dumps


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML with model / task / sft sections")
    parser.add_argument("overrides", nargs="*", help="key.path=value")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from transformers.utils import logging as hf_logging

    from dllmrl_core.drive.config import load_config
    from dllmrl_core.training.warm_start import SFTRunConfig, run_sft

    cfg = load_config(SFTRunConfig, args.config, args.overrides)
    hf_logging.disable_progress_bar()
    with tqdm(total=cfg.sft.steps, desc="sft", unit="step") as bar:
        def on_step(step: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        summary = run_sft(cfg, on_step=on_step)
    print(dumps(summary))
    return 0
