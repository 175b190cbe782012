"""Paged attention (family ``attention``, SM80+; fp8 caches SM89+).

The KV cache is paged: ``key_cache`` and ``value_cache`` are ``[num_blocks, kv_heads,
block_size, head_dim]``; position ``p`` of sequence ``b`` is row ``p % block_size`` of block
``block_tables[b, p // block_size]``. Caches hold the query's dtype (bf16/fp16, "c16"), int8 or
float8_e4m3fn; quantised caches store ``round(x / scale)`` per KV head with fp32 ``[kv_heads]``
dequantisation scales ``key_scale`` / ``value_scale`` (int8 clamps to ±127, fp8 saturates to
±448). Head dims 64, 128 and 256 have kernels; any number of query heads that is a multiple of
the KV heads works (grouped-query attention: query head ``h`` reads KV head
``h // (num_heads // kv_heads)``).

Long contexts are split over thread blocks when the batch alone does not fill the GPU; the
split is planned for the longest context the block tables can hold unless ``max_seq_len`` (a
host-side upper bound of ``seq_lens``, as engines keep it) says less. A context longer than
``max_seq_len`` is still attended to in full (more slowly); ``check_metadata`` reports it.
:func:`paged_attention_plan` shows the kernel and split a call would use, without a GPU.

Lengths and block ids live on the GPU. With ``check_metadata=True`` (the default) each call
first checks them on the GPU and raises ``ValueError`` naming the bad entry; that costs a stream
synchronisation, so serving loops pass ``check_metadata=False`` (and calls captured in a CUDA
graph skip the check). Without the check, bad metadata never makes a kernel read or write
outside the cache: appends skip the token, attention returns NaN for the affected rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._loader import get_op
from ._tensors import Kernel, Tensor, dtype_name, float8_bytes, framework_of, launch

__all__ = [
    "AttentionPlan",
    "paged_attention_plan",
    "paged_decode_attention",
    "paged_kv_append",
    "paged_prefill_attention",
]

FAMILY = "attention"
_FP8 = "float8_e4m3fn"
# The instantiation group of fp8 caches: modules below its minimum SM have the family without it.
_FP8_GROUP = "cache=fp8"

# The family's torch operators (fastdeploy_ops._torch_library): each binding's arguments but
# the stream; (a!) marks a tensor the kernel writes.
_TORCH_SCHEMAS = {
    "paged_kv_append": (
        "(Tensor key, Tensor value, Tensor(a!) key_cache, Tensor(b!) value_cache, "
        "Tensor block_tables, Tensor cache_lens, Tensor cu_seqlens_q, Tensor? key_scale, "
        "Tensor? value_scale, Tensor(c!)? query, Tensor? cos_sin_cache, bool is_neox, "
        "bool check_metadata) -> ()"
    ),
    "paged_decode_attention": (
        "(Tensor query, Tensor(a!) out, Tensor key_cache, Tensor value_cache, "
        "Tensor block_tables, Tensor seq_lens, Tensor? key_scale, Tensor? value_scale, "
        "float softmax_scale, int max_seq_len, bool check_metadata) -> ()"
    ),
    "paged_prefill_attention": (
        "(Tensor query, Tensor(a!) out, Tensor cu_seqlens_q, Tensor key_cache, "
        "Tensor value_cache, Tensor block_tables, Tensor seq_lens, Tensor? key_scale, "
        "Tensor? value_scale, float softmax_scale, int max_seq_len, bool check_metadata) -> ()"
    ),
}
# Each op's kernel for bf16/fp16/int8 caches and, from their own instantiation group, for fp8
# caches; made once here rather than on every call.
_KERNELS = {op: (Kernel(FAMILY, op), Kernel(FAMILY, op, _FP8_GROUP)) for op in _TORCH_SCHEMAS}
TORCH_SCHEMAS = {kernel: _TORCH_SCHEMAS[kernel.op] for pair in _KERNELS.values() for kernel in pair}


def _cache_op(op: str, key_cache: Tensor, value_cache: Tensor) -> tuple[Kernel, Tensor, Tensor]:
    """The kernel serving the cache's dtype and the caches as the binding takes them."""
    key_dtype = dtype_name(key_cache)
    # Dtype objects are shared, so equal dtypes are usually one object: one name to look up.
    if key_dtype != _FP8 and (value_cache.dtype is key_cache.dtype
                              or dtype_name(value_cache) != _FP8):
        return _KERNELS[op][0], key_cache, value_cache
    if dtype_name(value_cache) != key_dtype:
        raise TypeError(
            f"{op}: argument 'value_cache' must have the dtype of 'key_cache' ({key_dtype}), "
            f"got {dtype_name(value_cache)}"
        )
    return _KERNELS[op][1], float8_bytes(key_cache), float8_bytes(value_cache)


