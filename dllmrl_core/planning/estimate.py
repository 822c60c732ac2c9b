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

# Working memory beyond the saved activations, measured on CPU at full LLaDA-8B width (bench/memory.py,
# docs/gpu.md: 6 rows × 456 tokens, 1 and 2 blocks) and applied on GPUs too (the bf16 halves are not
# credited: conservative there):
# - one block's backward, in bytes per token per MLP unit (× tokens × mlp): the gradients of the
#   MLP's intermediates and of the LoRA inputs while the block is differentiated (measured 8.3, and
#   5.9-6.9 on top of a recomputed block's activations);
BLOCK_BACKWARD = 8.5
# - one block's no-grad forward, in bytes per token per MLP unit: the MLP's intermediates alive at once;
BLOCK_FORWARD = 16.0
# - the LM head and log-softmax, in bytes per (position × vocabulary entry) of one chunk: the learner's
#   chunked head (`likelihood/head.py`: fp32 logits, log-softmax, the softmax gradient; measured
#   11.7-13.1) and the no-grad scoring of old/reference log-probs (log-softmax, exp, entropy);
HEAD = {"learner": 13.0, "scoring": 12.0}
# - the sampler's vocabulary work on the block (sampling/draw.py), in bytes per entry: its logits, the
#   float64 Gumbel noise of every position, then per row chunk either the Gumbel-max scores (with the
#   top-k/top-p support) or, once the noise is freed, the float64 softmax of the confidences.
#   bench/step_memory.py: 20 (sampled) and 29.3 (top-k/top-p) bytes per entry for one block of 32
#   positions, 16.1 and 20.8 for 256 positions (V = 126464, CPU); this model gives 20, 29.3, 16.1, 20.9.
NOISE, GUMBEL, GUMBEL_TOP, CONFIDENCE = 8.0, 8.0, 17.3, 16.0


@dataclass(frozen=True)
class Precision:
    """How a device computes (MaskPredictor.autocast): on CUDA, base weights and activations in bf16
    under autocast, dropout masks as bool; on CPU everything fp32, dropout noise in the input's dtype.
    LoRA weights stay fp32 either way (PEFT), as do their gradients and AdamW moments."""

    device: str              # "cuda" | "cpu"
    weight_bytes: int = 4
    act_bytes: int = 4
    autocast: bool = False
    mask_bytes: int = 4      # one dropout mask element

    @classmethod
    def of(cls, device: str) -> Precision:
        if device == "cuda":
            return cls("cuda", weight_bytes=2, act_bytes=2, autocast=True, mask_bytes=1)
        return cls("cpu")


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
        kept = prec.act_bytes
        return sum((prec.mask_bytes + kept) * dims[role][0] for role in lora.roles)
    if prec.autocast:  # each branch saves its own bf16 cast of the input
        return sum(2 * dims[role][0] for role in lora.roles)
    shared = {"q": "h", "k": "h", "v": "h", "out": None, "gate": "h2", "up": "h2", "down": "p"}  # out: attention's
    inputs = {shared[role]: dims[role][0] for role in lora.roles if shared[role] is not None}
    return 4 * sum(inputs.values())


def saved_activations(shape: ModelShape, lora: Lora, prec: Precision, tokens: int, checkpointing: bool) -> float:
    """What the forward of `tokens` tokens leaves for the backward: every block's saved tensors, or
    with checkpointing only every block's input."""
    if checkpointing:
        return tokens * shape.n_layers * shape.d_model * prec.act_bytes
    first = block_saved(shape, lora, prec, first=True)
    return tokens * (first + (shape.n_layers - 1) * block_saved(shape, lora, prec))


def block_backward(shape: ModelShape, lora: Lora, prec: Precision, tokens: int, checkpointing: bool) -> float:
    """Working memory while one block is differentiated (plus its recomputed activations when
    checkpointing)."""
    recomputed = tokens * block_saved(shape, lora, prec) if checkpointing else 0.0
    return recomputed + BLOCK_BACKWARD * tokens * shape.mlp


def head_bytes(shape: ModelShape, positions: int, kind: str) -> float:
    """The learner's head over `positions` scored positions, a chunk at a time (`likelihood/head.py`):
    HEAD[kind] bytes per entry of one chunk."""
    from dllmrl_core.likelihood.head import chunk_size

    return HEAD[kind] * min(positions, chunk_size(shape.vocab)) * shape.vocab


def sampler_vocab(shape: ModelShape, prec: Precision, positions: int, sampled: bool, truncated: bool) -> float:
    """The sampler's logits and vocabulary work for `positions` block positions (see NOISE ...)."""
    from dllmrl_core.sampling.draw import ROW_CHUNK

    chunk = min(positions, max(1, ROW_CHUNK // shape.vocab))
    gumbel = NOISE * positions + (GUMBEL_TOP if truncated else GUMBEL) * chunk if sampled else 0.0
    return (prec.act_bytes * positions + max(gumbel, CONFIDENCE * chunk)) * shape.vocab


def inference_activations(shape: ModelShape, prec: Precision, tokens: int) -> float:
    """Peak bytes of a forward without gradient over `tokens` tokens (blocks free as they go):
    the residual stream and one block's working set."""
    return tokens * (2 * shape.d_model * prec.act_bytes + 4 * shape.d_model * 4 + BLOCK_FORWARD * shape.mlp)


def kv_cache(shape: ModelShape, prec: Precision, tokens: int) -> float:
    """Keys and values of every layer for `tokens` positions (Fast-dLLM prefix / dual cache)."""
    return 2 * shape.n_layers * tokens * shape.d_kv * prec.act_bytes
