"""Drive: the run config, what every driver does besides dispatching work, and the single-process loop.

    backends.py the `logging` section (LoggingConfig) and a writer per backend: jsonl, TensorBoard,
                W&B, MLflow
    config.py   RunConfig: the core sections of a run config, loading and overrides
    driver.py   the driver core both drivers call: config, metrics and the step line, checkpoints,
                held-out evaluation, the final adapter and the summary
    heldout.py  held-out evaluation with d1's protocol: EvalConfig, samplers, statistics, files
    loop.py     the single-process driver (`python -m dllmrl_core.loop`)
    metrics.py  StepRecord (the one typed record per step, where metric names are made: PhaseTimes,
                RewardStats, the learner's StepMetrics) and MetricsLog (the configured backends)
    plots.py    the reward / accuracy curve
    preflight.py  the paths a config names, checked before any work; resuming on other data refused
    runtime.py  process settings every dllmrl process applies (threads, malloc)
    trained.py  a trained run on disk: its adapter, its config, the policy they make (eval, export,
                generate --adapter)

The Ray driver is `services/controller.py`.
"""
