"""gelu_tanh on the GPU against ``fastdeploy_ops.reference.gelu_tanh``.

Tolerance. The kernel evaluates ``t = tanh(a)`` with PTX ``tanh.approx.f32``, whose relative
error is about 2**-10.7 (PTX ISA), then ``0.5 * x * (1 + t)`` in fp32, rounded once to the
output dtype. An error ``d * |t|`` in t moves the output by ``0.5 * |x| * |t| * d``; this is an
absolute bound (relative to the output it grows without limit as t -> -1, where the output
vanishes). Rounding adds at most half an ulp of the output dtype; we allow one ulp, so that a
reference value next to a rounding boundary may round either way. The same bound covers an SM70
build that uses the more accurate ``tanhf``.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from fastdeploy_ops import activation
from fastdeploy_ops import reference as ref
from fastdeploy_ops.testing import TensorLib, requires_op, ulp

pytestmark = requires_op("gelu_tanh")

TANH_APPROX_REL_ERROR = 2.0**-10.7
DTYPES = ["float16", "bfloat16", "float32"]


def assert_close_to_reference(x: np.ndarray, got: np.ndarray, dtype: str) -> None:
    x = x.astype(np.float64)
    want = ref.gelu_tanh(x.astype(np.float32)).astype(np.float64)
    t = np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))
    bound = 0.5 * np.abs(x) * np.abs(t) * TANH_APPROX_REL_ERROR + ulp(want, dtype)
    error = np.abs(got.astype(np.float64) - want)
    worst = np.argmax(error - bound) if error.size else 0
    assert (error <= bound).all(), (x.flat[worst], got.flat[worst], want.flat[worst])


def inputs(lib: TensorLib, shape: tuple[int, ...], dtype: str) -> tuple[object, np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(repr((shape, dtype)).encode()))
    x = (rng.standard_normal(shape, dtype=np.float32) * 3).astype(np.float32)
    device_x = lib.to_device(x, dtype)
    return device_x, lib.from_device(device_x).astype(np.float32)


@pytest.mark.parametrize("hidden", [4096, 7168])
@pytest.mark.parametrize("bsz", [1, 32, 64, 128, 1024])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_tanh_matches_reference(tensor_lib: TensorLib, dtype: str, bsz: int,
                                     hidden: int) -> None:
    x, x32 = inputs(tensor_lib, (bsz, hidden), dtype)
    out = activation.gelu_tanh(x)
    assert tuple(out.shape) == (bsz, hidden) and str(out.dtype).endswith(dtype)
    assert_close_to_reference(x32, tensor_lib.from_device(out), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_tanh_special_values(tensor_lib: TensorLib, dtype: str) -> None:
    x = np.array([0.0, -0.0, 1.0, -1.0, 10.0, -10.0, 30.0, -30.0], dtype=np.float32)
    got = tensor_lib.from_device(activation.gelu_tanh(tensor_lib.to_device(x, dtype)))
    assert got[0] == 0 and got[1] == 0
    assert np.isfinite(got).all()
    assert_close_to_reference(x, got, dtype)


def test_gelu_tanh_any_shape_out_and_in_place(tensor_lib: TensorLib) -> None:
    x, x32 = inputs(tensor_lib, (2, 3, 40), "float32")
    out = tensor_lib.empty((2, 3, 40), "float32")
    assert activation.gelu_tanh(x, out=out) is out
    expected = tensor_lib.from_device(out)
    assert_close_to_reference(x32, expected, "float32")
    assert activation.gelu_tanh(x, out=x) is x
    np.testing.assert_array_equal(tensor_lib.from_device(x), expected)


def test_gelu_tanh_empty(tensor_lib: TensorLib) -> None:
    out = activation.gelu_tanh(tensor_lib.to_device(np.zeros((0, 4096), dtype=np.float32)))
    assert tuple(out.shape) == (0, 4096)
