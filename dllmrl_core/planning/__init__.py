"""Memory planning: what every actor of a run needs at its peak, before anything starts.

    shape.py     the model's dimensions (config.json, or known hub names) and its adapter's size
    estimate.py  bytes per part of a step: saved activations, logits, KV cache, transients
    plan.py      the per-actor plan, its verdict, `auto` micro-batches and the launch check
"""

from dllmrl_core.planning.plan import (ActorPlan, PlanConfig, Topology, auto_micro_rows, check, micro_rows, plan_run,
                                       render)

__all__ = ["ActorPlan", "PlanConfig", "Topology", "auto_micro_rows", "check", "micro_rows", "plan_run", "render"]
