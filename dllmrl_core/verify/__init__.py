"""Verify: a rollout's completions to verification items, items to verdicts, verdicts back to a batch.

    batch.py     decode, completions_to_verify (RolloutBatch -> VerifyItems), scored_batch
                 (RolloutBatch + Verdicts -> ScoredBatch)
    verifier.py  verify (one item -> Verdict, through the task's reward and scorer) and serve (the
                 loop of a verifier process); free of torch

The tasks (`dllmrl_core/tasks/`) own the rewards and scorers; this package only moves data to and
from them. Kept free of heavy imports.
"""
