"""Choose and import the ``_ops_smNN`` extension module that fits the GPU.

The wheel holds one extension module per built SM, each with a ``manifest_smNN.json`` that lists
the kernel families it contains and the ones it skipped (with the reason). Selection
(:func:`select_module`) is a pure function of the SMs in the wheel, the device's SM, the driver
version and ``FASTDEPLOY_OPS_SM``; it runs once, on first use, and the chosen module is imported
then. Nothing here raises at import time.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from . import _device
from .errors import DeviceUnavailableError, OpUnavailableError

__all__ = [
    "ENV_FORCE_SM",
    "PTX_MIN_DRIVER_VERSION",
    "Family",
    "Manifest",
    "Selection",
    "describe_driver",
    "describe_kernels",
    "get_op",
    "kernel_plan",
    "load_module",
    "package_version",
    "parse_forced_sm",
    "read_manifests",
    "select_module",
    "selection",
]

ENV_FORCE_SM = "FASTDEPLOY_OPS_SM"
# The modules' PTX comes from the CUDA 12.4 toolkit; a driver JIT-compiles PTX only from a
# toolkit no newer than itself (cuDriverGetVersion 12040 = CUDA 12.4).
PTX_MIN_DRIVER_VERSION = 12040
PACKAGE_DIR = Path(__file__).resolve().parent
_MANIFEST_GLOB = "manifest_sm*.json"


@dataclass(frozen=True)
class Family:
    """A kernel family in a manifest: its minimum SM, its ops, and why it was skipped (if so)."""

    name: str
    min_sm: int
    ops: tuple[str, ...]
    reason: str | None = None


@dataclass(frozen=True)
class Manifest:
    """The contents of one ``manifest_smNN.json``."""

    module: str
    sm: int
    package_version: str
    families: Mapping[str, Family]
    skipped: Mapping[str, Family]
    cuda_version: str

    @property
    def ops(self) -> list[str]:
        """Sorted names of the ops this module contains."""
        return sorted(op for family in self.families.values() for op in family.ops)


def _parse_family(name: str, entry: Mapping[str, Any], skipped: bool) -> Family:
    reason = str(entry["reason"]) if skipped else None
    return Family(name, int(entry["min_sm"]), tuple(str(op) for op in entry["ops"]), reason)


def _parse_manifest(data: Mapping[str, Any]) -> Manifest:
    return Manifest(
        module=str(data["module"]),
        sm=int(data["sm"]),
        package_version=str(data["package_version"]),
        families={k: _parse_family(k, v, False) for k, v in data["families"].items()},
        skipped={k: _parse_family(k, v, True) for k, v in data.get("skipped", {}).items()},
        cuda_version=str(data.get("cuda_version", "unknown")),
    )


def read_manifests(package_dir: Path = PACKAGE_DIR) -> dict[int, Manifest]:
    """Read every ``manifest_sm*.json`` in ``package_dir``, keyed by SM.

    Raises:
        ValueError: a manifest is unreadable or malformed (the message names the file).
    """
    manifests: dict[int, Manifest] = {}
    for path in sorted(package_dir.glob(_MANIFEST_GLOB)):
        try:
            manifest = _parse_manifest(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed manifest {path}: {exc!r}") from exc
        manifests[manifest.sm] = manifest
    return manifests


def package_version() -> str:
    """The ``package_version`` the manifests agree on, or ``"0+unknown"``."""
    try:
        versions = {m.package_version for m in read_manifests().values()}
    except ValueError:
        return "0+unknown"
    return versions.pop() if len(versions) == 1 else "0+unknown"


def parse_forced_sm(value: str | None) -> int | None:
    """Parse ``FASTDEPLOY_OPS_SM`` (``"80"``, ``"sm80"`` or ``"sm_80"``); empty means not set.

    Raises:
        ValueError: the value is not an SM number.
    """
    if value is None or not value.strip():
        return None
    text = value.strip().lower().removeprefix("sm").removeprefix("_")
    if not text.isdigit():
        raise ValueError(f"{ENV_FORCE_SM}={value!r} is not an SM number such as 80")
    return int(text)


def _names(sms: Iterable[int]) -> str:
    return ", ".join(f"sm{sm}" for sm in sorted(sms)) or "none"


def select_module(
    available_sms: Iterable[int],
    device_sm: int | None,
    driver_version: int | None,
    forced_sm: int | None,
) -> tuple[int | None, str]:
    """Pick the module to load; returns ``(sm or None, reason)``.

    Rules, in order:

    1. ``forced_sm`` (from ``FASTDEPLOY_OPS_SM``) picks that module if the wheel has it, even
       without a GPU (argument validation still works); otherwise nothing is picked.
    2. Without a device nothing is picked.
    3. A module of the device's major version, the highest SM not above the device's: its SASS
       runs natively (SASS is compatible within a major version, upwards in minor).
    4. Else the highest SM below the device's, whose embedded PTX the driver JIT-compiles; this
       needs a driver at least as new as the toolkit (``PTX_MIN_DRIVER_VERSION``).
    5. Else nothing.
    """
    available = sorted(set(available_sms))
    if forced_sm is not None:
        if forced_sm not in available:
            return None, (
                f"{ENV_FORCE_SM}={forced_sm} but this wheel has no _ops_sm{forced_sm} "
                f"(available: {_names(available)})"
            )
        reason = f"forced by {ENV_FORCE_SM}={forced_sm}"
        if device_sm is None:
            reason += " (no GPU: ops can validate arguments but not run)"
        elif forced_sm > device_sm:
            reason += f" (built for a newer GPU than this SM{device_sm}: kernels will not launch)"
        return forced_sm, reason
    if not available:
        return None, "this package contains no _ops_smNN module (no manifest_sm*.json)"
    if device_sm is None:
        return None, "no GPU"
    native = [sm for sm in available if sm // 10 == device_sm // 10 and sm <= device_sm]
    if native:
        return max(native), (
            f"sm{max(native)} runs natively on the SM{device_sm} device "
            f"(same major version, highest not above the device)"
        )
    older = [sm for sm in available if sm < device_sm]
    if not older:
        return None, f"every module ({_names(available)}) is for a GPU newer than SM{device_sm}"
    if driver_version is None or driver_version < PTX_MIN_DRIVER_VERSION:
        return None, (
            f"no module for SM{device_sm}'s major version, and the driver "
            f"({describe_driver(driver_version)}) is too old to JIT-compile PTX from CUDA 12.4 "
            f"(available: {_names(available)})"
        )
    return max(older), (
        f"no module for SM{device_sm}'s major version; sm{max(older)}'s PTX is JIT-compiled "
        f"by the driver ({describe_driver(driver_version)})"
    )


def describe_driver(version: int | None) -> str:
    """``cuDriverGetVersion``'s number as ``"CUDA 12.4"`` (``"unknown version"`` for ``None``)."""
    if version is None:
        return "unknown version"
    return f"CUDA {version // 1000}.{version % 1000 // 10}"


