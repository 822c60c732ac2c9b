"""A batch of rows to score, and the one function that scores it with a model."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F

from dllmrl_core.models.predictor import MaskPredictor


@dataclass
class LogpQuery:
    """Model input and the completion tokens whose log-probabilities are wanted.

    input_ids:      [N, P+L] int64  prompt (possibly masked) followed by a (partially) masked completion
    attention_mask: [N, P+L] bool   True = real token
    target_ids:     [N, L] int64    token to score at each completion position
    target_mask:    [N, L] bool     True = score this position
    temperature:    logits are divided by it before the softmax (AGRPO's exact behaviour policy)
    support_ids:    [N, L, W] int64 | None  restrict the softmax to these ids (-1 = padding)
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    target_ids: torch.Tensor
    target_mask: torch.Tensor
    temperature: float = 1.0
    support_ids: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.input_ids.shape != self.attention_mask.shape or self.target_ids.shape != self.target_mask.shape:
            raise ValueError(f"LogpQuery: input {tuple(self.input_ids.shape)} / mask {tuple(self.attention_mask.shape)}"
                             f" / targets {tuple(self.target_ids.shape)} / target mask {tuple(self.target_mask.shape)}")

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    @property
    def prompt_len(self) -> int:
        return self.input_ids.shape[1] - self.target_ids.shape[1]

    def rows(self, idx: torch.Tensor | slice) -> LogpQuery:
        """The same query restricted to some rows (micro-batches, data-parallel shards)."""
        return replace(self, **{f.name: getattr(self, f.name)[idx] for f in fields(self)
                                if isinstance(getattr(self, f.name), torch.Tensor)})


@dataclass
class TokenLogp:
    """logp [N, L] fp32 and entropy [N, L] fp32 of the scored distribution; 0 where not targeted."""

    logp: torch.Tensor
    entropy: torch.Tensor


def token_logp(model: MaskPredictor, query: LogpQuery) -> TokenLogp:
    """log p(target_j | input) at every targeted position, in fp32, differentiable if grad is on.

    Only the targeted positions reach the LM head and the (large-vocabulary) softmax: the model is
    asked for logits at those positions alone (`logits_at`), n rows instead of N·(P+L).
    """
    where = query.target_mask.nonzero(as_tuple=True)
    at = F.pad(query.target_mask, (query.prompt_len, 0))                            # [N, P+L] bool
    picked = model(query.input_ids, query.attention_mask, logits_at=at).float()     # [n, V]
    if query.temperature != 1.0:
        picked = picked / query.temperature
    picked[:, model.mask_id] = float("-inf")  # the sampler never draws [MASK]; score the same distribution
    if query.support_ids is not None:
        support = query.support_ids[where]                                         # [n, W]
        allowed = torch.zeros_like(picked, dtype=torch.bool)
        allowed.scatter_(1, support.clamp(min=0), support >= 0)
        picked = picked.masked_fill(~allowed, float("-inf"))
    logp_all = F.log_softmax(picked, dim=-1)
    chosen = logp_all.gather(1, query.target_ids[where][:, None]).squeeze(1)
    logp = torch.zeros(query.target_mask.shape, dtype=torch.float32, device=picked.device)
    ent = torch.zeros_like(logp)
    return TokenLogp(logp=logp.index_put(where, chosen), entropy=ent.index_put(where, entropy(logp_all)))


@torch.no_grad()
def entropy(logp: torch.Tensor, rows_per_chunk: int = 256) -> torch.Tensor:
    """[n] entropy of each row of log-probs [n, V], without gradient, a few rows at a time (two
    [n, V] temporaries at LLaDA's 126k vocabulary would cost more than the log-probs themselves)."""
    return torch.cat([torch.special.entr(part.exp()).sum(-1) for part in logp.split(rows_per_chunk)]) \
        if len(logp) else logp.new_zeros(0)
