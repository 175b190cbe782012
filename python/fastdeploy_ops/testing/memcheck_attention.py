"""A workload of the attention ops for compute-sanitizer, which checks every access they make.

Runs decode, prefill (tiled and per token) and append over every cache type the loaded module
has, head dims 64, 128 and 256, group sizes 1, 3 and 8 (every kernel, every kind of tile),
contexts of 1-3 tokens, split and unsplit contexts and a too-small ``max_seq_len``, then calls
with a block id past the cache, lengths past the table and (prefill) offsets that do not rise
with ``check_metadata=False``: the kernels' own bounds checks must keep those inside the cache
and the output. Needs torch with CUDA::

    compute-sanitizer --tool memcheck --error-exitcode 9 \\
        python -m fastdeploy_ops.testing.memcheck_attention
"""

from __future__ import annotations

import torch

from .. import attention
from .. import _selection

_BLOCK_SIZE = 16
_SCALE = 0.02
# (context lengths, query heads, kv heads): a split context with GQA 8, MHA short ones, and
# 3 query heads per KV head over 1-3 tokens.
_BATCHES = (([1, 77, 3000], 16, 2), ([17, 1], 8, 8), ([1, 2, 3, 45], 24, 8))
_HEAD_DIMS = (64, 128, 256)
_NEW_TOKENS = 9


def _block_tables(lengths: list[int]) -> tuple[torch.Tensor, int]:
    """Tables of shuffled block ids (one spare column of -1) and the number of blocks."""
    blocks = [-(-n // _BLOCK_SIZE) for n in lengths]
    num_blocks = sum(blocks) + 2
    tables = torch.full((len(lengths), max(blocks) + 1), -1, dtype=torch.int32)
    ids = torch.randperm(num_blocks, dtype=torch.int32)
    start = 0
    for row, count in enumerate(blocks):
        tables[row, :count] = ids[start:start + count]
        start += count
    return tables.cuda(), num_blocks


def _caches(dtype: torch.dtype, shape: tuple[int, ...],
            kv_heads: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Key and value caches of `dtype` and the scale arguments that cache type needs."""
    if dtype == torch.int8:
        key = torch.randint(-127, 128, shape, dtype=torch.int8, device="cuda")
    else:
        key = torch.randn(shape, device="cuda").to(dtype)
    scales = {} if dtype == torch.bfloat16 else {
        "key_scale": torch.full((kv_heads,), _SCALE, device="cuda"),
        "value_scale": torch.full((kv_heads,), _SCALE, device="cuda"),
    }
    return key, key.clone(), scales


def _run(dtype: torch.dtype, head_dim: int, lengths: list[int], heads: int, kv_heads: int) -> None:
    tables, num_blocks = _block_tables(lengths)
    shape = (num_blocks, kv_heads, _BLOCK_SIZE, head_dim)
    key_cache, value_cache, scales = _caches(dtype, shape, kv_heads)
    seq_lens = torch.tensor(lengths, dtype=torch.int32, device="cuda")
    query = torch.randn(len(lengths), heads, head_dim, device="cuda", dtype=torch.bfloat16)
    attention.paged_decode_attention(query, key_cache, value_cache, tables, seq_lens, **scales)
    attention.paged_decode_attention(query, key_cache, value_cache, tables, seq_lens,
                                     max_seq_len=2, check_metadata=False, **scales)

    # The last tokens of each sequence are new: prefill them, then append them (with rotary).
    new = torch.tensor([min(n, _NEW_TOKENS) for n in lengths], dtype=torch.int32)
    cu_seqlens = torch.nn.functional.pad(new.cumsum(0), (1, 0)).to(torch.int32).cuda()
    tokens = int(new.sum())
    prefill_query = torch.randn(tokens, heads, head_dim, device="cuda", dtype=torch.bfloat16)
    attention.paged_prefill_attention(prefill_query, cu_seqlens, key_cache, value_cache, tables,
                                      seq_lens, **scales)  # the tiled kernel
    one_each = torch.arange(len(lengths) + 1, dtype=torch.int32, device="cuda")
    attention.paged_prefill_attention(query, one_each, key_cache, value_cache, tables, seq_lens,
                                      **scales)  # a token per sequence: the per-token kernels
    key = torch.randn(tokens, kv_heads, head_dim, device="cuda", dtype=torch.bfloat16)
    cos_sin = torch.randn(8192, head_dim, device="cuda", dtype=torch.bfloat16)
    attention.paged_kv_append(key, key, key_cache, value_cache, tables, seq_lens - new.cuda(),
                              cu_seqlens, query=prefill_query, cos_sin_cache=cos_sin, **scales)

    # Metadata the check would reject: the kernels must still stay inside the cache.
    bad_tables = tables.clone()
    bad_tables[0, 0] = 1 << 30
    attention.paged_decode_attention(query, key_cache, value_cache, bad_tables, seq_lens,
                                     check_metadata=False, **scales)
    attention.paged_kv_append(key, key, key_cache, value_cache, bad_tables,
                              torch.full_like(seq_lens, 10**6), cu_seqlens, check_metadata=False,
                              **scales)
    for bad in ({"block_tables": bad_tables}, {"seq_lens": torch.full_like(seq_lens, 10**6)},
                {"cu_seqlens_q": cu_seqlens.flip(0)}):
        args = {"cu_seqlens_q": cu_seqlens, "block_tables": tables, "seq_lens": seq_lens, **bad}
        attention.paged_prefill_attention(
            prefill_query, args["cu_seqlens_q"], key_cache, value_cache, args["block_tables"],
            args["seq_lens"], check_metadata=False, **scales)


def main() -> None:
    torch.manual_seed(0)
    dtypes = [torch.bfloat16, torch.int8]
    manifest = _selection.selection().manifest
    if manifest is not None and manifest.lacks(attention.FAMILY, "cache=fp8") is None:
        dtypes.append(torch.float8_e4m3fn)
    for dtype in dtypes:
        for head_dim in _HEAD_DIMS:
            for lengths, heads, kv_heads in _BATCHES:
                _run(dtype, head_dim, lengths, heads, kv_heads)
    torch.cuda.synchronize()
    print(f"memcheck workload done: caches {[str(d) for d in dtypes]}, head dims {_HEAD_DIMS}")


if __name__ == "__main__":
    main()
