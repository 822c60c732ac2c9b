"""The contract: the data that crosses every boundary of the pipeline, and the config base class.

    types.py       RolloutBatch (completions + their denoising trajectory), BranchSet, StepLogits,
                   ScoredBatch (a RolloutBatch with its verdicts): sampler -> reward -> learner
    verdict.py     VerifyItem (one completion to verify) and Verdict (what the verifier says)
    configbase.py  ConfigModel: frozen, typed, unknown keys rejected; every config section derives from it
    jsontext.py    dumps: the JSON a run prints or writes, a non-finite float written as null
"""
