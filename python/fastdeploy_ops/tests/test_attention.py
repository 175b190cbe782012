"""Paged attention on the GPU against ``fastdeploy_ops.reference``, plus bad inputs.

Tolerances.
- ``paged_kv_append`` stores exactly what the reference computes: the rotation is the same
  float32 expression with one rounding to the dtype, quantisation one correctly rounded
  division and one rounding (int8: nearest even, clamped; fp8: nearest even, saturated). The
  caches are compared bit for bit.
- Attention: per element, :func:`fastdeploy_ops.testing.attention.attention_bound` (one ulp of
  the output dtype, fp32 arithmetic, and on tensor cores the rounding of the softmax weights to
  the MMA's input type, bounded by its size and by its spread over the row's tokens). Which
  kernel ran comes from :func:`fastdeploy_ops.attention.paged_attention_plan`, the function the
  launch itself follows. ``tests/python/test_attention_cpu.py`` shows the bound rejects a
  dropped block, a 10% error on one KV head and a 5% error on every output.

Hangs: a test that hangs is a failure of the suite (``python -m fastdeploy_ops.selftest`` runs
every test under a timeout); contexts of 1, 2 and 3 tokens and ragged tails run through every
kernel, since they are what leaves some lanes of a warp without a token.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pytest

from fastdeploy_ops import attention
from fastdeploy_ops import reference as ref
from fastdeploy_ops._selection import selection
from fastdeploy_ops.errors import OpUnavailableError
from fastdeploy_ops.reference._numerics import round_to_dtype, round_to_e4m3
from fastdeploy_ops.testing import TensorLib, requires_gpu, requires_op
from fastdeploy_ops.testing.attention import assert_attention_close, weight_type

F32 = np.float32
DTYPES = ["bfloat16", "float16"]
CACHES = ["c16", "int8", "float8_e4m3fn"]


def rng_for(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def needs(cache: str) -> pytest.MarkDecorator:
    return requires_op("paged_decode_attention", "cache=fp8" if cache == "float8_e4m3fn" else None)


@dataclass(frozen=True)
class PagedCache:
    """A paged cache in both forms: stored values (float32 numpy) and device tensors."""

    cache: str
    dtype: str
    stored_k: np.ndarray
    stored_v: np.ndarray
    k_scale: np.ndarray | None
    v_scale: np.ndarray | None
    block_tables: np.ndarray
    key_cache: object
    value_cache: object
    d_block_tables: object
    d_k_scale: object
    d_v_scale: object


def _stored_values(rng: np.random.Generator, shape: tuple[int, ...], cache: str,
                   dtype: str) -> np.ndarray:
    if cache == "c16":
        return round_to_dtype(rng.standard_normal(shape, dtype=F32), dtype)
    if cache == "int8":
        return rng.integers(-127, 128, shape).astype(F32)
    return round_to_e4m3(rng.standard_normal(shape, dtype=F32) * 64)


def _device_cache(lib: TensorLib, stored: np.ndarray, cache: str, dtype: str) -> object:
    if cache == "c16":
        return lib.to_device(stored, dtype)
    if cache == "int8":
        return lib.to_device(stored.astype(np.int8))
    return lib.to_device(stored, "float8_e4m3fn")  # exact: the values are e4m3 values


def make_cache(lib: TensorLib, rng: np.random.Generator, *, lens: list[int], kv_heads: int,
               head_dim: int, block_size: int, cache: str, dtype: str, spare_blocks: int = 3,
               spare_table_entries: int = 1, random_content: bool = True) -> PagedCache:
    """Blocks for every sequence's `lens` tokens, shuffled over the pool; unused table entries
    (`spare_table_entries` past the longest sequence) are -1 (never read)."""
    lib.require(dtype)
    if cache == "float8_e4m3fn":
        lib.require(cache)
    per_seq = [max(1, -(-n // block_size)) for n in lens]
    max_blocks = max(per_seq) + spare_table_entries
    num_blocks = sum(per_seq) + spare_blocks
    ids = rng.permutation(num_blocks).astype(np.int32)
    tables = np.full((len(lens), max_blocks), -1, np.int32)
    start = 0
    for b, n in enumerate(per_seq):
        tables[b, :n] = ids[start:start + n]
        start += n
    shape = (num_blocks, kv_heads, block_size, head_dim)
    if random_content:
        stored_k = _stored_values(rng, shape, cache, dtype)
        stored_v = _stored_values(rng, shape, cache, dtype)
    else:
        stored_k = np.zeros(shape, F32)
        stored_v = np.zeros(shape, F32)
    k_scale = v_scale = None
    if cache != "c16":
        k_scale = rng.uniform(0.005, 0.03, kv_heads).astype(F32)
        v_scale = rng.uniform(0.005, 0.03, kv_heads).astype(F32)
    return PagedCache(
        cache, dtype, stored_k, stored_v, k_scale, v_scale, tables,
        _device_cache(lib, stored_k, cache, dtype), _device_cache(lib, stored_v, cache, dtype),
        lib.to_device(tables),
        None if k_scale is None else lib.to_device(k_scale),
        None if v_scale is None else lib.to_device(v_scale))


def check_attention(got: np.ndarray, c: PagedCache, query: np.ndarray, lens: list[int],
                    cu_seqlens_q: np.ndarray | None = None,
                    stored: tuple[np.ndarray, np.ndarray] | None = None, **kwargs) -> None:
    """``got`` within the bound of the kernel the plan picks for these shapes; ``stored``
    replaces the cache's content (after an append)."""
    stored_k, stored_v = (c.stored_k, c.stored_v) if stored is None else stored
    args = (round_to_dtype(query, c.dtype), stored_k, stored_v, c.block_tables, np.array(lens))
    options = dict(cu_seqlens_q=cu_seqlens_q, key_scale=c.k_scale, value_scale=c.v_scale,
                   **kwargs)
    plan = attention.paged_attention_plan(
        query.shape[1], c.stored_k.shape[1], query.shape[2], batch=len(lens),
        block_size=c.stored_k.shape[2], max_blocks_per_seq=c.block_tables.shape[1],
        dtype=c.dtype, cache=c.cache,
        query_tokens=None if cu_seqlens_q is None else query.shape[0], resident_blocks=1)
    assert_attention_close(got, ref.paged_attention(*args, **options),
                           ref.paged_attention_spread(*args, **options), dtype=c.dtype,
                           weights=weight_type(plan.kernel, c.dtype, c.cache))


