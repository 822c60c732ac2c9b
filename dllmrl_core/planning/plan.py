"""The memory plan of a run: for every actor, the peak it will need, item by item, and whether it
fits its GPU (`dllmrl plan CFG.yaml`, and the check `services.launch` runs before any actor starts).

Actors: a rollout worker (base model, adapter, one denoising step of its chunk of the batch or of
an evaluation, the method's branches), a learner rank (base model, adapter with its gradient and
AdamW state, one micro-batch forward/backward), or under `placement: colocated` one worker that
holds both and peaks at the larger of the two phases. Figures come from `planning/estimate.py`.
How many of each there are and their GPU share is a `Topology`: the Ray layer derives it from its
settings (services/settings.py), the single-process loop is one colocated worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.planning.estimate import (GiB, Lora, Precision, block_backward, head_bytes, inference_activations,
                                           kv_cache, sampler_vocab, saved_activations)
from dllmrl_core.planning.shape import ModelShape, model_shape

if TYPE_CHECKING:
    import torch

    from dllmrl_core.drive.config import RunConfig


class PlanConfig(ConfigModel):
    """The memory plan `services.launch` checks before any actor starts (`dllmrl plan`, docs/gpu.md)."""

    gpu_memory_gib: float = Field(79.6, gt=0, description="memory of one GPU in GiB (an 80 GB H100: 79.6)")
    reserve_gib: float = Field(2.0, ge=0, description="GiB per GPU kept free: CUDA context, NCCL, allocator slack")
    prompt_tokens: int = Field(256, ge=1, description="longest prompt, in tokens, the plan assumes")
    enforce: bool = Field(True, description="services.launch refuses a config whose plan does not fit")


@dataclass(frozen=True)
class Topology:
    """The actors that hold a model: how many of each and the GPUs each gets."""

    colocated: bool = False       # the learner ranks also sample (no rollout workers)
    rollout_workers: int = 1
    rollout_gpus: float = 0.0     # per worker
    learner_ranks: int = 1
    learner_gpus: float = 0.0     # per rank

    @classmethod
    def single_process(cls, device: torch.device) -> Topology:
        """The single-process loop: one learner that samples, on one GPU or on the CPU."""
        return cls(colocated=True, learner_gpus=1.0 if device.type == "cuda" else 0.0)

    @property
    def samplers(self) -> int:
        """How many actors split a batch's generation: the colocated workers, else the rollout workers."""
        return self.learner_ranks if self.colocated else self.rollout_workers


@dataclass
class Item:
    what: str
    bytes: float


@dataclass
class ActorPlan:
    """One kind of actor: its resident items, the peaks of its phases, and its GPU budget."""

    actor: str
    count: int
    device: str
    gpus: float
    resident: list[Item]
    phases: dict[str, list[Item]]           # phase name -> what it adds on top of the resident items
    capacity: float | None                  # bytes usable on its GPU(s); None = a CPU actor (not judged)
    knob: str = ""                          # what to change when it does not fit

    @property
    def phase_bytes(self) -> dict[str, float]:
        return {name: sum(i.bytes for i in items) for name, items in self.phases.items()}

    @property
    def peak_phase(self) -> str:
        return max(self.phase_bytes, key=self.phase_bytes.get)

    @property
    def total(self) -> float:
        return sum(i.bytes for i in self.resident) + max(self.phase_bytes.values(), default=0.0)

    @property
    def fits(self) -> bool:
        return self.capacity is None or self.total <= self.capacity

    def verdict(self) -> str:
        if self.capacity is None:
            return f"{self.actor}: {self.total / GiB:.2f} GiB on CPU (not checked)"
        state = "fits" if self.fits else "does NOT fit"
        return (f"{self.actor}: {self.total / GiB:.2f} GiB of {self.capacity / GiB:.2f} GiB usable "
                f"({self.gpus:g} GPU) {state}" + ("" if self.fits else f": {self.knob}"))


@dataclass(frozen=True)
class Setting:
    """What every actor plan reads from the run config, resolved once."""

    shape: ModelShape
    lora: Lora
    prompt: int                   # P, prompt tokens
    gen: int                      # L, completion tokens
    block: int
    cfg_rows: int                 # 2 with classifier-free guidance (both halves in one batch), else 1
    truncated: bool               # the sampler draws from a top-k / top-p support
    method: object                # the objective module
    algo: object                  # its config
    quantize: str | None = None   # model.quantize


def plan_run(cfg: RunConfig, topo: Topology) -> list[ActorPlan]:
    """Every actor kind of the run, with its items and verdict."""
    s = setting(cfg)
    if topo.colocated:
        return [colocated_plan(cfg, topo, s)]
    return [rollout_plan(cfg, topo, s), learner_plan(cfg, topo, s)]


