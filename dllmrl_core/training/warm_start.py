"""Supervised warm start on a task's reference solutions (`dllmrl sft cfg.yaml`).

Reads the task's training examples, renders each training prompt through the chat template,
pairs it with the task's reference completion, trains with LLaDA's SFT objective and writes a
merged checkpoint (+ tokenizer) that an RL run loads as its base model, as d1 does (RL starts
from the merged SFT model, not from the adapter).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from pydantic import Field

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.contract.jsontext import dumps
from dllmrl_core.models import load_mask_predictor, load_tokenizer
from dllmrl_core.models import tiny
from dllmrl_core.models.tiny import TinySpec, write_tiny
from dllmrl_core.tasks import ReferenceSolutions, TaskConfig, load_split, require
from dllmrl_core.training.lora import LoraSettings, add_lora
from dllmrl_core.training.sft import SFTConfig, encode_pairs, train_sft


class SFTModelConfig(ConfigModel):
    """The model SFT starts from."""

    path: str = Field("runs/tiny-base", description="checkpoint directory or hub name")
    device: str | None = Field(None, description="cpu / cuda (default: cuda if available)")
    native: bool | None = Field(None, description="native LLaDA module (None: for LLaDA checkpoints)")
    trust_remote_code: bool = Field(False, description="run the checkpoint's own code to load it (as model."
                                                       "trust_remote_code of a run config)")
    lora: LoraSettings | None = Field(None, description="train a LoRA adapter (merged at the end); None = all weights")


class SFTRunConfig(ConfigModel):
    """An SFT run (`dllmrl sft CFG.yaml`): model, task and sft sections."""

    model: SFTModelConfig = SFTModelConfig()
    task: TaskConfig
    sft: SFTConfig = SFTConfig()


def reference_pairs(task_cfg: TaskConfig, tokenizer) -> tuple[list[str], list[str], int]:
    """(rendered prompts, reference completions, rows skipped by the loader)."""
    task = require(task_cfg.task, ReferenceSolutions, "SFT")
    train = load_split(task_cfg, "train")
    style = task_cfg.prompt_style
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": task.train_prompt(ex, style)}],
                                             add_generation_prompt=True, tokenize=False) for ex in train.examples]
    answers = [task.reference_completion(ex, style) for ex in train.examples]
    return prompts, answers, train.skipped


def run_sft(cfg: SFTRunConfig, on_step=None) -> dict:
    """Train, save the merged model and its tokenizer to cfg.sft.out, return a summary."""
    start = time.perf_counter()
    trust = cfg.model.trust_remote_code
    tokenizer = load_tokenizer(cfg.model.path, trust_remote_code=trust)
    model = load_mask_predictor(cfg.model.path, device=cfg.model.device, native=cfg.model.native, tokenizer=tokenizer,
                                trust_remote_code=trust)
    if cfg.model.lora is not None:
        model.model = add_lora(model.model, cfg.model.lora)
    prompts, answers, skipped = reference_pairs(cfg.task, tokenizer)
    data = encode_pairs(tokenizer, prompts, answers, cfg.sft.answer_length, model.eos_id)
    losses = train_sft(model, data, cfg.sft, on_step=on_step)
    merged = model.model.merge_and_unload() if cfg.model.lora is not None else model.model
    out = Path(cfg.sft.out)
    if (out / FINGERPRINT).is_file():  # a warm start's directory stays marked as one, but its cache is void
        (out / FINGERPRINT).write_text(json.dumps({"fingerprint": None}))
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    tail = losses[-min(50, len(losses)):]
    summary = {"out": str(out), "pairs": len(prompts), "skipped_rows": skipped, "steps": len(losses),
               "loss_first": round(losses[0], 4), "loss_last50": round(sum(tail) / len(tail), 4),
               "wall_s": round(time.perf_counter() - start, 1)}
    (out / "sft_summary.json").write_text(dumps(summary))
    return summary


class WarmStartConfig(ConfigModel):
    """Build the run's base model into its own directory `out`, which `model.path` must name: a
    random-init tiny LLaDA-architecture model, then SFT on the run's task (`sft.out` is ignored).
    It writes only into a directory it built (marked by its `warm_start.json`) or one that does
    not exist yet: a checkpoint of yours is never overwritten. Cached: rebuilt only when this
    section, the task section, or the task's prompts and the tiny tokenizer (code, not config) change."""

    out: str = Field(description="the directory the warm start builds (model.path must be the same)")
    base: str = Field("runs/tiny-base", description="where the random-init tiny model is written (if missing)")
    seed: int = Field(0, description="initialisation seed of the tiny model")
    spec: TinySpec = TinySpec()
    sft: SFTConfig = SFTConfig()