def _softmax_scale(op: str, query: Tensor, softmax_scale: float | None) -> float:
    if softmax_scale is None:
        shape = query.shape  # a new tuple per access for CuPy arrays
        return 1.0 / math.sqrt(int(shape[-1])) if len(shape) == 3 else 1.0
    try:
        return float(softmax_scale)
    except (TypeError, ValueError):
        given = type(softmax_scale).__name__
        raise TypeError(f"{op}: argument 'softmax_scale' must be a float, got {given}") from None


def _max_seq_len(op: str, max_seq_len: int | None) -> int:
    if max_seq_len is None:
        return 0
    if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or max_seq_len < 1:
        raise ValueError(f"{op}: argument 'max_seq_len' must be None or an int >= 1 (the "
                         f"longest seq_lens entry), got {max_seq_len!r}")
    return max_seq_len


def _attend(op: str, query: Tensor, cu_seqlens_q: Tensor | None, key_cache: Tensor,
            value_cache: Tensor, block_tables: Tensor, seq_lens: Tensor,
            key_scale: Tensor | None, value_scale: Tensor | None, softmax_scale: float | None,
            max_seq_len: int | None, out: Tensor | None, check_metadata: bool) -> Tensor:
    """Decode (no ``cu_seqlens_q``) or prefill: allocates ``out`` if needed and launches."""
    kernel, key_cache_arg, value_cache_arg = _cache_op(op, key_cache, value_cache)
    framework = framework_of(op, "query", query)
    scale = _softmax_scale(op, query, softmax_scale)
    longest = _max_seq_len(op, max_seq_len)
    if out is None:
        out = framework.empty_like(query)
    rows = (query, out) if cu_seqlens_q is None else (query, out, cu_seqlens_q)
    launch(framework, kernel, *rows, key_cache_arg, value_cache_arg, block_tables, seq_lens,
           key_scale, value_scale, scale, longest, bool(check_metadata))
    return out


def paged_kv_append(
    key: Tensor,
    value: Tensor,
    key_cache: Tensor,
    value_cache: Tensor,
    block_tables: Tensor,
    cache_lens: Tensor,
    cu_seqlens_q: Tensor,
    *,
    key_scale: Tensor | None = None,
    value_scale: Tensor | None = None,
    query: Tensor | None = None,
    cos_sin_cache: Tensor | None = None,
    is_neox: bool = True,
    check_metadata: bool = True,
) -> None:
    """Writes the new tokens' K and V into the paged cache, optionally with rotary embedding.

    Prefill chunks and decode tokens mix freely: sequence ``b``'s new tokens are rows
    ``cu_seqlens_q[b]:cu_seqlens_q[b + 1]`` of ``key`` and ``value`` and go to positions
    ``cache_lens[b], cache_lens[b] + 1, ...``. With ``cos_sin_cache``, the rotary embedding of
    each token's position rotates K before it is stored (then it is quantised for int8/fp8
    caches) and ``query`` in place, in fp32 with one rounding to the dtype, exactly like
    :func:`fastdeploy_ops.rotary.fused_rotary_position_encoding`.

    Args:
        key, value: ``[T, kv_heads, head_dim]`` bf16 or fp16.
        key_cache, value_cache: ``[num_blocks, kv_heads, block_size, head_dim]`` of the key's
            dtype, int8 or float8_e4m3fn; written in place.
        block_tables: ``[batch, max_blocks_per_seq]`` int32.
        cache_lens: ``[batch]`` int32, tokens already in the cache (before this append).
        cu_seqlens_q: ``[batch + 1]`` int32, ``0 = cu[0] <= ... <= cu[batch] = T``.
        key_scale, value_scale: ``[kv_heads]`` float32, required for int8/fp8 caches only.
        query: ``[T, num_heads, head_dim]`` of the key's dtype, rotated in place; needs
            ``cos_sin_cache``.
        cos_sin_cache: ``[max_position, rot_dim]`` of the key's dtype, cos then sin; rotates the
            first ``rot_dim`` dims; ``is_neox`` pairs ``(i, i + rot_dim/2)``, else ``(2i, 2i+1)``.
        check_metadata: check lengths, offsets and block ids on the GPU first (synchronises).
    """
    op = "paged_kv_append"
    kernel, key_cache_arg, value_cache_arg = _cache_op(op, key_cache, value_cache)
    framework = framework_of(op, "key", key)
    launch(framework, kernel, key, value, key_cache_arg, value_cache_arg, block_tables,
           cache_lens, cu_seqlens_q, key_scale, value_scale, query, cos_sin_cache,
           bool(is_neox), bool(check_metadata))


