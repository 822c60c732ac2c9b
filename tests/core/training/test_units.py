"""Terms whose rows belong together (PolicyTerm.unit): micro-batches and data-parallel shards hold whole
units, so a loss that needs all masked copies of a completion at once sees them; ratio-free terms
(PolicyTerm.ratio False) get no old log-probs scored."""

import pytest
import torch

from dllmrl_core.likelihood import LogpQuery
from dllmrl_core.objectives.common import PolicyTerm
from dllmrl_core.training.learner import shard
from dllmrl_core.training.step import chunks, freeze_old_and_ref
from tests.core.objectives.helpers import lora_policy


def term(rows: int, unit: int = 1, ratio: bool = True) -> PolicyTerm:
    q = LogpQuery(input_ids=torch.arange(rows)[:, None].repeat(1, 3), attention_mask=torch.ones(rows, 3).bool(),
                  target_ids=torch.zeros(rows, 2, dtype=torch.long), target_mask=torch.ones(rows, 2).bool())
    return PolicyTerm(kind="policy", query=q, advantages=torch.arange(rows).float(), normalizer=1.0, unit=unit,
                      ratio=ratio)


def test_chunks_hold_whole_units():
    assert chunks(7, 3) == [slice(0, 3), slice(3, 6), slice(6, 7)]          # unit 1: as before
    assert chunks(12, 5, unit=4) == [slice(0, 4), slice(4, 8), slice(8, 12)]  # 5 rows -> one unit of 4
    assert chunks(12, 2, unit=4) == [slice(0, 4), slice(4, 8), slice(8, 12)]  # at least one unit
    assert chunks(12, 8, unit=4) == [slice(0, 8), slice(8, 12)]
    assert chunks(12, None, unit=4) == [slice(0, 12)] and chunks(0, None, unit=4) == []


def test_shards_hold_whole_units_and_an_idle_rank_gets_one_with_weight_zero():
    t = term(12, unit=4)                                     # three units: rows 0-3, 4-7, 8-11
    assert shard(t, 0, 2).advantages.tolist() == [0, 1, 2, 3, 8, 9, 10, 11]
    assert shard(t, 1, 2).advantages.tolist() == [4, 5, 6, 7]
    idle = shard(t, 3, 4)
    assert idle.advantages.tolist() == [0, 1, 2, 3] and idle.weights.tolist() == [0.0] * 4 and idle.unit == 4
    assert shard(term(3), 1, 2).advantages.tolist() == [1.0]  # unit 1: rows rank, rank + world, ...
    with pytest.raises(ValueError, match="whole units of 4"):
        term(6, unit=4)


def test_a_ratio_free_term_gets_no_old_log_probs(tiny_dir):
    free, ratio = term(2, ratio=False), term(2)
    freeze_old_and_ref(lora_policy(tiny_dir), [[free, ratio]], needs_ref=False)
    assert free.old_logp is None and ratio.old_logp is not None and ratio.old_logp.shape == (2, 2)
