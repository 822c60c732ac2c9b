"""dllmrl core: a plain PyTorch library for RL on masked diffusion language models.

The packages, in the order data flows through them (docs/architecture.md):

    contract/    the data every boundary uses: RolloutBatch, ScoredBatch, VerifyItem, Verdict, ConfigModel
    models/      MaskPredictor (LLaDA, Dream, the tiny default) and the special token ids
    tasks/       examples, prompts, rewards and evaluation scorers of each task
    sampling/    the samplers: LLaDA's loop, Fast-dLLM's cached loop, Dream's loop, branching
    rollout/     sample: the prompt stream and a method's rollouts of a batch
    verify/      verify: completions to verification items, verdicts back to a ScoredBatch
    likelihood/  learn: log-probabilities of completions under the policy
    objectives/  learn: one file per method (advantages, loss), one registry
    training/    learn: the Learner, its optimizer step, LoRA, checkpoints, SFT
    drive/       drive: the run config, the driver core, held-out evaluation, the single-process loop
    planning/    the memory plan of a run's actors
    commands/    the core's `dllmrl` subcommands (cli.py); loop.py keeps `python -m dllmrl_core.loop`
    faults.py    the fault points the fault-tolerance tests kill processes at (a no-op otherwise)

This package never imports ray, fastapi or uvicorn, and has no import cycles
(tests/core/test_layering.py enforces both). Keep this file free of heavy imports.
"""

__version__ = "0.1.0"
