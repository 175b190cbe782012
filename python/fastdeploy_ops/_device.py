"""The GPU's compute capability, read through the CUDA driver API with ctypes.

No framework is imported and no kernel is launched: ``cuInit`` plus attribute queries only.
The probe runs once per process, on first use (not at import, so that importing the package
never initialises CUDA before a ``fork``). Only the first visible device is probed; it decides
which ``_ops_smNN`` module the process loads.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

__all__ = ["Device", "probe", "synchronize"]

_LIBCUDA = "libcuda.so.1"
_ATTR_CC_MAJOR = 75  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
_ATTR_CC_MINOR = 76  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR


@dataclass(frozen=True)
class Device:
    """What the driver reports about device 0.

    Attributes:
        sm: compute capability as ``10 * major + minor`` (``90`` for H100), ``None`` without GPU.
        name: the device name, ``None`` without GPU.
        count: number of visible devices.
        driver_version: ``cuDriverGetVersion`` (``12040`` is CUDA 12.4), ``None`` without driver.
        problem: why there is no usable device; ``None`` when ``sm`` is set.
    """

    sm: int | None
    name: str | None
    count: int
    driver_version: int | None
    problem: str | None


class _DriverError(RuntimeError):
    pass


@functools.cache
def _driver() -> ctypes.CDLL:
    return ctypes.CDLL(_LIBCUDA)


def _check(lib: ctypes.CDLL, call: str, status: int) -> None:
    if status == 0:
        return
    name, text = ctypes.c_char_p(), ctypes.c_char_p()
    lib.cuGetErrorName(status, ctypes.byref(name))
    lib.cuGetErrorString(status, ctypes.byref(text))
    label = (name.value or b"CUDA error").decode()
    detail = f": {text.value.decode()}" if text.value else ""
    raise _DriverError(f"{call} failed with {label} ({status}){detail}")


@functools.cache
def probe() -> Device:
    """Query the driver once; never raises (problems are reported in ``Device.problem``)."""
    try:
        lib = _driver()
    except OSError as exc:
        return Device(None, None, 0, None, f"no CUDA driver ({_LIBCUDA} cannot be loaded: {exc})")
    version = ctypes.c_int()
    driver_version = None
    try:
        _check(lib, "cuDriverGetVersion", lib.cuDriverGetVersion(ctypes.byref(version)))
        driver_version = version.value
        _check(lib, "cuInit", lib.cuInit(0))
        count = ctypes.c_int()
        _check(lib, "cuDeviceGetCount", lib.cuDeviceGetCount(ctypes.byref(count)))
        if count.value == 0:
            return Device(None, None, 0, driver_version, "no CUDA device (device count is 0)")
        device = ctypes.c_int()
        _check(lib, "cuDeviceGet", lib.cuDeviceGet(ctypes.byref(device), 0))
        major, minor = ctypes.c_int(), ctypes.c_int()
        for attr, out in ((_ATTR_CC_MAJOR, major), (_ATTR_CC_MINOR, minor)):
            status = lib.cuDeviceGetAttribute(ctypes.byref(out), attr, device)
            _check(lib, "cuDeviceGetAttribute", status)
        name = ctypes.create_string_buffer(256)
        _check(lib, "cuDeviceGetName", lib.cuDeviceGetName(name, len(name), device))
    except _DriverError as exc:
        return Device(None, None, 0, driver_version, f"no usable CUDA device ({exc})")
    sm = 10 * major.value + minor.value
    return Device(sm, name.value.decode(errors="replace"), count.value, driver_version, None)


def synchronize() -> None:
    """Wait for all work of the calling thread's current CUDA context (``cuCtxSynchronize``).

    Used after launches on behalf of frameworks that expose no stream to order work with.
    """
    lib = _driver()
    _check(lib, "cuCtxSynchronize", lib.cuCtxSynchronize())
