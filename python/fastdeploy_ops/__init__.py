"""fastdeploy_ops: LLM-serving CUDA kernels for the tensors you already have.

The wheel holds one compiled module per GPU generation (``_ops_sm70``, ``_ops_sm80``, ...).
The best one for the GPU is chosen and imported on first use (``FASTDEPLOY_OPS_SM=NN`` forces
one); importing this package touches neither the GPU nor any framework, except that when torch
is already imported the ops are registered as ``torch.ops.fastdeploy_ops.<op>`` (otherwise on
the first torch tensor an op is given, or by :func:`register_torch_ops`).

- :func:`info` and :func:`available_ops`: what is in the wheel and what can run here.
- :mod:`fastdeploy_ops.moe_routing`, :mod:`fastdeploy_ops.attention`, ...: the ops, one module per
  kernel family, taking torch / paddle / cupy / jax tensors. Every submodule is imported on first
  access (``fastdeploy_ops.rotary`` works after ``import fastdeploy_ops``).
- :mod:`fastdeploy_ops.reference`: numpy reference implementations.
- :mod:`fastdeploy_ops.testing` and ``python -m fastdeploy_ops.selftest``: the shipped tests.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
import sys
from types import ModuleType

from ._info import Info, available_ops, info
from ._manifest import PACKAGE_DIR as _PACKAGE_DIR
from ._manifest import package_version as _package_version
from ._torch_library import register as register_torch_ops
from .errors import DeviceUnavailableError, OpUnavailableError


def _family_modules() -> list[str]:
    """The modules next to this file that hold a kernel family's ops, sorted.

    A family module names its family in a line ``FAMILY = "<its own module name>"`` (what it
    passes to the loader). The files are read, not imported, so that importing the package stays
    cheap and free of side effects.
    """
    found = []
    for path in sorted(_PACKAGE_DIR.glob("*.py")):
        declaration = re.compile(rf'^FAMILY = "{re.escape(path.stem)}"$', re.MULTILINE)
        if not path.stem.startswith("_") and declaration.search(path.read_text(encoding="utf-8")):
            found.append(path.stem)
    return found


__all__ = sorted([
    "DeviceUnavailableError",
    "Info",
    "OpUnavailableError",
    "__version__",
    "available_ops",
    "info",
    "register_torch_ops",
    *_family_modules(),
])

__version__: str = _package_version()

if "torch" in sys.modules:
    register_torch_ops()


@functools.cache
def _public_submodules() -> frozenset[str]:
    """The public modules and packages of this package, found by their files, none imported."""
    return frozenset(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def __getattr__(name: str) -> ModuleType:
    """Imports a submodule on first access (PEP 562): ``fastdeploy_ops.rotary``, ``.reference``.

    Raises:
        AttributeError: ``name`` is neither an attribute nor a public submodule.
    """
    if name in _public_submodules():
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """What the package offers: ``__all__`` and every public submodule, imported or not."""
    return sorted(set(__all__) | _public_submodules())
