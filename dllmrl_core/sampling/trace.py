"""What the sampler records while it denoises (the trajectory half of a RolloutBatch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from dllmrl_core.contract.types import StepLogits
from dllmrl_core.sampling.draw import row_chunks, score_rows, support_mask, tempered_support, truncates

if TYPE_CHECKING:
    from dllmrl_core.sampling.config import SamplerConfig


class Trace:
    """Per-position records (reveal step, log-probs, entropy) and the optional per-step records
    the RL methods ask for: top-k/top-p supports (AGRPO), greedy fills (EGSPO), logits kept at
    one chosen step per row (DiSPO)."""

    def __init__(self, B: int, L: int, S: int, device: torch.device, *, keep_logits_steps: torch.Tensor | None,
                 greedy_fills: bool, support: bool):
        self.reveal_step = torch.full((B, L), -1, dtype=torch.long, device=device)
        self.behaviour_logp = torch.zeros(B, L, device=device)
        self.model_logp = torch.zeros(B, L, device=device)
        self.token_entropy = torch.zeros(B, L, device=device)
        self.greedy = torch.zeros(B, S, L, dtype=torch.long, device=device) if greedy_fills else None
        self.support = torch.full((B, L, 0), -1, dtype=torch.long, device=device) if support else None
        self.keep_steps = None
        if keep_logits_steps is not None:
            self.keep_steps = torch.as_tensor(keep_logits_steps, device=device).long()
            if self.keep_steps.shape != (B,) or bool((self.keep_steps >= S).any()):
                raise ValueError(f"keep_logits_steps must be [B]={B} steps in [-1, {S}), got "
                                 f"{self.keep_steps.tolist()}")
            self.kept_masked = torch.zeros(B, L, dtype=torch.bool, device=device)
            self.kept_logits: dict[int, torch.Tensor] = {}
        self.keep_at = set() if self.keep_steps is None else set(self.keep_steps.tolist())

    def wants_logits(self, s: int) -> bool:
        """Whether step s needs the logits of the whole completion (`observe`): every step when greedy
        fills are recorded, else only the steps at which some row keeps its logits."""
        return self.greedy is not None or s in self.keep_at

    def observe(self, s: int, completion: torch.Tensor, masked: torch.Tensor, logits: torch.Tensor) -> None:
        """Before step s commits: completion [B, L], masked [B, L], logits [B, L, V] of that state."""
        if self.greedy is not None:  # one-step greedy fill x̂^(s) (EGSPO, arXiv 2603.12554)
            self.greedy[:, s] = torch.where(masked, logits.argmax(-1), completion)
        if self.keep_steps is not None:
            for b in (self.keep_steps == s).nonzero().flatten().tolist():
                self.kept_masked[b] = masked[b]
                self.kept_logits[b] = logits[b][masked[b]].float().clone()

    def commit(self, s: int, offset: int, commit: torch.Tensor, x0: torch.Tensor, block_logits: torch.Tensor,
               cfg: SamplerConfig) -> None:
        """Record the tokens x0 [B, W] committed (commit [B, W]) at step s in the block starting at
        completion position `offset`; block_logits [B, W, V], drawn from with `cfg`. Only the committed
        rows are scored (a few per row and step, not the whole block), in chunks of rows
        (`draw.row_chunks`)."""
        window = slice(offset, offset + commit.shape[1])
        self.reveal_step[:, window].masked_fill_(commit, s)
        b, w = commit.nonzero(as_tuple=True)                            # committed positions, row-major
        parts = row_chunks(len(b), block_logits.shape[-1])
        if not parts:
            return
        scored = [score_rows(block_logits[b[p], w[p]], x0[b[p], w[p]], cfg) for p in parts]
        for i, buf in enumerate((self.behaviour_logp, self.model_logp, self.token_entropy)):
            buf[:, window][commit] = torch.cat([part[i] for part in scored])
        if self.support is not None and truncates(cfg):
            self._record_support(window, commit, block_logits, b, w, parts, cfg)

    def commit_scored(self, s: int, commit: torch.Tensor, scores: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                      support: torch.Tensor | None) -> None:
        """Record positions `commit` [B, L] (whole completion) committed at step s by a sampler that scores
        its own draws (sampling/dream.py): scores = (behaviour log-prob, model log-prob, entropy) [k] and
        support [k, W] ids (-1 padded) of the committed positions in row-major order."""
        self.reveal_step.masked_fill_(commit, s)
        for buf, values in zip((self.behaviour_logp, self.model_logp, self.token_entropy), scores):
            buf[commit] = values.to(buf.dtype)
        if self.support is None or support is None:
            return
        width = max(self.support.shape[-1], support.shape[-1])
        self.support = F.pad(self.support, (0, width - self.support.shape[-1]), value=-1)
        self.support[commit] = F.pad(support, (0, width - support.shape[-1]), value=-1)

    def _record_support(self, window: slice, commit: torch.Tensor, block_logits: torch.Tensor, b: torch.Tensor,
                         w: torch.Tensor, parts: list[slice], cfg: SamplerConfig) -> None:
        """The support ids of the committed positions (b, w), most likely first, -1 padded to the widest
        support so far: sizes first, then the ids chunk by chunk."""
        sizes = torch.cat([support_mask(block_logits[b[p], w[p]], cfg).sum(-1) for p in parts])     # [k]
        width = int(sizes.max())
        if width > self.support.shape[-1]:
            self.support = F.pad(self.support, (0, width - self.support.shape[-1]), value=-1)
        W, V = self.support.shape[-1], block_logits.shape[-1]
        ids = []
        for p in parts:
            tempered, _ = tempered_support(block_logits[b[p], w[p]], cfg)
            top = tempered.topk(min(W, V), dim=-1).indices                                       # the support first
            top = top.masked_fill(torch.arange(top.shape[-1], device=top.device) >= sizes[p, None], -1)
            ids.append(F.pad(top, (0, W - top.shape[-1]), value=-1))
        self.support[:, window][commit] = torch.cat(ids)

    def fields(self) -> dict:
        step_logits = None
        if self.keep_steps is not None:
            rows = [self.kept_logits[b] for b in sorted(self.kept_logits)]
            V = rows[0].shape[-1] if rows else 0
            step_logits = StepLogits(step=self.keep_steps, masked=self.kept_masked,
                                     logits=torch.cat(rows) if rows else torch.zeros(0, V))
        return dict(reveal_step=self.reveal_step, behaviour_logp=self.behaviour_logp, model_logp=self.model_logp,
                    token_entropy=self.token_entropy, greedy_fills=self.greedy, support_ids=self.support,
                    step_logits=step_logits)
