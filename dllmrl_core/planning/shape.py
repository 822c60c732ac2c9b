"""The dimensions a memory plan needs: a model's shape and its LoRA adapter's size.

Read from the checkpoint's config.json (LLaDA's keys or Llama/Qwen2-style keys such as Dream's);
for the hub names the shipped configs use, the shape is known here, so planning needs no network
and no download. Parameter counts are exact for the native LLaDA module (tested against a built
model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dllmrl_core.training.lora import D1_LLADA, LLADA_LINEARS, LLAMA_LINEARS

# Block linears by role: LLaDA's names, then Llama/Qwen2's (Dream). Order: q, k, v, out, gate, up, down.
ROLES = ("q", "k", "v", "out", "gate", "up", "down")
NAMES = {"llada": dict(zip(ROLES, LLADA_LINEARS)), "llama": dict(zip(ROLES, LLAMA_LINEARS))}

_LLADA_8B = {"model_type": "llada", "d_model": 4096, "n_heads": 32, "n_kv_heads": 32, "n_layers": 32,
             "mlp_hidden_size": 12288, "vocab_size": 126464, "embedding_size": 126464, "weight_tying": False}
_DREAM_7B = {"model_type": "Dream", "hidden_size": 3584, "num_attention_heads": 28, "num_key_value_heads": 4,
             "num_hidden_layers": 28, "intermediate_size": 18944, "vocab_size": 152064, "tie_word_embeddings": False}
KNOWN = {  # config.json shapes of the hub checkpoints the shipped configs name
    "GSAI-ML/LLaDA-8B-Instruct": _LLADA_8B,
    "GSAI-ML/LLaDA-8B-Base": _LLADA_8B,
    "Dream-org/Dream-v0-Instruct-7B": _DREAM_7B,
    "Dream-org/Dream-v0-Base-7B": _DREAM_7B,
}


@dataclass(frozen=True)
class ModelShape:
    """d_model, layers, heads, kv heads, MLP width, vocabulary (head rows) and tied embeddings."""

    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    mlp: int
    vocab: int
    tied: bool = False
    naming: str = "llada"  # which names the block linears carry ("llada" / "llama")

    @property
    def d_kv(self) -> int:
        return self.d_model // self.n_heads * self.n_kv_heads

    def linears(self) -> dict[str, tuple[int, int]]:
        """(d_in, d_out) of each block linear, by role."""
        d, kv, m = self.d_model, self.d_kv, self.mlp
        return {"q": (d, d), "k": (d, kv), "v": (d, kv), "out": (d, d), "gate": (d, m), "up": (d, m), "down": (m, d)}

    @property
    def params(self) -> int:
        """Every weight of the model (embedding, blocks with their two norms, final norm, head)."""
        block = sum(i * o for i, o in self.linears().values()) + 2 * self.d_model
        head = 0 if self.tied else self.vocab * self.d_model
        return self.vocab * self.d_model + self.n_layers * block + self.d_model + head

    def lora_roles(self, targets: str | list[str]) -> tuple[str, ...]:
        """The roles a LoRA target spec adapts ("all", "d1_compatible" or module names)."""
        names = NAMES[self.naming]
        if targets == "all":
            return ROLES
        if targets == "d1_compatible":
            chosen = D1_LLADA if self.naming == "llada" else LLAMA_LINEARS
            return tuple(role for role in ROLES if names[role] in chosen)
        return tuple(role for role in ROLES if names[role] in targets)

    def lora_params(self, targets: str | list[str], r: int) -> int:
        """r · (d_in + d_out) for every adapted linear of every block."""
        dims = self.linears()
        return self.n_layers * sum(r * sum(dims[role]) for role in self.lora_roles(targets))


def shape_from_config(raw: dict[str, Any]) -> ModelShape:
    """A ModelShape from config.json keys (LLaDA's, else Llama/Qwen2-style)."""
    if "d_model" in raw:
        return ModelShape(d_model=raw["d_model"], n_layers=raw["n_layers"], n_heads=raw["n_heads"],
                          n_kv_heads=raw.get("n_kv_heads") or raw["n_heads"], mlp=raw["mlp_hidden_size"],
                          vocab=raw.get("embedding_size") or raw["vocab_size"], tied=bool(raw.get("weight_tying")))
    try:
        return ModelShape(d_model=raw["hidden_size"], n_layers=raw["num_hidden_layers"],
                          n_heads=raw["num_attention_heads"],
                          n_kv_heads=raw.get("num_key_value_heads") or raw["num_attention_heads"],
                          mlp=raw["intermediate_size"], vocab=raw["vocab_size"],
                          tied=bool(raw.get("tie_word_embeddings")), naming="llama")
    except KeyError as err:
        raise ValueError(f"config.json has no {err.args[0]!r}: cannot plan memory for this model") from None


def model_shape(path: str, warm_start=None) -> ModelShape:
    """The shape of `model.path`: its config.json, a known hub name (or a directory not reachable
    here named like one, e.g. /mnt/shared/models/LLaDA-8B-Instruct on a cluster's storage), or, for a
    run that builds its warm start, the tiny model the warm start will write."""
    config = Path(path).expanduser() / "config.json"
    if config.is_file():
        return shape_from_config(json.loads(config.read_text()))
    by_folder = {name.rsplit("/", 1)[-1]: name for name in KNOWN}
    name = path if path in KNOWN else by_folder.get(Path(path).name)
    if name is not None:
        return shape_from_config(KNOWN[name])
    if warm_start is not None:
        base = Path(warm_start.base) / "config.json"
        if base.is_file():
            return shape_from_config(json.loads(base.read_text()))
        from dllmrl_core.models.tiny import build_tokenizer

        s = warm_start.spec
        return ModelShape(d_model=s.d_model, n_layers=s.n_layers, n_heads=s.n_heads, n_kv_heads=s.n_kv_heads,
                          mlp=s.mlp_hidden_size, vocab=len(build_tokenizer()))
    raise FileNotFoundError(f"model.path: {path} has no config.json here and is not a known hub name "
                            f"({', '.join(KNOWN)}): cannot plan its memory")