FINGERPRINT = "warm_start.json"
BASE_MARKER = "tiny_spec.json"


def build_base(warm: WarmStartConfig) -> None:
    """Write the random-init tiny base unless it is there with the same seed and size (a base
    directory without our marker is someone's own model and is used as it is)."""
    base = Path(warm.base)
    want = json.dumps({"seed": warm.seed, "spec": warm.model_dump(mode="json")["spec"], "tokenizer": tokenizer_digest()},
                      sort_keys=True)
    marker = base / BASE_MARKER
    if (base / "config.json").is_file() and (not marker.is_file() or marker.read_text() == want):
        return
    write_tiny(base, seed=warm.seed, spec=warm.spec)
    marker.write_text(want)


def tokenizer_digest() -> str:
    """Changes whenever the tiny tokenizer or its chat template does (a cached base is then stale)."""
    parts = [tiny.CHARS, json.dumps(tiny.SPECIAL_TOKENS, sort_keys=True), *tiny.EXTRA_SPECIAL, tiny.CHAT_TEMPLATE]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def format_sample(task: TaskConfig) -> list[str]:
    """The first test problem as the SFT data renders it: a cached warm start goes stale when the
    task's prompts or reference solutions change, not only when the config does."""
    example = load_split(task, "test").examples[0]
    style = task.prompt_style
    solver = require(task.task, ReferenceSolutions, "warm_start")
    return [solver.train_prompt(example, style), solver.reference_completion(example, style)]


def ensure_warm_start(warm: WarmStartConfig, task: TaskConfig, device: str | None = None, on_step=None) -> dict:
    """Build (or reuse) the warm-started model in warm.out; returns the SFT summary. Refuses a
    directory with files in it that this function did not build."""
    out = Path(warm.out)
    check_own_directory(out)
    key = hashlib.sha256(json.dumps([warm.model_dump(mode="json"), task.model_dump(mode="json"),
                                     tokenizer_digest(), format_sample(task)], sort_keys=True).encode()).hexdigest()
    marker = out / FINGERPRINT
    if marker.is_file() and json.loads(marker.read_text()).get("fingerprint") == key:
        return {**json.loads(marker.read_text())["summary"], "cached": True}
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"fingerprint": None}))  # ours from now on, not yet valid
    build_base(warm)
    cfg = SFTRunConfig(model=SFTModelConfig(path=warm.base, device=device), task=task,
                       sft=warm.sft.model_copy(update={"out": str(out)}))
    summary = run_sft(cfg, on_step=on_step)
    marker.write_text(dumps({"fingerprint": key, "summary": summary}))
    return {**summary, "cached": False}


def check_own_directory(out: Path) -> None:
    """FileExistsError (one line) when `out` holds files but no warm-start marker: someone else's."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / FINGERPRINT).is_file())):
        raise FileExistsError(f"warm_start.out: {out} holds files the warm start did not build (no "
                              f"{FINGERPRINT}); it overwrites nothing. To train from that checkpoint, remove the "
                              "warm_start section; to build a warm start, name a new directory")


def warm_start_with_progress(warm: WarmStartConfig, task: TaskConfig, device: str | None = None) -> dict:
    """ensure_warm_start with a progress bar and a one-line report (the launchers' front end)."""
    from tqdm import tqdm

    with tqdm(total=warm.sft.steps, desc="warm start (SFT)", unit="step") as bar:
        summary = ensure_warm_start(warm, task, device=device, on_step=lambda step, loss: bar.update(1))
    state = "reused" if summary.get("cached") else f"built in {summary['wall_s']}s"
    print(f"warm start {warm.out}: {state} ({summary['pairs']} pairs, final loss {summary['loss_last50']})",
          flush=True)
    return summary
