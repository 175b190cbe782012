"""Attention's host-side logic through the real sm80 module, without a GPU: every accepted
shape has a kernel (paged_attention_plan, the function each launch follows), and bad arguments
are rejected by name before anything reaches a device."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest

import fastdeploy_ops
from fastdeploy_ops import _loader, attention
from fastdeploy_ops.errors import OpUnavailableError

HEAD_DIMS = (64, 128, 256)
# Blocks the device runs at once: none known, one SM, an A100 (108 SMs x 2) and an H100's
# 132 SMs x 2 and x 4.
RESIDENT = (0, 1, 216, 264, 528)
# (token, head) rows of one sequence per block of the tiled prefill kernel.
TILE_ROWS = 128


def plan(num_heads: int, kv_heads: int, head_dim: int, **kwargs) -> attention.AttentionPlan:
    options = dict(batch=1, block_size=16, max_blocks_per_seq=64, resident_blocks=264)
    options.update(kwargs)
    return attention.paged_attention_plan(num_heads, kv_heads, head_dim, **options)


@pytest.mark.usefixtures("sm80")
@pytest.mark.parametrize("cache", ["c16", "int8"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("head_dim", HEAD_DIMS)
def test_every_group_size_has_a_kernel(head_dim: int, dtype: str, cache: str) -> None:
    """Group sizes 1-128 (any num_heads a multiple of kv_heads up to 128 query heads): decode,
    a prefill of single tokens and one of longer chunks each get a kernel, a tile covering the
    group, a block of 128 threads, and shared memory that the smallest SM80+ part (SM86/SM89,
    99 KB a block) grants."""
    for kv_heads in (1, 2, 8):
        for group in range(1, 128 // kv_heads + 1):
            for query_tokens in (None, 3, 5, 37):
                p = plan(group * kv_heads, kv_heads, head_dim, dtype=dtype, cache=cache,
                         batch=3, query_tokens=query_tokens)
                assert p.head_tile * p.head_tiles >= group > p.head_tile * (p.head_tiles - 1)
                assert 0 <= p.shared_bytes <= 99 * 1024
                if query_tokens is not None and query_tokens >= 4 * 3:
                    assert (p.kernel, p.head_tiles, p.threads) == ("tiled_prefill", 1, 256)
                    continue
                assert p.threads == 128
                tensor_cores = head_dim <= 128 and group >= 3
                assert p.kernel == ("tensor_core" if tensor_cores else "cuda_core"), (group, p)


@pytest.mark.usefixtures("sm80")
def test_tiled_prefill_starts_at_four_tokens_per_sequence() -> None:
    """The tiled kernel takes prefills whose chunks average four tokens or more; a batch of
    decode tokens sent as a prefill (one per sequence) stays per token."""
    for batch in (1, 7, 256):
        for query_tokens in range(batch, 5 * batch + 1, max(1, batch // 4)):
            p = plan(32, 8, 128, batch=batch, query_tokens=query_tokens)
            tiled = query_tokens >= 4 * batch
            assert (p.kernel == "tiled_prefill") == tiled, (batch, query_tokens, p)


@pytest.mark.usefixtures("sm80")
def test_tiled_prefill_tiles_cover_every_sequence() -> None:
    """A tiled launch has floor(T * group / 128) + batch tiles per KV head: sequence b starts
    at tile floor(cu[b] * group / 128) + b, which leaves it at least the
    ceil(q_len * group / 128) tiles its rows need, whatever the chunk lengths."""
    rng = np.random.default_rng(0)
    for group, kv_heads in itertools.product((1, 3, 4, 7, 8, 16, 64), (1, 8)):
        for _ in range(20):
            batch = int(rng.integers(1, 40))
            q_lens = rng.integers(0, 300, batch)
            q_lens[0] = max(q_lens[0], 4 * batch)  # long enough on average to be tiled
            cu = np.concatenate([[0], np.cumsum(q_lens)])
            tokens = int(cu[-1])
            p = plan(group * kv_heads, kv_heads, 128, batch=batch, query_tokens=tokens,
                     resident_blocks=0)
            tiles = tokens * group // TILE_ROWS + batch
            assert (p.kernel, p.blocks) == ("tiled_prefill", tiles * kv_heads)
            first = cu * group // TILE_ROWS + np.arange(batch + 1)
            assert first[-1] == tiles
            assert np.all(np.diff(first) >= -(-q_lens * group // TILE_ROWS))


@pytest.mark.usefixtures("sm80")
def test_split_fills_the_gpu_and_covers_every_context() -> None:
    """Partitions cover the longest context (the hint, else the tables' capacity) and are used
    only when the rows alone leave resident blocks idle."""
    for resident, batch, block_size, blocks, hint, kv_heads in itertools.product(
            RESIDENT, (1, 3, 64, 256), (1, 16, 256), (1, 7, 512), (None, 1, 3000), (1, 8)):
        capacity = block_size * blocks
        longest = min(hint, capacity) if hint else capacity
        # Decode, and a prefill of 40 tokens per sequence (the tiled kernel).
        for query_tokens in (None, 40 * batch):
            p = plan(8 * kv_heads, kv_heads, 128, batch=batch, block_size=block_size,
                     max_blocks_per_seq=blocks, max_seq_len=hint, resident_blocks=resident,
                     query_tokens=query_tokens)
            rows = batch if query_tokens is None else query_tokens
            items = (batch * kv_heads * p.head_tiles if query_tokens is None
                     else (rows * 8 // TILE_ROWS + batch) * kv_heads)
            quantum = 64
            assert p.blocks == items * p.num_splits
            assert p.num_splits * p.partition_tokens >= longest
            assert p.num_splits == 1 or (p.num_splits - 1) * p.partition_tokens < longest
            if p.num_splits > 1:
                assert 2 * items <= resident and p.partition_tokens >= 256
                assert p.partition_tokens % quantum == 0
                assert p.workspace_bytes == rows * 8 * kv_heads * p.num_splits * 129 * 4
            else:
                assert p.workspace_bytes == 0


@pytest.mark.usefixtures("sm80")
def test_the_issue_shapes_plan_as_intended() -> None:

    # 32 q / 4 kv heads, head dim 128, on 264 resident blocks (an H100 at 2 blocks per SM).
    big = plan(32, 4, 128, batch=64, max_blocks_per_seq=256)  # 64 x 4096 tokens
    assert (big.kernel, big.head_tile, big.num_splits, big.blocks) == ("tensor_core", 16, 1, 256)
    long = plan(32, 4, 128, batch=1, max_blocks_per_seq=2048)  # 1 x 32k tokens
    assert (long.num_splits, long.partition_tokens, long.blocks) == (64, 512, 256)
    mha = plan(4, 4, 256, batch=2)
    assert (mha.kernel, mha.head_tile) == ("cuda_core", 1)
    llama32 = plan(24, 8, 128, batch=2)  # 3 query heads per KV head
    assert (llama32.kernel, llama32.head_tiles) == ("tensor_core", 1)
    # Issue 13's prefills (32 q / 8 kv heads): one 8k prompt fills the GPU with its tiles; a
    # 128-token chunk over a 32k prefix (5 tiles x 8 KV heads) splits its context in six.
    prompt = plan(32, 8, 128, batch=1, max_blocks_per_seq=512, query_tokens=8192)
    assert (prompt.kernel, prompt.head_tile, prompt.num_splits, prompt.blocks) == (
        "tiled_prefill", 4, 1, (8192 * 4 // TILE_ROWS + 1) * 8)
    chunk = plan(32, 8, 128, batch=1, max_blocks_per_seq=2056, query_tokens=128,
                 max_seq_len=32768 + 128)
    assert (chunk.kernel, chunk.num_splits, chunk.partition_tokens, chunk.blocks) == (
        "tiled_prefill", 6, 5504, 5 * 8 * 6)


F32 = np.float32


def _cache(dtype: str = "bfloat16", head_dim: int = 128) -> np.ndarray:
    return np.zeros((4, 2, 16, head_dim), dtype=np.float16 if dtype == "float16" else dtype)


def _decode(query=None, key_cache=None, value_cache=None, tables=None, lens=None, **kwargs):
    query = np.zeros((2, 4, 128), np.float16) if query is None else query
    key_cache = _cache("float16") if key_cache is None else key_cache
    value_cache = key_cache if value_cache is None else value_cache
    tables = np.zeros((2, 3), np.int32) if tables is None else tables
    lens = np.ones(2, np.int32) if lens is None else lens
    return lambda: attention.paged_decode_attention(query, key_cache, value_cache, tables, lens,
                                                    **kwargs)


# name: (error, op, argument named, call)
CASES: dict[str, tuple[type[Exception], str, str, Callable[[], object]]] = {
    "query-fp32": (TypeError, "paged_decode_attention", "query",
                   _decode(query=np.zeros((2, 4, 128), F32))),
    "query-2d": (ValueError, "paged_decode_attention", "query",
                 _decode(query=np.zeros((2, 512), np.float16))),
    "heads-not-multiple": (ValueError, "paged_decode_attention", "query",
                           _decode(query=np.zeros((2, 3, 128), np.float16))),
    "head-dim-96": (ValueError, "paged_decode_attention", "key_cache",
                    _decode(query=np.zeros((2, 4, 96), np.float16),
                            key_cache=_cache("float16", 96))),
    "head-dim-mismatch": (ValueError, "paged_decode_attention", "query",
                          _decode(key_cache=_cache("float16", 64))),
    "cache-fp32": (TypeError, "paged_decode_attention", "key_cache",
                   _decode(key_cache=np.zeros((4, 2, 16, 128), F32))),
    "value-int8": (TypeError, "paged_decode_attention", "value_cache",
                   _decode(value_cache=np.zeros((4, 2, 16, 128), np.int8))),
    "value-shape": (ValueError, "paged_decode_attention", "value_cache",
                    _decode(value_cache=np.zeros((4, 2, 8, 128), np.float16))),
    "int8-no-scale": (ValueError, "paged_decode_attention", "key_scale",
                      _decode(key_cache=np.zeros((4, 2, 16, 128), np.int8))),
    "c16-with-scale": (ValueError, "paged_decode_attention", "key_scale",
                       _decode(key_scale=np.ones(2, F32), value_scale=np.ones(2, F32))),
    "scale-shape": (ValueError, "paged_decode_attention", "key_scale",
                    _decode(key_cache=np.zeros((4, 2, 16, 128), np.int8),
                            key_scale=np.ones(3, F32), value_scale=np.ones(2, F32))),
    "tables-int64": (TypeError, "paged_decode_attention", "block_tables",
                     _decode(tables=np.zeros((2, 3), np.int64))),
    "tables-capacity": (ValueError, "paged_decode_attention", "block_tables",
                        _decode(query=np.zeros((2, 4, 64), np.float16),
                                key_cache=np.zeros((1, 1, 40000, 64), np.float16),
                                tables=np.zeros((2, 60000), np.int32))),
    "batch-mismatch": (ValueError, "paged_decode_attention", "query",
                       _decode(tables=np.zeros((3, 3), np.int32), lens=np.ones(3, np.int32))),
    "lens-shape": (ValueError, "paged_decode_attention", "seq_lens",
                   _decode(lens=np.ones(3, np.int32))),
    "softmax-scale": (ValueError, "paged_decode_attention", "softmax_scale",
                      _decode(softmax_scale=float("inf"))),
    "max-seq-len": (ValueError, "paged_decode_attention", "max_seq_len",
                    _decode(max_seq_len=-5)),
    "out-dtype": (TypeError, "paged_decode_attention", "out",
                  _decode(out=np.zeros((2, 4, 128), F32))),
    "cpu-tensors": (ValueError, "paged_decode_attention", "query", _decode()),
    "prefill-cu-shape": (ValueError, "paged_prefill_attention", "cu_seqlens_q",
                         lambda: attention.paged_prefill_attention(
                             np.zeros((5, 4, 128), np.float16), np.zeros(2, np.int32),
                             _cache("float16"), _cache("float16"), np.zeros((2, 3), np.int32),
                             np.ones(2, np.int32))),
    "append-key-shape": (ValueError, "paged_kv_append", "key",
                         lambda: attention.paged_kv_append(
                             np.zeros((3, 2, 64), np.float16), np.zeros((3, 2, 64), np.float16),
                             _cache("float16"), _cache("float16"), np.zeros((2, 3), np.int32),
                             np.zeros(2, np.int32), np.array([0, 2, 3], np.int32))),
    "append-rot-dim": (ValueError, "paged_kv_append", "cos_sin_cache",
                       lambda: attention.paged_kv_append(
                           np.zeros((3, 2, 128), np.float16), np.zeros((3, 2, 128), np.float16),
                           _cache("float16"), _cache("float16"), np.zeros((2, 3), np.int32),
                           np.zeros(2, np.int32), np.array([0, 2, 3], np.int32),
                           cos_sin_cache=np.zeros((8, 130), np.float16))),
    # The in-place tensors of an append: the caches and the query it rotates.
    "append-cache-dtype": (TypeError, "paged_kv_append", "key_cache",
                           lambda: attention.paged_kv_append(
                               np.zeros((3, 2, 128), np.float16),
                               np.zeros((3, 2, 128), np.float16),
                               np.zeros((4, 2, 16, 128), F32), np.zeros((4, 2, 16, 128), F32),
                               np.zeros((2, 3), np.int32), np.zeros(2, np.int32),
                               np.array([0, 2, 3], np.int32))),
    "append-query-dtype": (TypeError, "paged_kv_append", "query",
                           lambda: attention.paged_kv_append(
                               np.zeros((3, 2, 128), np.float16),
                               np.zeros((3, 2, 128), np.float16),
                               _cache("float16"), _cache("float16"), np.zeros((2, 3), np.int32),
                               np.zeros(2, np.int32), np.array([0, 2, 3], np.int32),
                               query=np.zeros((3, 4, 128), F32),
                               cos_sin_cache=np.zeros((8, 128), np.float16))),
    "plan-heads": (ValueError, "paged_attention_plan", "num_heads",
                   lambda: plan(6, 4, 128)),
    "plan-head-dim": (ValueError, "paged_attention_plan", "head_dim", lambda: plan(8, 4, 80)),
    "plan-rows": (ValueError, "paged_attention_plan", "rows",
                  lambda: plan(8, 4, 128, batch=2, query_tokens=0)),
}


@pytest.mark.usefixtures("sm80")
def test_fp8_caches_need_sm89_kernels(rejects: Callable[..., str]) -> None:
    """The sm80 module has the attention family without its fp8 groups: the package says so
    before calling the binding, and the binding itself refuses before any launch."""
    with pytest.raises(OpUnavailableError, match=r"^paged_attention_plan is not available: "
                       r"family 'attention \(cache=fp8\)' requires SM89\+.*"
                       r"attention with cache=fp8 requires SM89\+, this module is sm80"):
        plan(8, 1, 128, cache="float8_e4m3fn")
    module = _loader.load_module()
    fp8_bytes = np.zeros((4, 2, 16, 128), np.uint8)
    message = rejects(ValueError, "paged_decode_attention", "key_cache",
                      lambda: module.paged_decode_attention(
                          np.zeros((2, 4, 128), np.float16), np.zeros((2, 4, 128), np.float16),
                          fp8_bytes, fp8_bytes, np.zeros((2, 3), np.int32), np.ones(2, np.int32),
                          np.ones(2, F32), np.ones(2, F32), 1.0, 0, False, 0))
    assert "SM89" in message and "float8_e4m3fn" in message
    message = rejects(ValueError, "paged_attention_plan", "cache",
                      lambda: module.paged_attention_plan("bfloat16", "float8_e4m3fn", 8, 1, 128,
                                                          16, 64, 1, 1, False, 0, 264))
    assert "SM89" in message
    assert fastdeploy_ops.info()["kernels"]["attention"] == (
        "built into _ops_sm80 (without: attention with cache=fp8 requires SM89+, this module "
        "is sm80)")


@pytest.mark.usefixtures("sm80")
@pytest.mark.parametrize("name", CASES)
def test_attention_rejects_through_the_sm80_module(name: str,
                                                   rejects: Callable[..., str]) -> None:
    message = rejects(*CASES[name])
    assert ("CUDA" in message) == name.startswith("cpu"), message
