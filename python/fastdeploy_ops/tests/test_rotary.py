"""fused_rotary_position_encoding on the GPU against ``fastdeploy_ops.reference``, plus bad inputs.

Tolerances. The kernel and the reference compute the same float32 expression
(``x*c - y*s``, ``y*c + x*s``, each product and sum rounded on its own) from the same inputs
(half-precision tensors and cache widened exactly), and the kernel rounds once to the tensor's
dtype. float32 is compared at rtol 1e-5 / atol 1e-6 (FastDeploy's test tolerances), float16 and
bfloat16 within one ulp of the dtype at the float32 reference value (the correctly rounded
result is within half an ulp). Untouched data (dimensions past rot_dim, tokens with an invalid
position) must be bit-identical.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import reference as ref
from fastdeploy_ops import rotary
from fastdeploy_ops.testing import TensorLib, requires_op, ulp

pytestmark = requires_op("fused_rotary_position_encoding")

DTYPES = ["float32", "bfloat16", "float16"]
F32 = np.float32


def rng_for(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def cos_sin_cache(max_position: int, rot_dim: int, base: float = 10000.0) -> np.ndarray:
    """The usual RoPE cache: cos(p * f_i) then sin(p * f_i), f_i = base ** (-2i / rot_dim)."""
    inv_freq = base ** (-np.arange(0, rot_dim, 2, dtype=np.float64) / rot_dim)
    angles = np.arange(max_position, dtype=np.float64)[:, None] * inv_freq[None, :]
    return np.concatenate([np.cos(angles), np.sin(angles)], axis=1).astype(F32)


def assert_rotated(got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    got = got.astype(np.float64)
    want = want.astype(np.float64)
    assert got.shape == want.shape
    if dtype == "float32":
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        return
    error = np.abs(got - want)
    tolerance = ulp(want, dtype)
    if not (error <= tolerance).all():
        worst = int(np.argmax(error - tolerance))
        raise AssertionError(f"{np.count_nonzero(error > tolerance)} values differ; worst: "
                             f"got {got.flat[worst]!r}, want {want.flat[worst]!r}")


@dataclass(frozen=True)
class Config:
    tokens: int
    heads: int
    kv_heads: int  # 0: key is None
    head_size: int
    rot_dim: int
    max_position: int = 8192


CONFIGS = {
    "llama3-8b-prefill": Config(513, 32, 8, 128, 128),
    "qwen2-7b-decode": Config(1, 28, 4, 128, 128),
    "chatglm-half-rotary": Config(64, 32, 2, 128, 64),
    "d64-mha": Config(1000, 16, 16, 64, 64),
    "gemma-d256": Config(33, 8, 1, 256, 256),
    "gpt-neox-rot24": Config(17, 8, 8, 96, 24),  # rot_dim / 2 = 12: narrower accesses
    "phi2-d80-rot32": Config(29, 32, 32, 80, 32),
    "fastdeploy-d6-rot4": Config(4, 2, 2, 6, 4, 4),  # FastDeploy's first test shape
    "query-only": Config(9, 64, 0, 128, 128),
}


def make_inputs(lib: TensorLib, cfg: Config, dtype: str, *key: object,
                flat: bool = False) -> tuple[Any, Any, Any, Any, np.ndarray, np.ndarray | None,
                                             np.ndarray, np.ndarray]:
    """Device (query, key, positions, cache) and the exact host values of q, k and the cache."""
    rng = rng_for(cfg, dtype, *key)
    q = rng.standard_normal((cfg.tokens, cfg.heads, cfg.head_size), dtype=F32)
    k = rng.standard_normal((cfg.tokens, cfg.kv_heads, cfg.head_size), dtype=F32)
    if flat:
        q, k = q.reshape(cfg.tokens, -1), k.reshape(cfg.tokens, -1)
    positions = rng.integers(0, cfg.max_position, cfg.tokens).astype(np.int32)
    dq = lib.to_device(q, dtype)
    dk = lib.to_device(k, dtype) if cfg.kv_heads else None
    dcache = lib.to_device(cos_sin_cache(cfg.max_position, cfg.rot_dim), dtype)
    q_exact = lib.from_device(dq).astype(F32)
    k_exact = lib.from_device(dk).astype(F32) if dk is not None else None
    cache_exact = lib.from_device(dcache).astype(F32)
    return dq, dk, lib.to_device(positions), dcache, q_exact, k_exact, positions, cache_exact


@pytest.mark.parametrize("is_neox", [True, False], ids=["neox", "gptj"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CONFIGS)
def test_matches_reference(tensor_lib: TensorLib, name: str, dtype: str, is_neox: bool) -> None:
    tensor_lib.require(dtype)
    cfg = CONFIGS[name]
    dq, dk, dpos, dcache, q, k, positions, cache = make_inputs(tensor_lib, cfg, dtype)
    out_q, out_k = rotary.fused_rotary_position_encoding(dq, dk, dpos, dcache, cfg.head_size,
                                                         is_neox)
    assert out_q is dq and out_k is dk
    want_q, want_k = ref.fused_rotary_position_encoding(q, k, positions, cache, cfg.head_size,
                                                        is_neox)
    got_q = tensor_lib.from_device(dq).astype(F32)
    assert_rotated(got_q, want_q, dtype)
    # Dimensions past rot_dim are bit-identical.
    np.testing.assert_array_equal(got_q[..., cfg.rot_dim:], q[..., cfg.rot_dim:])
    if cfg.kv_heads:
        got_k = tensor_lib.from_device(dk).astype(F32)
        assert_rotated(got_k, want_k, dtype)
        np.testing.assert_array_equal(got_k[..., cfg.rot_dim:], k[..., cfg.rot_dim:])


@pytest.mark.parametrize("is_neox", [True, False], ids=["neox", "gptj"])
def test_flat_layout_matches_three_dimensional(tensor_lib: TensorLib, is_neox: bool) -> None:
    cfg = CONFIGS["llama3-8b-prefill"]
    results = []
    for flat in (False, True):
        dq, dk, dpos, dcache, *_ = make_inputs(tensor_lib, cfg, "float32", "layout", flat=flat)
        rotary.fused_rotary_position_encoding(dq, dk, dpos, dcache, cfg.head_size, is_neox)
        results.append([tensor_lib.from_device(t).reshape(cfg.tokens, -1) for t in (dq, dk)])
    for a, b in zip(*results, strict=True):
        assert a.tobytes() == b.tobytes()


def test_invalid_positions_leave_the_token_unchanged(tensor_lib: TensorLib) -> None:
    cfg = Config(6, 4, 2, 64, 64, max_position=100)
    dq, dk, _, dcache, q, k, _, cache = make_inputs(tensor_lib, cfg, "float32", "positions")
    positions = np.array([0, -1, 99, 100, 2**31 - 1, -(2**31)], dtype=np.int32)
    rotary.fused_rotary_position_encoding(dq, dk, tensor_lib.to_device(positions), dcache,
                                          cfg.head_size, True)
    got_q, got_k = tensor_lib.from_device(dq), tensor_lib.from_device(dk)
    for t in (1, 3, 4, 5):
        assert got_q[t].tobytes() == q[t].tobytes() and got_k[t].tobytes() == k[t].tobytes()
    want_q, want_k = ref.fused_rotary_position_encoding(q, k, positions, cache, 64, True)
    assert_rotated(got_q, want_q, "float32")
    assert_rotated(got_k, want_k, "float32")
    assert not np.allclose(got_q[2], q[2])


def test_zero_tokens(tensor_lib: TensorLib) -> None:
    q = tensor_lib.to_device(np.zeros((0, 8, 128), F32))
    k = tensor_lib.to_device(np.zeros((0, 8 * 128), F32))
    out = rotary.fused_rotary_position_encoding(
        q, k, tensor_lib.to_device(np.zeros(0, np.int32)),
        tensor_lib.to_device(cos_sin_cache(16, 128)), 128, True)
    assert out[0] is q and tuple(out[1].shape) == (0, 1024)


@pytest.mark.parametrize("is_neox", [True, False], ids=["neox", "gptj"])
def test_a_million_tokens(tensor_lib: TensorLib, is_neox: bool) -> None:
    # 2**20 + 7 tokens (T * heads * head_size > 2**27), 2 query heads and 1 kv head of 64 in
    # float16: the grid strides over token tiles. Checked on the first and last 2048 tokens,
    # tokens around 65536 (an old FastDeploy limit) and 2**20, and 4096 random ones.
    tokens, heads, kv_heads, head_size, max_position = 2**20 + 7, 2, 1, 64, 65536
    rng = rng_for("million", is_neox)
    period = 8191  # the data repeats with this period; the positions do not
    q_block = rng.standard_normal((period, heads, head_size)).astype(np.float16)
    k_block = rng.standard_normal((period, kv_heads, head_size)).astype(np.float16)
    reps = -(-tokens // period)
    q = np.tile(q_block, (reps, 1, 1))[:tokens]
    k = np.tile(k_block, (reps, 1, 1))[:tokens]
    positions = ((np.arange(tokens, dtype=np.int64) * 7919) % max_position).astype(np.int32)
    cache = cos_sin_cache(max_position, head_size).astype(np.float16)
    dq, dk = tensor_lib.to_device(q), tensor_lib.to_device(k)
    rotary.fused_rotary_position_encoding(dq, dk, tensor_lib.to_device(positions),
                                          tensor_lib.to_device(cache), head_size, is_neox)
    got_q, got_k = tensor_lib.from_device(dq), tensor_lib.from_device(dk)
    picks = np.unique(np.concatenate([
        np.arange(2048), np.arange(tokens - 2048, tokens),
        np.arange(65536 - 8, 65536 + 8), np.arange(2**20 - 8, 2**20 + 7),
        rng.integers(0, tokens, 4096)]))
    want_q, want_k = ref.fused_rotary_position_encoding(
        q[picks].astype(F32), k[picks].astype(F32), positions[picks], cache.astype(F32),
        head_size, is_neox)
    assert_rotated(got_q[picks].astype(F32), want_q, "float16")
    assert_rotated(got_k[picks].astype(F32), want_k, "float16")


# ---------------------------------------------------------------------------------------------
# Bad inputs: each raises before any launch, naming the op and the argument.

T, HQ, HK, D = 4, 4, 2, 64
OP = "fused_rotary_position_encoding"


def dev(lib: TensorLib, shape: tuple[int, ...], dtype: str = "float32") -> Any:
    if dtype.startswith("int"):
        return lib.to_device(np.zeros(shape, dtype=dtype))
    return lib.to_device(np.ones(shape, dtype=np.float32), dtype)


def call(lib: TensorLib, **change: Any) -> Any:
    args = {"query": dev(lib, (T, HQ, D)), "key": dev(lib, (T, HK, D)),
            "position_ids": dev(lib, (T,), "int32"), "cos_sin_cache": dev(lib, (32, D)),
            "head_size": D, "is_neox": True}
    args.update({k: (v(lib) if callable(v) else v) for k, v in change.items()})
    return rotary.fused_rotary_position_encoding(**args)


@dataclass(frozen=True)
class Case:
    error: type[Exception]
    arg: str
    call: Callable[[TensorLib], Any]


CASES = {
    "query-fp64": Case(TypeError, "query",
        lambda l: call(l, query=lambda l: dev(l, (T, HQ, D), "float64"))),
    "query-int32": Case(TypeError, "query",
        lambda l: call(l, query=lambda l: dev(l, (T, HQ, D), "int32"))),
    "query-noncontiguous": Case(ValueError, "query",
        lambda l: call(l, query=lambda l: dev(l, (HQ * D, T)).T)),
    "query-cpu": Case(ValueError, "query", lambda l: call(l, query=np.zeros((T, HQ, D), F32))),
    "query-head-size": Case(ValueError, "query",
        lambda l: call(l, query=lambda l: dev(l, (T, HQ, D + 2)))),
    "query-1d": Case(ValueError, "query", lambda l: call(l, query=lambda l: dev(l, (T * HQ * D,)))),
    "key-dtype": Case(TypeError, "key",
        lambda l: call(l, key=lambda l: dev(l, (T, HK, D), "float16"))),
    "key-tokens": Case(ValueError, "key", lambda l: call(l, key=lambda l: dev(l, (T + 1, HK, D)))),
    "key-noncontiguous": Case(ValueError, "key",
        lambda l: call(l, key=lambda l: dev(l, (HK * D, T)).T)),
    "key-cpu": Case(ValueError, "key", lambda l: call(l, key=np.zeros((T, HK, D), F32))),
    "positions-int64": Case(TypeError, "position_ids",
        lambda l: call(l, position_ids=lambda l: dev(l, (T,), "int64"))),
    "positions-tokens": Case(ValueError, "position_ids",
        lambda l: call(l, position_ids=lambda l: dev(l, (T - 1,), "int32"))),
    "positions-cpu": Case(ValueError, "position_ids",
        lambda l: call(l, position_ids=np.zeros(T, np.int32))),
    "cache-dtype": Case(TypeError, "cos_sin_cache",
        lambda l: call(l, cos_sin_cache=lambda l: dev(l, (32, D), "float16"))),
    "cache-odd-rot-dim": Case(ValueError, "cos_sin_cache",
        lambda l: call(l, cos_sin_cache=lambda l: dev(l, (32, D - 1)))),
    "cache-rot-dim-over-head-size": Case(ValueError, "cos_sin_cache",
        lambda l: call(l, cos_sin_cache=lambda l: dev(l, (32, D + 2)))),
    "cache-3d": Case(ValueError, "cos_sin_cache",
        lambda l: call(l, cos_sin_cache=lambda l: dev(l, (32, 2, D // 2)))),
    "cache-cpu": Case(ValueError, "cos_sin_cache",
        lambda l: call(l, cos_sin_cache=np.zeros((32, D), F32))),
    "head-size-0": Case(ValueError, "head_size", lambda l: call(l, head_size=0)),
    "head-size-huge": Case(ValueError, "head_size", lambda l: call(l, head_size=2**40)),
}


@pytest.mark.parametrize("name", CASES)
def test_rotary_rejects(tensor_lib: TensorLib, name: str) -> None:
    case = CASES[name]
    with pytest.raises(case.error) as raised:
        case.call(tensor_lib)
    message = str(raised.value)
    assert message.startswith(f"{OP}: argument '{case.arg}' "), message


def test_rotary_never_converts_the_in_place_tensors(tensor_lib: TensorLib) -> None:
    query = dev(tensor_lib, (T, HQ, D), "float64")
    before = tensor_lib.from_device(query).copy()
    with pytest.raises(TypeError, match=f"{OP}: argument 'query'"):
        call(tensor_lib, query=query)
    np.testing.assert_array_equal(tensor_lib.from_device(query), before)
    key = dev(tensor_lib, (T, HK, D), "float64")
    with pytest.raises(TypeError, match=f"{OP}: argument 'key'"):
        call(tensor_lib, key=key)