def setting(cfg: RunConfig) -> Setting:
    from dllmrl_core.objectives import get_objective

    shape = model_shape(cfg.model.path, cfg.warm_start)
    targets = cfg.model.lora.targets
    lora = Lora(cfg.model.lora.r, cfg.model.lora.dropout, shape.lora_roles(targets),
                shape.lora_params(targets, cfg.model.lora.r))
    return Setting(shape=shape, lora=lora, prompt=cfg.plan.prompt_tokens, gen=cfg.sampler.gen_length,
                   block=cfg.sampler.block_length, cfg_rows=2 if cfg.sampler.cfg_scale > 0 else 1,
                   truncated=cfg.sampler.top_k is not None or cfg.sampler.top_p is not None, method=get_objective(cfg.algorithm.name), algo=cfg.algorithm.selected, quantize=cfg.model.quantize)


def precision(cfg: RunConfig, gpus: float) -> Precision:
    forced = cfg.model.device
    return Precision.of("cpu" if (forced or "").startswith("cpu") or gpus == 0 else "cuda")


def capacity(cfg: RunConfig, gpus: float, prec: Precision) -> float | None:
    if prec.device == "cpu":
        return None
    return gpus * (cfg.plan.gpu_memory_gib - cfg.plan.reserve_gib) * GiB


NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4-bit codes, 8-bit absmax per 64, fp32 scale per 256 absmax


def weights(s: Setting, prec: Precision) -> Item:
    dtype = "bf16" if prec.weight_bytes == 2 else "fp32"
    if s.quantize == "nf4":  # block linears in 4 bits; embedding, head and norms as usual
        linears = s.shape.n_layers * sum(i * o for i, o in s.shape.linears().values())
        return Item(f"base weights (NF4 block linears, {dtype} embedding/head, {s.shape.params / 1e9:.2f} B params)",
                    linears * NF4_BYTES + (s.shape.params - linears) * prec.weight_bytes)
    return Item(f"base weights ({dtype}, {s.shape.params / 1e9:.2f} B params)", s.shape.params * prec.weight_bytes)


def adapter(s: Setting, trained: bool, world: int, prec: Precision) -> list[Item]:
    n = s.lora.params
    if not trained:
        return [Item(f"LoRA r {s.lora.r} (fp32, {n / 1e6:.1f} M params)", 4 * n)]
    items = [Item(f"LoRA r {s.lora.r} + AdamW moments (fp32, {n / 1e6:.1f} M params)", 12 * n)]
    if world > 1:
        items.append(Item("DDP gradient buckets (fp32)", 4 * n))
    if prec.autocast:
        items.append(Item("LoRA weights cast to bf16 under autocast (kept for backward)", 2 * n))
    return items


def chunk_rows(cfg: RunConfig, workers: int) -> int:
    """Rows one worker generates: whole prompt groups, the batch split over the workers."""
    return math.ceil(cfg.train.prompts_per_step / workers) * cfg.train.group_size


def sampler_phases(cfg: RunConfig, s: Setting, prec: Precision, workers: int) -> dict[str, list[Item]]:
    """A training denoising step of one worker's chunk, SAPO's continuations, and an evaluation step."""
    rows = chunk_rows(cfg, workers)
    extra = s.method.memory_shape(s.algo, cfg.sampler, rows)
    T = s.prompt + s.gen
    train = step_items(s, prec, rows, T, s.block, cfg.sampler.cache, f"training step ({rows} rows)",
                       sampled=True, completion_logits=extra.completion_logits)
    if extra.kept_positions:
        train.append(Item(f"kept logits (fp32, {extra.kept_positions} positions per row)",
                          4 * rows * extra.kept_positions * s.shape.vocab))
    phases = {"sampling": train}
    if extra.continuations:
        M, E = rows * extra.continuations, extra.extra_masks
        phases["continuations"] = step_items(s, prec, M, T + E, s.block, "none", f"continuations ({M} rows)",
                                             sampled=True)
    if cfg.eval.active:
        rows_eval = eval_rows(cfg, workers)
        gen = max(cfg.eval.lengths(cfg.sampler.gen_length))  # the longest evaluation length peaks
        phases["evaluation"] = step_items(s, prec, rows_eval, s.prompt + gen, min(cfg.eval.block_length, gen),
                                          "none", f"evaluation step ({rows_eval} rows × {gen} tokens, greedy)",
                                          sampled=False)
    return phases


def eval_rows(cfg: RunConfig, workers: int) -> int:
    """Rows one worker generates at once at evaluation: its share of eval.num_examples, at most
    eval.batch_rows (which bounds it alone when the whole test split is evaluated)."""
    share = math.ceil(cfg.eval.num_examples / workers) if cfg.eval.num_examples else None
    rows = [n for n in (share, cfg.eval.batch_rows) if n is not None]
    return min(rows)


