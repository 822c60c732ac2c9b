"""The Ray layer: thin actors that hold a dllmrl_core object and call it.

    launch.py      entry point: validate the config, connect to Ray, start the Controller, wait
    controller.py  Controller actor: the loop, admission (staleness), evaluation, checkpoints
    rollout.py     RolloutWorker actors: base model + adapter, the sampler and branching (run_job)
    jobs.py        chunks of a batch to the actors that sample (RolloutPool), completions to rewards
    rewards.py     RewardActor pool: verification in worker processes with a time limit
    learner.py     LearnerGroup: learner actors in a placement group, DDP; under placement colocated
                   the same actors also sample
    weights.py     WeightStore actor: versioned adapters through the object store
    status.py      StatusActor: FastAPI /health /status /metrics
"""
