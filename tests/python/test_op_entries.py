"""The modules' C entry points (ops/common/op_entry.h), called through ctypes without a GPU.

The torch operators' C++ implementation calls these; here they are reached without torch, from
the real sm80 module (forced): every kernel function has one, and an entry runs the binding's
checks on C values, refuses values of the wrong kind or count, and reports each error with the
status of the Python exception the binding would raise.
"""

from __future__ import annotations

import ctypes
import re
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import _loader, _torch_library

pytestmark = pytest.mark.usefixtures("sm80")

NONE, TENSOR, INT, FLOAT, BOOL = range(5)
OK, TYPE_ERROR, VALUE_ERROR, RUNTIME_ERROR = range(4)
KDL_CPU = 1


class CTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("ndim", ctypes.c_int32),
                ("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32),
                ("dtype_code", ctypes.c_uint8), ("dtype_bits", ctypes.c_uint8),
                ("dtype_lanes", ctypes.c_uint16)]


class CValueData(ctypes.Union):
    _fields_ = [("tensor", CTensor), ("integer", ctypes.c_int64), ("real", ctypes.c_double),
                ("boolean", ctypes.c_int32)]


class CValue(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int32), ("as_", CValueData)]


CALL = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.POINTER(CValue), ctypes.c_int32,
                        ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t)


class CEntry(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("op", ctypes.c_void_p), ("call", CALL)]


class CEntries(ctypes.Structure):
    _fields_ = [("abi", ctypes.c_uint32), ("count", ctypes.c_uint32),
                ("entries", ctypes.POINTER(CEntry))]


def entries() -> dict[str, CEntry]:
    # The table the C++ torch operators get (the address the resolver returns); importing
    # _torch_library does not import torch.
    table = CEntries.from_address(_torch_library._entry_table())
    assert table.abi == 1
    return {table.entries[i].name.decode(): table.entries[i] for i in range(table.count)}


# DLPack (code, bits) of the numpy dtypes used here.
_CODES = {"float32": (2, 32), "float64": (2, 64), "int32": (0, 32), "int64": (0, 64)}
_keep: list[Any] = []  # the arrays and shape buffers the C values point into


def tensor(array: np.ndarray) -> CValue:
    shape = (ctypes.c_int64 * max(array.ndim, 1))(*array.shape)
    strides = (ctypes.c_int64 * max(array.ndim, 1))(*(s // array.itemsize for s in array.strides))
    _keep.extend((array, shape, strides))
    code, bits = _CODES[str(array.dtype)]
    value = CValue(kind=TENSOR)
    value.as_.tensor = CTensor(array.ctypes.data, shape, strides, array.ndim, KDL_CPU, 0, code,
                               bits, 1)
    return value


def integer(n: int) -> CValue:
    value = CValue(kind=INT)
    value.as_.integer = n
    return value


def real(x: float) -> CValue:
    value = CValue(kind=FLOAT)
    value.as_.real = x
    return value


def boolean(b: bool) -> CValue:
    value = CValue(kind=BOOL)
    value.as_.boolean = int(b)
    return value


def call(op: str, *args: CValue, message_size: int = 1024) -> tuple[int, str]:
    entry = entries()[op]
    values = (CValue * max(len(args), 1))(*args)
    message = ctypes.create_string_buffer(message_size)
    status = entry.call(entry.op, values, len(args), 0, message, message_size)
    return status, message.value.decode()


def kernel_functions() -> set[str]:
    """The module's functions that take a stream (its kernel functions), from nanobind's
    signatures."""
    module = _loader.load_module()
    return {name for name in dir(module)
            if re.search(r"\bstream: int\b", str(getattr(getattr(module, name),
                                                         "__nb_signature__", "")))}


def test_every_kernel_function_has_an_entry() -> None:
    assert set(entries()) == kernel_functions()
    assert "gelu_tanh" in entries() and "paged_attention_plan" not in entries()


def test_an_entry_runs_the_bindings_checks() -> None:
    x = np.zeros((2, 3), np.float32)
    assert call("gelu_tanh", tensor(x), tensor(np.zeros((2, 3), np.float32))) == (
        VALUE_ERROR, "gelu_tanh: argument 'input' must be a CUDA tensor, got a cpu tensor")
    assert call("gelu_tanh", tensor(x.astype(np.int32)), tensor(x)) == (
        TYPE_ERROR, "gelu_tanh: argument 'input' must have dtype float32, float16 or bfloat16, "
                    "got int32")
    assert call("gelu_tanh", tensor(x), tensor(np.zeros((3, 2), np.float32))) == (
        VALUE_ERROR, "gelu_tanh: argument 'out' must have shape input.shape = [2, 3], got [3, 2]")


def _routing(n_group: CValue) -> tuple[CValue, ...]:
    f32 = np.float32
    return (tensor(np.zeros((2, 16), f32)), tensor(np.zeros(16, f32)),
            tensor(np.zeros((2, 16), f32)), tensor(np.zeros((2, 2), f32)),
            tensor(np.zeros((2, 2), np.int64)), n_group, integer(1), integer(2), boolean(True),
            real(1.0))


def test_ints_floats_and_bools_arrive_in_their_positions() -> None:
    assert call("grouped_topk", *_routing(integer(3))) == (
        VALUE_ERROR, "grouped_topk: argument 'n_group' must divide the number of experts E = 16, "
                     "got 3")
    inf = list(_routing(integer(4)))
    inf[-1] = real(float("inf"))
    assert call("grouped_topk", *inf) == (
        VALUE_ERROR, "grouped_topk: argument 'routed_scaling_factor' must be finite, got inf")


def test_values_of_the_wrong_kind_count_or_range_are_refused() -> None:
    x = tensor(np.zeros(4, np.float32))
    assert call("gelu_tanh", integer(1), x) == (
        TYPE_ERROR, "gelu_tanh: argument #1 of the kernel function must be a tensor, got an int")
    assert call("gelu_tanh", x, CValue(kind=NONE)) == (
        TYPE_ERROR, "gelu_tanh: argument #2 of the kernel function must be a tensor, got None")
    assert call("gelu_tanh", x) == (
        RUNTIME_ERROR, "gelu_tanh: the operator passed 1 arguments, the kernel function takes 2 "
                       "besides the stream")
    assert call("grouped_topk", *_routing(integer(2**40))) == (
        VALUE_ERROR, "grouped_topk: argument #6 of the kernel function must be a 32-bit int, got "
                     "1099511627776")
    assert call("grouped_topk", *_routing(real(4.0)))[0] == TYPE_ERROR


def test_the_message_is_cut_to_the_buffer() -> None:
    x = tensor(np.zeros(4, np.float32))
    assert call("gelu_tanh", x, x, message_size=10) == (VALUE_ERROR, "gelu_tanh")
