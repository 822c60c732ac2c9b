"""Export a trained run: its LoRA adapter merged into the base, a plain transformers checkpoint.

    dllmrl export RUN --merged OUT [--push-to-hub NAME [--private]]

RUN is a run directory, a checkpoint or an adapter directory (dllmrl_core/drive/trained.py); the
base is the `model.path` of the run's config.yaml. PEFT's `merge_and_unload` folds the adapter into
the base weights (full precision, even when the run trained on a 4-bit base), and OUT receives the
merged weights, config.json (with `auto_map` and the modelling file for LLaDA-architecture models,
so `AutoModel.from_pretrained(OUT, trust_remote_code=True)` opens it) and the tokenizer. OUT must
not exist or be empty: nothing is overwritten. `--push-to-hub` then uploads OUT with
huggingface_hub (a token from HF_TOKEN or `hf auth login` is checked before any work).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trained", metavar="RUN", help="run directory, checkpoint directory or PEFT adapter directory")
    parser.add_argument("--merged", required=True, metavar="OUT", help="new (or empty) directory for the merged model")
    parser.add_argument("--push-to-hub", default=None, metavar="NAME", help="then upload OUT to this Hub repository")
    parser.add_argument("--private", action="store_true", help="create the Hub repository private")
    parser.add_argument("--device", default="cpu", help="where to merge (default: cpu, in fp32)")
    parser.set_defaults(run=run)


def check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--merged {out}: already exists and is not an empty directory (nothing is overwritten)")


def hub_token() -> str:
    """The Hugging Face token huggingface_hub would use; a one-line error when there is none."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise ValueError("--push-to-hub: no Hugging Face token (set HF_TOKEN or run `hf auth login`)")
    return token


def push(out: Path, name: str, token: str, private: bool) -> str:
    """Create the Hub repository `name` (if new) and upload OUT's files; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(name, private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=name, folder_path=str(out), commit_message="dllmrl export --merged")
    except Exception as err:  # offline, refused, unknown user: one line, the merged model stays in OUT
        first = str(err).splitlines()[0] if str(err) else ""
        raise ValueError(f"--push-to-hub {name}: upload failed ({type(err).__name__}: {first}); "
                         f"the merged model is in {out}") from None
    return str(getattr(commit, "commit_url", commit))


def merge(run_path: str, out: Path, device: str) -> dict:
    """Write the merged model and tokenizer to OUT; returns what was merged."""
    from transformers.utils import logging as hf_logging

    from dllmrl_core.drive.trained import load_trained, locate

    hf_logging.disable_progress_bar()
    policy, tokenizer, cfg = load_trained(run_path, device=device)
    merged = policy.model.merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"base": cfg.model.path, "adapter": str(locate(run_path).adapter), "merged": str(out)}


def run(args: argparse.Namespace) -> int:
    from dllmrl_core.drive.trained import locate

    out = Path(args.merged)
    check_out(out)
    locate(args.trained).config  # noqa: B018 - a missing adapter or config is a one-line error before any work
    token = hub_token() if args.push_to_hub else None
    summary = merge(args.trained, out, args.device)
    if args.push_to_hub:
        summary["hub"] = push(out, args.push_to_hub, token, args.private)
    print(json.dumps(summary))
    return 0
