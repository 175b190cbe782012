"""Where each family's kernels come from, and the one place family modules get their ops.

The chosen module (:mod:`._selection`) is imported on first use. A family whose kernels it does
not hold natively for this GPU is JIT-compiled when it can be (:func:`kernel_plan`). Nothing
here raises at import time.
"""

from __future__ import annotations

import functools
import importlib
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from types import ModuleType

from ._manifest import Family, Manifest
from . import _selection
from ._selection import Selection
from .errors import DeviceUnavailableError, OpUnavailableError

__all__ = ["describe_kernels", "get_op", "kernel_plan", "load_module"]


@functools.cache
def load_module() -> ModuleType:
    """Import the chosen extension module (once).

    Raises:
        DeviceUnavailableError: nothing was chosen, or the import failed.
    """
    chosen = _selection.selection()
    if chosen.manifest is None:
        raise DeviceUnavailableError(None, chosen.reason)
    try:
        return importlib.import_module(f"{__package__}.{chosen.manifest.module}")
    except ImportError as exc:
        raise DeviceUnavailableError(
            None, f"cannot import {chosen.manifest.module}: {exc}"
        ) from exc


def kernel_plan(manifest: Manifest, family: Family, device_sm: int | None, forced: bool,
                group: str | None = None) -> str:
    """Where ``family``'s kernels (with ``group``: those of that instantiation group) come
    from: ``"builtin"``, ``"jit"`` or ``"unavailable"``.

    Ahead-of-time kernels that run natively (module of the device's major version) are used
    as they are. A family (or group) the module skipped, or one the module only reaches through
    PTX, is JIT-compiled for the device's SM, unless the GPU is below its minimum SM. With
    ``FASTDEPLOY_OPS_SM`` (tests rely on the forced module's exact content) or without a GPU
    the module is used as it is.
    """
    present = manifest.lacks(family.name, group) is None
    if forced or device_sm is None:
        return "builtin" if present else "unavailable"
    if family.required_sm(group) > device_sm:
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
            lacking = [manifest.lacks(name, group) for group in family.group_min_sm]
            without = "; ".join(reason for reason in lacking if reason)
            described[name] = f"built into {manifest.module}" + (
                f" (without: {without})" if without else "")
        elif plan == "unavailable":
            described[name] = f"unavailable ({family.reason or f'requires SM{family.min_sm}+'})"
        elif jit.enabled() and name not in _JIT_FAILED:
            described[name] = f"JIT-compiled for sm_{device_sm} on first use"
        else:
            why = (f"JIT failed: {_JIT_FAILED[name][1]}" if name in _JIT_FAILED
                   else f"{jit.ENV_JIT}=0")
            present = name in manifest.families
            described[name] = f"{manifest.module}'s PTX ({why})" if present else (
                f"unavailable ({why})")
    return described


@functools.cache
def get_op(family: str, op: str, group: str | None = None) -> Callable[..., None]:
    """The compiled function ``op`` of ``family`` from the loaded module; with ``group``
    (``"cache=fp8"``), only if the kernels of that instantiation group are there too.

    This is the one place where family modules find their kernels; the result is cached per op,
    so after the first call (which may JIT-compile the family, see :func:`kernel_plan`) it
    costs one dictionary lookup.

    Raises:
        DeviceUnavailableError: no usable module (no GPU, no driver, nothing fits, import failed).
        OpUnavailableError: the loaded module has no kernels of ``family`` (or ``group``) for
            this GPU and none can be JIT-compiled.
    """
    chosen = _selection.selection()
    manifest = chosen.manifest
    if manifest is None:
        raise DeviceUnavailableError(op, chosen.reason)
    declared = manifest.families.get(family) or manifest.skipped.get(family)
    if declared is None or op not in declared.ops:
        raise _unavailable(chosen, manifest, family, op, group)
    plan = kernel_plan(manifest, declared, chosen.device.sm, chosen.forced_sm is not None, group)
    if plan == "unavailable":
        raise _unavailable(chosen, manifest, family, op, group)
    try:
        module = load_module()
    except DeviceUnavailableError as exc:
        raise DeviceUnavailableError(op, exc.reason) from exc
    if plan == "jit":
        try:
            problem = _jit_problem(family, chosen.device.sm)
        except _CompileDuringCapture as exc:
            raise RuntimeError(f"{op}: {exc}") from None
        if problem is not None and manifest.lacks(family, group) is not None:
            raise _unavailable(chosen, manifest, family, op, group, jit_problem=problem)
        if problem is not None:
            _warn_ptx(manifest.module, family, problem)
    return getattr(module, op)


