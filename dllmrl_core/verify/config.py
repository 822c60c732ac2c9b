"""The `verify` section: the per-item time limit that every verification path enforces."""

from __future__ import annotations

from pydantic import Field

from dllmrl_core.contract.configbase import ConfigModel, Seconds


class VerifyConfig(ConfigModel):
    """Each completion is verified in a worker process under `timeout_s` (`verify/pool.py`): in the
    single-process loop, its evaluation, `dllmrl score` and the Ray reward actors alike."""

    timeout_s: Seconds = Field(5.0, description="per-item time limit of every verification path; a timed-out "
                                                    "item scores 0 and is counted; its process is replaced")
    processes: int = Field(1, ge=1, description="verifier processes of the single-process loop (the reward actors "
                                                "have reward.processes_per_actor)")
