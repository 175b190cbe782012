"""The rotary reference against hand-computed cases and FastDeploy's published shapes, and the
op's argument validation through the real sm70 module with numpy inputs (no GPU)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import rotary
from fastdeploy_ops import reference as ref

F32 = np.float32

# cos/sin cache rows: position 0 rotates pair 0 by 90 degrees (cos 0, sin 1) and leaves pair 1
# alone (cos 1, sin 0); position 1 rotates pair 0 by 180 degrees and pair 1 by 90 degrees.
CACHE = np.array([[0.0, 1.0, 1.0, 0.0],
                  [-1.0, 0.0, 0.0, 1.0]], dtype=F32)
HEAD = np.array([1.0, 2.0, 3.0, 4.0], dtype=F32)


def rope(query: np.ndarray, positions: list[int], is_neox: bool, cache: np.ndarray = CACHE,
         head_size: int = 4) -> np.ndarray:
    q, k = ref.fused_rotary_position_encoding(query, None, np.array(positions, np.int32), cache,
                                              head_size, is_neox)
    assert k is None
    return q


def test_neox_rotates_halves() -> None:
    # Pairs (0, 2) and (1, 3). Position 0: (1, 3) by 90 degrees -> (-3, 1); (2, 4) unchanged.
    assert rope(HEAD.reshape(1, 1, 4), [0], True).tolist() == [[[-3.0, 2.0, 1.0, 4.0]]]
    # Position 1: (1, 3) by 180 degrees -> (-1, -3); (2, 4) by 90 degrees -> (-4, 2).
    assert rope(HEAD.reshape(1, 1, 4), [1], True).tolist() == [[[-1.0, -4.0, -3.0, 2.0]]]


def test_gptj_rotates_interleaved_pairs() -> None:
    # Pairs (0, 1) and (2, 3). Position 0: (1, 2) -> (-2, 1); (3, 4) unchanged.
    assert rope(HEAD.reshape(1, 1, 4), [0], False).tolist() == [[[-2.0, 1.0, 3.0, 4.0]]]
    # Position 1: (1, 2) -> (-1, -2); (3, 4) -> (-4, 3).
    assert rope(HEAD.reshape(1, 1, 4), [1], False).tolist() == [[[-1.0, -2.0, -4.0, 3.0]]]


def test_partial_rotary_and_bad_positions_leave_the_rest_alone() -> None:
    # head_size 6, rot_dim 4: dimensions 4 and 5 never change.
    head = np.array([[[1, 2, 3, 4, 5, 6]], [[1, 2, 3, 4, 5, 6]], [[1, 2, 3, 4, 5, 6]]], F32)
    out = rope(head, [0, 2, -1], True, head_size=6)
    assert out[0].tolist() == [[-3.0, 2.0, 1.0, 4.0, 5.0, 6.0]]
    # Positions 2 (>= max_position) and -1 are out of range: the tokens are unchanged.
    assert out[1].tolist() == head[1].tolist() and out[2].tolist() == head[2].tolist()


def test_query_and_key_layouts() -> None:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((5, 3, 8)).astype(F32)
    k = rng.standard_normal((5, 1, 8)).astype(F32)
    cache = rng.standard_normal((7, 6)).astype(F32)
    pos = np.array([0, 6, 3, 3, 1], np.int32)
    q3, k3 = ref.fused_rotary_position_encoding(q, k, pos, cache, 8, False)
    q2, k2 = ref.fused_rotary_position_encoding(q.reshape(5, 24), k.reshape(5, 8), pos, cache, 8,
                                                False)
    assert q2.shape == (5, 24) and k2.shape == (5, 8)
    np.testing.assert_array_equal(q2.reshape(q3.shape), q3)
    np.testing.assert_array_equal(k2.reshape(k3.shape), k3)


def rope_loops(x: np.ndarray, positions: np.ndarray, rot_dim: int, is_neox: bool,
               base: float = 10000.0) -> np.ndarray:
    """Element-by-element RoPE with real inverse frequencies, in float64 (independent of the
    reference's vectorised form)."""
    out = x.astype(np.float64).copy()
    half = rot_dim // 2
    for t in range(x.shape[0]):
        for h in range(x.shape[1]):
            for i in range(half):
                angle = positions[t] * base ** (-2.0 * i / rot_dim)
                c, s = math.cos(angle), math.sin(angle)
                a, b = (i, i + half) if is_neox else (2 * i, 2 * i + 1)
                xa, xb = out[t, h, a], out[t, h, b]
                out[t, h, a], out[t, h, b] = xa * c - xb * s, xb * c + xa * s
    return out


def cos_sin_cache(max_position: int, rot_dim: int, base: float = 10000.0) -> np.ndarray:
    inv_freq = base ** (-np.arange(0, rot_dim, 2, dtype=np.float64) / rot_dim)
    angles = np.arange(max_position, dtype=np.float64)[:, None] * inv_freq[None, :]
    return np.concatenate([np.cos(angles), np.sin(angles)], axis=1).astype(F32)


# FastDeploy's test shapes (tests/operators/test_fused_rotary_position_encoding.py):
# (tokens, heads, kv heads, head_size, rot_dim, is_neox), compared at rtol 1e-5, atol 1e-6.
FASTDEPLOY_CASES = [(4, 2, 2, 6, 4, False), (3, 2, 2, 8, 8, True), (10, 2, 2, 4, 4, False)]


@pytest.mark.parametrize(("tokens", "heads", "kv_heads", "head_size", "rot_dim", "is_neox"),
                         FASTDEPLOY_CASES)
def test_matches_fastdeploy_published_cases(tokens: int, heads: int, kv_heads: int,
                                            head_size: int, rot_dim: int, is_neox: bool) -> None:
    rng = np.random.default_rng(42)
    q = rng.random((tokens, heads, head_size)).astype(F32)
    k = rng.random((tokens, kv_heads, head_size)).astype(F32)
    positions = np.arange(tokens, dtype=np.int32)
    got_q, got_k = ref.fused_rotary_position_encoding(
        q, k, positions, cos_sin_cache(tokens, rot_dim), head_size, is_neox)
    np.testing.assert_allclose(got_q, rope_loops(q, positions, rot_dim, is_neox), 1e-5, 1e-6)
    np.testing.assert_allclose(got_k, rope_loops(k, positions, rot_dim, is_neox), 1e-5, 1e-6)
    assert not np.allclose(got_q, q) and not np.allclose(got_k, k)


# ---------------------------------------------------------------------------------------------
# Validation through the sm70 module




T, HQ, HK, D, ROT, MAXPOS = 5, 4, 2, 64, 64, 32


def call(**change: Any) -> Any:
    args = {"query": np.zeros((T, HQ, D), F32), "key": np.zeros((T, HK, D), F32),
            "position_ids": np.zeros(T, np.int32), "cos_sin_cache": np.zeros((MAXPOS, ROT), F32),
            "head_size": D, "is_neox": True, **change}
    return rotary.fused_rotary_position_encoding(**args)


def f32(*shape: int) -> np.ndarray:
    return np.zeros(shape, F32)


OP = "fused_rotary_position_encoding"
CASES: dict[str, tuple[type[Exception], str, Callable[[], Any]]] = {
    "query-fp64": (TypeError, "query", lambda: call(query=np.zeros((T, HQ, D), np.float64))),
    "query-int32": (TypeError, "query", lambda: call(query=np.zeros((T, HQ, D), np.int32))),
    "query-1d": (ValueError, "query", lambda: call(query=f32(T * HQ * D))),
    "query-4d": (ValueError, "query", lambda: call(query=f32(1, T, HQ, D))),
    "query-head-size": (ValueError, "query", lambda: call(query=f32(T, HQ, D + 2))),
    "query-flat-not-multiple": (ValueError, "query", lambda: call(query=f32(T, HQ * D + 1))),
    "key-dtype": (TypeError, "key", lambda: call(key=np.zeros((T, HK, D), np.float16))),
    "key-tokens": (ValueError, "key", lambda: call(key=f32(T + 1, HK, D))),
    "key-head-size": (ValueError, "key", lambda: call(key=f32(T, HK, D // 2))),
    "positions-int64": (TypeError, "position_ids",
        lambda: call(position_ids=np.zeros(T, np.int64))),
    "positions-length": (ValueError, "position_ids",
        lambda: call(position_ids=np.zeros(T + 1, np.int32))),
    "positions-2d": (ValueError, "position_ids",
        lambda: call(position_ids=np.zeros((T, 1), np.int32))),
    "cache-dtype": (TypeError, "cos_sin_cache",
        lambda: call(cos_sin_cache=np.zeros((MAXPOS, ROT), np.float16))),
    "cache-1d": (ValueError, "cos_sin_cache", lambda: call(cos_sin_cache=f32(MAXPOS * ROT))),
    "cache-odd-rot-dim": (ValueError, "cos_sin_cache",
        lambda: call(cos_sin_cache=f32(MAXPOS, ROT - 1))),
    "cache-rot-dim-over-head-size": (ValueError, "cos_sin_cache",
        lambda: call(cos_sin_cache=f32(MAXPOS, D + 2))),
    "cache-empty": (ValueError, "cos_sin_cache", lambda: call(cos_sin_cache=f32(0, ROT))),
    "head-size-1": (ValueError, "head_size", lambda: call(head_size=1)),
    "head-size-float": (TypeError, "head_size", lambda: call(head_size=64.0)),
    "cpu": (ValueError, "query", lambda: call()),
    "cpu-no-key": (ValueError, "query", lambda: call(key=None)),
}


@pytest.mark.usefixtures("sm70")
@pytest.mark.parametrize("name", CASES)
def test_rotary_rejects_through_the_sm70_module(name: str, rejects: Callable[..., str]) -> None:
    error, arg, fn = CASES[name]
    message = rejects(error, OP, arg, fn)
    assert ("CUDA" in message) == name.startswith("cpu"), message


@pytest.mark.usefixtures("sm70")
def test_rotary_accepts_flat_layouts_and_partial_rotary_until_the_device_check() -> None:
    with pytest.raises(ValueError, match=f"{OP}: argument 'query' must be a CUDA tensor"):
        call(query=f32(T, HQ * D), key=f32(T, HK * D), cos_sin_cache=f32(MAXPOS, ROT // 2))