def decode(lib: TensorLib, c: PagedCache, query: np.ndarray, lens: list[int], **kwargs):
    return attention.paged_decode_attention(
        lib.to_device(query, c.dtype), c.key_cache, c.value_cache, c.d_block_tables,
        lib.to_device(np.array(lens, np.int32)), key_scale=c.d_k_scale, value_scale=c.d_v_scale,
        **kwargs)


@dataclass(frozen=True)
class Decode:
    lens: tuple[int, ...]
    num_heads: int
    kv_heads: int
    head_dim: int
    block_size: int

    def __str__(self) -> str:
        batch = len(self.lens)
        span = f"{min(self.lens)}-{max(self.lens)}"
        return (f"b{batch}_ctx{span}_h{self.num_heads}kv{self.kv_heads}_d{self.head_dim}"
                f"_bs{self.block_size}")


def _lens(seed: int, batch: int, low: int, high: int) -> tuple[int, ...]:
    return tuple(int(n) for n in np.random.default_rng(seed).integers(low, high + 1, batch))


DECODE_SHAPES = [
    Decode((1,), 8, 8, 128, 64),                      # one token, MHA
    Decode((1, 2, 3, 67, 130), 16, 8, 128, 16),       # group 2: 1-3 tokens, ragged tails
    Decode((1, 2, 3, 45, 129), 8, 8, 64, 16),         # group 1 at head dim 64
    Decode((1, 2, 3, 33, 250), 24, 8, 128, 16),       # group 3 (Llama-3.2-3B) on tensor cores
    Decode((1, 2, 3, 19, 70), 24, 8, 64, 16),         # group 3 at head dim 64
    Decode((1, 2, 3, 61), 32, 8, 256, 16),            # group 4 at head dim 256 (tile 4)
    Decode(_lens(1, 7, 1, 1000), 32, 8, 128, 64),     # Llama-3-8B heads, ragged
    Decode(_lens(2, 5, 1, 700), 28, 4, 128, 16),      # Qwen2.5-7B: group 7
    Decode(_lens(3, 5, 1, 700), 40, 8, 128, 64),      # Qwen2.5-14B/32B: group 5
    Decode(_lens(4, 4, 1, 600), 16, 1, 64, 16),       # group 16, head dim 64
    Decode(_lens(5, 4, 1, 600), 8, 4, 256, 32),       # group 2, head dim 256
    Decode(_lens(8, 3, 1, 900), 24, 4, 256, 16),      # group 6, head dim 256 (CUDA cores)
    Decode(_lens(6, 3, 1, 300), 12, 1, 64, 64),       # group 12 (two tiles, one partial)
    Decode((32768,), 32, 8, 128, 64),                 # one long context: many partitions
    Decode(_lens(7, 256, 1000, 1024), 16, 2, 128, 64),  # many short contexts
    Decode((4096,) * 64, 16, 2, 128, 64),             # the benchmark's shape, fewer heads
]


@pytest.mark.parametrize("cache", [pytest.param(c, marks=needs(c)) for c in CACHES])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", DECODE_SHAPES, ids=str)
def test_decode_matches_reference(tensor_lib: TensorLib, shape: Decode, dtype: str,
                                  cache: str) -> None:
    if cache != "c16" and max(shape.lens) * len(shape.lens) > 300_000 and dtype == "float16":
        pytest.skip("the large shapes run once per cache type (bfloat16)")
    rng = rng_for("decode", shape, dtype, cache)
    c = make_cache(tensor_lib, rng, lens=list(shape.lens), kv_heads=shape.kv_heads,
                   head_dim=shape.head_dim, block_size=shape.block_size, cache=cache,
                   dtype=dtype)
    query = rng.standard_normal((len(shape.lens), shape.num_heads, shape.head_dim), F32)
    got = tensor_lib.from_device(decode(tensor_lib, c, query, list(shape.lens)))
    check_attention(got, c, query, list(shape.lens))


