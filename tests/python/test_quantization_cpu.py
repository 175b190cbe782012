"""The quantization reference against hand-checked cases (e4m3 rounding, scales, UE8M0 bytes and
packing, the padded column-major layout), and the ops' argument validation without a GPU: the
Python wrapper's checks, and the bindings' checks through the real sm70 and sm80 modules (which
have the bindings but, the family being SM89+, no kernels)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import OpUnavailableError, quantization
from fastdeploy_ops.reference import quantization as ref

F32 = np.float32


def e4m3(*values: float) -> list[int]:
    return ref.e4m3_bytes(np.array(values, F32)).tolist()


def quant_row(row: list[float], **options: Any) -> tuple[list[int], np.ndarray]:
    q, scale = ref.per_token_quant(np.array([row], F32), 128, **options)
    return q[0].tolist(), scale[0]


# ---------------------------------------------------------------------------------------------
# e4m3 rounding


def test_every_e4m3_code_round_trips_and_448_is_the_largest() -> None:
    codes = np.arange(256, dtype=np.uint8)
    values = ref.e4m3_to_float(codes)
    nan = np.isnan(values)
    assert codes[nan].tolist() == [0x7F, 0xFF]
    assert (ref.e4m3_bytes(values[~nan]) == codes[~nan]).all()
    assert np.nanmax(values) == 448 and values[0x7E] == 448 and values[0x01] == 2.0**-9
    assert values[0x08] == 2.0**-6  # smallest normal


def test_exact_halfway_values_round_to_even() -> None:
    # 1.0625 lies between 1 (0x38) and 1.125 (0x39): even mantissa 0x38. 1.1875 between
    # 1.125 (0x39) and 1.25 (0x3A): 0x3A. 336 between 320 (0x7A) and 352 (0x7B): 0x7A.
    assert e4m3(1.0625, 1.1875, 336.0, -1.0625) == [0x38, 0x3A, 0x7A, 0xB8]
    # Just off the midpoint rounds to the nearer value.
    assert e4m3(np.nextafter(F32(1.0625), F32(2)), np.nextafter(F32(1.0625), F32(0))) == [
        0x39, 0x38]


def test_subnormals() -> None:
    # Subnormals are k * 2^-9 (k = 1..7). 2^-10 is halfway to 0: even (0); 3 * 2^-10 is
    # halfway between 1 and 2 (units of 2^-9): 2; 15 * 2^-10 halfway to the smallest normal
    # 2^-6 (0x08): 0x08. The sign of a value that rounds to zero stays (0x80).
    assert e4m3(2.0**-9, 2.0**-10, 3 * 2.0**-10, 7 * 2.0**-9, 15 * 2.0**-10) == [1, 0, 2, 7, 8]
    assert e4m3(-2.0**-10, -0.0, 0.0, -5 * 2.0**-9) == [0x80, 0x80, 0x00, 0x85]


def test_saturation_and_nan() -> None:
    # satfinite: beyond 448 (also past the 464 midpoint, and infinities) clamps to +-448.
    assert e4m3(448.0, 460.0, 470.0, 1e30, np.inf, -np.inf) == [0x7E, 0x7E, 0x7E, 0x7E, 0x7E,
                                                                 0xFE]
    assert e4m3(np.nan) == [0x7F]


def test_rounding_matches_a_brute_force_nearest_search() -> None:
    """Independent of the reference's formula: the nearest grid value, ties to the even code."""
    grid = ref.e4m3_to_float(np.arange(0x7F, dtype=np.uint8)).astype(np.float64)  # 0 .. 448
    rng = np.random.default_rng(0)
    magnitudes = np.concatenate([
        np.exp2(rng.uniform(-12, 9, 4000)),  # subnormal to saturating
        (grid[:-1] + grid[1:]) / 2,  # every midpoint
        grid,
    ]).astype(F32)
    values = np.where(rng.random(magnitudes.size) < 0.5, -magnitudes, magnitudes)
    got = ref.e4m3_bytes(values)
    distance = np.abs(np.minimum(np.abs(values.astype(np.float64)), 448)[:, None] - grid[None])
    nearest = distance == distance.min(axis=1, keepdims=True)
    code = np.where(nearest & (np.arange(0x7F) % 2 == 0), np.arange(0x7F), 0x7F).min(axis=1)
    code = np.where(nearest.sum(axis=1) == 1, nearest.argmax(axis=1), code)
    np.testing.assert_array_equal(got, code | (np.signbit(values) << 7))


# ---------------------------------------------------------------------------------------------
# per_token_quant


