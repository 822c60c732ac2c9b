"""A plain LLaDA sampling loop written from LLaDA's description (arXiv 2502.09992, its `generate.py`).

Deliberately slow and literal: full forward every step, per-row top-k, global torch RNG with
noise drawn over the whole sequence in float64. The sampler under test must match it.
One addition to LLaDA's loop: the [MASK] token's own logit is −inf (the project's sampler never
draws it; a trained LLaDA gives it no mass, a random test model would).
"""

import torch
import torch.nn.functional as F


def num_transfer_tokens(block_mask, steps):
    """LLaDA's get_num_transfer_tokens: m tokens over k steps, the first m mod k steps one extra."""
    m = block_mask.sum(dim=1, keepdim=True)
    out = torch.zeros(m.size(0), steps, dtype=torch.int64) + m // steps
    for i in range(m.size(0)):
        out[i, : int(m[i] % steps)] += 1
    return out


@torch.no_grad()
def llada_generate(model, prompt, attention_mask=None, *, steps, gen_length, block_length, temperature=0.0,
                   cfg_scale=0.0, remasking="low_confidence"):
    mask_id = model.mask_id
    B, P = prompt.shape
    x = torch.full((B, P + gen_length), mask_id, dtype=torch.long)
    x[:, :P] = prompt
    if attention_mask is not None:
        attention_mask = torch.cat([attention_mask, torch.ones(B, gen_length, dtype=attention_mask.dtype)], dim=1)
    prompt_index = x != mask_id
    num_blocks = gen_length // block_length
    steps_per_block = steps // num_blocks
    for nb in range(num_blocks):
        end = P + (nb + 1) * block_length
        quota = num_transfer_tokens(x[:, P + nb * block_length: end] == mask_id, steps_per_block)
        for i in range(steps_per_block):
            mask_index = x == mask_id
            if cfg_scale > 0:
                un_x = x.clone()
                un_x[prompt_index] = mask_id
                am = None if attention_mask is None else torch.cat([attention_mask, attention_mask])
                logits, un_logits = model(torch.cat([x, un_x]), am).chunk(2)
                logits = un_logits + (cfg_scale + 1) * (logits - un_logits)
            else:
                logits = model(x, attention_mask)
            logits[..., mask_id] = -float("inf")
            if temperature == 0:
                noisy = logits
            else:
                l64 = logits.to(torch.float64)
                noise = torch.rand_like(l64, dtype=torch.float64)
                noisy = l64.exp() / (-torch.log(noise)) ** temperature
            x0 = noisy.argmax(-1)
            if remasking == "low_confidence":
                p = F.softmax(logits.to(torch.float64), dim=-1)
                x0_p = torch.gather(p, -1, x0[..., None]).squeeze(-1)
            else:
                x0_p = torch.rand((x0.shape[0], x0.shape[1]))
            x0_p[:, end:] = -float("inf")
            x0 = torch.where(mask_index, x0, x)
            conf = torch.where(mask_index, x0_p, torch.tensor(-float("inf"), dtype=x0_p.dtype))
            transfer = torch.zeros_like(x0, dtype=torch.bool)
            for j in range(B):
                _, sel = torch.topk(conf[j], k=int(quota[j, i]))
                transfer[j, sel] = True
            x[transfer] = x0[transfer]
    return x
