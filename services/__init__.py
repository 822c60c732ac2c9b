"""The Ray layer: thin actors that hold a dllmrl_core object and call it, and the entry points that
start them. Every module of the package:

    launch.py          `python -m services.launch CFG.yaml`: validate the config and its memory plan,
                       warm start, connect to Ray, start the Controller, wait for the summary
    settings.py        the system's own config sections (placement, rollout, reward, learner, status)
                       and SystemConfig, the whole run config file
    controller.py      Controller actor: the distributed driver (admission under the staleness
                       bound, dispatch, learner restarts, status); its records go through the core's
                       DriverCore, as the single-process loop's do
    jobs.py            RolloutPool and the dispatch helpers: chunks of a batch to the actors that
                       sample, their completions to the reward actors, evaluation on actors
    rollout_worker.py  RolloutWorker actors: base model + adapter, the sampler and branching (run_job)
    reward_actors.py   RewardActor: verification in worker processes under a per-item time limit
    learner_group.py   LearnerGroup: learner actors (one Learner each) in a placement group, DDP;
                       under placement colocated the same actors also sample
    weight_store.py    WeightStore actor: versioned adapters through the object store
    status.py          StatusActor: FastAPI /, /curves, /status, /health, /metrics over a Board
    board.py           Board: what the status server knows (reports, beats, curves) and its health
                       verdict and Prometheus metrics
    telemetry.py       what actors send the status server (Beat, Progress, CurvePoint), the Beacon
                       each actor holds, windowed rates
    evaluate.py        `python -m services.evaluate CFG.yaml --checkpoint DIR` (`dllmrl eval`): evaluate
                       a checkpoint on rollout workers, optionally sweeping lengths and step counts;
                       results go into the checkpoint's run (DIR/eval) unless --out says otherwise
    cli.py             the `dllmrl` command: the core's subcommands, `train`, `eval` and `plan`
    train_command.py   `dllmrl train CFG.yaml`: services.launch's main under the `dllmrl` command
    plan_command.py    `dllmrl plan`: the memory plan of every actor of a run

Architecture, data at each boundary and what runs where: docs/architecture.md.
"""