def test_a_block_with_max_448_has_scale_1_and_keeps_its_grid_values() -> None:
    row = [448.0, -224.0, 1.0, 0.5, 1.0625, 2.0**-9] + [0.0] * 122
    q, scale = quant_row(row)
    assert scale.tolist() == [1.0]
    assert q[:6] == [0x7E, 0xF6, 0x38, 0x30, 0x38, 0x01] and set(q[6:]) == {0}


def test_scale_and_quotient_are_float32_multiply_then_divide() -> None:
    # Block max 4: scale 4/448; q = x * 448 / 4 = 112, 224, 336 (a tie: 320), 448.
    q, scale = quant_row([1.0, 2.0, 3.0, 4.0] + [0.0] * 124)
    assert scale.tolist() == [float(F32(4) / F32(448))]
    assert q[:4] == [0x6E, 0x76, 0x7A, 0x7E]
    # Block max 3 (not a power of two): every element is RN(RN(x * 448) / 3) rounded to e4m3.
    x = np.linspace(-3, 3, 128, dtype=F32)
    q, scale = ref.per_token_quant(x[None], 128)
    assert scale.tolist() == [[float(F32(3) / F32(448))]]
    np.testing.assert_array_equal(q[0], ref.e4m3_bytes((x * F32(448)) / F32(3)))


def test_zero_block_uses_the_1e_10_floor() -> None:
    q, scale = quant_row([0.0] * 128)
    assert scale.tolist() == [float(F32(1e-10) / F32(448))] and set(q) == {0}


def test_finegrained_range_multiplies_the_max_by_7() -> None:
    # Max 7: m = 49, scale 49/448; 7 becomes 7 * 448 / 49 = 64 (0x68), so |q| <= 64.
    q, scale = quant_row([7.0, -3.5] + [0.0] * 126, finegrained_range=True)
    assert scale.tolist() == [float(F32(49) / F32(448))]
    assert q[:2] == [0x68, 0xE0]


def test_tail_block_is_zero_padded_and_h_below_128_works() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 132)).astype(F32)
    q, scale = ref.per_token_quant(x, 128)
    assert q.shape == (3, 132) and scale.shape == (3, 2)
    np.testing.assert_array_equal(scale[:, 1], np.abs(x[:, 128:]).max(axis=1) / F32(448))
    small_q, small_scale = ref.per_token_quant(x[:, 128:], 128)  # H = 4 < 128
    np.testing.assert_array_equal(small_q, q[:, 128:])
    np.testing.assert_array_equal(small_scale[:, 0], scale[:, 1])
    with pytest.raises(ValueError, match="divisible by 4"):
        ref.per_token_quant(x[:, :130], 128)
    with pytest.raises(ValueError, match="block_size must be 128"):
        ref.per_token_quant(x, 64)


def test_dequantization_is_within_half_an_e4m3_step() -> None:
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((5, 448)) * np.exp2(rng.uniform(-8, 8, (5, 1)))).astype(F32)
    for use_ue8m0 in (False, True):
        q, scale = ref.per_token_quant(x, 128, use_ue8m0)
        back = ref.per_token_dequant(q, scale, use_ue8m0)
        padded = np.pad(np.abs(x), ((0, 0), (0, 64)))  # 3.5 blocks of 128 -> 4
        blocks = np.repeat(padded.reshape(5, 4, 128).max(axis=2), 128, axis=1)[:, :448]
        # Relative 2^-4 (3 mantissa bits) for normals; 2^-10 of the scale step below 2^-6.
        step = ref.per_token_dequant(np.full_like(q, 0x01), scale, use_ue8m0)  # 2^-9 * scale
        assert (np.abs(back - x) <= np.maximum(np.abs(x) * 2.0**-4, step / 2) * 1.0001).all()
        assert (np.abs(back) <= blocks * (2.0 if use_ue8m0 else 1.0001)).all()


# ---------------------------------------------------------------------------------------------
# UE8M0


def test_ue8m0_exponent_is_the_smallest_power_of_two_not_below() -> None:
    # max 448: scale 1, 1 + 5e-7 -> 2 (128); max 224: 0.5 + 5e-7 -> 1 (127); zero block:
    # max(scale, 1e-10) + 5e-7 = 5.001e-7 -> 2^-20 (107).
    assert ref.ue8m0_exponents(np.array([1.0, 0.5, 1e-10 / 448], F32)).tolist() == [128, 127, 107]
    # A sum that is exactly a power of two stays: 0.25 - 5e-7 + 5e-7 rounds to 0.25 (125).
    assert ref.ue8m0_exponents(np.array([F32(0.25) - F32(5e-7)], F32)).tolist() == [125]
    # Just above 16 (5e-7 is below half an ulp of 16): 32 (132), though a float32 log2 of it
    # rounds to exactly 4.0 and would give 16.
    above = np.nextafter(F32(16), F32(np.inf))
    assert np.log2(above) == F32(4)
    assert ref.ue8m0_exponents(np.array([above], F32)).tolist() == [132]


