"""Supervised warm start on a task's reference solutions (`dllmrl sft cfg.yaml`).

Reads the task's training examples, renders each training prompt through the chat template,
pairs it with the task's reference completion, trains with LLaDA's SFT objective and writes a
merged checkpoint (+ tokenizer) that an RL run loads as its base model, as d1 does (RL starts
from the merged SFT model, not from the adapter).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import Field

from dllmrl_core.configbase import ConfigModel
from dllmrl_core.models import load_mask_predictor, load_tokenizer
from dllmrl_core.tasks import TaskConfig, load_split
from dllmrl_core.training.lora import LoraSettings, add_lora
from dllmrl_core.training.sft import SFTConfig, encode_pairs, train_sft


class SFTModelConfig(ConfigModel):
    path: str = Field("runs/tiny-base", description="checkpoint directory or hub name")
    device: str | None = Field(None, description="cpu / cuda (default: cuda if available)")
    native: bool | None = Field(None, description="native LLaDA module (None: for LLaDA checkpoints)")
    lora: LoraSettings | None = Field(None, description="train a LoRA adapter (merged at the end); None = all weights")


class SFTRunConfig(ConfigModel):
    model: SFTModelConfig = SFTModelConfig()
    task: TaskConfig
    sft: SFTConfig = SFTConfig()


def reference_pairs(task_cfg: TaskConfig, tokenizer) -> tuple[list[str], list[str], int]:
    """(rendered prompts, reference completions, rows skipped by the loader)."""
    task, train = task_cfg.task, load_split(task_cfg, "train")
    style = task_cfg.prompt_style
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": task.train_prompt(ex, style)}],
                                             add_generation_prompt=True, tokenize=False) for ex in train.examples]
    answers = [task.reference_completion(ex, style) for ex in train.examples]
    return prompts, answers, train.skipped


def run_sft(cfg: SFTRunConfig, on_step=None) -> dict:
    """Train, save the merged model and its tokenizer to cfg.sft.out, return a summary."""
    start = time.perf_counter()
    tokenizer = load_tokenizer(cfg.model.path)
    model = load_mask_predictor(cfg.model.path, device=cfg.model.device, native=cfg.model.native, tokenizer=tokenizer)
    if cfg.model.lora is not None:
        model.model = add_lora(model.model, cfg.model.lora)
    prompts, answers, skipped = reference_pairs(cfg.task, tokenizer)
    data = encode_pairs(tokenizer, prompts, answers, cfg.sft.answer_length, model.eos_id)
    losses = train_sft(model, data, cfg.sft, on_step=on_step)
    merged = model.model.merge_and_unload() if cfg.model.lora is not None else model.model
    out = Path(cfg.sft.out)
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    tail = losses[-min(50, len(losses)):]
    summary = {"out": str(out), "pairs": len(prompts), "skipped_rows": skipped, "steps": len(losses),
               "loss_first": round(losses[0], 4), "loss_last50": round(sum(tail) / len(tail), 4),
               "wall_s": round(time.perf_counter() - start, 1)}
    (out / "sft_summary.json").write_text(json.dumps(summary))
    return summary
