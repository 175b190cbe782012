"""How close a paged-attention kernel's output must be to the reference, per element.

The kernels compute ``softmax(q . k * scale) . v`` with fp32 scores, sums and accumulators, so
against the float64 softmax of :func:`fastdeploy_ops.reference.paged_attention` they differ by:

- the final rounding to the output dtype: one ulp of the reference value;
- fp32 arithmetic (scores, exp2, sums over up to 2^17 tokens, rescaling): ``4e-5`` of
  ``sum w_i |v_i|``;
- on tensor cores, each unnormalised weight ``e_i`` rounded to the MMA's input type before it
  multiplies V (the normaliser sums the unrounded ones): a relative error up to ``u`` (2^-8 for
  bfloat16, 2^-11 for float16) per weight, so at most ``u sum w_i |v_i|``; being independent and
  centred, these errors add up like a random walk, so the bound takes the smaller of that and
  four standard deviations, ``4 u sqrt(sum w_i^2 v_i^2)``, which is what lets it see a wrong
  output at long contexts (where the output shrinks like the random walk does);
- with float16 weights, also values below float16's spacing near zero (2^-24): an absolute
  error up to 2^-25 of ``e_i``, bounded the same two ways.

:class:`fastdeploy_ops.reference.AttentionSpread` holds the sums. The bound is per element and
cannot be met by chance by a plausible fault: ``tests/python/test_attention_cpu.py`` shows it
accepts an emulation of the tensor-core rounding and rejects a dropped block of tokens, a 10%
error on one KV head's outputs and a 5% error on every output.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..reference import AttentionSpread
from . import ulp

__all__ = ["assert_attention_close", "attention_bound", "weight_type"]

_ARITHMETIC = 4e-5
_WEIGHT_ROUNDING = {"float32": 0.0, "bfloat16": 2.0**-8, "float16": 2.0**-11}
_SPACING_NEAR_ZERO = {"float32": 0.0, "bfloat16": 0.0, "float16": 2.0**-25}


def weight_type(kernel: str, dtype: str, cache: str) -> str:
    """What the softmax weights are rounded to before they multiply V: the query's dtype on
    tensor cores with a 16-bit cache, float16 with an 8-bit cache, nothing (float32) on CUDA
    cores. ``kernel`` is :attr:`fastdeploy_ops.attention.AttentionPlan.kernel`."""
    if kernel == "cuda_core":
        return "float32"
    return dtype if cache == "c16" else "float16"


def attention_bound(want: NDArray, spread: AttentionSpread, *, dtype: str,
                    weights: str) -> NDArray[np.float64]:
    """The largest error allowed at each element of an output of ``dtype`` whose kernel rounds
    the softmax weights to ``weights`` (see :func:`weight_type`)."""
    u = _WEIGHT_ROUNDING[weights]
    spacing = _SPACING_NEAR_ZERO[weights]
    return (ulp(want, dtype) + _ARITHMETIC * spread.abs_weighted
            + u * np.minimum(spread.abs_weighted, 4 * spread.rms_weighted)
            + spacing * np.minimum(spread.abs_unweighted, 4 * spread.rms_unweighted))


def assert_attention_close(got: NDArray, want: NDArray, spread: AttentionSpread, *, dtype: str,
                           weights: str) -> None:
    """Raises AssertionError naming the worst element if any error exceeds the bound."""
    bound = attention_bound(want, spread, dtype=dtype, weights=weights)
    error = np.abs(np.asarray(got, np.float64) - want)
    bad = ~(error <= bound)  # NaN fails
    if bad.any():
        excess = np.where(bad, np.nan_to_num(error / bound, nan=np.inf), -1.0)
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), error.shape))
        raise AssertionError(
            f"{np.count_nonzero(bad)} of {error.size} values differ; worst at {worst} "
            f"[row, head, dim]: got {float(got[worst])!r}, want {float(want[worst])!r}, "
            f"bound {float(bound[worst]):.3g}")
