"""A trained run on disk: where its adapter and its config are, and the policy they make.

A run directory (`checkpoint.dir`) holds `config.yaml` (the resolved config), `final/adapter`
and `step-…/adapter` checkpoints (dllmrl_core/training/checkpoint.py). Every command that takes a
trained run (`dllmrl eval`, `dllmrl export`, `dllmrl generate --adapter`) finds its parts here:

    RUN                 a run directory: final/adapter, else the latest checkpoint's adapter
    RUN/step-…          a checkpoint: its adapter/
    RUN/final/adapter   a PEFT adapter directory itself

The run's root is the nearest of the named directory and its parents that holds config.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dllmrl_core.drive.config import load_run_config
from dllmrl_core.models.loading import read_config_json
from dllmrl_core.training import checkpoint
from dllmrl_core.training.policy import load_policy

CONFIG_FILE = "config.yaml"
ADAPTER_FILE = "adapter_config.json"


@dataclass(frozen=True)
class TrainedRun:
    """root: the run (or checkpoint) directory that holds config.yaml, None if the adapter has none;
    adapter: the PEFT adapter directory."""

    root: Path | None
    adapter: Path

    @property
    def config(self) -> Path:
        if self.root is None:
            raise FileNotFoundError(f"{self.adapter}: no {CONFIG_FILE} beside this adapter or above it (the "
                                    "run's resolved config names the base model)")
        return self.root / CONFIG_FILE


def find_adapter(path: str | Path) -> Path:
    """The PEFT adapter directory that `path` names (see the module docstring)."""
    root = Path(path)
    for candidate in (root, root / "adapter", root / "final" / "adapter"):
        if (candidate / ADAPTER_FILE).is_file():
            return candidate
    latest = checkpoint.resolve(root, checkpoint.LATEST)
    if latest is not None and (latest / "adapter" / ADAPTER_FILE).is_file():
        return latest / "adapter"
    raise FileNotFoundError(f"{path}: no PEFT adapter there ({ADAPTER_FILE} in it, adapter/, final/adapter/ "
                            "or the latest checkpoint)")


def locate(path: str | Path) -> TrainedRun:
    """The adapter `path` names and the run it belongs to."""
    adapter = find_adapter(path)
    for directory in (Path(path), adapter, adapter.parent, adapter.parent.parent):
        if (directory / CONFIG_FILE).is_file():
            return TrainedRun(directory, adapter)
    return TrainedRun(None, adapter)


def load_trained(path: str | Path, device: str | None = None):
    """(policy = the base named in the run's config + its adapter, tokenizer, the run's RunConfig).
    A quantized base loads in full precision here: merging into 4-bit weights would round them."""
    run = locate(path)
    cfg = load_run_config(run.config)
    read_config_json(cfg.model.path)  # a base that is gone is a one-line error naming it
    model = cfg.model.model_copy(update={"adapter": str(run.adapter), "quantize": None})
    policy, tokenizer = load_policy(model, device=device)
    return policy, tokenizer, cfg
