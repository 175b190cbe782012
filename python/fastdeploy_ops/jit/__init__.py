"""Compile what the wheel lacks, on first use: kernel libraries for this GPU's SM.

When an op's family has no kernels for the GPU in the loaded module (the family was skipped for
that module's SM, or the module only reaches the GPU through PTX), the loader calls
:func:`kernel_library`: the family's sources shipped in the wheel (``jit/sources``) are compiled
by nvcc for exactly the device's SM into a shared library in the cache, which the module then
loads in place of its ahead-of-time kernels. Ahead-of-time kernels that run natively are always
preferred.

Environment:
    ``FASTDEPLOY_OPS_JIT=0``: never compile (a missing family raises ``OpUnavailableError``);
    only 1/0, true/false, yes/no and on/off are accepted.
    ``FASTDEPLOY_OPS_NVCC``: the nvcc to use (else ``CUDA_HOME``, ``CUDA_PATH``, ``PATH``,
    NVIDIA's pip packages, ``/usr/local/cuda``); nvcc's own ``NVCC_CCBIN`` picks its host
    compiler.
    ``FASTDEPLOY_OPS_CACHE``: the cache folder (default ``~/.cache/fastdeploy_ops/jit``),
    made absolute when first used.
    ``FASTDEPLOY_OPS_JIT_TIMEOUT``: seconds one nvcc command may run (default 1800).
    ``FASTDEPLOY_OPS_JIT_WAIT``: seconds to wait for another process compiling the same
    kernels (default 3600); the error then names that process.

Command line: ``python -m fastdeploy_ops.jit warmup|status|clear`` (see ``--help``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ._build import ENV_TIMEOUT, ENV_WAIT, Build, JitError, build
from ._cache import ENV_CACHE, Entry, cache_dir, entries
from ._compiler import ENV_NVCC, Compiler, CompilerNotFoundError, find_compiler
from ._sources import FamilySources, SourceTree, load_sources

__all__ = [
    "ENV_CACHE",
    "ENV_JIT",
    "ENV_NVCC",
    "ENV_TIMEOUT",
    "ENV_WAIT",
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
    "process_cache_dir",
    "sources",
]

ENV_JIT = "FASTDEPLOY_OPS_JIT"


_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def enabled() -> bool:
    """``FASTDEPLOY_OPS_JIT``: unset, empty or ``1``/``true``/``yes``/``on`` (any case) turn the
    JIT on; ``0``/``false``/``no``/``off`` turn it off.

    Raises:
        ValueError: any other value (a typo must not silently mean "on").
    """
    value = os.environ.get(ENV_JIT, "").strip().lower()
    if value in _OFF:
        return False
    if value in ("", *_ON):
        return True
    raise ValueError(f"{ENV_JIT}={os.environ[ENV_JIT]!r}: expected one of "
                     f"{', '.join(_ON)} (on) or {', '.join(_OFF)} (off)")


@functools.cache
def compiler(sm: int | None = None) -> Compiler:
    """This process's nvcc for ``sm`` (searched once per SM; raises
    :class:`CompilerNotFoundError`): the first found that can target it."""
    return find_compiler(sm=sm)


@functools.cache
def process_cache_dir() -> Path:
    """This process's cache folder: :func:`cache_dir` as it was at first use (a relative
    ``FASTDEPLOY_OPS_CACHE`` does not follow later changes of the working folder)."""
    return cache_dir()


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
    return build(tree, family, sm, compiler(sm), process_cache_dir()).entry.library