@dataclass(frozen=True)
class Selection:
    """The outcome of module selection for this process."""

    manifests: Mapping[int, Manifest]
    device: _device.Device
    forced_sm: int | None
    sm: int | None
    reason: str

    @property
    def manifest(self) -> Manifest | None:
        """The chosen module's manifest, ``None`` when nothing was chosen."""
        return self.manifests.get(self.sm) if self.sm is not None else None


@functools.cache
def selection() -> Selection:
    """Probe the device, read the manifests and choose a module (once; never raises)."""
    device = _device.probe()
    try:
        manifests = read_manifests()
        forced_sm = parse_forced_sm(os.environ.get(ENV_FORCE_SM))
    except ValueError as exc:
        return Selection({}, device, None, None, str(exc))
    sm, reason = select_module(manifests, device.sm, device.driver_version, forced_sm)
    if sm is None and device.problem:
        reason = f"{reason}; {device.problem}"
    return Selection(manifests, device, forced_sm, sm, reason)


@functools.cache
def load_module() -> ModuleType:
    """Import the chosen extension module (once).

    Raises:
        DeviceUnavailableError: nothing was chosen, or the import failed.
    """
    chosen = selection()
    if chosen.manifest is None:
        raise DeviceUnavailableError(None, chosen.reason)
    try:
        return importlib.import_module(f"{__package__}.{chosen.manifest.module}")
    except ImportError as exc:
        raise DeviceUnavailableError(
            None, f"cannot import {chosen.manifest.module}: {exc}"
        ) from exc


def kernel_plan(manifest: Manifest, family: Family, device_sm: int | None, forced: bool) -> str:
    """Where ``family``'s kernels come from: ``"builtin"``, ``"jit"`` or ``"unavailable"``.

    Ahead-of-time kernels that run natively (module of the device's major version) are used
    as they are. A family the module skipped, or one the module only reaches through PTX, is
    JIT-compiled for the device's SM, unless the GPU is below the family's minimum SM. With
    ``FASTDEPLOY_OPS_SM`` (tests rely on the forced module's exact content) or without a GPU
    the module is used as it is.
    """
    present = family.name in manifest.families
    if forced or device_sm is None:
        return "builtin" if present else "unavailable"
    if family.min_sm > device_sm:
        return "unavailable"
    if present and manifest.sm // 10 == device_sm // 10:
        return "builtin"
    return "jit"


