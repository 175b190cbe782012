"""Rotary position embedding (family ``rotary``, SM70+): ``fused_rotary_position_encoding``.

Takes tensors of any DLPack framework (torch, paddle, cupy, jax) and runs on the caller's current
stream. Arguments are validated before launch; a violation raises ``TypeError`` (dtype) or
``ValueError`` (shape, range, device, layout) naming the op and the argument.
"""

from __future__ import annotations

import operator

from ._tensors import Kernel, Tensor, framework_of, kernels_by_op, launch

__all__ = ["fused_rotary_position_encoding"]

FAMILY = "rotary"

# The family's torch operators (fastdeploy_ops._torch_library): each binding's arguments but
# the stream; (a!) marks a tensor the kernel writes.
TORCH_SCHEMAS = {
    Kernel(FAMILY, "fused_rotary_position_encoding"): (
        "(Tensor(a!) query, Tensor(b!)? key, Tensor position_ids, Tensor cos_sin_cache, "
        "int head_size, bool is_neox) -> ()"
    ),
}
_KERNELS = kernels_by_op(TORCH_SCHEMAS)


def fused_rotary_position_encoding(
    query: Tensor,
    key: Tensor | None,
    position_ids: Tensor,
    cos_sin_cache: Tensor,
    head_size: int,
    is_neox: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """Rotate the first ``rot_dim`` dimensions of every query and key head, in place.

    With ``rot_dim = cos_sin_cache.shape[1]``, ``half = rot_dim // 2`` and, for token ``t``,
    ``c = cos_sin_cache[position_ids[t], i]`` and ``s = cos_sin_cache[position_ids[t], half + i]``
    (``i < half``), each pair ``(x, y)`` of a head becomes ``(x*c - y*s, y*c + x*s)``. The pairs
    are ``(i, i + half)`` when ``is_neox`` (GPT-NeoX / Llama style) and ``(2i, 2i + 1)``
    otherwise (GPT-J, interleaved). Dimensions ``[rot_dim, head_size)`` are not touched. Math
    is fp32 (each product and sum rounded on its own) with one rounding to the tensor's dtype.

    Args:
        query: ``[T, num_heads, head_size]`` or ``[T, num_heads * head_size]``, float32,
            float16 or bfloat16, contiguous, on the GPU; written in place.
        key: ``[T, num_kv_heads, head_size]`` or flattened, of the query's dtype, written in
            place; or ``None`` to rotate the query only.
        position_ids: ``[T]`` int32 positions. A token whose position is outside
            ``[0, max_position)`` is left unchanged (positions live on the GPU and are not
            checked on the host).
        cos_sin_cache: ``[max_position, rot_dim]`` of the query's dtype: cos in the first
            ``rot_dim / 2`` columns, sin in the rest; ``rot_dim`` even,
            ``2 <= rot_dim <= min(head_size, 2048)``.
        head_size: ``D``, the size of one head (``>= 2``).
        is_neox: neox (rotate halves) or GPT-J (rotate interleaved pairs) style.

    Returns:
        ``(query, key)``, the same tensors, modified in place.

    Any number of tokens works (grid-stride over tokens, 64-bit offsets).

    Differences from FastDeploy: math is fp32 with one rounding (FastDeploy rounds each
    operation in fp16/bf16: within about 1 ulp of it); out-of-range positions leave the token
    unchanged instead of reading outside the cache; ``key`` may be ``None`` (as in vLLM);
    ``T == 0`` is allowed; the tensors are returned.
    """
    op = "fused_rotary_position_encoding"
    kernel = _KERNELS[op]
    framework = framework_of(op, "query", query)
    try:
        head_size = operator.index(head_size)
    except TypeError:
        given = type(head_size).__name__
        raise TypeError(f"{op}: argument 'head_size' must be an int, got {given}") from None
    if not 2 <= head_size < 2**31:
        raise ValueError(
            f"{op}: argument 'head_size' must be between 2 and 2**31 - 1, got {head_size}"
        )
    launch(framework, kernel, query, key, position_ids, cos_sin_cache, head_size, bool(is_neox))
    return query, key
