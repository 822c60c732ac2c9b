"""The learner's support restriction (AGRPO's behaviour distribution) keeps exactly the recorded ids."""

import torch

from dllmrl_core.likelihood.head import restrict


def test_padded_support_keeps_token_zero_and_only_the_support():
    """Padding (-1) once scattered `False` onto token 0, dropping it from every padded support that held
    it: its log-prob became -inf or the others' wrong."""
    logits = torch.arange(8.0).repeat(2, 1)
    support = torch.tensor([[5, 0, 3, -1], [7, 2, 1, 4]])
    out = restrict(logits, 1.0, mask_id=6, support=support)
    kept = out.isfinite()
    assert kept[0].nonzero().flatten().tolist() == [0, 3, 5]
    assert kept[1].nonzero().flatten().tolist() == [1, 2, 4, 7]
