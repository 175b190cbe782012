"""Finding nvcc: ``FASTDEPLOY_OPS_NVCC``, ``CUDA_HOME``, ``PATH``, NVIDIA's pip packages.

Only nvcc (with its host compiler) is needed: the kernel libraries are plain shared objects
(``nvcc -shared``, static CUDA runtime), with no Python headers or binding toolchain. NVRTC is
not enough: the launch functions are host code.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENV_NVCC", "Compiler", "CompilerNotFoundError", "find_compiler"]

ENV_NVCC = "FASTDEPLOY_OPS_NVCC"
_VERSION = re.compile(r"release (\d+\.\d+), V(\d+(?:\.\d+)*)")
_STANDARD_PATH = Path("/usr/local/cuda/bin/nvcc")


@dataclass(frozen=True)
class Compiler:
    """A usable nvcc.

    Attributes:
        nvcc: its path.
        version: the toolkit version, for example ``"12.4.131"``.
        identity: the full ``nvcc --version`` output and the host compiler's path and
            version (part of every cache key).
        found_by: where it was found (``"FASTDEPLOY_OPS_NVCC"``, ``"CUDA_HOME"``, ``"PATH"``, ...).
        targets: the SMs it compiles SASS for (``nvcc --list-gpu-code``); empty if it cannot say.
    """

    nvcc: Path
    version: str
    identity: str
    found_by: str
    targets: frozenset[int] = frozenset()

    def can_target(self, sm: int) -> bool:
        """Whether it compiles SASS for ``sm`` (assumed when it cannot list its targets)."""
        return not self.targets or sm in self.targets


class CompilerNotFoundError(RuntimeError):
    """No usable nvcc; ``searched`` lists each place looked at and what was wrong there."""

    def __init__(self, searched: list[str]) -> None:
        self.searched = searched
        places = "; ".join(searched)
        super().__init__(
            f"no usable nvcc found (searched: {places}). Install a CUDA toolkit (or pip install "
            f"nvidia-cuda-nvcc) and set CUDA_HOME, put nvcc on PATH, or set {ENV_NVCC}=/path/to/nvcc"
        )


def _pip_package_nvccs() -> Iterator[Path]:
    """nvcc drivers inside NVIDIA's pip packages (``nvidia/<component>/bin/nvcc``)."""
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return
    for root in (spec.submodule_search_locations or []) if spec else []:
        yield from sorted(Path(root).glob("*/bin/nvcc"))


def _candidates(env: Mapping[str, str]) -> Iterator[tuple[str, Path | str]]:
    """``(where, path)`` in search order; instead of a path, why that place names none."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        yield var, Path(env[var]) / "bin" / "nvcc" if env.get(var) else "not set"
    on_path = shutil.which("nvcc", path=env.get("PATH", ""))
    yield "PATH", Path(on_path) if on_path else "no nvcc on it"
    packages = list(_pip_package_nvccs())
    if not packages:
        yield "NVIDIA pip packages (nvidia-cuda-nvcc)", "none installed with an nvcc"
    for path in packages:
        yield "NVIDIA pip package", path
    yield str(_STANDARD_PATH.parent.parent), _STANDARD_PATH


def host_compiler(env: Mapping[str, str]) -> str:
    """What nvcc compiles host code with, as one line for the cache key: ``NVCC_CCBIN`` (a
    compiler or its folder), else ``g++`` on ``PATH``, with the first line of its
    ``--version``."""
    name = env.get("NVCC_CCBIN") or "g++"
    if Path(name).is_dir():
        name = str(Path(name) / "g++")
    path = name if Path(name).is_absolute() else shutil.which(name, path=env.get("PATH", ""))
    if not path:
        return f"host compiler: {name} (not found)"
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"host compiler: {path} (cannot run: {exc.__class__.__name__})"
    first = (done.stdout.strip().splitlines() or ["(no version)"])[0]
    return f"host compiler: {path}: {first}"


def probe(path: Path, found_by: str, env: Mapping[str, str] | None = None) -> Compiler:
    """Run ``path --version`` and identify the host compiler it will use.

    Raises:
        OSError: it cannot be run, or does not print an nvcc version (the message says which).
    """
    try:
        done = subprocess.run([str(path), "--version"], capture_output=True, text=True,
                              timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OSError(f"cannot run: {exc}") from exc
    match = _VERSION.search(done.stdout)
    if done.returncode != 0 or not match:
        raise OSError(f"'--version' exited {done.returncode} without an nvcc version")
    identity = f"{done.stdout.strip()}\n{host_compiler(os.environ if env is None else env)}"
    return Compiler(path, match.group(2), identity, found_by, _targets(path))


def _targets(path: Path) -> frozenset[int]:
    """The SMs ``path --list-gpu-code`` names (``sm_90`` -> 90); empty if it cannot list them."""
    try:
        done = subprocess.run([str(path), "--list-gpu-code"], capture_output=True, text=True,
                              timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(int(m) for m in re.findall(r"^sm_(\d+)[a-z]?$", done.stdout, re.M))


def find_compiler(env: Mapping[str, str] | None = None, sm: int | None = None) -> Compiler:
    """The first usable nvcc, in this order: ``FASTDEPLOY_OPS_NVCC`` (when set, only it),
    ``CUDA_HOME``, ``CUDA_PATH``, ``PATH``, NVIDIA's pip packages, ``/usr/local/cuda``. With
    ``sm``, only one that can target it counts (CUDA 13 for SM100 and newer, CUDA 12 for SM70).

    Raises:
        CompilerNotFoundError: none is usable; the message names every place searched.
    """
    env = os.environ if env is None else env
    explicit = env.get(ENV_NVCC)
    candidates = [(ENV_NVCC, Path(explicit))] if explicit else _candidates(env)
    searched = []
    for where, path in candidates:
        if isinstance(path, str):
            searched.append(f"{where}: {path}")
            continue
        if not path.is_file():
            searched.append(f"{where}: {path} does not exist")
            continue
        try:
            found = probe(path, where, env)
        except OSError as exc:
            searched.append(f"{where}: {path}: {exc}")
            continue
        if sm is None or found.can_target(sm):
            return found
        searched.append(f"{where}: {path}: CUDA {found.version} cannot target sm_{sm} "
                        f"(it targets {', '.join(f'sm_{t}' for t in sorted(found.targets))})")
    raise CompilerNotFoundError(searched)
