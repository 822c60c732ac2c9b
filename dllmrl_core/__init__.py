"""dllmrl core: a plain PyTorch library for RL on masked diffusion language models.

This package never imports ray, fastapi or uvicorn (tests/core/test_layering.py enforces it).
Keep this file free of heavy imports.
"""

__version__ = "0.1.0"
