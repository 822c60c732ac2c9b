"""Test fixture: a minimal stand-in for the `generation_utils.py` that Dream ships with its weights.

Written for dllmrl's tests (not Dream's file): `diffusion_generate` does what Dream's
`DreamGenerationMixin._sample` does for the algorithms maskgit_plus / topk_margin / entropy, step by
step and with the same torch calls, written as plainly as possible to serve as the reference of
dllmrl's Dream sampler (dllmrl_core/sampling/dream.py):
- prompt + max_new_tokens masks; padding as a pairwise [B, 1, T, T] mask with position ids that skip
  it (pads get 1), or the string "full" when nothing is padded;
- timesteps linspace(1, eps, steps + 1); each step: forward, logits shifted right by one, the logits
  hook, then `sample_tokens` at every masked position (logits / T, top-p then top-k truncation,
  softmax, a categorical draw or the argmax; confidence = p(x̂0), top-1 − top-2, or the negative
  entropy), ⌊n (1 − s/t)⌋ positions committed (all at the last step; n = masked count / B), the most
  confident (alg_temp 0) or drawn ∝ softmax(confidence / alg_temp).
Left out: alg "origin", Dream's fallback to the argmax when a categorical draw fails, and output
histories. `DreamGenerationConfig.validate(self, is_init=False)` keeps Dream's signature, which
transformers 5 calls with a keyword it does not take.
"""

import copy

import torch
import torch.nn.functional as F
from transformers import GenerationConfig, __version__


class DreamGenerationConfig(GenerationConfig):
    def __init__(self, **kwargs):
        self.temperature = kwargs.pop("temperature", 0.0)
        self.top_p = kwargs.pop("top_p", None)
        self.top_k = kwargs.pop("top_k", None)
        self.max_length = kwargs.pop("max_length", 20)
        self.max_new_tokens = kwargs.pop("max_new_tokens", None)
        self.eps = kwargs.pop("eps", 1e-3)
        self.steps = kwargs.pop("steps", 512)
        self.alg = kwargs.pop("alg", "origin")
        self.alg_temp = kwargs.pop("alg_temp", None)
        self.mask_token_id = kwargs.pop("mask_token_id", None)
        self.pad_token_id = kwargs.pop("pad_token_id", None)
        self.bos_token_id = kwargs.pop("bos_token_id", None)
        self.eos_token_id = kwargs.pop("eos_token_id", None)
        self._from_model_config = kwargs.pop("_from_model_config", False)
        self._commit_hash = kwargs.pop("_commit_hash", None)
        self.transformers_version = kwargs.pop("transformers_version", __version__)
        if not self._from_model_config:
            for key, value in kwargs.items():
                setattr(self, key, value)
        self.validate(is_init=True)

    def validate(self, is_init=False):
        pass


def nucleus(logits, top_p):
    """Keep the smallest most-likely prefix whose mass reaches top_p (finfo.min elsewhere)."""
    sorted_logits, order = torch.sort(logits, descending=True)
    over = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1) > top_p
    over[..., 1:] = over[..., :-1].clone()
    over[..., 0] = False
    drop = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, order, over)
    return logits.masked_fill(drop, torch.finfo(logits.dtype).min)


def keep_top_k(logits, top_k):
    kth = torch.topk(logits, min(top_k, logits.shape[-1]))[0][..., -1, None]
    return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)


def sample_tokens(logits, temperature, top_p, top_k, alg):
    if temperature > 0:
        logits = logits / temperature
    if top_p is not None and top_p < 1:
        logits = nucleus(logits, top_p)
    if top_k is not None:
        logits = keep_top_k(logits, top_k)
    probs = torch.softmax(logits, dim=-1)
    if temperature > 0:
        x0 = torch.distributions.Categorical(probs=probs).sample()
        confidence = torch.gather(probs, -1, x0.unsqueeze(-1)).squeeze(-1)
    else:
        confidence, x0 = probs.max(dim=-1)
    if alg == "topk_margin":
        ranked, _ = torch.sort(probs, dim=-1, descending=True)
        confidence = ranked[:, 0] - ranked[:, 1]
    elif alg == "entropy":
        confidence = torch.sum(probs * torch.log(probs + 1e-10), dim=-1)
    elif alg != "maskgit_plus":
        raise NotImplementedError(f"alg {alg!r} is not part of this fixture")
    return confidence, x0


class DreamGenerationMixin:
    @torch.no_grad()
    def diffusion_generate(self, inputs, generation_config=None, **kwargs):
        tokens_hook = kwargs.pop("generation_tokens_hook_func", lambda step, x, logits: x)
        logits_hook = kwargs.pop("generation_logits_hook_func", lambda step, x, logits: logits)
        attention_mask = kwargs.pop("attention_mask", None)
        if generation_config is None:
            generation_config = DreamGenerationConfig.from_model_config(self.config)
        config = copy.deepcopy(generation_config)
        config.update(**kwargs)
        if config.max_new_tokens is not None:
            config.max_length = inputs.shape[1] + config.max_new_tokens
        return self._sample(inputs, attention_mask, config, tokens_hook, logits_hook)

    def _sample(self, input_ids, attention_mask, config, tokens_hook, logits_hook):
        mask_id, steps, alg_temp = config.mask_token_id, config.steps, config.alg_temp
        x = F.pad(input_ids, (0, config.max_length - input_ids.shape[1]), value=mask_id)
        if attention_mask is not None and torch.any(attention_mask == 0):
            keep = F.pad(attention_mask, (0, config.max_length - attention_mask.shape[1]), value=1)
            position_ids = (keep.long().cumsum(-1) - 1).masked_fill(keep == 0, 1)
            attention_mask = torch.logical_and(keep[:, None, None, :], keep[:, None, :, None])
        else:
            position_ids, attention_mask = None, "full"
        timesteps = torch.linspace(1, config.eps, steps + 1, device=x.device)
        x = tokens_hook(None, x, None)
        for i in range(steps):
            mask_index = x == mask_id
            logits = self(x, attention_mask, position_ids).logits
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
            logits = logits_hook(i, x, logits)
            t, s = timesteps[i], timesteps[i + 1]
            confidence, x0 = sample_tokens(logits[mask_index], config.temperature, config.top_p, config.top_k,
                                           config.alg)
            num_masked = mask_index.sum() / mask_index.shape[0]
            k = int(num_masked * (1 - s / t)) if i < steps - 1 else int(num_masked)
            full_confidence = torch.full_like(x, -torch.inf, dtype=logits.dtype)
            full_confidence[mask_index] = confidence
            if k > 0:
                if alg_temp is None or alg_temp == 0:
                    chosen = torch.topk(full_confidence, k).indices
                else:
                    chosen = torch.multinomial(F.softmax(full_confidence / alg_temp, dim=-1), num_samples=k)
                proposal = torch.full_like(x, mask_id)
                proposal[mask_index] = x0
                rows = torch.arange(x.shape[0], device=x.device)[:, None].expand_as(chosen)
                x[rows, chosen] = proposal[rows, chosen]
            x = tokens_hook(i, x, logits)
        return x
