"""SamplerConfig: how completions are denoised (the `sampler` section of a run config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from dllmrl_core.contract.configbase import ConfigModel

# Beyond these the float64 Gumbel noise (x^T) and the guided logits (1 + w)·Δ leave float range: T = 10 is
# already near-uniform, and LLaDA guides with w ≤ 3.
MAX_TEMPERATURE = 10.0
MAX_CFG_SCALE = 10.0


class DreamOptions(ConfigModel):
    """Dream's own knobs of `diffusion_generate` (read when sampler.style is dream)."""

    alg: Literal["maskgit_plus", "topk_margin", "entropy"] = Field(
        "entropy", description="confidence that picks the positions a step commits (Dream's `alg`): maskgit_plus = "
                               "probability of the drawn token, topk_margin = top-1 minus top-2 probability, "
                               "entropy = negative entropy (Dream's README setting)")
    alg_temp: float = Field(0.0, ge=0, description="0 = commit the most confident positions; > 0 = draw them "
                                                  "∝ softmax(confidence / alg_temp) (Dream's `alg_temp`)")
    eps: float = Field(1e-3, gt=0, lt=1, description="final time of the schedule linspace(1, eps, steps + 1) "
                                                     "(Dream's `eps`)")


class SamplerConfig(ConfigModel):
    """How completions are denoised (LLaDA's generate() arguments, plus AGRPO's truncation), or with
    Dream's own loop (`style: dream`)."""

    style: Literal["llada", "dream"] = Field(
        "llada", description="whose denoising loop: llada = LLaDA's generate() (semi-autoregressive blocks, linear "
                             "schedule, `remasking`); dream = Dream's diffusion_generate (the whole completion at "
                             "once, schedule linspace(1, eps, steps + 1), confidences of `dream.alg`; needs "
                             "block_length = gen_length)")
    gen_length: int = Field(128, gt=0, description="completion length L")
    steps: int = Field(128, gt=0, description="denoising steps S over the whole completion")
    block_length: int = Field(128, gt=0, description="semi-autoregressive block length")
    temperature: float = Field(0.0, ge=0, le=MAX_TEMPERATURE, description="0 = greedy; >0 samples softmax(logits / T)")
    remasking: Literal["low_confidence", "random"] = Field(
        "low_confidence", description="which drawn tokens a step commits: low_confidence = the most probable first "
                           "(LLaDA), random = uniform")
    cfg_scale: float = Field(0.0, ge=0, le=MAX_CFG_SCALE, description="classifier-free guidance scale (0 = off)")
    top_k: int | None = Field(None, gt=0, description="keep the k most likely tokens (AGRPO)")
    top_p: float | None = Field(None, gt=0, le=1, description="top-p truncation, after top-k (AGRPO)")
    top_p_rule: Literal["agrpo", "nucleus"] = Field(
        "agrpo", description="which sorted tokens top-p keeps: agrpo = cumulative probability <= top_p, at least one "
                             "(AGRPO's sampler); nucleus = the smallest prefix reaching top_p (Holtzman et al.)")
    logits_eos_inf: bool = Field(False, description="never sample EOS (LLaDA option)")
    confidence_eos_eot_inf: bool = Field(False, description="commit EOS/EoT last in a block (fixed)")
    llada_rng: bool = Field(False, description="draw noise over the whole sequence, as LLaDA does")
    cache: Literal["none", "prefix", "dual"] = Field(
        "none", description="Fast-dLLM KV cache (native LLaDA only, approximate): prefix = K/V before the block, "
                            "dual = also the masked suffix")
    threshold: float | None = Field(
        None, ge=0, description="Fast-dLLM parallel decoding: commit every masked block position with confidence "
                                ">= threshold (at least one); steps become adaptive and `steps` is ignored")
    dream: DreamOptions = Field(default_factory=DreamOptions, description="Dream's own knobs (style: dream)")

    @model_validator(mode="after")
    def _check_blocks(self) -> SamplerConfig:
        if self.style == "dream":
            self._check_dream()
        if self.gen_length % self.block_length:
            raise ValueError(f"gen_length ({self.gen_length}) must be divisible by block_length ({self.block_length})")
        if self.steps % self.num_blocks:
            raise ValueError(f"steps ({self.steps}) must be divisible by the number of blocks "
                             f"(gen_length / block_length = {self.num_blocks})")
        if self.llada_rng and self.cache != "none":
            raise ValueError(f"cache ({self.cache!r}): llada_rng draws LLaDA's whole-sequence noise, "
                             "which needs cache='none'")
        return self

    def _check_dream(self) -> None:
        """Options of LLaDA's loop that Dream's loop has no counterpart for are errors, not ignored."""
        if self.block_length != self.gen_length:
            raise ValueError(f"style='dream' denoises the whole completion at once: block_length "
                             f"({self.block_length}) must equal gen_length ({self.gen_length})")
        unsupported = {"cfg_scale": self.cfg_scale > 0, "confidence_eos_eot_inf": self.confidence_eos_eot_inf,
                       "llada_rng": self.llada_rng, "cache": self.cache != "none",
                       "threshold": self.threshold is not None}
        for name, used in unsupported.items():
            if used:
                raise ValueError(f"{name}: not available with style='dream' (Dream's diffusion_generate has no such "
                                 "option)")

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def steps_per_block(self) -> int:
        return self.steps // self.num_blocks

    @property
    def mode(self) -> str:
        """What RolloutBatch.sampler_mode records: uncached / prefix / dual, "+threshold=τ" if adaptive;
        dream-<alg> for Dream's loop."""
        if self.style == "dream":
            return f"dream-{self.dream.alg}"
        name = "uncached" if self.cache == "none" else self.cache
        return name if self.threshold is None else f"{name}+threshold={self.threshold:g}"
