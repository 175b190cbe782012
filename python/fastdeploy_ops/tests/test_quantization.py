"""per_token_quant and per_token_quant_padding on the GPU against ``fastdeploy_ops.reference``,
plus bad inputs.

Tolerance: none. The kernel and the reference compute the same float32 operations from the same
inputs (half-precision values widen exactly): the block max is exact, ``m / 448`` and
``x * 448 / m`` are IEEE float32 roundings (the kernel divides through a per-block reciprocal with
two exact Markstein corrections, which yields the correctly rounded quotient; numpy divides), the
UE8M0 power of two is read off the same bits, and the e4m3 rounding (nearest even, satfinite,
subnormals) is the hardware's on one side and an exact emulation on the other. So ``q`` must be
bit-identical and the scales equal (stronger than FastDeploy's rtol 1e-6 on scales and
``mean|dq| / mean|q| < 1e-3`` on values).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import quantization
from fastdeploy_ops._tensors import dtype_name, float8_bytes
from fastdeploy_ops.reference import quantization as ref
from fastdeploy_ops.testing import TensorLib, requires_op

pytestmark = requires_op("per_token_quant")

F32 = np.float32
DTYPES = ["bfloat16", "float16"]
TOKENS = [1, 4, 8, 333, 4096]
HIDDEN = [64, 448, 512, 1024, 7168]  # 64: below one block; 448: a half-filled tail block
OPS = {"per_token_quant": quantization.per_token_quant,
       "per_token_quant_padding": quantization.per_token_quant_padding}


def rng_for(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


@functools.lru_cache(maxsize=1)  # shared by the tests: never modified
def host_input(tokens: int, hidden: int, dtype: str) -> np.ndarray:
    """float32 values that ``dtype`` holds exactly: per-block magnitudes from 2^-14 to 2^12 (so
    scales, subnormal e4m3 results and ties all occur), some zeros and a zero block."""
    rng = rng_for(tokens, hidden, dtype)
    blocks = -(-hidden // 128)
    magnitude = np.exp2(rng.integers(-14, 13, (tokens, blocks))).astype(F32)
    x = rng.standard_normal((tokens, blocks * 128), dtype=F32) * np.repeat(magnitude, 128, axis=1)
    x = x[:, :hidden]
    x[rng.random(x.shape) < 0.02] = 0.0
    if tokens > 2 and hidden > 128:
        x[2, 128:256] = 0.0
    return (x.astype(np.float16) if dtype == "float16" else _to_bfloat16(x)).astype(F32)


def _to_bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 rounded to bfloat16 (nearest even), kept as float32."""
    bits = x.astype(F32).view(np.uint32)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.astype(np.uint32).view(F32)