@requires_op("paged_decode_attention")
def test_decode_softmax_scale_and_out(tensor_lib: TensorLib) -> None:
    rng = rng_for("scale")
    lens = [5, 300]
    c = make_cache(tensor_lib, rng, lens=lens, kv_heads=2, head_dim=64, block_size=16,
                   cache="c16", dtype="bfloat16")
    query = rng.standard_normal((2, 4, 64), F32)
    out = tensor_lib.empty((2, 4, 64), "bfloat16")
    got = decode(tensor_lib, c, query, lens, softmax_scale=0.3, out=out)
    assert got is out
    check_attention(tensor_lib.from_device(out), c, query, lens, softmax_scale=0.3)


def _decode_case(lib: TensorLib, *, lens: list[int], num_heads: int, kv_heads: int,
                 head_dim: int, block_size: int, cache: str, dtype: str, **kwargs) -> None:
    """One decode call on a fresh random cache, checked against the reference."""
    rng = rng_for("decode-case", lens, num_heads, kv_heads, head_dim, block_size, cache, dtype)
    c = make_cache(lib, rng, lens=lens, kv_heads=kv_heads, head_dim=head_dim,
                   block_size=block_size, cache=cache, dtype=dtype)
    query = rng.standard_normal((len(lens), num_heads, head_dim), F32)
    check_attention(lib.from_device(decode(lib, c, query, lens, **kwargs)), c, query, lens)


@pytest.mark.parametrize("cache", [pytest.param(c, marks=needs(c)) for c in CACHES])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim", [64, 128, 256])
@pytest.mark.parametrize("group", range(1, 17))
def test_every_group_size_at_every_head_dim(tensor_lib: TensorLib, group: int, head_dim: int,
                                            dtype: str, cache: str) -> None:
    """Each group size 1-16 reaches a kernel that runs it right (short and ragged contexts)."""
    _decode_case(tensor_lib, lens=[1, 2, 3, 37, 100], num_heads=2 * group, kv_heads=2,
                 head_dim=head_dim, block_size=16, cache=cache, dtype=dtype)


@requires_op("paged_decode_attention")
@pytest.mark.parametrize("head_dim", [64, 128, 256])
@pytest.mark.parametrize("num_heads, kv_heads", [(128, 1), (128, 8), (96, 2), (40, 40)])
def test_wide_head_counts(tensor_lib: TensorLib, num_heads: int, kv_heads: int,
                          head_dim: int) -> None:
    _decode_case(tensor_lib, lens=[1, 77, 300], num_heads=num_heads, kv_heads=kv_heads,
                 head_dim=head_dim, block_size=16, cache="c16", dtype="bfloat16")


@pytest.mark.parametrize("cache", [pytest.param(c, marks=needs(c)) for c in CACHES])
@pytest.mark.parametrize("block_size", [1, 3, 8, 16, 32, 64, 128, 256])
@pytest.mark.parametrize("heads", [(32, 4, 128), (4, 4, 64), (8, 4, 256)], ids=str)
@pytest.mark.parametrize("lens", [[2900], [1, 200, 257] * 16], ids=["split", "batch"])
def test_block_sizes(tensor_lib: TensorLib, lens: list[int], heads: tuple[int, int, int],
                     block_size: int, cache: str) -> None:
    """Every block size with a context split over blocks and a batch of short ones."""
    num_heads, kv_heads, head_dim = heads
    _decode_case(tensor_lib, lens=lens, num_heads=num_heads, kv_heads=kv_heads,
                 head_dim=head_dim, block_size=block_size, cache=cache, dtype="bfloat16")


@pytest.mark.parametrize("cache", [pytest.param(c, marks=needs(c)) for c in ["c16", "int8"]])
def test_context_of_128k_tokens(tensor_lib: TensorLib, cache: str) -> None:
    _decode_case(tensor_lib, lens=[131072], num_heads=2, kv_heads=1, head_dim=64,
                 block_size=256, cache=cache, dtype="bfloat16")


@requires_op("paged_decode_attention")
def test_max_seq_len_plans_the_split_and_is_checked(tensor_lib: TensorLib) -> None:
    rng = rng_for("max_seq_len")
    lens = [3000, 500]
    c = make_cache(tensor_lib, rng, lens=lens, kv_heads=2, head_dim=128, block_size=16,
                   cache="c16", dtype="bfloat16", spare_table_entries=2000)
    query = rng.standard_normal((2, 16, 128), F32)
    for hint in (3000, 1000):  # right, and too small: still the whole context
        got = decode(tensor_lib, c, query, lens, max_seq_len=hint, check_metadata=False)
        check_attention(tensor_lib.from_device(got), c, query, lens)
    with pytest.raises(ValueError, match=r"paged_decode_attention: argument 'seq_lens' must .*"
                       r"and max_seq_len = 1000, got seq_lens\[0\] = 3000"):
        decode(tensor_lib, c, query, lens, max_seq_len=1000)
    with pytest.raises(ValueError, match=r"argument 'max_seq_len' must be None or an int >= 1"):
        decode(tensor_lib, c, query, lens, max_seq_len=0)


