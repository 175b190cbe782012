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

import importlib
import sys
from collections.abc import Sequence
from typing import Any

NAMESPACE = "fastdeploy_ops"

_library: Any = None  # the torch.library.Library that owns the operators, once registered
_operators: dict[Any, Any] = {}  # Kernel -> its operator's OpOverload


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
    from ._tensors import torch_operator_implementation  # noqa: PLC0415 (it imports this module)

    library = torch.library.Library(NAMESPACE, "FRAGMENT")
    for name in _family_modules():
        module = importlib.import_module(f"{__package__}.{name}")
        for kernel, schema in module.TORCH_SCHEMAS.items():
            qualname = f"{NAMESPACE}::{kernel.torch_name}"
            library.define(kernel.torch_name + schema)
            operator = getattr(getattr(torch.ops, NAMESPACE), kernel.torch_name).default
            implementation = torch_operator_implementation(kernel, _tensor_positions(operator))
            for key in ("CUDA", "CPU"):
                library.impl(kernel.torch_name, implementation, key)
            torch.library.register_fake(qualname, _no_outputs, lib=library)
            _operators[kernel] = operator
    _library = library


def call(kernel: Any, args: Sequence[Any]) -> None:
    """``torch.ops.fastdeploy_ops.<kernel's operator>.default(*args)``."""
    _operators[kernel](*args)


def _tensor_positions(operator: Any) -> tuple[int, ...]:
    """The positions of the operator's tensor arguments; the first must be a required tensor
    (its device says which stream the kernel runs on)."""
    torch = sys.modules["torch"]
    arguments = operator._schema.arguments
    positions = tuple(i for i, argument in enumerate(arguments)
                      if argument.type.isSubtypeOf(torch._C.OptionalType.ofTensor()))
    if not positions or arguments[positions[0]].type != torch._C.TensorType.get():
        raise TypeError(f"{operator}: the schema's first tensor argument must be a required "
                        f"Tensor, got {operator._schema}")
    return positions


def _no_outputs(*args: Any) -> None:
    """Fake implementation: the operators only write tensors they are given."""
    del args
