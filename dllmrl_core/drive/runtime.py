"""Process settings every dllmrl process applies once, before it computes: torch's intra-op threads
and glibc malloc's handling of freed memory.

Why malloc: a denoising step allocates and frees the same few-hundred-KB to tens-of-MB tensors over
and over. glibc serves such blocks with mmap and unmaps them on free, adjusting that threshold as
it goes, so a process can spend long stretches re-faulting freshly mapped pages: measured here,
identical generate calls of the tiny model took 0.9 s or 1.7 s (2 threads) and 1.4 s or 2.2-2.9 s
(1 thread) depending on that state, with up to 500k minor page faults and a third of the time in
the kernel. A fixed mmap threshold (glibc's maximum, 32 MiB) and a high trim threshold keep freed
blocks in the heap for reuse: every call then runs at the fast figure. (jemalloc or tcmalloc via
LD_PRELOAD, as PyTorch's CPU tuning guide suggests, fix the same thing from outside the process.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import torch

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
MMAP_THRESHOLD = 32 << 20  # glibc's largest accepted value on 64-bit
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks below 32 MiB for reuse; False where there is no glibc mallopt."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs: nothing to tune
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def configure_process(threads: int | None = None) -> None:
    """torch intra-op threads (when given) and the malloc settings above."""
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
    keep_freed_memory()
