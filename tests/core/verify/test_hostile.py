"""Issue 16: hostile completions (bench/hostile_corpus.py) through every verification path. None may
reach the time limit, crash a verifier or run code (a canary file an injection would create).

The default run takes every 50th of the 10,000 generated completions per task (200 per task) through
a VerifierPool under each reward set and, in turn, each evaluation protocol (a few go through a Ray
reward actor in tests/services/test_rewards.py); the full 10,000 per task is the `slow` test and
`python -m bench.hostile`."""

import pytest

from bench.hostile import TASKS, run_task
from bench.hostile_corpus import corpus

N, SAMPLE_EVERY = 10_000, 50


def test_the_corpus_is_seeded_and_large():
    first = corpus("math500", N, seed=0)
    assert len(first) == N and first == corpus("math500", N, seed=0) and first != corpus("math500", N, seed=1)
    assert any("__import__" in t for t in first) and any("9!!!!!" in t or "!!!!!" in t for t in first)


def check(tmp_path, every: int):
    canary = tmp_path / "canary"
    for task in TASKS:
        texts = corpus(task, N, seed=0, canary=str(canary))[::every]
        report = run_task(task, texts, timeout_s=5.0, processes=2)
        assert report.items == 3 * len(texts)
        assert (task, report.timeouts, report.crashes) == (task, 0, 0)
    assert not canary.exists()


def test_a_sample_of_the_corpus_on_every_task_and_path(tmp_path):
    check(tmp_path, SAMPLE_EVERY)


@pytest.mark.slow
def test_the_whole_corpus_on_every_task_and_path(tmp_path):
    check(tmp_path, 1)