def describe_kernels(chosen: Selection, origins: Mapping[str, str]) -> dict[str, str]:
    """``{family: where its kernels come from here}``, as ``info()`` reports it.

    ``origins`` is the loaded module's ``_kernel_families()`` (empty when it is not loaded).
    Nothing is compiled: a family the JIT would build says so until its first use.
    """
    from . import jit

    manifest, device_sm = chosen.manifest, chosen.device.sm
    if manifest is None:
        return {}
    described = {}
    for name, family in sorted({**manifest.families, **manifest.skipped}.items()):
        plan = kernel_plan(manifest, family, device_sm, chosen.forced_sm is not None)
        origin = origins.get(name, "")
        if origin not in ("", "builtin"):
            described[name] = f"JIT-compiled for sm_{device_sm}: {origin}"
        elif plan == "builtin":
            described[name] = f"built into {manifest.module}"
        elif plan == "unavailable":
            described[name] = f"unavailable ({family.reason or f'requires SM{family.min_sm}+'})"
        elif jit.enabled() and name not in _JIT_FAILED:
            described[name] = f"JIT-compiled for sm_{device_sm} on first use"
        else:
            why = f"JIT failed: {_JIT_FAILED[name]}" if name in _JIT_FAILED else f"{jit.ENV_JIT}=0"
            present = name in manifest.families
            described[name] = f"{manifest.module}'s PTX ({why})" if present else (
                f"unavailable ({why})")
    return described


@functools.cache
def get_op(family: str, op: str) -> Callable[..., None]:
    """The compiled function ``op`` of ``family`` from the loaded module.

    This is the one place where family modules find their kernels; the result is cached per op,
    so after the first call (which may JIT-compile the family, see :func:`kernel_plan`) it
    costs one dictionary lookup.

    Raises:
        DeviceUnavailableError: no usable module (no GPU, no driver, nothing fits, import failed).
        OpUnavailableError: the loaded module has no kernels of ``family`` for this GPU and
            none can be JIT-compiled.
    """
    chosen = selection()
    manifest = chosen.manifest
    if manifest is None:
        raise DeviceUnavailableError(op, chosen.reason)
    declared = manifest.families.get(family) or manifest.skipped.get(family)
    if declared is None or op not in declared.ops:
        raise _unavailable(chosen, manifest, family, op)
    plan = kernel_plan(manifest, declared, chosen.device.sm, chosen.forced_sm is not None)
    if plan == "unavailable":
        raise _unavailable(chosen, manifest, family, op)
    try:
        module = load_module()
    except DeviceUnavailableError as exc:
        raise DeviceUnavailableError(op, exc.reason) from exc
    if plan == "jit":
        problem = _jit_problem(family, chosen.device.sm)
        if problem is not None and family in manifest.skipped:
            raise _unavailable(chosen, manifest, family, op, jit_problem=problem)
        if problem is not None:
            _warn_ptx(manifest.module, family, problem)
    return getattr(module, op)


# Families whose JIT compile or load failed in this process, and why (for info()).
_JIT_FAILED: dict[str, str] = {}


@functools.cache
def _jit_problem(family: str, device_sm: int) -> str | None:
    """Load JIT-compiled kernels of ``family`` for ``device_sm`` into the module (once per
    family); ``None`` on success, else why not."""
    from . import jit  # only processes that need it pay for the import

    if not jit.enabled():
        return f"{jit.ENV_JIT}=0"
    try:
        library = jit.kernel_library(family, device_sm)
        load_module()._load_kernel_library(family, str(library), replace=True)
    except (jit.CompilerNotFoundError, jit.JitError, RuntimeError, ValueError) as exc:
        _JIT_FAILED[family] = str(exc)
        return str(exc)
    return None


@functools.cache  # once per family
def _warn_ptx(module: str, family: str, problem: str) -> None:
    warnings.warn(
        f"fastdeploy_ops: '{family}' runs from {module}'s PTX, which the driver "
        f"compiles for this GPU (slower kernels than native ones), because JIT compilation is "
        f"unavailable: {problem}",
        RuntimeWarning,
        stacklevel=4,
    )


def _unavailable(chosen: Selection, manifest: Manifest, family: str, op: str,
                 jit_problem: str | None = None) -> OpUnavailableError:
    having = sorted(sm for sm, m in chosen.manifests.items() if family in m.families)
    declared = [
        m.families.get(family) or m.skipped.get(family) for m in chosen.manifests.values()
    ]
    required = min((f.min_sm for f in declared if f is not None), default=None)
    skipped = manifest.skipped.get(family)
    return OpUnavailableError(
        op,
        family,
        required_sm=required,
        module_sm=manifest.sm,
        device_sm=chosen.device.sm,
        reason=skipped.reason if skipped else None,
        alternatives=having,
        forced=chosen.forced_sm is not None,
        jit_problem=jit_problem,
    )
