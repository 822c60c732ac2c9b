"""Fan rollout jobs out to workers and their completions out to reward actors.

Shared by the Controller (training and periodic evaluation) and the evaluation service.
"""

from __future__ import annotations

import ray
import torch

from dllmrl_core.evaluation import eval_prompts
from dllmrl_core.sampling import SamplerConfig
from services.rewards import gather, score_items
from services.rollout import RolloutJob


def submit(workers: list, jobs: list[RolloutJob]) -> list[tuple[RolloutJob, ray.ObjectRef, ray.ObjectRef]]:
    """Chunk c goes to worker c mod R; returns (job, batch ref, verification items ref) per chunk."""
    out = []
    for job in jobs:
        batch_ref, items_ref = workers[job.chunk % len(workers)].generate.remote(job)
        out.append((job, batch_ref, items_ref))
    return out


def verdicts(rewards: list, chunks: list) -> tuple[list, list]:
    """Score every chunk on the reward actors; (main verdicts, branch verdicts) in batch order."""
    parts = [score_items(rewards, items_ref) for _, _, items_ref in chunks]
    main, branch = [], []
    for (job, _, _), refs in zip(chunks, parts):
        scored = gather(ray.get(refs))
        main += scored[: len(job.examples)]
        branch += scored[len(job.examples):]
    return main, branch


def eval_jobs(tokenizer, task, examples: list, style: str, sampler: SamplerConfig, version: int,
              parts: int) -> list[RolloutJob]:
    """Evaluation prompts (with the task's prefill) split into `parts` greedy, branch-free jobs."""
    ids, mask = eval_prompts(tokenizer, task, examples, style)
    rows = torch.arange(len(examples))
    return [RolloutJob(-1, c, version, ids[r], mask[r], rows[r], [examples[i] for i in r.tolist()], sampler,
                       branching=False)
            for c, r in enumerate(rows.tensor_split(parts)) if len(r)]