def paged_decode_attention(
    query: Tensor,
    key_cache: Tensor,
    value_cache: Tensor,
    block_tables: Tensor,
    seq_lens: Tensor,
    *,
    key_scale: Tensor | None = None,
    value_scale: Tensor | None = None,
    softmax_scale: float | None = None,
    max_seq_len: int | None = None,
    out: Tensor | None = None,
    check_metadata: bool = True,
) -> Tensor:
    """One query token per sequence attending to its whole cached context.

    ``out[b, h] = softmax(query[b, h] . K_b^T * softmax_scale) . V_b`` over the ``seq_lens[b]``
    cached tokens of sequence ``b`` (the current token's K and V already appended), in fp32
    with one rounding to the output dtype. Long contexts are split over thread blocks and the
    partial softmax states merged.

    Args:
        query: ``[batch, num_heads, head_dim]`` bf16 or fp16, ``head_dim`` in {64, 128, 256},
            ``num_heads`` a multiple of ``kv_heads``.
        key_cache, value_cache, block_tables, key_scale, value_scale: the paged cache (see the
            module docstring).
        seq_lens: ``[batch]`` int32, ``1 <= seq_lens[b] <= max_blocks_per_seq * block_size``.
        softmax_scale: default ``1 / sqrt(head_dim)``.
        max_seq_len: an upper bound of ``seq_lens`` known on the host; plans the split of
            long contexts by it instead of by the block tables' capacity.
        out: optional ``[batch, num_heads, head_dim]`` output of the query's dtype.
        check_metadata: check lengths and block ids on the GPU first (synchronises).

    Returns:
        ``out``, or a new tensor like ``query``.
    """
    return _attend("paged_decode_attention", query, None, key_cache, value_cache, block_tables,
                   seq_lens, key_scale, value_scale, softmax_scale, max_seq_len, out,
                   check_metadata)


def paged_prefill_attention(
    query: Tensor,
    cu_seqlens_q: Tensor,
    key_cache: Tensor,
    value_cache: Tensor,
    block_tables: Tensor,
    seq_lens: Tensor,
    *,
    key_scale: Tensor | None = None,
    value_scale: Tensor | None = None,
    softmax_scale: float | None = None,
    max_seq_len: int | None = None,
    out: Tensor | None = None,
    check_metadata: bool = True,
) -> Tensor:
    """Causal attention of chunks of new tokens over their cached prefix and themselves.

    Sequence ``b``'s ``q_len = cu_seqlens_q[b + 1] - cu_seqlens_q[b]`` new tokens (already
    appended with :func:`paged_kv_append`) sit at positions ``seq_lens[b] - q_len`` ..
    ``seq_lens[b] - 1``; the token at position ``p`` attends to positions ``0 .. p``. Decode
    tokens are chunks of one.

    Args:
        query: ``[T, num_heads, head_dim]`` bf16 or fp16, packed by ``cu_seqlens_q``.
        cu_seqlens_q: ``[batch + 1]`` int32, ``0 = cu[0] <= ... <= cu[batch] = T``.
        key_cache, value_cache, block_tables, key_scale, value_scale: the paged cache.
        seq_lens: ``[batch]`` int32 tokens in the cache, the new ones included
            (``q_len <= seq_lens[b] <= max_blocks_per_seq * block_size``).
        softmax_scale: default ``1 / sqrt(head_dim)``.
        max_seq_len: an upper bound of ``seq_lens`` known on the host (see the decode).
        out: optional ``[T, num_heads, head_dim]`` output of the query's dtype.
        check_metadata: check offsets, lengths and block ids on the GPU first (synchronises).

    Returns:
        ``out``, or a new tensor like ``query``.

    Chunks averaging four tokens or more per sequence run on the tiled tensor-core kernel
    (FlashAttention-2 style: 128 (token, head) rows of a sequence per block, each K/V tile
    loaded once for the rows of every query head sharing it); shorter ones (decode tokens sent
    through prefill) on the per-token kernels of :func:`paged_decode_attention`.
    :func:`paged_attention_plan` says which a call takes.
    """
    return _attend("paged_prefill_attention", query, cu_seqlens_q, key_cache, value_cache,
                   block_tables, seq_lens, key_scale, value_scale, softmax_scale, max_seq_len,
                   out, check_metadata)


