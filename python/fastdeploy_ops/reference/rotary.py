"""Reference for the ``rotary`` family (semantics: ``ops/rotary/README.md``).

float32 math with each product and sum rounded on its own, as in the kernel; the result is left
in float32 (the kernel then rounds once to the tensors' dtype). Nothing is modified in place.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["fused_rotary_position_encoding"]

F32 = NDArray[np.float32]


def _rotate(heads: F32, cos: F32, sin: F32, rot_dim: int, is_neox: bool) -> F32:
    """Rotates ``heads [n, H, D]`` with per-token ``cos``/``sin`` ``[n, 1, rot_dim // 2]``."""
    out = heads.copy()
    half = rot_dim // 2
    if is_neox:
        x, y = heads[..., :half], heads[..., half:rot_dim]
    else:
        x, y = heads[..., 0:rot_dim:2], heads[..., 1:rot_dim:2]
    new_x = x * cos - y * sin
    new_y = y * cos + x * sin
    if is_neox:
        out[..., :half], out[..., half:rot_dim] = new_x, new_y
    else:
        out[..., 0:rot_dim:2], out[..., 1:rot_dim:2] = new_x, new_y
    return out


def fused_rotary_position_encoding(
    query: ArrayLike,
    key: ArrayLike | None,
    position_ids: ArrayLike,
    cos_sin_cache: ArrayLike,
    head_size: int,
    is_neox: bool = True,
) -> tuple[F32, F32 | None]:
    """Reference ``fused_rotary_position_encoding``: returns new float32 ``(query, key)``.

    ``query``/``key``: ``[T, H, head_size]`` or ``[T, H * head_size]``; ``cos_sin_cache``
    ``[max_position, rot_dim]`` (cos, then sin). Pairs ``(i, i + rot_dim/2)`` (neox) or
    ``(2i, 2i+1)``: ``(x, y) -> (x*c - y*s, y*c + x*s)``. Tokens whose position is outside
    ``[0, max_position)`` are unchanged, as are dimensions ``[rot_dim, head_size)``.
    """
    cache = np.asarray(cos_sin_cache, dtype=np.float32)
    max_position, rot_dim = cache.shape
    if rot_dim % 2 or not 2 <= rot_dim <= head_size:
        raise ValueError(f"rot_dim={rot_dim} must be even and in [2, head_size={head_size}]")
    half = rot_dim // 2
    positions = np.asarray(position_ids, dtype=np.int64).reshape(-1)
    valid = (positions >= 0) & (positions < max_position)
    rows = positions[valid]
    cos = cache[rows, :half][:, None, :]
    sin = cache[rows, half:rot_dim][:, None, :]

    def apply(x: ArrayLike | None) -> F32 | None:
        if x is None:
            return None
        x = np.asarray(x, dtype=np.float32)
        count = x.shape[1] if x.ndim == 3 else x.shape[1] // head_size
        heads = x.reshape(x.shape[0], count, head_size).copy()
        heads[valid] = _rotate(heads[valid], cos, sin, rot_dim, is_neox)
        return heads.reshape(x.shape)

    return apply(query), apply(key)
