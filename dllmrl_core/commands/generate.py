"""Generate completions from a checkpoint with the sampler (LLaDA's loop, or Dream's) and print them.

`--model DIR` samples from a checkpoint; `--adapter RUN` from a trained run: the base named in the
run's config.yaml plus the run's adapter (dllmrl_core/drive/trained.py).
"""

from __future__ import annotations

import argparse

SAMPLER_DEFAULTS = {"gen_length": 128, "steps": 128, "block_length": 32}  # LLaDA's demo settings


def register(parser: argparse.ArgumentParser) -> None:
    from dllmrl_core.commands.flags import add_config_arguments
    from dllmrl_core.sampling import SamplerConfig

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="checkpoint directory or hub name")
    source.add_argument("--adapter", metavar="RUN", help="a trained run (run, checkpoint or adapter directory): "
                                                          "its config's base model plus its adapter")
    parser.add_argument("--prompt", required=True, action="append", help="prompt text (repeat for a batch)")
    parser.add_argument("--no-chat", action="store_true", help="do not apply the chat template")
    parser.add_argument("--prefill", default="", help="text appended after the rendered prompt")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")
    parser.add_argument("--keep-special", action="store_true", help="print special tokens too")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run the checkpoint's own code if it needs some (model.trust_remote_code; LLaDA and "
                             "Dream load without it; --adapter takes the run's own setting)")
    add_config_arguments(parser, SamplerConfig, SAMPLER_DEFAULTS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from transformers.utils import logging as hf_logging

    from dllmrl_core.commands.flags import config_values
    from dllmrl_core.models import encode_prompts
    from dllmrl_core.models.loading import resolve_device
    from dllmrl_core.sampling import SamplerConfig, sample

    hf_logging.disable_progress_bar()
    cfg = SamplerConfig.parse(config_values(args, SamplerConfig))
    device = resolve_device(args.device)
    tokenizer, raw, load_model = open_source(args, device)
    ids, mask = encode_prompts(tokenizer, args.prompt, chat=not args.no_chat, prefill=args.prefill)
    check_length(raw, ids.shape[1], cfg.gen_length)
    model = load_model()
    generator = torch.Generator(model.device).manual_seed(args.seed)
    batch = sample(model, ids.to(model.device), mask.to(model.device), cfg, generator=generator)
    for text in tokenizer.batch_decode(batch.completion_ids, skip_special_tokens=not args.keep_special):
        print(text)
    return 0


def open_source(args: argparse.Namespace, device):
    """(tokenizer, the base's raw config.json, a function that loads the mask predictor) of --model, or of
    --adapter's base plus adapter; the model is loaded only after the length check."""
    from dllmrl_core.models import load_mask_predictor, load_tokenizer
    from dllmrl_core.models.loading import read_config_json

    if args.adapter is not None:
        from dllmrl_core.drive.trained import load_trained

        policy, tokenizer, run_cfg = load_trained(args.adapter, device=str(device))
        policy.model.eval()
        return tokenizer, read_config_json(run_cfg.model.path), lambda: policy
    raw = read_config_json(args.model)  # a missing or broken checkpoint fails here, naming the path
    tokenizer = load_tokenizer(args.model, trust_remote_code=args.trust_remote_code)
    return tokenizer, raw, lambda: load_mask_predictor(args.model, device=device, tokenizer=tokenizer,
                                                       trust_remote_code=args.trust_remote_code)


def check_length(raw: dict, prompt_tokens: int, gen_length: int) -> None:
    """Refuse a prompt + completion longer than the model's positions (config.json), before loading it."""
    from dllmrl_core.models.loading import max_positions

    limit = max_positions(raw)
    if limit is not None and prompt_tokens + gen_length > limit:
        raise ValueError(f"gen_length: {prompt_tokens} prompt tokens + {gen_length} generated exceed the "
                         f"{limit} positions of the model (its config.json)")
