"""Numbers in the config: finite, in range, and a boolean is never a number (issue 16, item 7).

Every bad value is a one-line ValueError naming the key, raised while the file is read."""

import pytest

from dllmrl_core.drive.config import load_run_config
from dllmrl_core.training.warm_start import SFTRunConfig
from services.settings import load_system_config

TINY = "configs/tiny_countdown.yaml"

REFUSED = [
    ("optim.lr=.inf", "optim.lr: Input should be a finite number"),
    ("optim.lr=.nan", "optim.lr: Input should be a finite number"),
    ("optim.lr=1e9", "optim.lr: Input should be less than or equal to 1"),
    ("optim.betas=[2,-1]", "optim.betas.0: Input should be less than 1"),
    ("optim.betas=[0.9,-1]", "optim.betas.1: Input should be greater than or equal to 0"),
    ("optim.betas=[true,0.9]", "optim.betas: a boolean"),
    ("optim.weight_decay=5", "optim.weight_decay: Input should be less than or equal to 1"),
    ("sampler.temperature=.inf", "sampler.temperature: Input should be a finite number"),
    ("sampler.temperature=1e308", "sampler.temperature: Input should be less than or equal to 10"),
    ("sampler.cfg_scale=1e308", "sampler.cfg_scale: Input should be less than or equal to 10"),
    ("train.steps=true", "train.steps: a boolean"),
    ("train.group_size=false", "train.group_size: a boolean"),
    ("model.lora.alpha=-.inf", "model.lora.alpha: Input should be a finite number"),
    ("verify.timeout_s=.inf", "verify.timeout_s: Input should be a finite number"),
    ("verify.timeout_s=1e300", "verify.timeout_s: Input should be less than or equal to 604800"),
    ("learner.timeout_s=1e12", "learner.timeout_s: Input should be less than or equal to 604800"),
    ("rollout.resources={GPU: true}", "rollout.resources: a boolean"),
    ("eval.before=1", "eval.before: expected true or false, not 1"),
    ("model.device=banana", "model.device: device 'banana' is not a torch device"),
]


@pytest.mark.parametrize(("override", "message"), REFUSED, ids=[o for o, _ in REFUSED])
def test_bad_numbers_are_one_line_errors_naming_the_key(override, message):
    with pytest.raises(ValueError) as err:
        load_system_config(TINY, [override])
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_the_single_process_loop_reads_the_same_rules():
    with pytest.raises(ValueError, match="^train.steps: a boolean"):
        load_run_config(TINY, ["train.steps=true"])
    with pytest.raises(ValueError, match="^sft.lr: Input should be a finite number"):
        SFTRunConfig.parse({"model": {"path": "x"}, "task": {"name": "countdown"}, "sft": {"lr": float("inf")}})


def test_booleans_stay_booleans_and_numbers_stay_numbers():
    cfg = load_system_config(TINY, ["model.native=true", "optim.lr=1e-4", "optim.betas=[0, 0.999]", "train.steps=3",
                                    "verify.timeout_s=2", "sampler.temperature=10"])
    assert cfg.model.native is True and cfg.optim.lr == 1e-4 and cfg.optim.betas == (0.0, 0.999)
    assert cfg.train.steps == 3 and cfg.verify.timeout_s == 2.0 and cfg.sampler.temperature == 10.0
