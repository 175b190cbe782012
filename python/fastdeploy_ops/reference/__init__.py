"""numpy reference implementations of the ops, written from each family's documented semantics
(``ops/<family>/README.md``).

Inputs are numpy arrays; half-precision callers widen to float32 first (exactly). Math is
float32 throughout, so results track the kernels to a few ulp; selections use a stable sort
(value descending, index ascending), i.e. ties go to the lowest index.

Each family's reference is the module ``reference/<family>.py``, whose ``__all__`` lists its
public names. They are also reachable here, ``reference.<name>``: on first use the family
modules are imported and the name is looked up in their ``__all__`` (names are unique across
families). Modules whose name starts with ``_`` (shared numerics) are private.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any


@functools.cache
def _family_modules() -> tuple[str, ...]:
    """The public modules of this package, one per family, found by their files."""
    return tuple(sorted(
        m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))


@functools.cache
def _owners() -> dict[str, str]:
    """Public name -> the family module whose ``__all__`` lists it (imports every module).

    Raises:
        ImportError: two modules list the same name, or a name is also a module's name (one
            would hide the other).
    """
    modules = _family_modules()
    owners: dict[str, str] = {}
    for module in modules:
        for name in importlib.import_module(f"{__name__}.{module}").__all__:
            if name in owners or name in modules:
                other = owners.get(name, f"the module {name}")
                raise ImportError(f"{__name__}: {name!r} is public in both {module} and {other}")
            owners[name] = module
    return owners


def __getattr__(name: str) -> Any:
    """``reference.<family>`` (a module) or ``reference.<name>`` from a family's ``__all__``.

    Raises:
        AttributeError: no family module is called ``name`` or lists it in its ``__all__``.
    """
    if name == "__all__":
        return sorted(_owners())
    if name.startswith("__"):  # introspection (``__wrapped__``...) imports no family
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name in _family_modules():
        return importlib.import_module(f"{__name__}.{name}")
    module = _owners().get(name)
    if module is None:
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r}: it is not a module of the package "
            f"nor in the __all__ of {', '.join(_family_modules())}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    """Every family module and every name they make public."""
    return sorted(set(_family_modules()) | set(_owners()))