@functools.lru_cache(maxsize=2)
def expected(tokens: int, hidden: int, dtype: str, use_ue8m0: bool,
             finegrained_range: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input, q, scale) of the reference per_token_quant; cached for the padding variant."""
    x = host_input(tokens, hidden, dtype)
    q, scale = ref.per_token_quant(x, 128, use_ue8m0, finegrained_range)
    return x, q, scale


def q_bytes(lib: TensorLib, q: Any) -> np.ndarray:
    """The e4m3 bytes of ``q`` (float8_e4m3fn in torch, uint8 in cupy)."""
    expected_dtype = "float8_e4m3fn" if lib.name == "torch" else "uint8"
    assert dtype_name(q) == expected_dtype
    return lib.from_device(q if expected_dtype == "uint8" else float8_bytes(q))


def element_strides(lib: TensorLib, t: Any) -> tuple[int, ...]:
    if lib.name == "torch":
        return tuple(t.stride())
    return tuple(s // t.itemsize for s in t.strides)


def assert_equal_bytes(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, (what, got.shape, want.shape)
    differ = np.argwhere(got != want)
    if differ.size:
        where = tuple(differ[0])
        raise AssertionError(f"{what}: {len(differ)} entries differ; first at {where}: "
                             f"got {got[where]!r}, want {want[where]!r}")


def run(lib: TensorLib, op: str, x: np.ndarray, dtype: str, use_ue8m0: bool,
        finegrained_range: bool = False, device_x: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Runs ``op`` on ``x`` rounded to ``dtype`` (or on ``device_x``) and checks it bitwise
    against the reference of the values on the device."""
    device_x = lib.to_device(x, dtype) if device_x is None else device_x
    x = lib.from_device(device_x).astype(F32)  # the values the kernel sees
    q, scale = OPS[op](device_x, 128, use_ue8m0, finegrained_range=finegrained_range)
    tokens, hidden = x.shape
    want_q, want_scale = getattr(ref, op)(x, 128, use_ue8m0, finegrained_range)
    assert_equal_bytes(q_bytes(lib, q), want_q, "q")
    assert dtype_name(scale) == ("int32" if use_ue8m0 else "float32")
    assert tuple(scale.shape) == want_scale.shape
    if op == "per_token_quant_padding":
        assert element_strides(lib, scale) == (1, -(-tokens // 4) * 4)
    got_scale = lib.from_device(scale)
    assert_equal_bytes(got_scale.view(np.uint32), want_scale.view(np.uint32), "scale")
    return q_bytes(lib, q), got_scale


# The first parametrisation varies fastest: both ops of one input in a row share its reference.
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("use_ue8m0", [False, True], ids=["fp32-scale", "ue8m0"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("tokens", TOKENS)
def test_matches_reference_bitwise(tensor_lib: TensorLib, op: str, tokens: int, hidden: int,
                                   dtype: str, use_ue8m0: bool) -> None:
    if op == "per_token_quant_padding" and hidden % 128:
        pytest.skip("per_token_quant_padding needs H % 128 == 0")
    x, want_q, want_scale = expected(tokens, hidden, dtype, use_ue8m0)
    device_x = tensor_lib.to_device(x, dtype)
    q, scale = OPS[op](device_x, 128, use_ue8m0)
    assert_equal_bytes(q_bytes(tensor_lib, q), want_q, "q")
    got_scale = tensor_lib.from_device(scale)
    if op == "per_token_quant_padding":
        pad = -(-tokens // 4) * 4
        assert element_strides(tensor_lib, scale) == (1, pad)
        assert tuple(scale.shape) == (pad, want_scale.shape[1])
        assert (got_scale[tokens:] == 0).all()
        got_scale = got_scale[:tokens]
    assert dtype_name(scale) == ("int32" if use_ue8m0 else "float32")
    assert_equal_bytes(np.ascontiguousarray(got_scale).view(np.uint32),
                       want_scale.view(np.uint32), "scale")


# Hand-checked rows (see tests/python/test_quantization_cpu.py for the expected bytes): ties to
# even, subnormals, -0, a zero block, a 448 max.
SPECIAL_ROW = [448.0, -224.0, 1.0625, 1.1875, 2.0**-9, 2.0**-10, 3 * 2.0**-10, -0.0, -2.0**-10]


@pytest.mark.parametrize("use_ue8m0", [False, True], ids=["fp32-scale", "ue8m0"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_subnormals_and_signed_zero(tensor_lib: TensorLib, dtype: str,
                                         use_ue8m0: bool) -> None:
    x = np.zeros((4, 384), F32)
    x[0, :len(SPECIAL_ROW)] = SPECIAL_ROW
    x[1, :128] = np.linspace(-3, 3, 128, dtype=F32).astype(np.float16)  # max 3: ties galore
    x[1, 256:260] = [1.0, 2.0, 3.0, 4.0]
    x[3, 128:] = -0.0
    q, _ = run(tensor_lib, "per_token_quant", x, dtype, use_ue8m0)
    if not use_ue8m0:
        assert q[0, :len(SPECIAL_ROW)].tolist() == [0x7E, 0xF6, 0x38, 0x3A, 0x01, 0x00, 0x02,
                                                    0x80, 0x80]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("use_ue8m0", [False, True], ids=["fp32-scale", "ue8m0"])
def test_finegrained_range(tensor_lib: TensorLib, op: str, use_ue8m0: bool) -> None:
    x = host_input(37, 1024, "bfloat16")
    q, _ = run(tensor_lib, op, x, "bfloat16", use_ue8m0, finegrained_range=True)
    assert (np.abs(ref.e4m3_to_float(q)) <= 64).all()


def test_huge_bfloat16_blocks_take_the_exact_division(tensor_lib: TensorLib) -> None:
    """Block maxima above 2^119: x * 448 overflows to inf (which saturates to 448, as in the
    reference's multiply-then-divide), and with finegrained_range m * 7 overflows too."""
    x = np.zeros((3, 512), F32)
    x[0, :128] = _to_bfloat16(np.linspace(-3e38, 3e38, 128, dtype=F32))
    x[1, 128:256] = _to_bfloat16(np.geomspace(1e30, 2e36, 128, dtype=F32))
    x[2, 256:258] = [1e37, -5e36]
    x[2, 384:512] = 1.0
    for use_ue8m0 in (False, True):
        for finegrained_range in (False, True):
            run(tensor_lib, "per_token_quant", x, "bfloat16", use_ue8m0, finegrained_range)


@pytest.mark.parametrize("hidden", [4, 12, 132, 452, 4100])
@pytest.mark.parametrize("dtype", DTYPES)
def test_hidden_not_a_multiple_of_8(tensor_lib: TensorLib, hidden: int, dtype: str) -> None:
    """4-element accesses (H % 8 != 0) and tail blocks of 4 elements."""
    for use_ue8m0 in (False, True):
        run(tensor_lib, "per_token_quant", host_input(9, hidden, dtype), dtype, use_ue8m0)


@pytest.mark.parametrize("offset", [1, 2, 4], ids=["2-byte", "4-byte", "8-byte"])
def test_misaligned_input_views(tensor_lib: TensorLib, offset: int) -> None:
    """Contiguous views that start off a 16-byte boundary take the narrower accesses."""
    tokens, hidden = 6, 640
    x = host_input(tokens, hidden, "float16")
    flat = tensor_lib.to_device(np.concatenate([np.zeros(offset, F32), x.reshape(-1)]), "float16")
    view = flat[offset:].reshape(tokens, hidden)
    for op in OPS:
        run(tensor_lib, op, x, "float16", False, device_x=view)


@pytest.mark.parametrize("op", OPS)
def test_empty_input(tensor_lib: TensorLib, op: str) -> None:
    for use_ue8m0 in (False, True):
        q, scale = OPS[op](tensor_lib.to_device(np.zeros((0, 512), F32), "float16"), 128,
                           use_ue8m0)
        assert tuple(q.shape) == (0, 512)
        assert tuple(scale.shape) == (0, 1 if use_ue8m0 else 4)


def test_dequantized_values_are_close(tensor_lib: TensorLib) -> None:
    """What the bytes stand for, for the record: mean |x - dequant(q)| / mean |x| is within e4m3's
    precision (3 mantissa bits: at most 2^-4 relative per normal value)."""
    x = host_input(64, 7168, "bfloat16")
    q, scale = quantization.per_token_quant(tensor_lib.to_device(x, "bfloat16"), 128)
    back = ref.per_token_dequant(q_bytes(tensor_lib, q), tensor_lib.from_device(scale))
    assert np.abs(back - x).mean() / np.abs(x).mean() < 0.04


# ---------------------------------------------------------------------------------------------
# Bad inputs: each raises before any launch, naming the op and the argument.


def dev(lib: TensorLib, shape: tuple[int, ...], dtype: str = "float16") -> Any:
    return lib.to_device(rng_for(shape, dtype).random(shape).astype(F32), dtype)


BAD: dict[str, tuple[type[Exception], str, Callable[[TensorLib, Callable], Any]]] = {
    "input-fp32": (TypeError, "input", lambda l, f: f(dev(l, (4, 256), "float32"), 128)),
    "input-int32": (TypeError, "input", lambda l, f: f(dev(l, (4, 256), "int32"), 128)),
    "input-noncontiguous": (ValueError, "input", lambda l, f: f(dev(l, (256, 4)).T, 128)),
    "input-1d": (ValueError, "input", lambda l, f: f(dev(l, (256,)), 128)),
    "input-cpu": (ValueError, "input", lambda l, f: f(np.zeros((4, 256), np.float16), 128)),
    "block-size-64": (ValueError, "block_size", lambda l, f: f(dev(l, (4, 256)), 64)),
    "block-size-256": (ValueError, "block_size", lambda l, f: f(dev(l, (4, 256)), 256)),
    "hidden-not-multiple-of-4": (ValueError, "input", lambda l, f: f(dev(l, (4, 258)), 128)),
}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name", BAD)
def test_rejects(tensor_lib: TensorLib, op: str, name: str) -> None:
    error, arg, call = BAD[name]
    with pytest.raises(error) as raised:
        call(tensor_lib, OPS[op])
    assert str(raised.value).startswith(f"{op}: argument '{arg}' "), str(raised.value)


def test_padding_rejects_hidden_not_a_multiple_of_128(tensor_lib: TensorLib) -> None:
    with pytest.raises(ValueError, match=r"^per_token_quant_padding: argument 'input' must have "
                                         r"a hidden size \(shape\[1\]\) divisible by 128"):
        quantization.per_token_quant_padding(dev(tensor_lib, (4, 448)), 128)
