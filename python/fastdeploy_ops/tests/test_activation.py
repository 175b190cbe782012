"""gelu_tanh on the GPU against the formula, with the tolerance of the loaded module's tanh.

Expected value. The kernel computes, in fp32, ``a = 0.7978845608 * (x + 0.044715 * x**3)``,
``t = tanh(a)`` and ``0.5 * x * (1 + t)``, rounded once to the output dtype. Here ``a`` is
computed in fp32 exactly as written (numpy, no fused multiply-add) and ``t``, ``1 + t`` and the
product in float64, so what remains is the kernel's tanh, its fp32 roundings, and a possibly
fused multiply-add inside ``a``.

Tolerance. How the kernel evaluates tanh depends on the SM it was compiled for (the loaded
module's, or the GPU's when fastdeploy_ops.jit compiled it), so the relative error ``d``
allowed in ``t`` does too:

- sm75 and newer modules: PTX ``tanh.approx.f32`` (one MUFU.TANH instruction, FastDeploy's
  choice), relative error about 2**-10.7 (PTX ISA): ``TANH_APPROX_REL_ERROR``.
- the sm70 module (SM70 has no tanh instruction): CUDA's ``tanhf``, within 2 ulp (CUDA Math
  API); a fused multiply-add in ``a`` can move ``a`` by about 1 ulp, which reaches ``t`` scaled
  by ``2a / sinh(2a) <= 1``; with margin, 8 ulp of fp32: ``TANHF_REL_ERROR`` = 2**-20, 2**9
  times tighter. ``FASTDEPLOY_OPS_SM=70`` loads this module on a newer GPU, whose driver
  compiles the module's compute_70 PTX, tanhf included. The sm70 case asserts this tighter
  bound, so it fails if the approximate instruction were ever used on that path.

An error ``d * |t|`` in t moves the output by ``0.5 * |x| * |t| * d`` (an absolute bound:
relative to the output it grows without limit as t -> -1, where the output vanishes). Rounding
``1 + t`` in fp32 can differ by one ulp of it, and the fp32 product by one ulp of the output;
rounding to the output dtype adds half an ulp of that dtype, of which we allow one.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import fastdeploy_ops
from fastdeploy_ops import activation
from fastdeploy_ops.testing import TensorLib, requires_op, ulp

pytestmark = requires_op("gelu_tanh")

TANH_APPROX_REL_ERROR = 2.0**-10.7  # tanh.approx.f32, modules for SM75+
TANHF_REL_ERROR = 2.0**-20  # tanhf (2 ulp) + a fused multiply-add in a, with margin: sm70
DTYPES = ["float16", "bfloat16", "float32"]
_SQRT_2_OVER_PI = np.float32(0.7978845608)
_CUBIC = np.float32(0.044715)


def module_sm() -> int:
    """The SM gelu_tanh's kernels were compiled for: the loaded module's (70 when
    FASTDEPLOY_OPS_SM=70 forces it), or the GPU's when fastdeploy_ops.jit compiles them (a
    wheel without a module of the GPU's major version)."""
    info = fastdeploy_ops.info()
    if info["kernels"].get("activation", "").startswith("JIT-compiled for"):
        return int(info["device"]["sm"])
    return int(info["module_sm"])


def tanh_rel_error(sm: int) -> float:
    return TANHF_REL_ERROR if sm < 75 else TANH_APPROX_REL_ERROR


def errors(x: np.ndarray, got: np.ndarray, dtype: str,
           rel_error: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(|got - expected|, the allowed error for tanh error ``rel_error``, expected)."""
    x = np.asarray(x, dtype=np.float32)
    a = _SQRT_2_OVER_PI * (x + _CUBIC * x * x * x)  # fp32, as the kernel writes it
    t = np.tanh(a.astype(np.float64))
    x64 = x.astype(np.float64)
    want = 0.5 * x64 * (1.0 + t)
    bound = (0.5 * np.abs(x64) * (np.abs(t) * rel_error + ulp(1.0 + t, "float32"))
             + ulp(want, "float32") + ulp(want, dtype))
    return np.abs(got.astype(np.float64) - want), bound, want


def assert_close(x: np.ndarray, got: np.ndarray, dtype: str) -> None:
    error, bound, want = errors(x, got, dtype, tanh_rel_error(module_sm()))
    worst = np.argmax(error - bound) if error.size else 0
    assert (error <= bound).all(), (module_sm(), x.flat[worst], got.flat[worst], want.flat[worst])


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
    assert_close(x32, tensor_lib.from_device(out), dtype)


def test_gelu_tanh_uses_the_tanh_of_its_module(tensor_lib: TensorLib) -> None:
    """sm70: everything within the tanhf bound (also asserted above). sm75+: within the
    tanh.approx bound, and outside the tanhf bound somewhere, which shows the instruction is
    in use (its error reaches ~2**-11 over millions of inputs, far beyond tanhf's)."""
    x, x32 = inputs(tensor_lib, (1024, 4096), "float32")
    got = tensor_lib.from_device(activation.gelu_tanh(x))
    error, tight, _ = errors(x32, got, "float32", TANHF_REL_ERROR)
    if module_sm() < 75:
        assert (error <= tight).all()
    else:
        assert (error > tight).any(), "no error beyond tanhf's: is tanh.approx.f32 in use?"
        error, loose, _ = errors(x32, got, "float32", TANH_APPROX_REL_ERROR)
        assert (error <= loose).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_tanh_special_values(tensor_lib: TensorLib, dtype: str) -> None:
    x = np.array([0.0, -0.0, 1.0, -1.0, 10.0, -10.0, 30.0, -30.0], dtype=np.float32)
    got = tensor_lib.from_device(activation.gelu_tanh(tensor_lib.to_device(x, dtype)))
    assert got[0] == 0 and got[1] == 0
    assert np.isfinite(got).all()
    assert_close(x, got, dtype)


def test_gelu_tanh_any_shape_out_and_in_place(tensor_lib: TensorLib) -> None:
    x, x32 = inputs(tensor_lib, (2, 3, 40), "float32")
    out = tensor_lib.empty((2, 3, 40), "float32")
    assert activation.gelu_tanh(x, out=out) is out
    expected = tensor_lib.from_device(out)
    assert_close(x32, expected, "float32")
    assert activation.gelu_tanh(x, out=x) is x
    np.testing.assert_array_equal(tensor_lib.from_device(x), expected)


def test_gelu_tanh_empty(tensor_lib: TensorLib) -> None:
    out = activation.gelu_tanh(tensor_lib.to_device(np.zeros((0, 4096), dtype=np.float32)))
    assert tuple(out.shape) == (0, 4096)