@dataclass(frozen=True)
class Prefill:
    q_lens: tuple[int, ...]
    prefix_lens: tuple[int, ...]
    num_heads: int
    kv_heads: int
    head_dim: int
    block_size: int

    def __str__(self) -> str:
        return (f"q{sum(self.q_lens)}_b{len(self.q_lens)}_h{self.num_heads}kv{self.kv_heads}"
                f"_d{self.head_dim}_bs{self.block_size}")


PREFILL_SHAPES = [
    Prefill((1, 17, 64, 0, 128), (0, 100, 1000, 5, 3), 32, 8, 128, 64),
    Prefill((200,), (0,), 16, 16, 64, 16),
    Prefill((33, 1, 1, 70), (2000, 7, 0, 64), 8, 1, 256, 32),
    Prefill((512, 512), (0, 3000), 28, 4, 128, 64),
]


@pytest.mark.parametrize("cache", [pytest.param(c, marks=needs(c)) for c in CACHES])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", PREFILL_SHAPES, ids=str)
def test_prefill_matches_reference(tensor_lib: TensorLib, shape: Prefill, dtype: str,
                                   cache: str) -> None:
    rng = rng_for("prefill", shape, dtype, cache)
    lens = [q + p for q, p in zip(shape.q_lens, shape.prefix_lens)]
    c = make_cache(tensor_lib, rng, lens=lens, kv_heads=shape.kv_heads, head_dim=shape.head_dim,
                   block_size=shape.block_size, cache=cache, dtype=dtype)
    cu = np.concatenate([[0], np.cumsum(shape.q_lens)]).astype(np.int32)
    query = rng.standard_normal((int(cu[-1]), shape.num_heads, shape.head_dim), F32)
    got = attention.paged_prefill_attention(
        tensor_lib.to_device(query, dtype), tensor_lib.to_device(cu), c.key_cache,
        c.value_cache, c.d_block_tables, tensor_lib.to_device(np.array(lens, np.int32)),
        key_scale=c.d_k_scale, value_scale=c.d_v_scale)
    check_attention(tensor_lib.from_device(got), c, query, lens, cu)


def _prefill(lib: TensorLib, c: PagedCache, query: np.ndarray, cu: np.ndarray,
             lens: list[int], **kwargs):
    return attention.paged_prefill_attention(
        lib.to_device(query, c.dtype), lib.to_device(cu), c.key_cache, c.value_cache,
        c.d_block_tables, lib.to_device(np.array(lens, np.int32)), key_scale=c.d_k_scale,
        value_scale=c.d_v_scale, **kwargs)


def _prefill_case(lib: TensorLib, *, q_lens: list[int], prefix_lens: list[int], num_heads: int,
                  kv_heads: int, head_dim: int, block_size: int, cache: str, dtype: str,
                  sampled_rows: int | None = None, **kwargs) -> None:
    """One prefill call on a fresh random cache, checked against the reference: every row, or
    ``sampled_rows`` rows (the first and last of each sequence among them) for shapes whose
    float64 reference would take minutes."""
    rng = rng_for("prefill-case", q_lens, prefix_lens, num_heads, kv_heads, head_dim,
                  block_size, cache, dtype)
    lens = [q + p for q, p in zip(q_lens, prefix_lens)]
    c = make_cache(lib, rng, lens=lens, kv_heads=kv_heads, head_dim=head_dim,
                   block_size=block_size, cache=cache, dtype=dtype)
    cu = np.concatenate([[0], np.cumsum(q_lens)]).astype(np.int32)
    query = rng.standard_normal((int(cu[-1]), num_heads, head_dim), F32)
    got = lib.from_device(_prefill(lib, c, query, cu, lens, **kwargs))
    scale = {k: v for k, v in kwargs.items() if k == "softmax_scale"}  # what the reference takes
    if sampled_rows is None:
        check_attention(got, c, query, lens, cu, **scale)
        return
    # Row i of sequence b at position p is the decode of a sequence of p + 1 tokens.
    seq_of_row = np.repeat(np.arange(len(q_lens)), q_lens)
    ends = [int(x) for x in cu[1:] - 1 if x > 0] + [int(x) for x in cu[:-1]]
    picked = np.unique(np.concatenate([
        rng.choice(len(seq_of_row), sampled_rows, replace=False),
        [r for r in ends if 0 <= r < len(seq_of_row)]]))
    b = seq_of_row[picked]
    positions = np.array(lens)[b] - (cu[b + 1] - picked)
    plan = attention.paged_attention_plan(
        num_heads, kv_heads, head_dim, batch=len(lens), block_size=block_size,
        max_blocks_per_seq=c.block_tables.shape[1], dtype=dtype, cache=cache,
        query_tokens=len(seq_of_row), resident_blocks=1)
    args = (round_to_dtype(query[picked], dtype), c.stored_k, c.stored_v, c.block_tables[b],
            positions + 1)
    options = dict(key_scale=c.k_scale, value_scale=c.v_scale, **scale)
    assert_attention_close(got[picked], ref.paged_attention(*args, **options),
                           ref.paged_attention_spread(*args, **options), dtype=dtype,
                           weights=weight_type(plan.kernel, dtype, cache))


