"""Paged attention references (``ops/attention/README.md``): the cache append (with rotary
embedding and quantisation) and causal attention over a paged cache.

Caches are numpy float32 arrays ``[num_blocks, kv_heads, block_size, head_dim]`` holding what
the cache stores in its own units: values of the query's dtype for c16 caches, the integers of
an int8 cache, the e4m3 values of an fp8 cache. Attention dequantises with the per-KV-head
scales (``stored * scale``) before it computes ``softmax(q . k * softmax_scale) . v``: scores in
float32, the softmax and the weighted sum in float64, rounded once to float32.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._numerics import round_to_dtype, round_to_e4m3

__all__ = [
    "AttentionSpread",
    "paged_attention",
    "paged_attention_spread",
    "paged_kv_append",
    "quantize_cache_values",
    "rotate_rows",
]

F32 = np.float32
CACHE_TYPES = ("c16", "int8", "float8_e4m3fn")


def quantize_cache_values(x: NDArray, cache: str, scale: NDArray | None) -> NDArray[np.float32]:
    """What a cache of type ``cache`` stores for float32 values ``x`` [..., kv_heads, D]:
    ``x`` itself for c16 (already of the query's dtype), ``round(x / scale)`` clamped to
    [-127, 127] for int8, ``e4m3(x / scale)`` saturated to +-448 for fp8; ``scale`` is
    ``[kv_heads]``. Division and rounding are each correctly rounded, like the kernels'.
    """
    x = np.asarray(x, dtype=F32)
    if cache == "c16":
        return x
    scaled = (x / np.asarray(scale, dtype=F32)[:, None]).astype(F32)
    if cache == "int8":
        return np.clip(np.rint(scaled), -127, 127).astype(F32)
    if cache == "float8_e4m3fn":
        return round_to_e4m3(scaled)
    raise ValueError(f"cache must be one of {CACHE_TYPES}, got {cache!r}")


def rotate_rows(x: NDArray, cos: NDArray, sin: NDArray, is_neox: bool) -> NDArray[np.float32]:
    """Rotary embedding of rows ``x`` [..., D] by per-row ``cos``/``sin`` [..., rot_dim / 2],
    each product and sum rounded to float32 on its own (as the kernels compute it)."""
    x = np.array(x, dtype=F32)
    half = cos.shape[-1]
    if is_neox:
        a, b = np.arange(half), np.arange(half) + half
    else:
        a, b = 2 * np.arange(half), 2 * np.arange(half) + 1
    xa, xb = x[..., a], x[..., b]
    x[..., a] = (xa * cos).astype(F32) - (xb * sin).astype(F32)
    x[..., b] = (xb * cos).astype(F32) + (xa * sin).astype(F32)
    return x


def paged_kv_append(
    key: NDArray,
    value: NDArray,
    key_cache: NDArray,
    value_cache: NDArray,
    block_tables: NDArray,
    cache_lens: NDArray,
    cu_seqlens_q: NDArray,
    *,
    dtype: str,
    cache: str = "c16",
    key_scale: NDArray | None = None,
    value_scale: NDArray | None = None,
    query: NDArray | None = None,
    cos_sin_cache: NDArray | None = None,
    is_neox: bool = True,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32] | None]:
    """Returns ``(key_cache, value_cache, query)`` after the append (new arrays).

    ``key``/``value`` [T, kv_heads, D] and ``query`` [T, H, D] hold values of ``dtype``
    (float16/bfloat16) as float32. Token ``j`` of sequence ``b`` (rows ``cu_seqlens_q[b]`` ..)
    goes to position ``cache_lens[b] + j``. With ``cos_sin_cache`` [max_position, rot_dim]
    (cos, then sin), K's and the query's first rot_dim dims are rotated by the position's angle
    and rounded to ``dtype`` (K before it is quantised).
    """
    key_cache = np.array(key_cache, dtype=F32)
    value_cache = np.array(value_cache, dtype=F32)
    query = None if query is None else np.array(query, dtype=F32)
    block_size = key_cache.shape[2]
    for b in range(len(cache_lens)):
        for t in range(int(cu_seqlens_q[b]), int(cu_seqlens_q[b + 1])):
            position = int(cache_lens[b]) + t - int(cu_seqlens_q[b])
            k = np.array(key[t], dtype=F32)
            if cos_sin_cache is not None:
                rot_dim = cos_sin_cache.shape[1]
                cos = cos_sin_cache[position, : rot_dim // 2].astype(F32)
                sin = cos_sin_cache[position, rot_dim // 2 :].astype(F32)
                rotated = rotate_rows(k[:, :rot_dim], cos, sin, is_neox)
                k[:, :rot_dim] = round_to_dtype(rotated, dtype)
                if query is not None:
                    query[t, :, :rot_dim] = round_to_dtype(
                        rotate_rows(query[t, :, :rot_dim], cos, sin, is_neox), dtype)
            block = int(block_tables[b, position // block_size])
            row = position % block_size
            key_cache[block, :, row] = quantize_cache_values(k, cache, key_scale)
            value_cache[block, :, row] = quantize_cache_values(value[t], cache, value_scale)
    return key_cache, value_cache, query


def _sequences(
    query: NDArray,
    key_cache: NDArray,
    value_cache: NDArray,
    block_tables: NDArray,
    seq_lens: NDArray,
    cu_seqlens_q: NDArray | None,
    softmax_scale: float | None,
    key_scale: NDArray | None,
    value_scale: NDArray | None,
) -> Iterator[tuple[int, int, NDArray, NDArray]]:
    """Per sequence with query rows: ``(first, last, exp_scores, v)`` where ``exp_scores``
    [kv_heads, group, q_len, length] is ``exp(score - row max)`` (0 where masked, float64) and
    ``v`` [kv_heads, 1, length, D] the dequantised values (float32). Query head ``h`` is
    ``exp_scores[h // group, h % group]``; K and V stay per KV head (matmul broadcasts them over
    the group), so long contexts cost no copy per query head."""
    query = np.asarray(query, dtype=F32)
    rows, num_heads, head_dim = query.shape
    kv_heads, block_size = key_cache.shape[1], key_cache.shape[2]
    group = num_heads // kv_heads
    scale = F32(head_dim**-0.5 if softmax_scale is None else softmax_scale)
    k_scale = np.ones(kv_heads, F32) if key_scale is None else np.asarray(key_scale, F32)
    v_scale = np.ones(kv_heads, F32) if value_scale is None else np.asarray(value_scale, F32)
    if cu_seqlens_q is None:
        cu_seqlens_q = np.arange(len(seq_lens) + 1)
    for b in range(len(seq_lens)):
        first, last = int(cu_seqlens_q[b]), int(cu_seqlens_q[b + 1])
        if last == first:
            continue
        length = int(seq_lens[b])
        positions = np.arange(length)
        blocks = block_tables[b, positions // block_size]
        # [length, kv_heads, D] -> [kv_heads, 1, length, D], dequantised.
        k = (key_cache[blocks, :, positions % block_size] * k_scale[None, :, None]).astype(F32)
        v = (value_cache[blocks, :, positions % block_size] * v_scale[None, :, None]).astype(F32)
        k = k.transpose(1, 0, 2)[:, None]
        v = v.transpose(1, 0, 2)[:, None]
        # [q_len, H, D] -> [kv_heads, group, q_len, D]
        q = query[first:last].transpose(1, 0, 2).reshape(kv_heads, group, last - first, head_dim)
        scores = np.matmul(q, k.transpose(0, 1, 3, 2)) * scale  # [kv_heads, group, q_len, length]
        query_positions = length - (last - first) + np.arange(last - first)
        scores[:, :, positions[None, :] > query_positions[:, None]] = -np.inf
        scores = scores.astype(np.float64)
        yield first, last, np.exp(scores - scores.max(axis=-1, keepdims=True)), v


def _rows(per_head: NDArray) -> NDArray:
    """[kv_heads, group, q_len, D] -> [q_len, H, D]."""
    kv_heads, group, q_len, head_dim = per_head.shape
    return per_head.reshape(kv_heads * group, q_len, head_dim).transpose(1, 0, 2)


def paged_attention(
    query: NDArray,
    key_cache: NDArray,
    value_cache: NDArray,
    block_tables: NDArray,
    seq_lens: NDArray,
    *,
    cu_seqlens_q: NDArray | None = None,
    softmax_scale: float | None = None,
    key_scale: NDArray | None = None,
    value_scale: NDArray | None = None,
) -> NDArray[np.float32]:
    """Causal attention over a paged cache; returns ``[rows, H, D]`` float32.

    Without ``cu_seqlens_q`` (decode), row ``b`` attends to all ``seq_lens[b]`` positions of
    sequence ``b``. With it (chunked prefill), the ``q_len`` rows of sequence ``b`` are the
    tokens at positions ``seq_lens[b] - q_len`` .. ``seq_lens[b] - 1``, each attending to the
    positions up to its own. Query head ``h`` uses KV head ``h // (H // kv_heads)``. Scores
    are float32; the softmax and the weighted sum are float64, rounded once to float32.
    """
    out = np.zeros(np.shape(query), F32)
    for first, last, e, v in _sequences(query, key_cache, value_cache, block_tables, seq_lens,
                                        cu_seqlens_q, softmax_scale, key_scale, value_scale):
        weights = e / e.sum(axis=-1, keepdims=True)
        out[first:last] = _rows(np.matmul(weights, v.astype(np.float64)))
    return out


@dataclass(frozen=True)
class AttentionSpread:
    """What rounding errors in an attention kernel scale with, per output element
    ``[rows, H, D]`` (float64). With softmax weights ``w_i = e_i / S`` (``e_i`` relative to the
    row's largest score, ``S = sum e_i``) over the row's tokens ``i`` and values ``v_i``:

    - ``abs_weighted``: ``sum w_i |v_i|``, the most a relative error ``u`` of every weight can
      move the output (times ``u``);
    - ``rms_weighted``: ``sqrt(sum w_i^2 v_i^2)``, the standard deviation (times ``u``) of that
      error when the weights' errors are independent and centred, as rounding errors are;
    - ``abs_unweighted`` and ``rms_unweighted``: ``sum |v_i| / S`` and ``sqrt(sum v_i^2) / S``,
      the same for an absolute error of every unnormalised weight ``e_i`` (a format's spacing
      near zero).
    """

    abs_weighted: NDArray[np.float64]
    rms_weighted: NDArray[np.float64]
    abs_unweighted: NDArray[np.float64]
    rms_unweighted: NDArray[np.float64]


def paged_attention_spread(
    query: NDArray,
    key_cache: NDArray,
    value_cache: NDArray,
    block_tables: NDArray,
    seq_lens: NDArray,
    *,
    cu_seqlens_q: NDArray | None = None,
    softmax_scale: float | None = None,
    key_scale: NDArray | None = None,
    value_scale: NDArray | None = None,
) -> AttentionSpread:
    """The :class:`AttentionSpread` of :func:`paged_attention` with the same arguments."""
    shape = np.shape(query)
    terms = [np.zeros(shape) for _ in range(4)]
    for first, last, e, v in _sequences(query, key_cache, value_cache, block_tables, seq_lens,
                                        cu_seqlens_q, softmax_scale, key_scale, value_scale):
        total = e.sum(axis=-1, keepdims=True)
        weights = e / total
        v = v.astype(np.float64)
        magnitude, square = np.abs(v), v**2
        mask = (e > 0).astype(np.float64)  # the tokens each row attends to
        values = (
            np.matmul(weights, magnitude),
            np.sqrt(np.matmul(weights**2, square)),
            np.matmul(mask, magnitude) / total,
            np.sqrt(np.matmul(mask, square)) / total,
        )
        for term, value in zip(terms, values):
            term[first:last] = _rows(value)
    return AttentionSpread(*terms)
