"""Checks of what a run reads from disk, made before any work starts (and, under Ray, before Ray).

The config's own validation (RunConfig) checks values and how they fit together; `preflight`
checks the paths they name, so a missing model, data file or checkpoint is a one-line error
naming the field, not a traceback from inside an actor minutes later:

    model.path         a local model directory (unless warm_start builds it); hub names are left to the loader
    model.adapter      a directory, when given
    task.*_source      an existing file, for file sources (test_source only when the run evaluates);
                       a training file must also yield examples: the error counts the skipped rows
                       and says why the first one was skipped (generated and hub sources are read
                       where the run reads them)
    checkpoint.resume  'latest' or a checkpoint directory; the checkpoint it resolves to is intact
                       (training/checkpoint.py) and was trained on the same data as this run

Resuming on other data is refused: the checkpoint's data position (epoch, cursor) indexes the
training examples of the run that wrote it, so continuing it over another example list would
silently mix both. `data_change` names the settings that differ.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dllmrl_core.drive.config import RunConfig
from dllmrl_core.models.loading import check_checkpoint_dir, is_local
from dllmrl_core.tasks.config import GENERATE_PREFIX, training_split
from dllmrl_core.tasks.sources import HUB_PREFIX
from dllmrl_core.training import checkpoint

# task settings that do not change the training examples (the data position stays valid)
NOT_DATA = {"reward_set", "prompt_style", "eval_protocol", "test_subsample"}


def preflight(cfg: RunConfig) -> None:
    """Raise FileNotFoundError / ValueError (one line, naming the field) for the first path that
    would fail the run later; reads no model and no data."""
    if cfg.warm_start is None and is_local(cfg.model.path):
        try:
            check_checkpoint_dir(cfg.model.path)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"model.path: {err}") from None
    if cfg.model.adapter is not None and not Path(cfg.model.adapter).is_dir():
        raise FileNotFoundError(f"model.adapter: no adapter directory at {cfg.model.adapter}")
    for split in ("train", "test") if cfg.eval.active else ("train",):
        source = cfg.task.source(split)
        if not source.startswith((GENERATE_PREFIX, HUB_PREFIX)) and not Path(source).is_file():
            raise FileNotFoundError(f"task.{split}_source: no such data file: {source}")
    if not cfg.task.source("train").startswith((GENERATE_PREFIX, HUB_PREFIX)):
        training_split(cfg.task)  # a file whose every row is skipped: one line with the count
    found = checkpoint.resolve(cfg.checkpoint.dir, cfg.checkpoint.resume)
    if found is not None and (change := data_change(found, cfg)):
        raise ValueError(refusal(found, change))


def data_settings(config: dict) -> dict[str, object]:
    """The settings that decide the training examples and their order, flattened: task.* (less
    NOT_DATA) and train.seed."""
    flat = {"train.seed": config.get("train", {}).get("seed")}
    for key, value in config.get("task", {}).items():
        if key in NOT_DATA:
            continue
        for sub, v in (value.items() if isinstance(value, dict) else [(None, value)]):
            flat[f"task.{key}" + (f".{sub}" if sub else "")] = v
    return flat


def data_change(found: Path, cfg: RunConfig) -> str:
    """'' when checkpoint `found` was written by a run with this run's data settings, else what
    differs ('task.train_source: generate:2000 -> generate:3000; ...')."""
    saved = data_settings(yaml.safe_load((found / "config.yaml").read_text()) or {})
    now = data_settings(cfg.model_dump(mode="json"))
    return "; ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in sorted(saved.keys() | now.keys())
                     if saved.get(k) != now.get(k))


def refusal(found: Path, change: str) -> str:
    return (f"checkpoint.resume: {found} was trained on other data ({change}); its data position would "
            f"continue over different examples. Resume with its task settings, or start a new run in "
            f"another checkpoint.dir")