def test_ue8m0_bytes_are_packed_four_per_int32_with_unused_bytes_zero() -> None:
    # Five blocks (H = 640 - 60 = 580: the fifth is a tail) -> two int32 words.
    row = np.zeros(580, F32)
    row[0], row[128], row[256], row[384], row[512] = 448.0, 224.0, 3.0, -1.0, 900.0
    q, scale = ref.per_token_quant(row[None], 128, use_ue8m0=True)
    assert scale.dtype == np.int32 and scale.shape == (1, 2)
    # Exponents: 128 (s = 2), 127 (s = 1), 3/448 + 5e-7 -> 2^-7 (120), 1/448 -> 2^-8 (119),
    # 900/448 + 5e-7 -> 4 (129).
    words = scale.view(np.uint32)[0].tolist()
    assert words == [128 | 127 << 8 | 120 << 16 | 119 << 24, 129]
    # q = e4m3(x / s): 448 / 2 = 224 (0x76), 224 / 1, 3 * 128 = 384 (0x7C), -256 (0xF8), 225.
    assert [q[0, i] for i in (0, 128, 256, 384, 512)] == [0x76, 0x76, 0x7C, 0xF8, 0x76]
    back = ref.per_token_dequant(q, scale, use_ue8m0=True)
    assert [back[0, i] for i in (0, 128, 256, 384, 512)] == [448.0, 224.0, 3.0, -1.0, 896.0]


# ---------------------------------------------------------------------------------------------
# per_token_quant_padding


@pytest.mark.parametrize("use_ue8m0", [False, True])
def test_padding_layout_is_column_major_with_zero_padding_rows(use_ue8m0: bool) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 640)).astype(F32)
    q, scale = ref.per_token_quant_padding(x, 128, use_ue8m0)
    plain_q, plain_scale = ref.per_token_quant(x, 128, use_ue8m0)
    columns = 2 if use_ue8m0 else 5
    assert scale.shape == (8, columns)  # pad_T = ceil(5 / 4) * 4
    assert scale.strides == (4, 4 * 8)  # elements (1, pad_T)
    np.testing.assert_array_equal(q, plain_q)
    np.testing.assert_array_equal(scale[:5], plain_scale)
    assert (scale[5:] == 0).all()
    np.testing.assert_array_equal(ref.per_token_dequant(q, scale, use_ue8m0),
                                  ref.per_token_dequant(plain_q, plain_scale, use_ue8m0))
    assert ref.per_token_quant_padding(x[:4], 128, use_ue8m0)[1].shape == (4, columns)
    with pytest.raises(ValueError, match="divisible by 128"):
        ref.per_token_quant_padding(x[:, :448], 128)


@pytest.mark.parametrize("use_ue8m0", [False, True])
def test_no_tokens_give_empty_outputs(use_ue8m0: bool) -> None:
    columns = 1 if use_ue8m0 else 4
    q, scale = ref.per_token_quant(np.zeros((0, 512), F32), 128, use_ue8m0)
    assert q.shape == (0, 512) and scale.shape == (0, columns)
    assert ref.per_token_quant_padding(np.zeros((0, 512), F32), 128, use_ue8m0)[1].shape == (
        0, columns)
    assert ref.per_token_dequant(q, scale, use_ue8m0).shape == (0, 512)


# ---------------------------------------------------------------------------------------------
# Validation without a GPU


T, H = 5, 256


def half(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float16)


OPS = {"per_token_quant": quantization.per_token_quant,
       "per_token_quant_padding": quantization.per_token_quant_padding}
WRAPPER_CASES: dict[str, tuple[type[Exception], str, Callable[[Callable], Any]]] = {
    "block-size-64": (ValueError, "block_size", lambda f: f(half(T, H), 64)),
    "block-size-float": (TypeError, "block_size", lambda f: f(half(T, H), 128.0)),
    "hidden-not-multiple-of-4": (ValueError, "input", lambda f: f(half(T, 130), 128)),
    "input-1d": (ValueError, "input", lambda f: f(half(H), 128)),
    "input-3d": (ValueError, "input", lambda f: f(half(1, T, H), 128)),
    "input-list": (TypeError, "input", lambda f: f([[0.0] * H], 128)),
}


