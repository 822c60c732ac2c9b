"""Checkpoints that let a run continue exactly: written to a temp dir, renamed, then `latest`.

A checkpoint directory `step-00000012/` holds
    adapter/          the PEFT adapter (loadable with PeftModel.from_pretrained)
    trainer.pt        optimizer and LR-scheduler state (identical on every DDP rank)
    rng-rank{r}.pt    RNG states of learner rank r (torch, CUDA, numpy, python, estimator generator)
    state.json        step, weight version, data position and anything else the driver needs
    config.yaml       the resolved run config
    published/        (Ray, max_staleness 1) adapters of older versions that in-flight batches sample with
    manifest.json     size and sha256 of every file above, written last
and `<root>/latest` names the newest complete one. Several processes may write parts of one
checkpoint into the temp dir (shared storage); `finalize` makes it visible atomically.

Resuming verifies a checkpoint against its manifest. `latest` resumes from the newest intact
`step-*` directory and names each newer one it skips (truncated file, empty state.json, a
`latest` that names a deleted directory); a checkpoint named by path must be intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from dllmrl_core.contract.jsontext import dumps
from dllmrl_core.faults import fault_point
from dllmrl_core.training.lora import load_adapter_state

LATEST = "latest"
MANIFEST = "manifest.json"
PUBLISHED = "published"


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
        fault_point("checkpoint.write")  # the adapter written, the optimizer state not yet
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


def save_published(path: Path, version: int, state: dict[str, torch.Tensor]) -> None:
    """An adapter version rollouts still sample with after a resume (`published/<version>.safetensors`)."""
    from safetensors.torch import save_file

    (path / PUBLISHED).mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, path / PUBLISHED / f"{version}.safetensors")


def read_published(path: Path) -> dict[int, dict[str, torch.Tensor]]:
    """The versions `save_published` wrote into checkpoint `path`, by version."""
    from safetensors.torch import load_file

    return {int(f.stem): load_file(f) for f in sorted((path / PUBLISHED).glob("*.safetensors"))}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(path: Path) -> None:
    """Size and sha256 of every file of checkpoint `path`: the last file a checkpoint gets."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {str(p.relative_to(path)): {"size": p.stat().st_size, "sha256": sha256(p)} for p in files}
    (path / MANIFEST).write_text(json.dumps({"files": entries}, indent=1))


def damage(path: Path) -> str | None:
    """Why checkpoint `path` cannot be resumed from (one line), or None when it matches its manifest."""
    if not path.is_dir():
        return "the directory is missing"
    try:
        entries = json.loads((path / MANIFEST).read_text())["files"]
    except FileNotFoundError:
        return f"no {MANIFEST} (its write never finished)"
    except (ValueError, KeyError, TypeError):
        return f"{MANIFEST} is unreadable"
    for name, entry in entries.items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != entry["size"]:
            return f"{name} has {file.stat().st_size} bytes, the manifest says {entry['size']}"
        if sha256(file) != entry["sha256"]:
            return f"{name} does not match its sha256"
    return None


def finalize(root: str | Path, tmp: Path, step: int, state: dict, config_yaml: str, keep: int) -> Path:
    """Write state + config and the manifest, rename the temp dir into place, point `latest` at it,
    prune old ones."""
    root = Path(root)
    (tmp / "state.json").write_text(dumps(state, indent=1))
    (tmp / "config.yaml").write_text(config_yaml)
    write_manifest(tmp)
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
    """The checkpoint to resume from: None (a fresh start), 'latest' = the newest intact one under
    root (None if there is none yet; newer damaged ones are skipped, each named on stderr), or the
    directory of an intact checkpoint. One-line errors: a path that is no checkpoint directory, a
    damaged named checkpoint, checkpoints under root none of which is intact."""
    if resume is None:
        return None
    if resume != LATEST:
        path = Path(resume)
        if not path.is_dir():
            raise FileNotFoundError(f"checkpoint.resume: {resume!r} is neither 'latest' nor a checkpoint directory")
        if (why := damage(path)) is not None:
            raise ValueError(f"checkpoint.resume: {path} cannot be resumed from: {why}")
        return path
    root = Path(root)
    pointer = root / LATEST
    named = root / pointer.read_text().strip() if pointer.is_file() else None
    if named is not None and not named.is_dir():
        print(f"checkpoint: {pointer} names {named.name}, which is missing; looking for an older one",
              file=sys.stderr, flush=True)
    skipped = []
    for path in sorted((p for p in root.glob("step-*") if p.is_dir()), reverse=True):
        if (why := damage(path)) is None:
            return path
        skipped.append(path.name)
        print(f"checkpoint: skipping {path}: {why}", file=sys.stderr, flush=True)
    if skipped or named is not None:
        raise ValueError(f"checkpoint.resume: no intact checkpoint under {root} "
                         f"(damaged: {', '.join(skipped) or 'none'}; latest names {named.name if named else '-'})")
    return None


def read_state(path: Path) -> dict:
    return json.loads((path / "state.json").read_text())
