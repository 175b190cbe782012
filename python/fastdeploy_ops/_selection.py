"""Which ``_ops_smNN`` module fits this process's GPU: a pure rule and its one evaluation.

:func:`select_module` is a pure function of the SMs in the wheel, the device's SM, the driver
version and ``FASTDEPLOY_OPS_SM``; :func:`selection` applies it once, on first use, to this
process (never raising: a failure is the selection's reason).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import _device
from ._manifest import Manifest, read_manifests

__all__ = [
    "ENV_FORCE_SM",
    "Selection",
    "describe_driver",
    "driver_api_version",
    "parse_forced_sm",
    "select_module",
    "selection",
]

ENV_FORCE_SM = "FASTDEPLOY_OPS_SM"


def driver_api_version(cuda_version: str) -> int:
    """A toolkit version (``"12.4.131"``) as ``cuDriverGetVersion`` numbers it (``12040``)."""
    major, minor = (int(part) for part in cuda_version.split(".")[:2])
    return major * 1000 + minor * 10


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
    modules: Mapping[int, str],
    device_sm: int | None,
    driver_version: int | None,
    forced_sm: int | None,
) -> tuple[int | None, str]:
    """Pick the module to load from ``modules`` (SM -> the CUDA version it was built with,
    ``"12.4.131"``); returns ``(sm or None, reason)``.

    A module runs its SASS on a driver of its toolkit's major line or newer (minor-version
    compatibility: CUDA 13.5 code on any CUDA 13 driver), and has its PTX JIT-compiled only by a
    driver at least as new as its toolkit. Rules, in order:

    1. ``forced_sm`` (from ``FASTDEPLOY_OPS_SM``) picks that module if the wheel has it, even
       without a GPU (argument validation still works); otherwise nothing is picked.
    2. Without a device nothing is picked.
    3. A module of the device's major version whose SASS this driver runs, the highest SM not
       above the device's (SASS is compatible within a major version, upwards in minor).
    4. Else the highest SM below the device's whose PTX this driver can JIT-compile.
    5. Else nothing; the reason names the driver a module would need.
    """
    available = sorted(modules)
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
        elif driver_version is not None and driver_version < _line(modules[forced_sm]):
            reason += f" ({_needs(forced_sm, modules[forced_sm], driver_version)})"
        return forced_sm, reason
    if not available:
        return None, "this package contains no _ops_smNN module (no manifest_sm*.json)"
    if device_sm is None:
        return None, "no GPU"
    driver = driver_version or 0
    same_major = [sm for sm in available if sm // 10 == device_sm // 10 and sm <= device_sm]
    native = [sm for sm in same_major if driver >= _line(modules[sm])]
    if native:
        return max(native), (
            f"sm{max(native)} runs natively on the SM{device_sm} device "
            f"(same major version, highest not above the device)"
        )
    refused = [_needs(sm, modules[sm], driver_version) for sm in same_major]
    older = [sm for sm in available if sm < device_sm and sm // 10 != device_sm // 10]
    jit = [sm for sm in older if driver >= driver_api_version(modules[sm])]
    if jit:
        return max(jit), "; ".join(refused + [
            f"no module for SM{device_sm}'s major version that this driver runs; "
            f"sm{max(jit)}'s PTX is JIT-compiled by the driver ({describe_driver(driver_version)})"
        ])
    if not older and not same_major:
        return None, f"every module ({_names(available)}) is for a GPU newer than SM{device_sm}"
    if older:
        refused.append(
            f"the driver ({describe_driver(driver_version)}) is too old to JIT-compile the PTX "
            f"of {_names(older)} (built with CUDA "
            f"{', '.join(sorted({modules[sm] for sm in older}))})"
        )
    return None, "; ".join(refused)


def _line(cuda_version: str) -> int:
    """The oldest ``cuDriverGetVersion`` that runs SASS built with ``cuda_version``."""
    return driver_api_version(cuda_version) // 1000 * 1000


def _needs(sm: int, cuda_version: str, driver_version: int | None) -> str:
    major = cuda_version.split(".")[0]
    return (f"sm{sm} is built with CUDA {cuda_version} and needs a driver of the CUDA {major} "
            f"line or newer; this driver is {describe_driver(driver_version)}")


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
    modules = {sm: m.cuda_version for sm, m in manifests.items()}
    sm, reason = select_module(modules, device.sm, device.driver_version, forced_sm)
    if sm is None and device.problem:
        reason = f"{reason}; {device.problem}"
    return Selection(manifests, device, forced_sm, sm, reason)
