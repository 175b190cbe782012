"""Reference for the ``quantization`` family (semantics: ``ops/quantization/README.md``): fp8
e4m3 per token and 128-element block.

float32 math in the kernels' order; the e4m3 rounding is emulated exactly (round to nearest
even onto the e4m3fn grid, subnormals included, saturating to +-448: ``__NV_SATFINITE``). The
quantised values are returned as their bytes (uint8, float8_e4m3fn encoding), which numpy can
hold; :func:`e4m3_to_float` and :func:`per_token_dequant` turn them back into numbers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "E4M3_MAX",
    "e4m3_bytes",
    "e4m3_to_float",
    "per_token_dequant",
    "per_token_quant",
    "per_token_quant_padding",
    "ue8m0_exponents",
]

E4M3_MAX = 448.0
BLOCK_SIZE = 128
BLOCKS_PER_WORD = 4  # UE8M0 exponent bytes per int32
_MIN_NORMAL_EXPONENT = -6  # e4m3: smallest normal 2^-6, subnormals k * 2^-9
_MANTISSA_BITS = 3
_NAN = 0x7F
F32 = np.float32


def e4m3_bytes(values: ArrayLike) -> NDArray[np.uint8]:
    """float32 ``values`` rounded to e4m3fn (nearest even, saturating), as bytes.

    ``|v| > 448`` and infinities become ``+-448`` (0x7E / 0xFE), a negative value that rounds to
    zero keeps its sign (0x80), NaN becomes 0x7F.
    """
    y = np.asarray(values, dtype=np.float32)
    a = np.minimum(np.abs(y.astype(np.float64)), E4M3_MAX)
    with np.errstate(invalid="ignore"):
        # The grid spacing at a: 2^(floor(log2 a) - 3) for normal a, 2^-9 below 2^-6.
        exponent = np.maximum(np.frexp(a)[1] - 1, _MIN_NORMAL_EXPONENT)
        step = np.ldexp(1.0, exponent - _MANTISSA_BITS)
        units = np.rint(np.nan_to_num(a) / step)  # a / step is exact; rint ties to even
        rounded = units * step  # may have moved up to the next binade
        exponent = np.maximum(np.frexp(rounded)[1] - 1, _MIN_NORMAL_EXPONENT)
        normal = rounded >= 2.0**_MIN_NORMAL_EXPONENT
        mantissa = rounded / np.ldexp(1.0, exponent - _MANTISSA_BITS)  # 8..15 normal, 0..7 not
        code = np.where(normal, (exponent + 7) * 8 + mantissa - 8, mantissa).astype(np.uint8)
    code = code | (np.signbit(y).astype(np.uint8) << 7)
    return np.where(np.isnan(y), np.uint8(_NAN), code).astype(np.uint8)


def _e4m3_table() -> NDArray[np.float32]:
    codes = np.arange(256)
    exponent, mantissa = (codes >> 3) & 0xF, codes & 7
    magnitude = np.where(exponent == 0, mantissa * 2.0**-9,
                         (1 + mantissa / 8) * np.exp2(exponent - 7.0))
    magnitude[(exponent == 15) & (mantissa == 7)] = np.nan
    return np.where(codes >> 7, -magnitude, magnitude).astype(np.float32)


_E4M3_VALUES = _e4m3_table()


def e4m3_to_float(codes: ArrayLike) -> NDArray[np.float32]:
    """The values of e4m3fn bytes (0x7F and 0xFF are NaN)."""
    return _E4M3_VALUES[np.asarray(codes, dtype=np.uint8)]


def ue8m0_exponents(scale: ArrayLike) -> NDArray[np.uint32]:
    """The biased exponent of ``2^ceil(log2(max(scale, 1e-10) + 5e-7))``, computed exactly.

    The sum is rounded to float32; the power of two is the smallest one not below it (read off
    its bits, so a sum just above a power of two is never rounded down as a float32 ``log2``
    could). A sum above 2^127 gives 255 (infinity).
    """
    v = np.maximum(np.asarray(scale, dtype=np.float32), F32(1e-10)) + F32(5e-7)
    bits = v.view(np.uint32)
    bits = np.where(bits & 0x7FFFFF, bits + 0x800000, bits) & 0x7F800000
    return (bits >> 23).astype(np.uint32)


def _check(block_size: int, hidden: int, granule: int) -> None:
    if block_size != BLOCK_SIZE:
        raise ValueError(f"block_size must be {BLOCK_SIZE}, got {block_size}")
    if hidden % granule:
        raise ValueError(f"the hidden size must be divisible by {granule}, got {hidden}")


def per_token_quant(x: ArrayLike, block_size: int = BLOCK_SIZE, use_ue8m0: bool = False,
                    finegrained_range: bool = False) -> tuple[NDArray[np.uint8], NDArray]:
    """Reference ``per_token_quant`` of ``x [T, H]`` (fp16/bf16 values, widened to float32).

    Per token and 128-element block (the tail block zero-padded): ``m = max(max |x|, 1e-10)``
    (times 7 with ``finegrained_range``), ``scale = m / 448`` and ``q = e4m3(x * 448 / m)``
    (multiply, then divide, each rounded to float32). With ``use_ue8m0``:
    ``s = 2^ceil(log2(max(scale, 1e-10) + 5e-7))``, ``q = e4m3(x / s)`` and the scale is the
    exponent byte of ``s``, block ``j`` in byte ``j % 4`` of int32 ``j // 4``, unused bytes 0.

    Returns:
        ``q`` ``[T, H]`` uint8 (e4m3fn bytes) and ``scale`` ``[T, ceil(H / 128)]`` float32, or
        ``[T, ceil(H / 512)]`` int32 with ``use_ue8m0``.
    """
    x = np.asarray(x, dtype=np.float32)
    tokens, hidden = x.shape
    _check(block_size, hidden, 4)
    blocks = -(-hidden // BLOCK_SIZE)
    padded = np.zeros((tokens, blocks * BLOCK_SIZE), dtype=np.float32)
    padded[:, :hidden] = x
    per_block = padded.reshape(tokens, blocks, BLOCK_SIZE)
    amax = np.fmax.reduce(np.abs(per_block), axis=2, initial=0.0)  # NaN ignored, as fmaxf
    m = np.fmax(amax, F32(1e-10)).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if finegrained_range:
            m = m * F32(7)
        scale = m / F32(E4M3_MAX)
        if use_ue8m0:
            exponents = ue8m0_exponents(scale)
            power = (exponents << 23).view(np.float32)
            y = per_block / power[:, :, None]  # exact: a power of two
        else:
            y = (per_block * F32(E4M3_MAX)) / m[:, :, None]
    q = e4m3_bytes(y.reshape(tokens, blocks * BLOCK_SIZE)[:, :hidden])
    if not use_ue8m0:
        return q, scale
    words = -(-blocks // BLOCKS_PER_WORD)
    packed = np.zeros((tokens, words * BLOCKS_PER_WORD), dtype=np.uint32)
    packed[:, :blocks] = exponents
    shifts = np.arange(BLOCKS_PER_WORD, dtype=np.uint32) * 8
    word = (packed.reshape(tokens, words, BLOCKS_PER_WORD) << shifts).sum(axis=2, dtype=np.uint32)
    return q, word.view(np.int32)


def per_token_quant_padding(x: ArrayLike, block_size: int = BLOCK_SIZE, use_ue8m0: bool = False,
                            finegrained_range: bool = False) -> tuple[NDArray[np.uint8], NDArray]:
    """Reference ``per_token_quant_padding``: :func:`per_token_quant` (``H % 128 == 0``) with the
    scale ``[pad_T, columns]`` column-major (strides ``(1, pad_T)`` elements),
    ``pad_T = ceil(T / 4) * 4``, rows ``T..pad_T-1`` zero."""
    x = np.asarray(x, dtype=np.float32)
    tokens, hidden = x.shape
    _check(block_size, hidden, BLOCK_SIZE)
    q, scale = per_token_quant(x, block_size, use_ue8m0, finegrained_range)
    buffer = np.zeros((scale.shape[1], -(-tokens // 4) * 4), dtype=scale.dtype)
    buffer[:, :tokens] = scale.T
    return q, buffer.T


def per_token_dequant(q: ArrayLike, scale: ArrayLike, use_ue8m0: bool = False,
                      block_size: int = BLOCK_SIZE) -> NDArray[np.float32]:
    """``e4m3(q) * scale`` per token and block: what :func:`per_token_quant`'s output stands for.

    ``q`` ``[T, H]`` e4m3fn bytes; ``scale`` as either op returns it (its first ``T`` rows are
    used, so the padding variant's scale works too): float32 scales, or with ``use_ue8m0`` int32
    words of exponent bytes (scale ``2^(byte - 127)``).
    """
    values = e4m3_to_float(q)
    tokens, hidden = values.shape
    _check(block_size, hidden, 4)
    blocks = -(-hidden // BLOCK_SIZE)
    scale = np.asarray(scale)[:tokens]
    if use_ue8m0:
        words = np.ascontiguousarray(scale, dtype=np.int32).view(np.uint32)
        shifts = np.arange(BLOCKS_PER_WORD, dtype=np.uint32) * 8
        exponents = (words[:, :, None] >> shifts) & 0xFF
        exponents = exponents.reshape(tokens, words.shape[1] * BLOCKS_PER_WORD)[:, :blocks]
        scale = (exponents.astype(np.uint32) << 23).view(np.float32)
    factors = np.repeat(np.asarray(scale, dtype=np.float32), BLOCK_SIZE, axis=1)[:, :hidden]
    return values * factors