@pytest.mark.parametrize("cache", [pytest.param(c, marks=needs(c)) for c in CACHES])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim", [64, 128, 256])
@pytest.mark.parametrize("group", [1, 2, 3, 4, 5, 6, 7, 8, 12, 16])
def test_tiled_prefill_every_group_size(tensor_lib: TensorLib, group: int, head_dim: int,
                                        dtype: str, cache: str) -> None:
    """Each group size at each head dim through the tiled kernel: chunks of 1 to 150 tokens
    (tiles shared by two sequences' rows never, a tile with one valid row, partial warps),
    over prefixes of 0 to 300 tokens, and a sequence with no new token."""
    _prefill_case(tensor_lib, q_lens=[1, 150, 0, 33, 2], prefix_lens=[0, 7, 40, 300, 64],
                  num_heads=2 * group, kv_heads=2, head_dim=head_dim, block_size=16,
                  cache=cache, dtype=dtype)


@pytest.mark.parametrize("cache", [pytest.param(c, marks=needs(c)) for c in CACHES])
@pytest.mark.parametrize("block_size", [1, 3, 16, 64, 256])
def test_tiled_prefill_block_sizes(tensor_lib: TensorLib, block_size: int, cache: str) -> None:
    """K/V tiles gathered from blocks smaller than, equal to and larger than a tile."""
    _prefill_case(tensor_lib, q_lens=[300, 65], prefix_lens=[100, 1000], num_heads=32,
                  kv_heads=8, head_dim=128, block_size=block_size, cache=cache,
                  dtype="bfloat16")


@pytest.mark.parametrize("cache", [pytest.param(c, marks=needs(c)) for c in CACHES])
@pytest.mark.parametrize("shape", [
    ([16384], [0], 256),           # one 16k prompt (Llama-3-8B heads)
    ([2048] * 4, [16384] * 4, 64),  # chunked prefill: 2k chunks over 16k prefixes
    ([64], [32768], 16),           # a short chunk over a 32k prefix: the context is split
    ([512] * 8 + [1] * 120, [0] * 8 + [900] * 120, 16),  # prefill chunks and decode tokens
], ids=["prompt16k", "chunks2k_prefix16k", "chunk64_prefix32k", "mixed"])
# The float64 reference of 48 rows over 16-32k tokens takes 10-35 s of one CPU core, and about
# twice that on a GPU machine whose cores 8 workers share: past the suite's 60 s default.
@pytest.mark.timeout(300)
def test_tiled_prefill_long(tensor_lib: TensorLib, shape: tuple, cache: str) -> None:
    q_lens, prefix_lens, block_size = shape
    # Llama-3-8B's group of 4 with 4 KV heads (the kernel is the same for more), so the
    # float32 copy of the cache the reference reads stays small.
    _prefill_case(tensor_lib, q_lens=q_lens, prefix_lens=prefix_lens, num_heads=16, kv_heads=4,
                  head_dim=128, block_size=block_size, cache=cache, dtype="bfloat16",
                  sampled_rows=48)


