"""Verify: a rollout's completions to verification items, items to verdicts, verdicts back to a batch.

    batch.py     decode, completions_to_verify (RolloutBatch -> VerifyItems), scored_batch
                 (RolloutBatch + Verdicts -> ScoredBatch)
    verifier.py  verify (one item -> Verdict, through the task's reward and scorer) and serve (the
                 loop of a verifier process); free of torch
    pool.py      VerifierPool: items verified in worker processes, each under a hard time limit (every
                 verification path uses it)
    config.py    VerifyConfig, the `verify` section (the time limit)

The tasks (`dllmrl_core/tasks/`) own the rewards and scorers; this package only moves data to and
from them. Kept free of heavy imports.
"""
