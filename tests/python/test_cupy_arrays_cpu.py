"""How the bindings read CuPy arrays (binding.h's CupyArray), without a GPU or CuPy.

A stand-in ``cupy`` module whose ``ndarray`` has CuPy's attributes (``data.ptr``,
``data.device_id``, ``shape``, byte ``strides``, a numpy ``dtype``, and, as CuPy's cdef fields
do, ``_c_contiguous`` and the extents list ``_shape``) and no ``__dlpack__`` is put in
``sys.modules``, and its arrays are passed to the forced sm70 module's ``gelu_tanh`` binding;
every test runs with and without the cdef fields (without them the binding reads the public
attributes). Its checks run before any launch and report what the binding read: the dtype's
name for every kind (bfloat16 too, which CuPy takes from ml_dtypes), the shape, whether the
strides are row-major, the device; a contiguous array's strides are not read at all. Arrays
the attribute reading must leave to DLPack (a subclass, more than 8 dimensions, byte strides
that are not whole elements, a non-native byte order, a failing attribute) then fail
nanobind's conversion: the stand-in has no ``__dlpack__``. The GPU suite
(fastdeploy_ops/tests/test_cupy_arrays.py) runs real CuPy arrays through the kernels.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops._loader import get_op

pytestmark = pytest.mark.usefixtures("sm70")


class _Pointer:
    def __init__(self, ptr: int, device_id: int) -> None:
        self.ptr = ptr
        self.device_id = device_id


def _c_contiguous(shape: tuple[int, ...], strides: tuple[int, ...], itemsize: int) -> bool:
    """CuPy's C-contiguity flag: row-major strides, size-1 dimensions' strides ignored."""
    if 0 in shape:
        return True
    expected = itemsize
    for extent, stride in zip(reversed(shape), reversed(strides)):
        if extent != 1 and stride != expected:
            return False
        expected *= extent
    return True


class ndarray:  # noqa: N801 (CuPy's name: the binding looks up cupy.ndarray)
    """Just the attributes the binding reads."""

    cdef_fields = True  # set per test by the fake_cupy fixture

    def __init__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 strides: tuple[int, ...] | None = None, device: int = 0,
                 ptr: int = 1 << 20) -> None:
        self.dtype = dtype if isinstance(dtype, types.SimpleNamespace) else np.dtype(dtype)
        self.shape = tuple(shape)
        if strides is None:
            strides = np.empty(shape, f"V{self.dtype.itemsize}").strides
        self.byte_strides = tuple(strides)
        self.strides_readable = True
        self.data = _Pointer(ptr, device)
        if self.cdef_fields:
            self._shape = list(self.shape)
            self._c_contiguous = _c_contiguous(self.shape, self.byte_strides, self.dtype.itemsize)

    @property
    def strides(self) -> tuple[int, ...]:
        assert self.strides_readable, "the binding read a contiguous array's strides"
        return self.byte_strides


class _Sub(ndarray):
    pass


class _BrokenPointer:
    device_id = 0

    @property
    def ptr(self) -> int:
        raise RuntimeError("no pointer")


@pytest.fixture(autouse=True, params=[True, False], ids=["cdef-fields", "public-attributes"])
def fake_cupy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ndarray, "cdef_fields", request.param)
    module = types.ModuleType("cupy")
    module.ndarray = ndarray
    monkeypatch.setitem(sys.modules, "cupy", module)


def gelu(x: Any, out: Any) -> None:
    get_op("activation", "gelu_tanh")(x, out, 0)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "int32", "int64", "bool",
                                   "float64"])
def test_the_dtype_of_every_kind_is_read(dtype: str, rejects: Callable[..., str]) -> None:
    message = rejects(TypeError, "gelu_tanh", "input",
                      lambda: gelu(ndarray((4, 8), dtype), ndarray((4, 8))))
    assert message.endswith(f"got {dtype}"), message


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_an_accepted_dtype_passes_and_the_output_dtype_is_compared(
        dtype: str, rejects: Callable[..., str]) -> None:
    other = "float32" if dtype == "float16" else "float16"
    message = rejects(TypeError, "gelu_tanh", "out",
                      lambda: gelu(ndarray((4, 8), dtype), ndarray((4, 8), other)))
    assert message.endswith(f"got {other}"), message


def ml_dtype(name: str) -> types.SimpleNamespace:
    """What the binding reads of an ml_dtypes dtype (CuPy's bfloat16): numpy kind V."""
    return types.SimpleNamespace(kind="V", itemsize=2, isnative=True, name=name)


def test_ml_dtypes_bfloat16_is_read(rejects: Callable[..., str]) -> None:
    message = rejects(TypeError, "gelu_tanh", "out",
                      lambda: gelu(ndarray((4, 8), ml_dtype("bfloat16")), ndarray((4, 8))))
    assert "(bfloat16)" in message and message.endswith("got float32"), message


def test_the_shape_is_read(rejects: Callable[..., str]) -> None:
    message = rejects(ValueError, "gelu_tanh", "out",
                      lambda: gelu(ndarray((3, 5, 7)), ndarray((3, 5, 8))))
    assert "[3, 5, 7]" in message and message.endswith("got [3, 5, 8]"), message


@pytest.mark.parametrize(("shape", "strides"), [
    ((4, 64), (512, 8)),  # every other column
    ((64, 4), (4, 256)),  # transposed
    ((4, 64), (512, 4)),  # every other row
])
def test_strides_in_bytes_are_read_as_elements(shape: tuple[int, ...], strides: tuple[int, ...],
                                               rejects: Callable[..., str]) -> None:
    message = rejects(ValueError, "gelu_tanh", "input",
                      lambda: gelu(ndarray(shape, strides=strides), ndarray(shape)))
    assert "contiguous" in message and f"strided view of shape {list(shape)}" in message, message


def test_row_major_arrays_pass_and_the_device_is_read(rejects: Callable[..., str]) -> None:
    """Row-major strides (also odd ones of size-1 dimensions) pass the contiguity check; the
    device check after it names the second array's device."""
    x = ndarray((4, 1, 64), strides=(256, 12345 * 4, 4), device=0)
    message = rejects(ValueError, "gelu_tanh", "out",
                      lambda: gelu(x, ndarray((4, 1, 64), device=3)))
    assert message.endswith("got cuda:3") and "(cuda:0)" in message, message


@pytest.mark.parametrize("make", [
    lambda: _Sub((4, 8)),
    lambda: ndarray((1,) * 9),
    lambda: ndarray((4, 8), strides=(32, 2)),
    lambda: ndarray((4, 8), dtype=">f4"),
    lambda: ndarray((4, 8), dtype="complex64"),
    lambda: ndarray((4, 8), dtype=ml_dtype("float16_custom")),
], ids=["subclass", "9-dims", "half-element-stride", "big-endian", "complex", "other-kind-V"])
def test_what_the_attributes_cannot_describe_is_left_to_dlpack(make: Callable[[], Any]) -> None:
    x = make()
    with pytest.raises(TypeError, match="incompatible function arguments"):
        gelu(x, ndarray(x.shape))


def test_a_contiguous_array_is_read_from_its_extents_alone(rejects: Callable[..., str]) -> None:
    """With CuPy's cdef fields, a C-contiguous array's byte strides are never asked for (its
    row-major strides follow from ``_shape``)."""
    x, out = ndarray((3, 5, 7)), ndarray((3, 5, 8))
    x.strides_readable = out.strides_readable = not ndarray.cdef_fields
    message = rejects(ValueError, "gelu_tanh", "out", lambda: gelu(x, out))
    assert message.endswith("got [3, 5, 8]"), message


def test_a_failing_attribute_leaves_no_error_behind() -> None:
    x = ndarray((4, 8))
    x.data = _BrokenPointer()
    with pytest.raises(TypeError, match="incompatible function arguments"):
        gelu(x, ndarray((4, 8)))
