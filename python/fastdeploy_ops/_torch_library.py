"""The ops as PyTorch operators: ``torch.ops.fastdeploy_ops.<op>``.

Each kernel function of the bindings becomes one operator with the binding's arguments (the
stream excluded: the operator takes the caller's current stream) and the schema its family
module declares in ``TORCH_SCHEMAS``, where ``(a!)`` marks every tensor the kernel writes. The
operators return nothing: the typed Python API allocates the outputs and passes them in, as
vLLM's operators do, so the fake (meta) implementation has nothing to compute and
``torch.compile`` traces the API's allocations and shape checks itself.

The implementation, registered for the CUDA and CPU dispatch keys (a CPU tensor reaches the
binding and gets its "must be a CUDA tensor" error), is C++ where the wheel has the library
built for the imported torch release (``_torch_ops_<major>_<minor>.so``, see ``ops/torch``):
the dispatcher calls the extension module's kernel function directly, with no Python on the
call. Under another torch release, or with ``FASTDEPLOY_OPS_TORCH_NATIVE=0``, it is a Python
function that calls the binding (:func:`._tensors.torch_operator_implementation`), some
microseconds slower per call. :func:`implementation` says which one this process uses.

Registration happens once per process, on the first torch tensor an op is given, on
``import fastdeploy_ops`` when torch is already imported, or by :func:`register`; this module
imports torch only then. The C++ operators find the extension module on their first call.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._loader import get_op, load_module

NAMESPACE = "fastdeploy_ops"
ENV_NATIVE = "FASTDEPLOY_OPS_TORCH_NATIVE"

_library: Any = None  # the torch.library.Library that owns the operators, once registered
_operators: dict[Any, Any] = {}  # Kernel -> its operator's OpOverload
_kernels: dict[str, Any] = {}  # operator name -> Kernel
_implementation = ""  # what implements the operators (see implementation())

# The C++ operators' resolver (fdops_torch_set_resolver): kept alive for the process.
_RESOLVER = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t)
_resolver: Any = None


def registered() -> bool:
    """Whether this process has registered the operators."""
    return _library is not None


def implementation() -> str:
    """What implements the operators in this process: ``"C++ (<library path>)"`` or
    ``"Python (<why>)"``; empty before :func:`register`."""
    return _implementation


def register() -> None:
    """Registers every kernel of every family module with torch (idempotent)."""
    global _library, _implementation
    if _library is not None:
        return
    torch = importlib.import_module("torch")
    from . import _family_modules  # noqa: PLC0415 (the package imports this module)
    from ._tensors import torch_operator_implementation  # noqa: PLC0415 (it imports this module)

    native, why = _native_library(torch)
    library = torch.library.Library(NAMESPACE, "FRAGMENT")
    in_python = []  # operators the C++ library could not implement
    for name in _family_modules():
        module = importlib.import_module(f"{__package__}.{name}")
        for kernel, schema in module.TORCH_SCHEMAS.items():
            qualname = f"{NAMESPACE}::{kernel.torch_name}"
            library.define(kernel.torch_name + schema)
            operator = getattr(getattr(torch.ops, NAMESPACE), kernel.torch_name).default
            positions = _tensor_positions(operator)
            problem = why if native is None else _implement_natively(native, kernel)
            if problem:
                implementation = torch_operator_implementation(kernel, operator, positions)
                for key in ("CUDA", "CPU"):
                    library.impl(kernel.torch_name, implementation, key)
                in_python.append(f"{kernel.torch_name}: {problem}")
            torch.library.register_fake(qualname, _no_outputs, lib=library)
            _operators[kernel] = operator
            _kernels[kernel.torch_name] = kernel
    _library = library
    if native is None:
        _implementation = f"Python ({why})"
    else:
        _implementation = f"C++ ({native._name})" + (
            f"; Python for {'; '.join(in_python)}" if in_python else "")


def call(kernel: Any, args: Sequence[Any]) -> None:
    """``torch.ops.fastdeploy_ops.<kernel's operator>.default(*args)``.

    Raises what :func:`._loader.get_op` raises (``OpUnavailableError``...) when the kernels
    cannot be had; the C++ operators can only raise ``RuntimeError`` with its message.
    """
    try:
        _operators[kernel](*args)
    except RuntimeError:
        get_op(kernel.family, kernel.op, kernel.group)  # raises the typed error, if that was it
        raise


def _native_library(torch: Any) -> tuple[Any, str]:
    """The C++ operators' library for the imported torch release, loaded, or None and why not."""
    if os.environ.get(ENV_NATIVE, "1") == "0":
        return None, f"{ENV_NATIVE}=0"
    release = "_".join(torch.__version__.split("+")[0].split(".")[:2])
    path = Path(__file__).with_name(f"_torch_ops_{release}.so")
    if not path.exists():
        built = sorted(p.name for p in Path(__file__).parent.glob("_torch_ops_*.so"))
        return None, (f"no C++ operators for torch {torch.__version__} in this wheel (it has "
                      f"{', '.join(built) or 'none'})")
    try:
        native = ctypes.CDLL(str(path))
    except OSError as error:  # a torch build without CUDA lacks libc10_cuda.so
        return None, f"cannot load {path.name}: {error}"
    global _resolver
    _resolver = _RESOLVER(_resolve)
    native.fdops_torch_set_resolver.argtypes = [_RESOLVER]
    native.fdops_torch_set_resolver(_resolver)
    native.fdops_torch_implement.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_char_p,
                                                                      ctypes.c_size_t]
    return native, ""


def _implement_natively(native: Any, kernel: Any) -> str:
    """Registers the C++ implementation of ``kernel``'s operator; why not, if it cannot be."""
    message = ctypes.create_string_buffer(1024)
    failed = native.fdops_torch_implement(NAMESPACE.encode(), kernel.torch_name.encode(),
                                          kernel.op.encode(), message, len(message))
    return message.value.decode(errors="replace") if failed else ""


def _resolve(op: bytes, message: int, size: int) -> int | None:
    """The C++ operators' resolver: the module's entry table once ``op``'s kernels are loaded
    (through :func:`._loader.get_op`, which may JIT-compile them), else None with the error."""
    try:
        kernel = _kernels[op.decode()]
        get_op(kernel.family, kernel.op, kernel.group)
        return _entry_table()
    except Exception as error:  # noqa: BLE001 (the operator raises it as its RuntimeError)
        text = str(error).encode(errors="replace")[: size - 1] + b"\0"
        ctypes.memmove(message, text, len(text))
        return None


_CAPSULE_POINTER = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))


def _entry_table() -> int:
    """The address of the loaded module's fdops_op_entries (its capsule ``_op_entries``)."""
    return _CAPSULE_POINTER(load_module()._op_entries, b"fastdeploy_ops.op_entries.v1")


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
