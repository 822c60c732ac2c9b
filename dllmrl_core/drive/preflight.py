"""Checks of a run's inputs that need the file system, made before any work (and before Ray starts):
each failure is one line naming the config key.

- `model.path` must hold a checkpoint unless a `warm_start` section builds it (a hub name is left
  to the loader);
- a training source that is a file must yield examples: the error counts the skipped rows and says
  why the first one was skipped (generated and hub sources are read where the run reads them).
"""

from __future__ import annotations

from pathlib import Path

from dllmrl_core.drive.config import RunConfig
from dllmrl_core.models.loading import is_local
from dllmrl_core.tasks.config import GENERATE_PREFIX, training_split
from dllmrl_core.tasks.sources import HUB_PREFIX


def check_model_path(cfg: RunConfig) -> None:
    """FileNotFoundError when model.path names a local directory that is absent and nothing builds it."""
    path = cfg.model.path
    if cfg.warm_start is None and is_local(path) and not Path(path).expanduser().exists():
        raise FileNotFoundError(f"model.path: no checkpoint at {path} (and no warm_start section builds one)")


def check_training_data(cfg: RunConfig) -> None:
    """ValueError when a training file yields no examples (see `training_split`)."""
    if not cfg.task.source("train").startswith((GENERATE_PREFIX, HUB_PREFIX)):
        training_split(cfg.task)


def preflight(cfg: RunConfig) -> None:
    check_model_path(cfg)
    check_training_data(cfg)
