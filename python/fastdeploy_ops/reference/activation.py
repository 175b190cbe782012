"""Reference for the ``activation`` family."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["gelu_tanh"]

_SQRT_2_OVER_PI = np.float32(0.7978845608)
_CUBIC = np.float32(0.044715)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)


def gelu_tanh(x: ArrayLike) -> NDArray[np.float32]:
    """``0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x**3)))`` in float32, any shape."""
    x = np.asarray(x, dtype=np.float32)
    inner = _SQRT_2_OVER_PI * (x + _CUBIC * x * x * x)
    return _HALF * x * (_ONE + np.tanh(inner))