@pytest.mark.parametrize("cache", [pytest.param(c, marks=needs(c)) for c in CACHES])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim", [64, 128, 256])
def test_tiled_prefill_kernel_of_the_loaded_module(head_dim: int, dtype: str,
                                                   cache: str) -> None:
    """The loaded module's plan for prefill chunks at every group size: the sm90 module's
    warp-specialised wgmma kernel for 16-bit caches at head dims 64 and 128 (384 threads,
    within the 227 KB of shared memory an SM 9.0 block may have), the mma.sync kernel
    otherwise (256 threads), each with its partition quantum (128 and 64 or 32 tokens)."""
    wgmma = selection().sm == 90 and cache == "c16" and head_dim <= 128
    for kv_heads in (1, 8):
        for group in range(1, 129 // kv_heads):
            p = attention.paged_attention_plan(
                group * kv_heads, kv_heads, head_dim, batch=2, block_size=16,
                max_blocks_per_seq=2048, dtype=dtype, cache=cache, query_tokens=600,
                resident_blocks=132)
            want = ("tiled_prefill_wgmma", 384) if wgmma else ("tiled_prefill", 256)
            assert (p.kernel, p.threads, p.head_tile) == (*want, group), (group, p)
            assert p.shared_bytes <= 227 * 1024
            quantum = 128 if wgmma else 64 if head_dim <= 128 else 32
            assert p.num_splits == 1 or p.partition_tokens % quantum == 0, p


@requires_op("paged_prefill_attention")
def test_tiled_prefill_split_matches_unsplit(tensor_lib: TensorLib) -> None:
    """max_seq_len changes only the split: a launch split over partitions (the hint) and an
    unsplit one (a hint below the real length, unchecked) of the same call both meet the
    reference."""
    kwargs = dict(q_lens=[40], prefix_lens=[5000], num_heads=16, kv_heads=2, head_dim=128,
                  block_size=16, cache="c16", dtype="bfloat16")
    plan = attention.paged_attention_plan(16, 2, 128, batch=1, block_size=16,
                                          max_blocks_per_seq=5040 // 16 + 1,
                                          query_tokens=40, max_seq_len=5040,
                                          resident_blocks=264)
    assert plan.kernel.startswith("tiled_prefill") and plan.num_splits > 1
    _prefill_case(tensor_lib, max_seq_len=5040, **kwargs)
    # Too small (unchecked): still the whole context.
    _prefill_case(tensor_lib, max_seq_len=100, check_metadata=False, **kwargs)


@requires_op("paged_prefill_attention")
def test_tiled_prefill_bad_metadata_gives_nan(tensor_lib: TensorLib) -> None:
    """Unchecked bad metadata never leads outside the cache or the output: a bad block id makes
    the rows of the tiles that read it NaN, a bad length its sequence's rows, cu_seqlens_q
    that does not rise the whole output."""
    rng = rng_for("tiled-nan")
    lens = [200, 90]
    c = make_cache(tensor_lib, rng, lens=lens, kv_heads=2, head_dim=128, block_size=16,
                   cache="c16", dtype="bfloat16")
    cu = np.array([0, 100, 130], np.int32)
    query = rng.standard_normal((130, 8, 128), F32)

    def run(cu=cu, lens=lens, tables=None):
        return tensor_lib.from_device(attention.paged_prefill_attention(
            tensor_lib.to_device(query, "bfloat16"), tensor_lib.to_device(cu),
            c.key_cache, c.value_cache,
            c.d_block_tables if tables is None else tensor_lib.to_device(tables),
            tensor_lib.to_device(np.array(lens, np.int32)), check_metadata=False))

    tables = c.block_tables.copy()
    tables[1, 0] = 1 << 30
    got = run(tables=tables)
    assert np.isnan(got[100:]).all()
    check_attention(got[:100], c, query[:100], lens[:1], cu[:2])  # sequence 0 is right
    got = run(lens=[200, 20])  # shorter than its 30 new tokens
    assert np.isnan(got[100:]).all()
    check_attention(got[:100], c, query[:100], lens[:1], cu[:2])
    for bad_cu in ([0, 100, 120], [0, 140, 130], [1, 100, 130]):
        assert np.isnan(run(cu=np.array(bad_cu, np.int32))).all(), bad_cu


def _rope_table(max_position: int, rot_dim: int) -> np.ndarray:
    inv_freq = 10000.0 ** (-np.arange(0, rot_dim, 2, dtype=np.float64) / rot_dim)
    angles = np.arange(max_position)[:, None] * inv_freq[None, :]
    return np.concatenate([np.cos(angles), np.sin(angles)], axis=1).astype(F32)


@pytest.mark.parametrize("cache", [pytest.param(c, marks=needs(c)) for c in CACHES])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rotary", ["none", "neox", "interleaved", "partial"])
def test_append_then_prefill(tensor_lib: TensorLib, dtype: str, cache: str, rotary: str) -> None:
    """A mixed batch (prefill chunks and decode tokens) appended with rotary embedding, then
    attended: the cache bit-equal to the reference append, the rotated query bit-equal, the
    output close to the reference attention over the reference cache."""
    rng = rng_for("append", dtype, cache, rotary)
    q_lens, prefix = [37, 1, 1, 0, 150], [0, 99, 640, 12, 64]
    lens = [q + p for q, p in zip(q_lens, prefix)]
    num_heads, kv_heads, head_dim, block_size = 16, 4, 128, 64
    c = make_cache(tensor_lib, rng, lens=lens, kv_heads=kv_heads, head_dim=head_dim,
                   block_size=block_size, cache=cache, dtype=dtype)
    cu = np.concatenate([[0], np.cumsum(q_lens)]).astype(np.int32)
    tokens = int(cu[-1])
    key = round_to_dtype(rng.standard_normal((tokens, kv_heads, head_dim), F32), dtype)
    value = round_to_dtype(rng.standard_normal((tokens, kv_heads, head_dim), F32), dtype)
    query = round_to_dtype(rng.standard_normal((tokens, num_heads, head_dim), F32), dtype)
    table = None
    if rotary != "none":
        table = round_to_dtype(_rope_table(1024, 64 if rotary == "partial" else head_dim), dtype)
    d_query = tensor_lib.to_device(query, dtype)
    d_lens = tensor_lib.to_device(np.array(lens, np.int32))
    d_cu = tensor_lib.to_device(cu)
    attention.paged_kv_append(
        tensor_lib.to_device(key, dtype), tensor_lib.to_device(value, dtype), c.key_cache,
        c.value_cache, c.d_block_tables, tensor_lib.to_device(np.array(prefix, np.int32)), d_cu,
        key_scale=c.d_k_scale, value_scale=c.d_v_scale,
        query=d_query if table is not None else None,
        cos_sin_cache=None if table is None else tensor_lib.to_device(table, dtype),
        is_neox=rotary != "interleaved")
    want_k, want_v, want_q = ref.paged_kv_append(
        key, value, c.stored_k, c.stored_v, c.block_tables, np.array(prefix), cu, dtype=dtype,
        cache="c16" if cache == "c16" else cache, key_scale=c.k_scale, value_scale=c.v_scale,
        query=query if table is not None else None, cos_sin_cache=table,
        is_neox=rotary != "interleaved")
    np.testing.assert_array_equal(tensor_lib.from_device(c.key_cache), want_k)
    np.testing.assert_array_equal(tensor_lib.from_device(c.value_cache), want_v)
    if want_q is not None:
        np.testing.assert_array_equal(tensor_lib.from_device(d_query), want_q)
    got = attention.paged_prefill_attention(
        d_query, d_cu, c.key_cache, c.value_cache, c.d_block_tables, d_lens,
        key_scale=c.d_k_scale, value_scale=c.d_v_scale)
    check_attention(tensor_lib.from_device(got), c, query if want_q is None else want_q, lens, cu,
                    stored=(want_k, want_v))


@requires_op("paged_kv_append")
def test_int8_append_rounds_half_to_even_and_clamps(tensor_lib: TensorLib) -> None:
    c = make_cache(tensor_lib, rng_for("int8"), lens=[1], kv_heads=1, head_dim=64,
                   block_size=16, cache="int8", dtype="float16", random_content=False)
    scale = tensor_lib.to_device(np.array([0.5], F32))
    row = np.zeros((1, 1, 64), F32)
    row[0, 0, :6] = [0.25, 0.75, -0.25, 100.0, -100.0, 1.3]  # x / 0.5 = 0.5, 1.5, -0.5, 200, ...
    attention.paged_kv_append(
        tensor_lib.to_device(row, "float16"), tensor_lib.to_device(row, "float16"), c.key_cache,
        c.value_cache, c.d_block_tables, tensor_lib.to_device(np.array([0], np.int32)),
        tensor_lib.to_device(np.array([0, 1], np.int32)), key_scale=scale, value_scale=scale)
    block = int(c.block_tables[0, 0])
    stored = tensor_lib.from_device(c.key_cache)[block, 0, 0, :6]
    np.testing.assert_array_equal(stored, [0, 2, 0, 127, -127, 3])


# --- metadata and argument checks ---------------------------------------------------------


@pytest.fixture
def small(tensor_lib: TensorLib) -> PagedCache:
    return make_cache(tensor_lib, rng_for("small"), lens=[40, 3], kv_heads=2, head_dim=128,
                      block_size=16, cache="c16", dtype="bfloat16")


def _decode_small(lib: TensorLib, c: PagedCache, lens: list[int], tables: np.ndarray | None = None,
                  **kwargs):
    query = np.ones((2, 4, 128), F32)
    return attention.paged_decode_attention(
        lib.to_device(query, "bfloat16"), c.key_cache, c.value_cache,
        lib.to_device(c.block_tables if tables is None else tables),
        lib.to_device(np.array(lens, np.int32)), **kwargs)


@requires_op("paged_decode_attention")
def test_metadata_errors_name_the_entry(tensor_lib: TensorLib, small: PagedCache) -> None:
    num_blocks = small.stored_k.shape[0]
    tables = small.block_tables.copy()
    tables[0, 2] = num_blocks
    with pytest.raises(ValueError, match=r"paged_decode_attention: argument 'block_tables' must "
                       rf"hold block ids in \[0, num_blocks = {num_blocks}\).*"
                       rf"block_tables\[0, 2\] = {num_blocks}"):
        _decode_small(tensor_lib, small, [40, 3], tables)
    capacity = small.block_tables.shape[1] * 16
    with pytest.raises(ValueError, match=rf"argument 'seq_lens'.*capacity of {capacity}.*"
                       rf"seq_lens\[1\] = {capacity + 1}"):
        _decode_small(tensor_lib, small, [40, capacity + 1])
    with pytest.raises(ValueError, match=r"seq_lens\[0\] = 0"):
        _decode_small(tensor_lib, small, [0, 3])


@requires_op("paged_decode_attention")
def test_unchecked_bad_block_gives_nan_not_a_crash(tensor_lib: TensorLib,
                                                   small: PagedCache) -> None:
    tables = small.block_tables.copy()
    tables[0, 1] = 1 << 30
    got = tensor_lib.from_device(_decode_small(tensor_lib, small, [40, 3], tables,
                                               check_metadata=False))
    assert np.isnan(got[0]).all()
    with pytest.raises(AssertionError, match=r"512 of 1024 values differ; worst at \(0, "):
        check_attention(got, small, np.ones((2, 4, 128), F32), [40, 3])  # row 1 is right


@requires_op("paged_prefill_attention")
def test_prefill_metadata_errors(tensor_lib: TensorLib, small: PagedCache) -> None:
    query = tensor_lib.to_device(np.ones((5, 4, 128), F32), "bfloat16")

    def call(cu: list[int], lens: list[int]) -> None:
        attention.paged_prefill_attention(
            query, tensor_lib.to_device(np.array(cu, np.int32)), small.key_cache,
            small.value_cache, small.d_block_tables, tensor_lib.to_device(np.array(lens, np.int32)))

    with pytest.raises(ValueError, match=r"argument 'cu_seqlens_q' must rise from 0 to the "
                       r"number of query tokens \(5\).*cu_seqlens_q\[2\] = 4"):
        call([0, 3, 4], [40, 3])
    with pytest.raises(ValueError, match=r"argument 'seq_lens' must cover at least the "
                       r"sequence's query tokens.*seq_lens\[1\] = 1"):
        call([0, 3, 5], [40, 1])


@requires_op("paged_kv_append")
def test_append_metadata_errors(tensor_lib: TensorLib, small: PagedCache) -> None:
    kv = tensor_lib.to_device(np.ones((3, 2, 128), F32), "bfloat16")
    capacity = small.block_tables.shape[1] * 16

    def call(cache_lens: list[int], **kwargs) -> None:
        attention.paged_kv_append(
            kv, kv, small.key_cache, small.value_cache, small.d_block_tables,
            tensor_lib.to_device(np.array(cache_lens, np.int32)),
            tensor_lib.to_device(np.array([0, 2, 3], np.int32)), **kwargs)

    with pytest.raises(ValueError, match=r"argument 'cache_lens' must be >= 0 and leave room.*"
                       rf"capacity of {capacity} tokens.*cache_lens\[0\] = {capacity - 1}"):
        call([capacity - 1, 0])
    table = tensor_lib.to_device(_rope_table(8, 128), "bfloat16")
    with pytest.raises(ValueError, match=r"argument 'cos_sin_cache' must have a row for every "
                       r"position written \(max_position = 8\).*position 9 of sequence 0"):
        call([8, 0], cos_sin_cache=table)


@requires_op("paged_decode_attention")
@pytest.mark.parametrize("case, error, message", [
    ("head_dim", ValueError, r"argument 'key_cache' must have head_dim 64, 128 or 256"),
    ("group", ValueError, r"num_heads a multiple of kv_heads = 2 \(grouped-query attention\)"),
    ("cache_dtype", TypeError, r"argument 'key_cache' must have the query's dtype \(bfloat16\), "
                               r"int8 or float8_e4m3fn, got float32"),
    ("scale_missing", ValueError, r"argument 'key_scale' must be given for int8 caches"),
    ("scale_extra", ValueError, r"argument 'key_scale' must be None for bfloat16 caches"),
    ("table_dtype", TypeError, r"argument 'block_tables' must have dtype int32, got int64"),
    ("batch", ValueError, r"argument 'query' must have one row per sequence \(batch = 2"),
    ("value_shape", ValueError, r"argument 'value_cache' must have shape"),
    ("misaligned", ValueError, r"argument 'query' must start at a 16-byte aligned address"),
])
def test_bad_arguments(tensor_lib: TensorLib, small: PagedCache, case: str, error: type,
                       message: str) -> None:
    lib = tensor_lib
    query = np.ones((2, 4, 128), F32)
    k, v = small.key_cache, small.value_cache
    tables = small.d_block_tables
    kwargs: dict = {}
    if case == "head_dim":
        k = v = lib.to_device(np.zeros((4, 2, 16, 96), F32), "bfloat16")
        query = np.ones((2, 4, 96), F32)
    elif case == "group":
        query = np.ones((2, 3, 128), F32)
    elif case == "cache_dtype":
        k = v = lib.to_device(small.stored_k)
    elif case == "scale_missing":
        k = v = lib.to_device(np.zeros(small.stored_k.shape, np.int8))
    elif case == "scale_extra":
        kwargs = {"key_scale": lib.to_device(np.ones(2, F32)),
                  "value_scale": lib.to_device(np.ones(2, F32))}
    elif case == "table_dtype":
        tables = lib.to_device(small.block_tables.astype(np.int64))
    elif case == "batch":
        query = np.ones((3, 4, 128), F32)
    elif case == "value_shape":
        v = lib.to_device(np.zeros((1, 2, 16, 128), F32), "bfloat16")
    d_query = lib.to_device(query, "bfloat16")
    if case == "misaligned":  # contiguous, one element past an aligned start
        d_query = lib.to_device(np.ones(query.size + 1, F32), "bfloat16")[1:].reshape(query.shape)
    with pytest.raises(error, match=message):
        attention.paged_decode_attention(
            d_query, k, v, tables,
            lib.to_device(np.array([40, 3], np.int32)), **kwargs)


# --- availability on older modules --------------------------------------------------------


def _module_sm() -> int | None:
    manifest = selection().manifest
    return None if manifest is None else manifest.sm


@requires_gpu()
@pytest.mark.skipif((_module_sm() or 0) >= 80, reason="the loaded module has attention")
def test_attention_unavailable_below_sm80(tensor_lib: TensorLib) -> None:
    c = make_cache(tensor_lib, rng_for("sm70"), lens=[3], kv_heads=1, head_dim=64,
                   block_size=16, cache="c16", dtype="float16")
    with pytest.raises(OpUnavailableError, match=r"paged_decode_attention.*attention.*SM80"):
        decode(tensor_lib, c, np.ones((1, 1, 64), F32), [3])


@requires_gpu()
@pytest.mark.skipif(not 80 <= (_module_sm() or 0) < 89,
                    reason="only modules for SM80..SM88 have attention without fp8 caches")
def test_fp8_cache_unavailable_below_sm89(tensor_lib: TensorLib) -> None:
    c = make_cache(tensor_lib, rng_for("sm80"), lens=[3], kv_heads=1, head_dim=64,
                   block_size=16, cache="float8_e4m3fn", dtype="bfloat16")
    with pytest.raises(OpUnavailableError,
                       match=r"paged_decode_attention.*'attention \(cache=fp8\)' requires SM89"):
        decode(tensor_lib, c, np.ones((1, 1, 64), F32), [3])
