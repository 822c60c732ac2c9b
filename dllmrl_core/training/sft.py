"""Masked-diffusion SFT, LLaDA's objective (LLaDA paper Eq. 5 / its GUIDELINES.md).

For a (prompt, answer) pair, draw t ~ U(ε, 1], mask every answer token independently with
probability t (the prompt stays clean), and train the mask predictor on the masked positions:

    L = −(1/B) Σ_b (1/|answer_b|) Σ_{j masked} log p_θ(x_j | x_t) / t_b

Answers are right-padded with EOS up to a fixed length and the padding is trained as part of the
answer (as LLaDA does), so the model learns to fill unused completion slots with EOS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import Field

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.models.predictor import MaskPredictor

EPS = 1e-3  # smallest masking ratio (LLaDA)


class SFTConfig(ConfigModel):
    """Masked-diffusion SFT on the task's reference completions (LLaDA's SFT objective)."""

    steps: int = Field(1000, ge=1, description="optimizer steps")
    batch_size: int = Field(64, ge=1, description="pairs per step")
    lr: float = Field(1e-3, gt=0, le=1, description="AdamW learning rate (d1 SFT: 1e-5 with LoRA on LLaDA-8B)")
    weight_decay: float = Field(0.0, ge=0, le=1, description="AdamW weight decay")
    warmup_steps: int = Field(50, ge=0, description="linear warmup steps")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient-norm clip")
    answer_length: int = Field(32, ge=1, description="answers are EOS-padded (or cut) to this many tokens")
    seed: int = Field(0, description="seed for data order and masking")
    out: str = Field("runs/tiny-sft", description="where the fine-tuned (merged) checkpoint is written")


@dataclass
class SFTBatch:
    """prompt_ids [B, P] left-padded, prompt_mask [B, P] bool, answer_ids [B, A] EOS-padded."""

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    answer_ids: torch.Tensor

    def to(self, device) -> SFTBatch:
        return SFTBatch(self.prompt_ids.to(device), self.prompt_mask.to(device), self.answer_ids.to(device))


def encode_pairs(tokenizer, prompts: list[str], answers: list[str], answer_length: int, eos_id: int) -> SFTBatch:
    """Prompts are already rendered (chat template applied); answers are plain completion text."""
    enc = tokenizer(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
    rows = [tokenizer(a, add_special_tokens=False)["input_ids"][:answer_length] for a in answers]
    answer = torch.full((len(rows), answer_length), eos_id, dtype=torch.long)
    for i, ids in enumerate(rows):
        answer[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return SFTBatch(enc["input_ids"], enc["attention_mask"].bool(), answer)


def sft_loss(model: MaskPredictor, batch: SFTBatch, generator: torch.Generator) -> torch.Tensor:
    """LLaDA's SFT loss on one batch (masks drawn from `generator`, a CPU generator)."""
    B, A = batch.answer_ids.shape
    t = (1 - EPS) * torch.rand(B, 1, generator=generator) + EPS                       # [B, 1]
    masked = (torch.rand(B, A, generator=generator) < t).to(batch.answer_ids.device)  # [B, A]
    t = t.to(batch.answer_ids.device)
    noisy = batch.answer_ids.masked_fill(masked, model.mask_id)
    ids = torch.cat([batch.prompt_ids, noisy], dim=1)
    attn = torch.cat([batch.prompt_mask, torch.ones_like(masked)], dim=1)
    at = F.pad(masked, (batch.prompt_ids.shape[1], 0))                                 # [B, P+A]
    logits = model(ids, attn, logits_at=at)                                             # [n, V], masked only
    ce = F.cross_entropy(logits.float(), batch.answer_ids[masked], reduction="none")
    weight = (1.0 / t.expand(B, A))[masked] / A
    return (ce * weight).sum() / B


def warmup_lr(step: int, cfg: SFTConfig) -> float:
    """Linear warmup, then cosine decay to 10% of the peak."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def train_sft(model: MaskPredictor, data: SFTBatch, cfg: SFTConfig, on_step=None) -> list[float]:
    """Full-batch-sampled SFT over `data` (all pairs, pre-encoded); returns the loss per step.

    Deterministic under cfg.seed: the data order and every mask come from seeded CPU generators.
    `on_step(step, loss)` is called after each optimizer step (progress display).
    """
    params = [p for p in model.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    order_gen = torch.Generator().manual_seed(cfg.seed)
    mask_gen = torch.Generator().manual_seed(cfg.seed + 1)
    device = model.device
    n = data.answer_ids.shape[0]
    losses, order, cursor = [], torch.randperm(n, generator=order_gen), 0
    model.model.train()
    for step in range(cfg.steps):
        if cursor + cfg.batch_size > n:
            order, cursor = torch.randperm(n, generator=order_gen), 0
        idx = order[cursor: cursor + cfg.batch_size]
        cursor += cfg.batch_size
        batch = SFTBatch(data.prompt_ids[idx], data.prompt_mask[idx], data.answer_ids[idx]).to(device)
        for group in opt.param_groups:
            group["lr"] = warmup_lr(step, cfg)
        loss = sft_loss(model, batch, mask_gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, losses[-1])
    model.model.eval()
    return losses
