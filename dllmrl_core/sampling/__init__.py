"""The LLaDA denoising sampler and its trajectory records."""

from dllmrl_core.sampling.config import SamplerConfig
from dllmrl_core.sampling.sampler import generate, sample
from dllmrl_core.sampling.schedule import transfer_schedule

__all__ = ["SamplerConfig", "generate", "sample", "transfer_schedule"]