def step_items(s: Setting, prec: Precision, rows: int, T: int, block: int, cache: str, what: str, *,
               sampled: bool, completion_logits: bool = False) -> list[Item]:
    """One denoising step of `rows` rows × T tokens: the larger of the forward's working set and the
    block's logits with their vocabulary work (one after the other), the whole completion's logits
    when greedy fills need them, the KV cache."""
    n = rows * s.cfg_rows
    forward = inference_activations(s.shape, prec, n * T)
    vocab = sampler_vocab(s.shape, prec, n * block, sampled, s.truncated and sampled)
    items = [Item(f"{what}: forward over {T} tokens" if forward >= vocab else
                  f"{what}: the block's logits and vocabulary work ({block} positions per row)", max(forward, vocab))]
    if completion_logits:
        items.append(Item(f"{what}: logits of the rest of the completion (greedy fills)",
                          prec.act_bytes * n * (s.gen - block) * s.shape.vocab))
    if cache != "none":
        items.append(Item(f"{what}: KV cache ({cache})", kv_cache(s.shape, prec, n * T)))
    return items


def learner_phases(cfg: RunConfig, s: Setting, prec: Precision, world: int, micro: int | None = None
                   ) -> dict[str, list[Item]]:
    """The largest micro-batch forward/backward of one optimizer step, and the no-grad scoring of
    old/reference log-probs, on one rank."""
    rows_total = cfg.train.prompts_per_step * cfg.train.group_size
    shape = s.method.memory_shape(s.algo, cfg.sampler, rows_total)
    micro = micro if micro is not None else resolved_micro(cfg)
    T, ckpt = s.prompt + s.gen, cfg.optim.activation_checkpointing
    best: dict[str, list[Item]] = {}
    for rows, positions in shape.terms:
        per_rank = math.ceil(rows / (shape.unit * world)) * shape.unit       # shards hold whole units
        mb = min(per_rank, max((micro or rows) // shape.unit, 1) * shape.unit)
        for name, items in learner_step_items(s, prec, mb, T, positions, ckpt).items():
            if name not in best or sum(i.bytes for i in items) > sum(i.bytes for i in best[name]):
                best[name] = items
    return best


def learner_step_items(s: Setting, prec: Precision, rows: int, T: int, positions: int, ckpt: bool
                       ) -> dict[str, list[Item]]:
    """One micro-batch of `rows` rows × T tokens scoring `positions` positions per row: the training
    forward/backward and the no-grad scoring of old/reference log-probs."""
    tokens, n = rows * T, rows * positions
    head = head_bytes(s.shape, n, "learner")
    blocks = block_backward(s.shape, s.lora, prec, tokens, ckpt)
    train = [Item("LoRA gradient (fp32)", 4 * s.lora.params),
             Item(f"micro-batch of {rows} rows × {T} tokens: saved activations"
                  f"{' (block inputs: checkpointed)' if ckpt else ''}",
                  saved_activations(s.shape, s.lora, prec, tokens, ckpt)),
             Item(f"working set: LM head over {n} scored positions" if head >= blocks else
                  "working set: one block's backward" + (" (recomputed)" if ckpt else ""), max(head, blocks))]
    score = [Item(f"scoring {rows} rows without gradient", inference_activations(s.shape, prec, tokens)),
             Item(f"LM head over {n} scored positions", head_bytes(s.shape, n, "scoring"))]
    return {"learner step": train, "old/ref log-probs": score}


def resolved_micro(cfg: RunConfig) -> int | None:
    micro = cfg.optim.micro_batch_rows
    return None if micro is None or micro == "auto" else micro


def learner_plan(cfg: RunConfig, topo: Topology, s: Setting) -> ActorPlan:
    ranks, gpus = topo.learner_ranks, topo.learner_gpus
    prec = precision(cfg, gpus)
    micro = auto_micro_rows(cfg, topo) if cfg.optim.micro_batch_rows == "auto" else None
    plan = ActorPlan("learner rank", ranks, prec.device, gpus, [weights(s, prec), *adapter(s, True, ranks, prec)],
                     learner_phases(cfg, s, prec, ranks, micro), capacity(cfg, gpus, prec))
    plan.knob = learner_knob(cfg)
    return plan


def rollout_plan(cfg: RunConfig, topo: Topology, s: Setting) -> ActorPlan:
    workers, gpus = topo.rollout_workers, topo.rollout_gpus
    prec = precision(cfg, gpus)
    return ActorPlan("rollout worker", workers, prec.device, gpus,
                     [weights(s, prec), *adapter(s, False, 1, prec)], sampler_phases(cfg, s, prec, workers),
                     capacity(cfg, gpus, prec),
                     knob="raise rollout.num_workers (fewer rows per worker), lower eval.num_examples, or set "
                          "sampler.cache: none")


def colocated_plan(cfg: RunConfig, topo: Topology, s: Setting) -> ActorPlan:
    ranks, gpus = topo.learner_ranks, topo.learner_gpus
    prec = precision(cfg, gpus)
    micro = auto_micro_rows(cfg, topo) if cfg.optim.micro_batch_rows == "auto" else None
    phases = {**sampler_phases(cfg, s, prec, topo.samplers), **learner_phases(cfg, s, prec, ranks, micro)}
    plan = ActorPlan("colocated worker", ranks, prec.device, gpus, [weights(s, prec), *adapter(s, True, ranks, prec)],
                     phases, capacity(cfg, gpus, prec))
    plan.knob = learner_knob(cfg) if plan.peak_phase in ("learner step", "old/ref log-probs") else \
        "raise learner.num_workers (fewer rows per worker) or lower eval.num_examples"
    return plan


def learner_knob(cfg: RunConfig) -> str:
    if cfg.optim.micro_batch_rows != 1:
        return "set optim.micro_batch_rows: auto (or a smaller number)"
    if not cfg.optim.activation_checkpointing:
        return "set optim.activation_checkpointing: true"
    return "use more GPU memory per rank, or shorten sampler.gen_length"


AUTO_HEADROOM = 0.85  # `auto` micro-batches fill this share of the usable memory: the plan's validated error


def auto_micro_rows(cfg: RunConfig, topo: Topology, gpu_memory_gib: float | None = None) -> int:
    """The largest micro-batch (whole units) whose learner plan stays within AUTO_HEADROOM of the usable
    memory (one unit if none does) on GPUs of `gpu_memory_gib` (default: plan.gpu_memory_gib); CPU: every row."""
    if gpu_memory_gib is not None:
        cfg = cfg.model_copy(update={"plan": cfg.plan.model_copy(update={"gpu_memory_gib": gpu_memory_gib})})
    s = setting(cfg)
    ranks, gpus = topo.learner_ranks, topo.learner_gpus
    prec = precision(cfg, gpus)
    rows_total = cfg.train.prompts_per_step * cfg.train.group_size
    shape = s.method.memory_shape(s.algo, cfg.sampler, rows_total)
    most = max(math.ceil(r / (shape.unit * ranks)) * shape.unit for r, _ in shape.terms)
    cap = capacity(cfg, gpus, prec)
    if cap is None:
        return most
    resident = sum(i.bytes for i in [weights(s, prec), *adapter(s, True, ranks, prec)])
    for micro in range(most, 0, -shape.unit):  # whole units: a micro-batch holds all rows of its samples
        peak = max(sum(i.bytes for i in items) for items in learner_phases(cfg, s, prec, ranks, micro).values())
        if resident + peak <= AUTO_HEADROOM * cap:
            return micro
    return shape.unit


def micro_rows(cfg: RunConfig, topo: Topology, device: torch.device) -> int | None:
    """optim.micro_batch_rows for a learner on `device`, with "auto" = the largest micro-batch the
    memory plan fits on that device's GPU memory (every row on CPU)."""
    if cfg.optim.micro_batch_rows != "auto":
        return cfg.optim.micro_batch_rows
    import torch

    gib = torch.cuda.get_device_properties(device).total_memory / 2**30 if device.type == "cuda" else None
    return auto_micro_rows(cfg, topo, gpu_memory_gib=gib)


def check(cfg: RunConfig, topo: Topology) -> list[ActorPlan]:
    """Raise ValueError (one line: the actor, the figure, the knob) if any GPU actor does not fit."""
    plans = plan_run(cfg, topo)
    for plan in plans:
        if not plan.fits:
            raise ValueError(f"memory plan: {plan.verdict()} (peak: {plan.peak_phase}; `dllmrl plan` shows every item)")
    return plans


def render(plans: list[ActorPlan]) -> str:
    """The plan as a text table, one block per actor kind."""
    lines = []
    for p in plans:
        gpus = f"{p.gpus:g} GPU" if p.device == "cuda" else "CPU"
        lines.append(f"{p.actor} × {p.count} ({gpus} each)")
        for item in p.resident:
            lines.append(f"  {item.bytes / GiB:9.2f} GiB  {item.what}")
        for name, items in p.phases.items():
            mark = "  <- peak" if name == p.peak_phase else ""
            lines.append(f"  {sum(i.bytes for i in items) / GiB:9.2f} GiB  during {name}{mark}")
            lines += [f"  {'':9s}      {i.bytes / GiB:7.2f} GiB  {i.what}" for i in items]
        lines.append(f"  {p.total / GiB:9.2f} GiB  peak -> {p.verdict()}")
    return "\n".join(lines)
