"""Compile what the wheel lacks, on first use: kernel libraries for this GPU's SM.

When an op's family has no kernels for the GPU in the loaded module (the family was skipped for
that module's SM, or the module only reaches the GPU through PTX), the loader calls
:func:`kernel_library`: the family's sources shipped in the wheel (``jit/sources``) are compiled
by nvcc for exactly the device's SM into a shared library in the cache, which the module then
loads in place of its ahead-of-time kernels. Ahead-of-time kernels that run natively are always
preferred.

Environment:
    ``FASTDEPLOY_OPS_JIT=0``: never compile (a missing family raises ``OpUnavailableError``).
    ``FASTDEPLOY_OPS_NVCC``: the nvcc to use (else ``CUDA_HOME``, ``CUDA_PATH``, ``PATH``,
    NVIDIA's pip packages, ``/usr/local/cuda``); nvcc's own ``NVCC_CCBIN`` picks its host
    compiler.
    ``FASTDEPLOY_OPS_CACHE``: the cache folder (default ``~/.cache/fastdeploy_ops/jit``).

Command line: ``python -m fastdeploy_ops.jit warmup|status|clear`` (see ``--help``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ._build import Build, JitError, build
from ._cache import ENV_CACHE, Entry, cache_dir, entries
from ._compiler import ENV_NVCC, Compiler, CompilerNotFoundError, find_compiler
from ._sources import FamilySources, SourceTree, load_sources

__all__ = [
    "ENV_CACHE",
    "ENV_JIT",
    "ENV_NVCC",
    "Build",
    "Compiler",
    "CompilerNotFoundError",
    "Entry",
    "FamilySources",
    "JitError",
    "SourceTree",
    "build",
    "cache_dir",
    "compiler",
    "enabled",
    "entries",
    "find_compiler",
    "kernel_library",
    "load_sources",
    "sources",
]

ENV_JIT = "FASTDEPLOY_OPS_JIT"


def enabled() -> bool:
    """False when ``FASTDEPLOY_OPS_JIT`` is ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get(ENV_JIT, "1").strip().lower() not in ("0", "false", "no", "off")


@functools.cache
def compiler() -> Compiler:
    """This process's nvcc (searched once; raises :class:`CompilerNotFoundError`)."""
    return find_compiler()


@functools.cache
def sources() -> SourceTree:
    """The sources shipped in this package (read once)."""
    return load_sources()


@functools.cache
def kernel_library(family: str, sm: int) -> Path:
    """The path of ``family``'s kernel library for ``sm``, compiled into the cache if needed.

    Raises:
        CompilerNotFoundError: no nvcc.
        JitError: the package ships no sources for the family, or the compile failed.
    """
    try:
        tree = sources()
    except (FileNotFoundError, ValueError) as exc:
        raise JitError(f"this package ships no usable JIT sources: {exc}") from exc
    return build(tree, family, sm, compiler()).entry.library
