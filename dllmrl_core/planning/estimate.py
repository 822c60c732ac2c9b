"""Bytes that each part of a rollout or learner step holds, from the model's shape (docs/gpu.md, Memory).

Every figure follows what the code does, per token or per scored position:

- **Saved activations of one block** (`block_saved`): what autograd keeps for the backward pass,
  tensor by tensor: the two RMSNorm inputs (fp32: RMSNorm upcasts) and their rsqrt; the inputs of
  the LoRA branches (fp32 on CPU, where q/k/v share one saved input; under CUDA autocast each branch
  saves its own bf16 cast, since PEFT first casts to its fp32 weight dtype); with LoRA dropout, the
  dropout mask (input dtype on CPU, bool on CUDA) and the dropped input; the LoRA A outputs;
  attention's q, k, v, output (the output doubles as attn_out's input) and its fp32 logsumexp;
  silu's input and the two factors of the gated product. `tests/core/planning` checks this against
  the tensors autograd actually saves, tensor for tensor, on small models.
- **Activation checkpointing** keeps only each block's input and recomputes one block at a time.
- **Transient** working memory (what is freed again within an op or a block) is counted with the
  coefficients below, measured on CPU at full LLaDA-8B width (`bench/memory.py`, docs/gpu.md).
- **Logits**: only positions a step needs reach the LM head (`logits_at`): the scored tokens in
  the learner, the current block in the sampler.
"""

from __future__ import annotations

from dataclasses import dataclass

from dllmrl_core.planning.shape import ModelShape

GiB = 1024**3

# Transient working memory, in bytes per token per MLP unit (× tokens × mlp): the largest set of
# block temporaries alive at once beyond the saved activations (MLP intermediates and their LoRA
# casts in a forward, their gradients in a backward). Measured by bench/memory.py (docs/gpu.md).
BLOCK_TRANSIENT = {"cpu": 16.0, "cuda": 14.0}
# Full-vocabulary temporaries per scored position, in bytes per vocabulary entry (× positions × V):
# learner: the fp32 log-probs kept for backward plus the logits, their fp32 copy and the gradient
# chain of the softmax; sampler: the block's fp32 logits, the float64 Gumbel noise of the block and
# one chunk of float64 scores / confidences / top-k-top-p work (sampling/draw.py), measured by
# bench/step_memory.py (`step`, one block of 32 positions, V = 126464: at most 29.3 with top-k/top-p,
# 20 otherwise; less per entry once a block spans several row chunks).
HEAD_TRANSIENT = {"learner": 16.0, "scoring": 12.0, "sampler": 30.0}


@dataclass(frozen=True)
class Precision:
    """How a device computes: base weights and activations in bf16 under CUDA autocast, fp32 on CPU.
    LoRA weights stay fp32 either way (PEFT), as do their gradients and AdamW moments."""

    device: str  # "cuda" | "cpu"

    @property
    def weight_bytes(self) -> int:
        return 2 if self.device == "cuda" else 4

    @property
    def act_bytes(self) -> int:
        return 2 if self.device == "cuda" else 4

    @property
    def autocast(self) -> bool:
        return self.device == "cuda"


@dataclass(frozen=True)
class Lora:
    """The adapter: rank, dropout, the roles it adapts (ModelShape.lora_roles), its parameter count."""

    r: int
    dropout: float
    roles: tuple[str, ...]
    params: int = 0


def block_saved(shape: ModelShape, lora: Lora, prec: Precision, *, first: bool = False) -> float:
    """Bytes autograd keeps per token for one block's backward (see the module docstring).
    first: the block right after the embedding, whose (frozen) input needs no gradient, so its
    first RMSNorm keeps nothing."""
    d, m, a, f = shape.d_model, shape.mlp, prec.act_bytes, 4
    dims = shape.linears()
    norms = (1 if first else 2) * (f * d + f)                       # RMSNorm inputs (upcast) + rsqrt
    attention = 4 * d * a + f * shape.n_heads                       # q, k, v (kv repeated), output; lse
    mlp = 3 * m * a                                                 # silu input, both product factors
    lora_out = len(lora.roles) * lora.r * a                         # A outputs (inputs of B)
    return norms + attention + mlp + lora_out + lora_inputs(dims, lora, prec)


def lora_inputs(dims: dict[str, tuple[int, int]], lora: Lora, prec: Precision) -> float:
    """Bytes per token the LoRA branches keep of their inputs."""
    if lora.dropout > 0:  # each branch: its dropout mask and the dropped (then bf16-cast) input
        mask, kept = (1, 2) if prec.autocast else (4, 4)
        return sum((mask + kept) * dims[role][0] for role in lora.roles)
    if prec.autocast:  # each branch saves its own bf16 cast of the input
        return sum(2 * dims[role][0] for role in lora.roles)
    shared = {"q": "h", "k": "h", "v": "h", "out": None, "gate": "h2", "up": "h2", "down": "p"}  # out: attention's
    inputs = {shared[role]: dims[role][0] for role in lora.roles if shared[role] is not None}
    return 4 * sum(inputs.values())


def learner_activations(shape: ModelShape, lora: Lora, prec: Precision, tokens: int, checkpointing: bool) -> float:
    """Peak bytes of one forward/backward over `tokens` tokens, without the LM head."""
    block = block_saved(shape, lora, prec)
    transient = BLOCK_TRANSIENT[prec.device] * shape.mlp * tokens
    if checkpointing:  # every block's input, plus one block recomputed at a time
        return tokens * (shape.n_layers * shape.d_model * prec.act_bytes + block) + transient
    first = block_saved(shape, lora, prec, first=True)
    return tokens * (first + (shape.n_layers - 1) * block) + transient


def head_bytes(shape: ModelShape, positions: int, kind: str) -> float:
    """Full-vocabulary memory of `positions` scored positions (HEAD_TRANSIENT[kind] per entry)."""
    return HEAD_TRANSIENT[kind] * positions * shape.vocab


def inference_activations(shape: ModelShape, prec: Precision, tokens: int) -> float:
    """Peak bytes of a forward without gradient over `tokens` tokens (blocks free as they go):
    the residual stream and one block's working set."""
    return tokens * (2 * shape.d_model * prec.act_bytes + 4 * shape.d_model * 4
                     + BLOCK_TRANSIENT[prec.device] * shape.mlp)


def kv_cache(shape: ModelShape, prec: Precision, tokens: int) -> float:
    """Keys and values of every layer for `tokens` positions (Fast-dLLM prefix / dual cache)."""
    return 2 * shape.n_layers * tokens * shape.d_kv * prec.act_bytes
