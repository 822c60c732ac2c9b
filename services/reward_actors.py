"""RewardActor: verifies completions in worker processes, each item under a time limit.

The processes and the limit are `VerifierPool`'s (`dllmrl_core/verify/pool.py`), the same as the
single-process loop's: a timed-out item scores 0 and is counted, a dead verifier process scores 0
and is counted as a crash, and either process is replaced. Verification is idempotent, so the actor
restarts and retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ray

from dllmrl_core.contract.verdict import Verdict
from dllmrl_core.faults import fault_point
from dllmrl_core.verify.pool import VerifierPool

if TYPE_CHECKING:
    from dllmrl_core.tasks import TaskConfig
    from dllmrl_core.verify.config import VerifyConfig
    from services.settings import RewardConfig
    from services.telemetry import StatusLink


@ray.remote(max_restarts=-1, max_task_retries=-1)
class RewardActor:
    def __init__(self, task: TaskConfig, processes: int, timeout_s: float, status: StatusLink | None = None,
                 index: int = 0):
        from services.telemetry import Beacon  # here, not at the top: verifier processes need none of it

        self.pool = VerifierPool(task, timeout_s, processes)
        self.beacon = Beacon(status, "reward", index)

    def verify(self, items_ref: list, part: int, parts: int) -> list[Verdict]:
        """Verdicts for items[part::parts] of the list behind items_ref[0]."""
        with self.beacon.working("verify"):
            items = ray.get(items_ref[0])[part::parts]
            fault_point("reward.verify")
            return self.pool.map(items)


def start_reward_actors(settings: RewardConfig, task: TaskConfig, verify: VerifyConfig, name: str = "",
                        status: StatusLink | None = None) -> list:
    """settings.num_actors reward actors for `task` (its reward set and evaluation protocol), each item
    under verify.timeout_s, reporting to `status`; named `<name>reward-<i>` when `name` is given."""
    return [RewardActor.options(name=f"{name}reward-{i}" if name else None, num_cpus=settings.num_cpus_per_actor,
                                resources=settings.resources)
            .remote(task, settings.processes_per_actor, verify.timeout_s, status, i)
            for i in range(settings.num_actors)]


def verify_items(actors: list, items_ref) -> list:
    """Fan one list of items out over the actors; returns refs whose results `gather` interleaves."""
    return [a.verify.remote([items_ref], k, len(actors)) for k, a in enumerate(actors)]


def gather(parts: list[list[Verdict]]) -> list[Verdict]:
    """Undo the items[k::K] split."""
    out: list[Verdict] = [None] * sum(len(p) for p in parts)  # type: ignore[list-item]
    for k, part in enumerate(parts):
        out[k::len(parts)] = part
    return out