# Seconds before a family whose JIT compile or load failed is tried again in this process (a
# full disk freed, an nvcc installed), without retrying on every call meanwhile.
_JIT_RETRY_SECONDS = 60.0
# Families whose JIT compile or load failed in this process: when and why (for the retry and
# for info()).
_JIT_FAILED: dict[str, tuple[float, str]] = {}


class _CompileDuringCapture(RuntimeError):
    """A JIT load (and maybe compile) was due during CUDA graph capture (not cached: the next
    call tries again)."""


def _capturing() -> bool:
    """Whether this thread's current stream is capturing a CUDA graph, as far as the array
    libraries already imported can tell (torch, cupy); never imports one."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available() and (
                torch.cuda.is_current_stream_capturing()):
            return True
    except (AttributeError, RuntimeError):
        pass
    cupy = sys.modules.get("cupy")
    try:
        return bool(cupy is not None and cupy.cuda.get_current_stream().is_capturing())
    except (AttributeError, RuntimeError):
        return False


def _jit_problem(family: str, device_sm: int) -> str | None:
    """Load JIT-compiled kernels of ``family`` for ``device_sm`` into the module (once per
    family); ``None`` on success, else why not. A failure is tried again after
    ``_JIT_RETRY_SECONDS``.

    Raises:
        _CompileDuringCapture: the family would be loaded (maybe compiled: minutes of host
            work) now, during graph capture.
    """
    from . import jit  # only processes that need it pay for the import

    if not jit.enabled():
        return f"{jit.ENV_JIT}=0"
    failed = _JIT_FAILED.get(family)
    if failed is not None and time.monotonic() - failed[0] < _JIT_RETRY_SECONDS:
        return failed[1]
    try:
        _jit_load(family, device_sm)
    except _CompileDuringCapture:
        raise
    except (jit.CompilerNotFoundError, jit.JitError, RuntimeError, ValueError) as exc:
        _JIT_FAILED[family] = (time.monotonic(), str(exc))
        return str(exc)
    _JIT_FAILED.pop(family, None)
    return None


@functools.cache  # on success only: a failure raises
def _jit_load(family: str, device_sm: int) -> None:
    """Compile (unless cached) and load ``family``'s kernels for ``device_sm``.

    Raises:
        _CompileDuringCapture: a graph is being captured.
        CompilerNotFoundError, JitError, RuntimeError, ValueError: why they cannot be loaded.
    """
    from . import jit

    if _capturing():
        raise _CompileDuringCapture(
            f"the '{family}' kernels for sm_{device_sm} are loaded (compiled first, if not in "
            f"the JIT cache) on first use, which must not happen during CUDA graph capture: "
            f"call the op once before capturing (and run `python -m fastdeploy_ops.jit warmup` "
            f"where the service is deployed, so that call does not compile)")
    library = jit.kernel_library(family, device_sm)
    load_module()._load_kernel_library(family, str(library), replace=True)


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
                 group: str | None = None, jit_problem: str | None = None) -> OpUnavailableError:
    having = sorted(sm for sm, m in chosen.manifests.items() if m.lacks(family, group) is None)
    declared = [
        m.families.get(family) or m.skipped.get(family) for m in chosen.manifests.values()
    ]
    required = min((f.required_sm(group) for f in declared if f is not None), default=None)
    lacking = manifest.lacks(family, group)
    return OpUnavailableError(
        op,
        family if group is None else f"{family} ({group})",
        required_sm=required,
        module_sm=manifest.sm,
        device_sm=chosen.device.sm,
        reason=lacking if family in manifest.skipped or group is not None else None,
        alternatives=having,
        forced=chosen.forced_sm is not None,
        jit_problem=jit_problem,
    )
