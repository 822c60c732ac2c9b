"""A batch of rows to score, and the one function that scores it with a model."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F

from dllmrl_core.likelihood.head import head_logp, restrict
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

    Only the targeted positions reach the LM head: the native model returns their final hidden
    states and `head_logp` turns them into log-probs a chunk at a time, so the [n, V] logits never
    exist at once (forward or backward). Other models (and `gather_logits=False`, the reference path)
    compute the logits at those positions and take the same log-softmax.
    """
    where = query.target_mask.nonzero(as_tuple=True)
    at = F.pad(query.target_mask, (query.prompt_len, 0))                            # [N, P+L] bool
    support = None if query.support_ids is None else query.support_ids[where]       # [n, W]
    targets = query.target_ids[where]                                               # [n]
    if model.gathers:
        weight, bias = model.head_params
        with model.autocast():
            chosen, ent = head_logp(model.hidden(query.input_ids, query.attention_mask, at), weight, bias, targets,
                                    query.temperature, model.mask_id, support)
    else:
        logits = model(query.input_ids, query.attention_mask, logits_at=at)         # [n, V]
        logp_all = F.log_softmax(restrict(logits, query.temperature, model.mask_id, support), dim=-1)
        chosen, ent = logp_all.gather(1, targets[:, None]).squeeze(1), entropy(logp_all)
    logp = torch.zeros(query.target_mask.shape, dtype=torch.float32, device=chosen.device)
    return TokenLogp(logp=logp.index_put(where, chosen), entropy=torch.zeros_like(logp).index_put(where, ent))


@torch.no_grad()
def entropy(logp: torch.Tensor, rows_per_chunk: int = 256) -> torch.Tensor:
    """[n] entropy of each row of log-probs [n, V], without gradient, a few rows at a time."""
    if not len(logp):
        return logp.new_zeros(0)
    return torch.cat([torch.special.entr(part.exp()).sum(-1) for part in logp.split(rows_per_chunk)])
