"""The attention references and the exact roundings on small hand-checked cases (no GPU)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastdeploy_ops import reference as ref
from fastdeploy_ops.reference._numerics import round_to_dtype, round_to_e4m3
from fastdeploy_ops.reference.attention import quantize_cache_values
from fastdeploy_ops.testing.attention import assert_attention_close

F32 = np.float32


def test_e4m3_rounding() -> None:
    x = [0.0, 1.0625, 1.1875, 17.0, 19.0, 232.0, 448.0, 500.0, -1e9, 2.0**-10, 3 * 2.0**-11]
    # Ties go to the even mantissa; beyond 448 saturates; half the smallest subnormal (2^-9)
    # rounds to 0, three quarters of it to 2^-9.
    want = [0.0, 1.0, 1.25, 16.0, 20.0, 224.0, 448.0, 448.0, -448.0, 0.0, 2.0**-9]
    np.testing.assert_array_equal(round_to_e4m3(x), np.array(want, F32))
    assert np.isnan(round_to_e4m3([np.nan])).all()


def test_bfloat16_and_float16_rounding() -> None:
    x = [1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, 3.14159]
    want = np.array([1.0, 1.015625, 3.140625], F32)
    np.testing.assert_array_equal(round_to_dtype(x, "bfloat16"), want)
    np.testing.assert_array_equal(round_to_dtype([1.0 + 2.0**-11], "float16"), np.array([1.0], F32))
    with pytest.raises(ValueError, match="dtype must be"):
        round_to_dtype([1.0], "int8")


def _cache(values: list[list[float]], block_size: int = 2) -> np.ndarray:
    """One KV head, head dim len(values[0]); token t in block t // block_size."""
    tokens = len(values)
    blocks = -(-tokens // block_size)
    cache = np.zeros((blocks, 1, block_size, len(values[0])), F32)
    for t, row in enumerate(values):
        cache[t // block_size, 0, t % block_size] = row
    return cache


def test_one_token_context_returns_its_value() -> None:
    k, v = _cache([[1.0, 2.0]]), _cache([[5.0, -3.0]])
    out = ref.paged_attention(np.array([[[0.3, 0.1]]], F32), k, v, np.array([[0]]), np.array([1]))
    np.testing.assert_array_equal(out, [[[5.0, -3.0]]])


def test_two_tokens_softmax_by_hand() -> None:
    # q.k = 0 and 2 with scale 1/sqrt(2) -> weights 1 : e^(2/sqrt 2).
    k, v = _cache([[0.0, 0.0], [2.0, 0.0]]), _cache([[1.0, 0.0], [0.0, 1.0]])
    out = ref.paged_attention(np.array([[[1.0, 0.0]]], F32), k, v, np.array([[0]]), np.array([2]))
    w = math.exp(2 / math.sqrt(2))
    np.testing.assert_allclose(out[0, 0], [1 / (1 + w), w / (1 + w)], rtol=1e-6)


def test_block_tables_indirect_and_unused_entries_are_not_read() -> None:
    k = _cache([[0.0, 0.0], [2.0, 0.0], [9.0, 9.0], [9.0, 9.0]])
    v = _cache([[1.0, 0.0], [0.0, 1.0], [7.0, 7.0], [7.0, 7.0]])
    q = np.array([[[1.0, 0.0]]], F32)
    direct = ref.paged_attention(q, k[:1], v[:1], np.array([[0, -1]]), np.array([2]))
    # The same two tokens in block 1 of a pool whose block 0 holds other data.
    moved = ref.paged_attention(q, k[[1, 0]], v[[1, 0]], np.array([[1, -1]]), np.array([2]))
    np.testing.assert_array_equal(direct, moved)


def test_gqa_maps_query_heads_to_kv_heads() -> None:
    k = np.zeros((1, 2, 1, 2), F32)
    v = np.zeros((1, 2, 1, 2), F32)
    v[0, 0, 0], v[0, 1, 0] = [1.0, 2.0], [3.0, 4.0]
    out = ref.paged_attention(np.ones((1, 4, 2), F32), k, v, np.array([[0]]), np.array([1]))
    np.testing.assert_array_equal(out[0], [[1, 2], [1, 2], [3, 4], [3, 4]])


def test_prefill_is_causal_over_prefix_and_chunk() -> None:
    # Prefix of 1 token, chunk of 2: the chunk's tokens see 2 and 3 positions.
    k = _cache([[0.0], [0.0], [0.0]], block_size=4)
    v = _cache([[3.0], [6.0], [9.0]], block_size=4)
    out = ref.paged_attention(np.zeros((2, 1, 1), F32), k, v, np.array([[0]]), np.array([3]),
                              cu_seqlens_q=np.array([0, 2]))
    np.testing.assert_allclose(out[:, 0, 0], [4.5, 6.0])


def test_dequantisation_scales() -> None:
    k, v = _cache([[1.0]]), _cache([[100.0]])
    out = ref.paged_attention(np.ones((1, 1, 1), F32), k, v, np.array([[0]]), np.array([1]),
                              key_scale=np.array([0.5], F32), value_scale=np.array([0.25], F32))
    np.testing.assert_array_equal(out, [[[25.0]]])


def test_append_positions_quantisation_and_rotary() -> None:
    # Two sequences: 2 new tokens after 1 cached one, then 1 new token after 0.
    key = np.array([[[1.0, 0.0]], [[0.25, 0.75]], [[-0.25, 3.0]]], F32)
    value = key * 2
    cache = np.zeros((3, 1, 2, 2), F32)
    tables = np.array([[2, 0], [1, -1]])
    k, v, _ = ref.paged_kv_append(key, value, cache, cache, tables, np.array([1, 0]),
                                  np.array([0, 2, 3]), dtype="float16", cache="int8",
                                  key_scale=np.array([0.5], F32), value_scale=np.array([0.5], F32))
    # Sequence 0: positions 1 (block 2 row 1) and 2 (block 0 row 0); sequence 1: block 1 row 0.
    np.testing.assert_array_equal(k[2, 0, 1], [2.0, 0.0])
    np.testing.assert_array_equal(k[0, 0, 0], [0.0, 2.0])  # 0.5 and 1.5 round to even
    np.testing.assert_array_equal(k[1, 0, 0], [0.0, 6.0])  # -0.5 rounds to -0 = 0
    np.testing.assert_array_equal(v[0, 0, 0], [1.0, 3.0])
    assert not k[2, 0, 0].any() and not k[1, 0, 1].any()

    # Rotary: position 1 with angle pi/2 turns (x, y) into (-y, x), for neox and interleaved.
    table = np.array([[1.0, 0.0], [0.0, 1.0]], F32)  # rows: position; columns: cos, sin
    q = np.array([[[1.0, 2.0]]], F32)
    for neox in (True, False):
        k, _, rotated = ref.paged_kv_append(
            np.array([[[3.0, 4.0]]], F32), np.zeros((1, 1, 2), F32), np.zeros((1, 1, 2, 2), F32),
            np.zeros((1, 1, 2, 2), F32), np.array([[0]]), np.array([1]), np.array([0, 1]),
            dtype="bfloat16", query=q, cos_sin_cache=table, is_neox=neox)
        np.testing.assert_array_equal(k[0, 0, 1], [-4.0, 3.0])
        np.testing.assert_array_equal(rotated[0, 0], [-2.0, 1.0])


def test_fp8_cache_values_saturate() -> None:
    stored = quantize_cache_values(np.array([[1000.0, 1.0625, -3.0]], F32), "float8_e4m3fn",
                                       np.array([1.0], F32))
    np.testing.assert_array_equal(stored, [[448.0, 1.0, -3.0]])


# --- the GPU tests' bound (fastdeploy_ops.testing.attention) can fail -------------------------


def _dense_decode_case(rng: np.random.Generator, context: int, heads: int, kv_heads: int,
                       cache: str) -> tuple:
    """One decode row over `context` tokens in 64-token blocks: (query, k, v, tables, lens,
    scales), values as the GPU tests draw them."""
    blocks = -(-context // 64)
    shape = (blocks, kv_heads, 64, 128)
    if cache == "int8":
        k, v = (rng.integers(-127, 128, shape).astype(F32) for _ in range(2))
        scales = (np.full(kv_heads, 0.02, F32), np.full(kv_heads, 0.015, F32))
    else:
        k, v = (round_to_dtype(rng.standard_normal(shape, dtype=F32), "bfloat16")
                for _ in range(2))
        scales = (None, None)
    query = round_to_dtype(rng.standard_normal((1, heads, 128), dtype=F32), "bfloat16")
    tables = rng.permutation(blocks).astype(np.int32)[None, :]
    return query, k, v, tables, np.array([context]), scales


def _tensor_core_emulation(case: tuple, weights: str, out_dtype: str,
                           dropped: slice | None = None) -> np.ndarray:
    """What a tensor-core kernel computes: unnormalised weights rounded to `weights` before
    they multiply V, the normaliser summed unrounded, the output rounded to `out_dtype`.
    `dropped` leaves those tokens out (a fault)."""
    query, k, v, tables, lens, (k_scale, v_scale) = case
    context = int(lens[0])
    blocks = tables[0, np.arange(context) // 64]
    rows = np.arange(context) % 64
    keep = np.ones(context, bool)
    if dropped is not None:
        keep[dropped] = False
    kv_heads = k.shape[1]
    group = query.shape[1] // kv_heads
    out = np.zeros(query.shape, np.float64)
    for h in range(query.shape[1]):
        kh = h // group
        keys = k[blocks, kh, rows][keep] * (1.0 if k_scale is None else k_scale[kh])
        values = v[blocks, kh, rows][keep] * (1.0 if v_scale is None else v_scale[kh])
        scores = (keys.astype(F32) @ query[0, h]).astype(np.float64) / np.sqrt(128)
        e = np.exp(scores - scores.max())
        rounded = round_to_dtype(e.astype(F32), weights).astype(np.float64)
        out[0, h] = rounded @ values / e.sum()
    return round_to_dtype(out.astype(F32), out_dtype)


@pytest.mark.parametrize("context", [3, 700, 4096])
@pytest.mark.parametrize("cache, weights", [("c16", "bfloat16"), ("int8", "float16")])
def test_attention_bound_accepts_tensor_core_rounding_and_rejects_faults(
        context: int, cache: str, weights: str) -> None:
    rng = np.random.default_rng(context)
    case = _dense_decode_case(rng, context, heads=32, kv_heads=4, cache=cache)
    query, k, v, tables, lens, (k_scale, v_scale) = case
    args = (query, k, v, tables, lens)
    scales = {"key_scale": k_scale, "value_scale": v_scale}
    want = ref.paged_attention(*args, **scales)
    spread = ref.paged_attention_spread(*args, **scales)

    def check(got: np.ndarray) -> None:
        assert_attention_close(got, want, spread, dtype="bfloat16", weights=weights)

    check(_tensor_core_emulation(case, weights, "bfloat16"))
    check(round_to_dtype(want, "bfloat16"))  # the CUDA-core kernel's ideal
    faults = {"5% on every output": round_to_dtype(want * 1.05, "bfloat16")}
    one_head = want.copy()
    one_head[:, 8:16] *= 1.10  # the query heads of KV head 1
    faults["10% on one KV head"] = round_to_dtype(one_head, "bfloat16")
    if context >= 128:
        faults["a dropped 64-token block"] = _tensor_core_emulation(
            case, weights, "bfloat16", dropped=slice(64, 128))
    for fault, got in faults.items():
        with pytest.raises(AssertionError, match="values differ"):
            check(got)
            pytest.fail(f"the bound accepted {fault}")


def test_attention_bound_rejects_nan() -> None:
    case = _dense_decode_case(np.random.default_rng(0), 100, heads=4, kv_heads=4, cache="c16")
    args = case[:5]
    want, spread = ref.paged_attention(*args), ref.paged_attention_spread(*args)
    got = round_to_dtype(want, "bfloat16")
    got[0, 1, 5] = np.nan
    with pytest.raises(AssertionError, match=r"1 of 512 values differ; worst at \(0, 1, 5\)"):
        assert_attention_close(got, want, spread, dtype="bfloat16", weights="float32")
