"""What the package contains and what it can run here: ``info()`` and ``available_ops()``."""

from __future__ import annotations

from typing import Any

from . import _loader, _manifest, _selection, _torch_library
from .errors import DeviceUnavailableError

__all__ = ["Info", "available_ops", "info"]

# info()["torch_operators"] until the operators are registered (torch imported before this
# package, a torch tensor given to an op, or register_torch_ops()).
_NOT_REGISTERED = "not registered yet (see fastdeploy_ops.register_torch_ops)"


class Info(dict[str, Any]):
    """``info()``'s dict; ``str()`` gives a readable multi-line report."""

    def __str__(self) -> str:
        dev = self["device"]
        device = f"{dev['name']} (SM{dev['sm']}, {dev['count']} visible)" if dev else "none"
        problem = f" - {self['device_problem']}" if self["device_problem"] else ""
        modules = ", ".join(
            f"{name} (sm{sm}, CUDA {self['toolkits'][sm]['cuda']}, driver "
            f"{self['toolkits'][sm]['min_driver'] or '?'}+)"
            for sm, name in self["modules"].items()) or "none"
        lines = [
            f"fastdeploy_ops {self['package_version']} ({self['package_dir']})",
            f"modules in this package: {modules}",
            f"device: {device}{problem}",
            f"driver: {_selection.describe_driver(self['driver_version'])}",
            f"module: {self['module'] or 'none'} - {self['reason']}",
        ]
        if self["load_error"]:
            lines.append(f"load error: {self['load_error']}")
        lines.append("ops: " + (", ".join(self["ops"]) or "none"))
        lines += [f"skipped: {family}: {reason}" for family, reason in self["skipped"].items()]
        lines += [f"kernels: {family}: {where}" for family, where in self["kernels"].items()]
        lines.append(f"torch operators: {self['torch_operators']}")
        return "\n".join(lines)


def _loaded_manifest() -> tuple[_manifest.Manifest | None, str | None]:
    """The chosen module's manifest if the module imports, and the import error if not."""
    manifest = _selection.selection().manifest
    if manifest is None:
        return None, None
    try:
        _loader.load_module()
    except DeviceUnavailableError as exc:
        return None, exc.reason
    return manifest, None


def info() -> Info:
    """Report the package, the device and the chosen module.

    Keys: ``package_version``, ``package_dir``, ``modules`` (``{sm: module name}`` of every
    module in the wheel), ``toolkits`` (``{sm: {"cuda": version, "min_driver": release}}``: the
    CUDA toolkit each module was built with and the oldest driver that runs it), ``forced_sm``
    (``FASTDEPLOY_OPS_SM`` or ``None``), ``module`` and ``module_sm`` (the chosen module,
    ``None`` when there is none), ``reason`` (why it was chosen, or why nothing was),
    ``load_error`` (why its import failed, else ``None``), ``device`` (``{"sm", "name",
    "count"}`` or ``None``), ``device_problem`` (why there is no device, else ``None``),
    ``driver_version`` (``cuDriverGetVersion``, ``None`` without driver), ``ops`` (sorted op
    names of the loaded module), ``skipped`` (``{family: reason}`` for the families the chosen
    module was built without), ``kernels`` (``{family: where its kernels come from}``: built
    in, JIT-compiled for the GPU (or to be, on first use), PTX, unavailable) and
    ``torch_operators`` (what implements ``torch.ops.fastdeploy_ops``: ``"C++ (<library>)"``,
    ``"Python (<why>)"``, or that they are not registered yet).

    Probes the device and imports the chosen module on first use; never raises for a missing
    GPU or module.
    """
    chosen = _selection.selection()
    loaded, load_error = _loaded_manifest()
    dev = chosen.device
    manifest = chosen.manifest
    return Info(
        package_version=_manifest.package_version(),
        package_dir=str(_manifest.PACKAGE_DIR),
        modules={sm: m.module for sm, m in sorted(chosen.manifests.items())},
        toolkits={sm: {"cuda": m.cuda_version, "min_driver": m.cuda_min_driver}
                  for sm, m in sorted(chosen.manifests.items())},
        forced_sm=chosen.forced_sm,
        module=manifest.module if manifest else None,
        module_sm=chosen.sm,
        reason=chosen.reason,
        load_error=load_error,
        device={"sm": dev.sm, "name": dev.name, "count": dev.count} if dev.sm else None,
        device_problem=dev.problem,
        driver_version=dev.driver_version,
        ops=loaded.ops if loaded else [],
        skipped={name: f.reason for name, f in manifest.skipped.items()} if manifest else {},
        kernels=_loader.describe_kernels(
            chosen, _loader.load_module()._kernel_families() if loaded else {}),
        torch_operators=_torch_library.implementation() or _NOT_REGISTERED,
    )


def available_ops() -> list[str]:
    """Sorted names of the ops the loaded module provides (empty without a usable module)."""
    loaded, _ = _loaded_manifest()
    return loaded.ops if loaded else []
