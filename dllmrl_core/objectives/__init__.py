"""The RL objectives, one file each, in one plain registry.

Every objective module provides:
    Config                                   its knobs (a ConfigModel; defaults = the paper recipe)
    rollout_options(cfg, steps, B, gen)      what the sampler must record (RolloutOptions)
    branch(model, rollout, cfg, sampler, gen) -> BranchSet | None   rollout-time branching
    num_iterations(cfg)                      optimizer steps per generated batch (μ)
    needs_ref(cfg)                           whether reference log-probs (adapters off) are needed
    prepare(scored, cfg, special, gen)       -> [iteration][PolicyTerm]: advantages and queries
    loss(term, logp, entropy, cfg)           -> LossOutput, over tensors only
    memory_shape(cfg, sampler, rows)         -> MemoryShape: term sizes and rollout extras (memory plan)
"""

from dllmrl_core.objectives import agrpo, diffu_grpo, dispo, egspo, sapo

OBJECTIVES = {"diffu_grpo": diffu_grpo, "sapo": sapo, "agrpo": agrpo, "dispo": dispo, "egspo": egspo}


def get_objective(name: str):
    if name not in OBJECTIVES:
        raise ValueError(f"unknown algorithm {name!r}; valid names: {', '.join(sorted(OBJECTIVES))}")
    return OBJECTIVES[name]
