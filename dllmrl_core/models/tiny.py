"""The tiny CPU default: a random-init LLaDA-architecture checkpoint and a character tokenizer.

    python -m dllmrl_core.models.tiny --out DIR [--seed S]

writes DIR/config.json + DIR/model.safetensors (LLaDA's on-disk layout, ~1M parameters) and a
character-level tokenizer (tokenizer.json + tokenizer_config.json with a compact chat template and
LLaDA's special tokens: mask, EOS, EoT, pad). `load_mask_predictor(DIR)` and
`AutoTokenizer.from_pretrained(DIR)` both read it; nothing is downloaded. config.json carries an
`auto_map` and DIR/llada.py the modelling code (models/llada.py), so
`AutoModel.from_pretrained(DIR, trust_remote_code=True)` opens it without dllmrl too.
"""

from __future__ import annotations

import argparse
import dataclasses
import string
from dataclasses import dataclass
from pathlib import Path

import torch

from dllmrl_core.models.llada import LLaDAConfig, LLaDAModelLM

SPECIAL_TOKENS = {
    "pad_token": "<|pad|>",
    "unk_token": "<|unk|>",
    "bos_token": "<|startoftext|>",
    "eos_token": "<|endoftext|>",
    "mask_token": "<|mdm_mask|>",
}
EXTRA_SPECIAL = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
CHARS = string.digits + string.ascii_letters + string.punctuation + " \n\t"

# A compact chat template (LLaDA's Llama-3 style headers would add 23 tokens to every prompt, a
# third of the sequence at the tiny model's lengths): BOS, the user turn trimmed, end of turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.index0 == 0 %}{{ bos_token }}{% endif %}"
    "{{ message['content'] | trim }}<|eot_id|>"
    "{% endfor %}"
)


@dataclass(frozen=True)
class TinySpec:
    """Size of the tiny model (LLaDA config names)."""

    d_model: int = dataclasses.field(default=128, metadata={"description": "hidden size"})
    n_heads: int = dataclasses.field(default=4, metadata={"description": "attention heads"})
    n_kv_heads: int = dataclasses.field(default=4, metadata={"description": "key/value heads (GQA if < n_heads)"})
    n_layers: int = dataclasses.field(default=4, metadata={"description": "transformer blocks"})
    mlp_hidden_size: int = dataclasses.field(default=512, metadata={"description": "MLP hidden size"})
    max_sequence_length: int = dataclasses.field(default=1024, metadata={"description": "recorded in config.json"})
    init_std: float = dataclasses.field(default=0.02, metadata={"description": "init weight std"})


def build_tokenizer():
    """Character-level fast tokenizer: every character is one token; specials are atomic."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab_list = list(SPECIAL_TOKENS.values()) + EXTRA_SPECIAL + list(CHARS)
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    core = Tokenizer(models.WordLevel(vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, additional_special_tokens=EXTRA_SPECIAL, padding_side="left", **SPECIAL_TOKENS
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_model(tokenizer, spec: TinySpec = TinySpec(), seed: int = 0) -> LLaDAModelLM:
    """A random-init LLaDA-architecture model sized by `spec`, deterministic under `seed`."""
    cfg = LLaDAConfig(
        d_model=spec.d_model,
        n_heads=spec.n_heads,
        n_kv_heads=spec.n_kv_heads,
        n_layers=spec.n_layers,
        mlp_hidden_size=spec.mlp_hidden_size,
        vocab_size=len(tokenizer),
        embedding_size=len(tokenizer),
        max_sequence_length=spec.max_sequence_length,
        rope_theta=10000.0,
        mask_token_id=tokenizer.mask_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eot_token_id=tokenizer.convert_tokens_to_ids("<|eot_id|>"),
        init_std=spec.init_std,
        architectures=["LLaDAModelLM"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LLaDAModelLM(cfg)


def write_tiny(out: str | Path, seed: int = 0, spec: TinySpec = TinySpec()) -> Path:
    """Write the tiny checkpoint + tokenizer to `out` and return the directory."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    build_model(tok, spec, seed).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to write the checkpoint to")
    parser.add_argument("--seed", type=int, default=0, help="initialisation seed")
    for field in dataclasses.fields(TinySpec):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=field.type == "float" and float or int,
                            default=field.default, help=f"(default {field.default})")
    args = parser.parse_args(argv)
    spec = TinySpec(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TinySpec)})
    out = write_tiny(args.out, args.seed, spec)
    n = sum(p.numel() for p in build_model(build_tokenizer(), spec, args.seed).parameters())
    print(f"wrote tiny LLaDA-architecture checkpoint ({n / 1e6:.2f}M parameters) to {out}")


if __name__ == "__main__":
    main()
