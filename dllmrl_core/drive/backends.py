"""Where the metrics go: the `logging` config section and one small writer per backend.

    logging:
      backends: [tensorboard, jsonl]     # any of tensorboard, jsonl, wandb, mlflow
      project: dllmrl                    # W&B project / MLflow experiment
      run_name: null                     # default: the name of checkpoint.dir
      mlflow_tracking_uri: null          # default: MLflow's own (MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)

jsonl writes `<checkpoint.dir>/metrics.jsonl` (one JSON object per line; the curve and
`dllmrl_core/drive/plots.py` read it), tensorboard event files under `<checkpoint.dir>/tb`. wandb
and mlflow are optional extras (`pip install -e '.[wandb]'`, `'.[mlflow]'`), imported only when
listed; a listed one that is not installed is a one-line config error naming the extra, before any
work. W&B honours its own environment (WANDB_MODE=offline, WANDB_API_KEY, ...) and writes its files
under `<checkpoint.dir>/wandb`. The mlflow extra is MLflow's client (mlflow-skinny): it logs to a
tracking server (http://...) or, with MLFLOW_ALLOW_FILE_STORE=true, to a `file:` store; MLflow's
default sqlite:///mlflow.db needs the full `mlflow` package. Both receive the resolved run config.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from pathlib import Path
from typing import Literal, Protocol

from pydantic import Field, field_validator

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.contract.jsontext import dumps

Backend = Literal["tensorboard", "jsonl", "wandb", "mlflow"]
EXTRAS = {"wandb": "wandb", "mlflow": "mlflow"}  # backend -> the module it imports (the extra has its name)


class LoggingConfig(ConfigModel):
    """Where the training metrics are written (one record per optimizer step, and each evaluation)."""

    backends: list[Backend] = Field(["tensorboard", "jsonl"], description="any of tensorboard, jsonl, wandb, "
                                                                         "mlflow (the last two are extras)")
    project: str = Field("dllmrl", description="W&B project and MLflow experiment name")
    run_name: str | None = Field(None, description="W&B / MLflow run name (default: the name of checkpoint.dir)")
    mlflow_tracking_uri: str | None = Field(None, description="MLflow tracking URI (default: MLflow's own, "
                                                              "MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")

    @field_validator("backends")
    @classmethod
    def _installed(cls, value: list[str]) -> list[str]:
        for name in value:
            if name in EXTRAS and importlib.util.find_spec(EXTRAS[name]) is None:
                raise ValueError(f"{name} is not installed: pip install -e '.[{name}]'")
        if len(set(value)) != len(value):
            raise ValueError(f"{value}: a backend is listed twice")
        return value


class Writer(Protocol):
    def log(self, step: int, values: dict[str, float]) -> None: ...

    def rewind(self, step: int) -> None: ...

    def close(self) -> None: ...


class Jsonl:
    def __init__(self, directory: Path):
        self.path = directory / "metrics.jsonl"
        self.file = self.path.open("a")

    def log(self, step: int, values: dict[str, float]) -> None:
        self.file.write(dumps({"step": step, **values}) + "\n")
        self.file.flush()

    def rewind(self, step: int) -> None:
        """Keep the records up to `step` (atomically: a crash mid-rewind leaves the old file)."""
        self.file.close()
        keep = [line for line in self.path.read_text().splitlines(keepends=True) if line_step(line) <= step]
        tmp = self.path.with_name(".metrics.jsonl.tmp")
        tmp.write_text("".join(keep))
        os.replace(tmp, self.path)
        self.file = self.path.open("a")

    def close(self) -> None:
        self.file.close()


class TensorBoard:
    def __init__(self, directory: Path):
        self.dir = directory / "tb"
        self.writer = self._open(None)

    def _open(self, purge_step: int | None):
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.dir), purge_step=purge_step)

    def log(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def rewind(self, step: int) -> None:
        """TensorBoard hides the events after `step` (purge_step)."""
        self.writer.close()
        self.writer = self._open(step + 1)

    def close(self) -> None:
        self.writer.close()


class WandB:
    def __init__(self, cfg: LoggingConfig, directory: Path, run_config: dict):
        import wandb

        self.run = wandb.init(project=cfg.project, name=cfg.run_name or directory.name, dir=str(directory),
                              config=run_config, reinit="create_new")

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def rewind(self, step: int) -> None:
        """W&B keeps a run's steps increasing: after a restart in the same process it ignores (with a
        warning) the steps logged again; a resumed process opens a new W&B run."""

    def close(self) -> None:
        self.run.finish()


class MLflow:
    def __init__(self, cfg: LoggingConfig, directory: Path, run_config: dict):
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(cfg.mlflow_tracking_uri)
        found = self.client.get_experiment_by_name(cfg.project)
        experiment = found.experiment_id if found else self.client.create_experiment(cfg.project)
        self.run_id = self.client.create_run(experiment, run_name=cfg.run_name or directory.name).info.run_id
        self.client.log_dict(self.run_id, run_config, "config.json")

    def log(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])

    def rewind(self, step: int) -> None:
        """MLflow keeps every value of a step (by timestamp); the steps logged again after a restart are
        the newer values of those steps."""

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def line_step(line: str) -> float:
    """The step of one metrics.jsonl line; inf for a line cut short by a crash (it is dropped)."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


def open_backends(cfg: LoggingConfig, directory: Path, run_config: dict) -> list[Writer]:
    """One writer per listed backend, in the listed order."""
    made = {"jsonl": lambda: Jsonl(directory), "tensorboard": lambda: TensorBoard(directory),
            "wandb": lambda: WandB(cfg, directory, run_config), "mlflow": lambda: MLflow(cfg, directory, run_config)}
    return [made[name]() for name in cfg.backends]