@pytest.mark.usefixtures("sm70")
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name", WRAPPER_CASES)
def test_the_wrappers_reject_before_looking_for_kernels(op: str, name: str,
                                                        rejects: Callable[..., str]) -> None:
    error, arg, call = WRAPPER_CASES[name]
    rejects(error, op, arg, lambda: call(OPS[op]))


@pytest.mark.usefixtures("sm70")
def test_padding_needs_a_multiple_of_128(rejects: Callable[..., str]) -> None:
    message = rejects(ValueError, "per_token_quant_padding", "input",
                      lambda: quantization.per_token_quant_padding(half(T, 448), 128))
    assert "divisible by 128" in message and "[5, 448]" in message
    with pytest.raises(OpUnavailableError):  # H = 448 is fine without padding
        quantization.per_token_quant(half(T, 448), 128)


@pytest.mark.parametrize("sm", [70, 80])
@pytest.mark.parametrize("op", OPS)
def test_valid_calls_need_an_sm89_module(op: str, sm: int,
                                         request: pytest.FixtureRequest) -> None:
    request.getfixturevalue(f"sm{sm}")
    with pytest.raises(OpUnavailableError) as raised:
        OPS[op](half(T, H), 128, True, finegrained_range=True)
    message = str(raised.value)
    assert "family 'quantization' requires SM89+" in message
    assert f"requires SM89+, this module is sm{sm}" in message


def binding_args(op: str, **change: Any) -> dict[str, Any]:
    """Valid arguments of the binding (for CPU arrays), except those given."""
    ue8m0 = change.get("use_ue8m0", False)
    columns = 1 if ue8m0 else 2
    scale_shape = (columns, 8) if op == "per_token_quant_padding" else (T, columns)
    args = {"input": half(T, H), "q": np.zeros((T, H), np.uint8),
            "scale": np.zeros(scale_shape, np.int32 if ue8m0 else F32), "block_size": 128,
            "use_ue8m0": ue8m0, "finegrained_range": False, "stream": 0}
    return {**args, **change}


BINDING_CASES: dict[str, tuple[type[Exception], str, dict[str, Any]]] = {
    "input-fp32": (TypeError, "input", {"input": np.zeros((T, H), F32)}),
    "input-int8": (TypeError, "input", {"input": np.zeros((T, H), np.int8)}),
    "input-3d": (ValueError, "input", {"input": half(1, T, H)}),
    "input-hidden-odd": (ValueError, "input", {"input": half(T, 130)}),
    "block-size": (ValueError, "block_size", {"block_size": 256}),
    "q-int8": (TypeError, "q", {"q": np.zeros((T, H), np.int8)}),
    "q-fp16": (TypeError, "q", {"q": half(T, H)}),
    "q-shape": (ValueError, "q", {"q": np.zeros((T, H + 4), np.uint8)}),
    "scale-int32": (TypeError, "scale", {"scale": np.zeros((T, 2), np.int32)}),
    "scale-ue8m0-fp32": (TypeError, "scale",
                         {"use_ue8m0": True, "scale": np.zeros((T, 1), F32)}),
    "scale-shape": (ValueError, "scale", {"scale": np.zeros((T + 1, 3), F32)}),
    "cpu": (ValueError, "input", {}),
    "cpu-ue8m0": (ValueError, "input", {"use_ue8m0": True}),
}


@pytest.mark.parametrize("sm", [70, 80])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name", BINDING_CASES)
def test_the_bindings_validate_every_argument(op: str, name: str, sm: int, compiled_modules: Any,
                                              rejects: Callable[..., str]) -> None:
    """The bindings check before they look for kernels, so modules without them (SM < 89)
    run the whole validation; a valid call on CPU arrays then wants CUDA tensors."""
    module = importlib.import_module(f"fastdeploy_ops._ops_sm{sm}")
    error, arg, change = BINDING_CASES[name]
    message = rejects(error, op, arg, lambda: getattr(module, op)(**binding_args(op, **change)))
    assert ("CUDA" in message) == name.startswith("cpu"), message


def test_padding_binding_wants_the_transposed_buffer_and_h_multiple_of_128(
        compiled_modules: Any, rejects: Callable[..., str]) -> None:
    module = importlib.import_module("fastdeploy_ops._ops_sm80")
    op = "per_token_quant_padding"
    message = rejects(ValueError, op, "scale", lambda: module.per_token_quant_padding(
        **binding_args(op, scale=np.zeros((8, 2), F32))))
    assert "[H / 128, pad_T]" in message and "= [2, 8]" in message
    message = rejects(ValueError, op, "input", lambda: module.per_token_quant_padding(
        **binding_args(op, input=half(T, 192), q=np.zeros((T, 192), np.uint8))))
    assert "divisible by 128" in message

