"""Reference for the ``scaffold_demo`` family."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["scaled_copy"]


def scaled_copy(x: ArrayLike, factor: float) -> NDArray[np.float32]:
    """``factor * x`` in float32 (one rounding per element, as the kernel), any shape."""
    return np.float32(factor) * np.asarray(x, dtype=np.float32)
