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
    "PTX_MIN_DRIVER_VERSION",
    "Selection",
    "describe_driver",
    "parse_forced_sm",
    "select_module",
    "selection",
]

ENV_FORCE_SM = "FASTDEPLOY_OPS_SM"
# The modules' PTX comes from the CUDA 12.4 toolkit; a driver JIT-compiles PTX only from a
# toolkit no newer than itself (cuDriverGetVersion 12040 = CUDA 12.4).
PTX_MIN_DRIVER_VERSION = 12040


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
