"""Checkpoints that let a run continue exactly: written to a temp dir, renamed, then `latest`.

A checkpoint directory `step-00000012/` holds
    adapter/          the PEFT adapter (loadable with PeftModel.from_pretrained)
    trainer.pt        optimizer and LR-scheduler state (identical on every DDP rank)
    rng-rank{r}.pt    RNG states of learner rank r (torch, CUDA, numpy, python, estimator generator)
    state.json        step, weight version, data position and anything else the driver needs
    config.yaml       the resolved run config
and `<root>/latest` names the newest complete one. Several processes may write parts of one
checkpoint into the temp dir (shared storage); `finalize` makes it visible atomically.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from dllmrl_core.contract.jsontext import dumps
from dllmrl_core.training.lora import load_adapter_state

LATEST = "latest"


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def temp_dir(root: str | Path, step: int) -> Path:
    path = Path(root) / f".tmp-{step_dir_name(step)}"
    if path.exists():
        shutil.rmtree(path)  # a crash mid-write leaves a partial temp dir behind
    path.mkdir(parents=True)
    return path


def capture_rng(generators: dict[str, torch.Generator]) -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                   "has_gauss": int(has_gauss), "cached": float(cached)}  # plain types: loads with weights_only
    state = {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate(),
             "generators": {name: g.get_state() for name, g in generators.items()}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, g in generators.items():
        g.set_state(state["generators"][name])


def save_learner(path: Path, rank: int, model, optimizer, scheduler, generators: dict[str, torch.Generator]) -> None:
    """One learner rank's part; rank 0 also writes the adapter and optimizer state."""
    if rank == 0:
        model.save_pretrained(path / "adapter")
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, path / "trainer.pt")
    torch.save(capture_rng(generators), path / f"rng-rank{rank}.pt")


def load_learner(path: Path, rank: int, model, optimizer, scheduler, generators: dict[str, torch.Generator]) -> None:
    """Restore one learner rank (every rank loads the same adapter and optimizer state)."""
    from safetensors.torch import load_file

    load_adapter_state(model, load_file(path / "adapter" / "adapter_model.safetensors"))
    trainer = load_tensors(path / "trainer.pt")
    optimizer.load_state_dict(trainer["optimizer"])
    scheduler.load_state_dict(trainer["scheduler"])
    rng = path / f"rng-rank{rank}.pt"
    restore_rng(load_tensors(rng if rng.exists() else path / "rng-rank0.pt"), generators)


def load_tensors(path: Path) -> dict:
    """A torch.save'd state of tensors and plain Python values, loaded without running pickled code."""
    import pickle

    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path}: holds objects other than tensors and plain values; refusing to unpickle "
                         f"them (a checkpoint written before RNG states were stored as plain values?)") from e


def finalize(root: str | Path, tmp: Path, step: int, state: dict, config_yaml: str, keep: int) -> Path:
    """Write state + config, rename the temp dir into place, point `latest` at it, prune old ones."""
    root = Path(root)
    (tmp / "state.json").write_text(dumps(state, indent=1))
    (tmp / "config.yaml").write_text(config_yaml)
    final = root / step_dir_name(step)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(final.name)
    os.replace(pointer, root / LATEST)
    for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old)
    return final


def resolve(root: str | Path, resume: str | None) -> Path | None:
    """The checkpoint to resume from: None, 'latest' under root (None if there is none yet), or a path."""
    if resume is None:
        return None
    if resume != LATEST:
        path = Path(resume)
        if not (path / "state.json").is_file():
            raise FileNotFoundError(f"checkpoint.resume: no checkpoint at {path} (state.json missing)")
        return path
    pointer = Path(root) / LATEST
    return Path(root) / pointer.read_text().strip() if pointer.is_file() else None


def read_state(path: Path) -> dict:
    return json.loads((path / "state.json").read_text())