@dataclass(frozen=True)
class AttentionPlan:
    """How one attention launch divides its work (see :func:`paged_attention_plan`).

    Per-token kernels (``"tensor_core"``, mma.sync over a tile of 16 query heads, and
    ``"cuda_core"``): a block computes one query row x one KV head x ``head_tile`` of the query
    heads sharing it x one partition of ``partition_tokens`` of the row's context.
    ``"tiled_prefill"`` (prefills averaging four tokens or more per sequence): a block computes
    128 (token, head) rows of one sequence's chunk, ``head_tile`` being the whole group, x one KV
    head x one partition, over ``floor(T * group / 128) + batch`` tiles per KV head;
    ``"tiled_prefill_wgmma"`` is the same work on Hopper's warpgroup MMA (the sm90 module on an
    SM 9.0 GPU, 16-bit caches, head dims 64 and 128: 384 threads, of which 128 copy). With
    ``num_splits > 1`` a second kernel merges the partitions from a ``workspace_bytes`` scratch
    buffer.
    """

    kernel: str  # "tiled_prefill", "tiled_prefill_wgmma", "tensor_core" or "cuda_core"
    head_tile: int
    head_tiles: int
    num_splits: int
    partition_tokens: int
    threads: int
    shared_bytes: int  # dynamic shared memory per block
    blocks: int
    workspace_bytes: int


def paged_attention_plan(
    num_heads: int,
    kv_heads: int,
    head_dim: int,
    *,
    batch: int,
    block_size: int,
    max_blocks_per_seq: int,
    dtype: str = "bfloat16",
    cache: str = "c16",
    query_tokens: int | None = None,
    max_seq_len: int | None = None,
    resident_blocks: int,
) -> AttentionPlan:
    """The kernel and split that decode (or, with ``query_tokens``, prefill) attention uses.

    Pure host logic of the loaded module (no GPU needed, e.g. with ``FASTDEPLOY_OPS_SM=80``):
    the same function the launch calls, with ``resident_blocks`` standing for how many blocks
    of the chosen kernel the device runs at once (SMs x blocks per SM; the launch asks the
    driver).

    Args:
        num_heads, kv_heads, head_dim: as in the query and the cache.
        batch, block_size, max_blocks_per_seq: the block tables' shape and the cache's block size.
        dtype: the query's, ``"bfloat16"`` or ``"float16"``.
        cache: ``"c16"``, ``"int8"`` or ``"float8_e4m3fn"``.
        query_tokens: total query tokens of a prefill; ``None`` for decode (one per sequence).
        max_seq_len: as in :func:`paged_decode_attention`.

    Raises:
        ValueError: no kernel serves these shapes (a bug: every accepted shape has one).
    """
    op = "paged_attention_plan"
    kernel = get_op(FAMILY, op, _FP8_GROUP if cache == _FP8 else None)
    rows = batch if query_tokens is None else query_tokens
    plan = kernel(dtype, cache, num_heads, kv_heads, head_dim, block_size, max_blocks_per_seq,
                  rows, batch, query_tokens is not None, _max_seq_len(op, max_seq_len),
                  resident_blocks)
    if plan["kernel"] == "none":
        raise ValueError(f"{op}: no kernel serves num_heads = {num_heads} over kv_heads = "
                         f"{kv_heads}, head_dim {head_dim}, {dtype} with a {cache} cache")
    return AttentionPlan(**plan)
