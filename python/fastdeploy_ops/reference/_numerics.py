"""Exact roundings of float32 values to the narrow formats kernels store, in numpy."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .quantization import e4m3_bytes, e4m3_to_float

__all__ = ["round_to_dtype", "round_to_e4m3"]


def _round_to_bfloat16(x: NDArray[np.float32]) -> NDArray[np.float32]:
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    # Round to nearest even on the upper 16 bits (NaN stays NaN: its payload keeps high bits).
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    nan = np.isnan(x)
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(nan, np.float32(np.nan), out)


def round_to_e4m3(x: ArrayLike) -> NDArray[np.float32]:
    """float32 -> float8 e4m3fn, round to nearest even, saturating to +-448 (``__NV_SATFINITE``),
    as float32 values."""
    return e4m3_to_float(e4m3_bytes(x))


def round_to_dtype(x: ArrayLike, dtype: str) -> NDArray[np.float32]:
    """``x`` rounded (to nearest even) to ``dtype`` and widened back to float32."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "float32":
        return x
    if dtype == "float16":
        return x.astype(np.float16).astype(np.float32)
    if dtype == "bfloat16":
        return _round_to_bfloat16(x)
    if dtype == "float8_e4m3fn":
        return round_to_e4m3(x)
    raise ValueError(f"dtype must be float32, float16, bfloat16 or float8_e4m3fn, got {dtype!r}")
