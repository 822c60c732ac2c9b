"""Reward actors' helpers (the verifier processes are VerifierPool's: tests/core/verify/test_pool.py)."""

from services.reward_actors import gather


def test_gather_undoes_the_interleaved_split():
    items = list(range(7))
    parts = [items[k::3] for k in range(3)]
    assert gather(parts) == items
