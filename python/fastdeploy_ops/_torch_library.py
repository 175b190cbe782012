"""The ops as PyTorch operators: ``torch.ops.fastdeploy_ops.<op>``.

Each kernel function of the bindings becomes one operator with the binding's arguments (the
stream excluded: the operator takes the caller's current stream) and the schema its family
module declares in ``TORCH_SCHEMAS``, where ``(a!)`` marks every tensor the kernel writes. The
operators return nothing: the typed Python API allocates the outputs and passes them in, as
vLLM's operators do, so the fake (meta) implementation has nothing to compute and
``torch.compile`` traces the API's allocations and shape checks itself.

The implementation is registered for the CUDA and CPU dispatch keys (a CPU tensor reaches the
binding and gets its "must be a CUDA tensor" error). Registration happens once per process, on
the first torch tensor an op is given, on ``import fastdeploy_ops`` when torch is already
imported, or by :func:`register`; this module imports torch only then.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

NAMESPACE = "fastdeploy_ops"

_library: Any = None  # the torch.library.Library that owns the operators, once registered


def registered() -> bool:
    """Whether this process has registered the operators."""
    return _library is not None


def register() -> None:
    """Registers every kernel of every family module with torch (idempotent)."""
    global _library
    if _library is not None:
        return
    torch = importlib.import_module("torch")
    from . import _family_modules  # noqa: PLC0415 (the package imports this module)
    from ._tensors import TORCH, run_kernel  # noqa: PLC0415 (it imports this module)

    library = torch.library.Library(NAMESPACE, "FRAGMENT")
    for name in _family_modules():
        module = importlib.import_module(f"{__package__}.{name}")
        for kernel, schema in module.TORCH_SCHEMAS.items():
            qualname = f"{NAMESPACE}::{kernel.torch_name}"
            library.define(kernel.torch_name + schema)
            implementation = functools.partial(_run, run_kernel, TORCH, kernel)
            for key in ("CUDA", "CPU"):
                library.impl(kernel.torch_name, implementation, key)
            torch.library.register_fake(qualname, _no_outputs, lib=library)
    _library = library


def call(kernel: Any, args: Sequence[Any]) -> None:
    """``torch.ops.fastdeploy_ops.<kernel's operator>(*args)``."""
    getattr(getattr(sys.modules["torch"].ops, NAMESPACE), kernel.torch_name)(*args)


def _run(run_kernel: Callable[..., None], framework: Any, kernel: Any, *args: Any) -> None:
    run_kernel(framework, kernel, args)


def _no_outputs(*args: Any) -> None:
    """Fake implementation: the operators only write tensors they are given."""
    del args
