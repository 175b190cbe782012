"""The attention references and the exact roundings on small hand-checked cases (no GPU)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastdeploy_ops import reference as ref
from fastdeploy_ops.reference._numerics import round_to_dtype, round_to_e4m3
from fastdeploy_ops.reference.attention import quantize_cache_values

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
