"""moe_routing ops on the GPU against ``fastdeploy_ops.reference``, plus FastDeploy's invariants.

Tolerances. The reference receives exactly the kernel's inputs (half-precision logits are rounded
first and widened exactly) and computes in fp32 like the kernels, so results agree to a few ulp:
values are compared at 1e-5 relative (~80 ulp; FastDeploy's test uses 1e-3 because its reference
computes differently). The selection can legitimately differ only where CUDA's ``expf`` and
numpy's ``exp`` (both within ~2 ulp) disagree about an ordering, i.e. on near-ties: rows whose
deciding gap is below ``TIE_GAP`` are checked for the invariants only, and such rows must stay
rare, or the data would not test the selection at all.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pytest

from fastdeploy_ops import moe_routing
from fastdeploy_ops import reference as ref
from fastdeploy_ops.testing import TensorLib, requires_op, ulp

pytestmark = requires_op("grouped_topk")


@dataclass(frozen=True)
class Routing:
    experts: int
    n_group: int
    topk_group: int
    topk: int
    renormalize: bool
    rsf: float

    def args(self) -> tuple[int, int, int, bool, float]:
        return self.n_group, self.topk_group, self.topk, self.renormalize, self.rsf


CONFIGS = {
    "deepseek_v3": Routing(256, 8, 4, 8, True, 2.5),
    "glm_4_5_air": Routing(128, 1, 1, 8, True, 1.0),
    "qwen3_30b_a3b": Routing(128, 4, 2, 8, False, 1.0),  # synthetic: the model uses softmax
    "kimi_k2": Routing(384, 8, 2, 8, False, 1.0),  # 48 experts per group, more than a warp
}
TOKENS = [0, 1, 7, 64, 513, 4096, 8192]
LOGIT_DTYPES = ["float32", "bfloat16", "float16"]
# Deciding gaps (between biased scores, or group scores) below this may flip between the
# kernel's and numpy's sigmoid: a few ulp of values below ~1.1, with margin.
TIE_GAP = 1e-5


def rng_for(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def router_inputs(lib: TensorLib, cfg: Routing, tokens: int, dtype: str, *key: object,
                  scale: float = 1.0) -> tuple[object, np.ndarray, object, np.ndarray]:
    """Logits (device, and their exact fp32 values) and a FastDeploy-style bias ``[1, E]``."""
    rng = rng_for(cfg, tokens, dtype, scale, *key)
    logits = rng.standard_normal((tokens, cfg.experts), dtype=np.float32) * np.float32(scale)
    bias = ((rng.random((1, cfg.experts), dtype=np.float32) - 0.5) * 0.1).astype(np.float32)
    device_logits = lib.to_device(logits, dtype)
    exact = lib.from_device(device_logits).astype(np.float32)
    return device_logits, exact, lib.to_device(bias), bias


def decision_gap(u: np.ndarray, cfg: Routing) -> np.ndarray:
    """Per row, the smallest gap that decides the picks or their order (see module docstring)."""
    rows, experts = u.shape
    per_group = experts // cfg.n_group
    top2 = -np.sort(-u.reshape(rows, cfg.n_group, per_group), axis=2)[:, :, :2]
    group_scores = top2.sum(axis=2, dtype=np.float32)
    order = np.argsort(-group_scores, axis=1, kind="stable")
    ranked = np.take_along_axis(group_scores, order, axis=1)
    gaps = [np.full(rows, np.inf)]
    if cfg.topk_group < cfg.n_group:
        gaps.append(ranked[:, cfg.topk_group - 1] - ranked[:, cfg.topk_group])
    selected = np.zeros((rows, cfg.n_group), dtype=bool)
    np.put_along_axis(selected, order[:, : cfg.topk_group], True, axis=1)
    candidates = np.where(np.repeat(selected, per_group, axis=1), u, -np.inf)
    top = -np.sort(-candidates, axis=1)[:, : cfg.topk + 1]
    gaps.append(np.min(top[:, :-1] - top[:, 1:], axis=1))
    return np.minimum.reduce(gaps)


def assert_valid(cfg: Routing, dense: np.ndarray, values: np.ndarray, indices: np.ndarray) -> None:
    """Invariants of every non-fallback row (FastDeploy's test checks the same)."""
    rows = indices.shape[0]
    assert dense.shape == (rows, cfg.experts) and dense.dtype == np.float32
    assert values.shape == (rows, cfg.topk) and values.dtype == np.float32
    assert indices.shape == (rows, cfg.topk) and indices.dtype == np.int64
    assert ((indices >= 0) & (indices < cfg.experts)).all(), "index out of range"
    assert (np.diff(np.sort(indices, axis=1), axis=1) != 0).all(), "duplicate index in a row"
    assert np.isfinite(values).all() and (values >= 0).all()
    assert np.isfinite(dense).all()
    # Dense row: the picked values at the picked experts, zero everywhere else.
    np.testing.assert_array_equal(np.take_along_axis(dense, indices, axis=1), values)
    elsewhere = np.ones(dense.shape, dtype=bool)
    np.put_along_axis(elsewhere, indices, False, axis=1)
    assert not dense[elsewhere].any(), "non-zero dense score outside the picks"
    if cfg.renormalize:  # rows sum to rsf (fp32 sums of K terms: a few ulp)
        np.testing.assert_allclose(values.sum(axis=1), cfg.rsf, rtol=1e-5)


def assert_matches(cfg: Routing, got: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...],
                   clear: np.ndarray, min_clear: float = 0.95) -> None:
    """Invariants everywhere; equality with the reference on the rows marked ``clear``.

    At least ``min_clear`` of the rows (all but one for small T) must be clear.
    """
    dense, values, indices = got
    want_dense, want_values, want_indices = want
    assert_valid(cfg, dense, values, indices)
    unclear = np.count_nonzero(~clear)
    assert unclear <= max(1, int(len(clear) * (1 - min_clear))), f"{unclear} near-tie rows"
    # FastDeploy's check: the same set of experts ...
    np.testing.assert_array_equal(np.sort(indices[clear], 1), np.sort(want_indices[clear], 1))
    # ... and ours: in the same order (descending biased score, ties to the lower index).
    np.testing.assert_array_equal(indices[clear], want_indices[clear])
    np.testing.assert_allclose(values[clear], want_values[clear], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dense[clear], want_dense[clear], rtol=1e-5, atol=1e-7)


def run_grouped_topk(lib: TensorLib, logits: object, bias: object, args: tuple) -> tuple:
    return tuple(lib.from_device(t) for t in moe_routing.grouped_topk(logits, bias, *args))


@pytest.mark.parametrize("dtype", LOGIT_DTYPES)
@pytest.mark.parametrize("tokens", TOKENS)
@pytest.mark.parametrize("name", CONFIGS)
def test_grouped_topk_matches_reference(tensor_lib: TensorLib, name: str, tokens: int,
                                        dtype: str) -> None:
    cfg = CONFIGS[name]
    logits, logits32, bias, bias_np = router_inputs(tensor_lib, cfg, tokens, dtype)
    got = run_grouped_topk(tensor_lib, logits, bias, cfg.args())
    want = ref.grouped_topk(logits32, bias_np, *cfg.args())
    _, u = ref.fused_cast_sigmoid_bias(logits32, bias_np)
    assert_matches(cfg, got, want, decision_gap(u, cfg) > TIE_GAP)
    assert (got[1] > 0).all()


@pytest.mark.parametrize("tokens", TOKENS)
@pytest.mark.parametrize("name", CONFIGS)
def test_noaux_tc_matches_reference(tensor_lib: TensorLib, name: str, tokens: int) -> None:
    cfg = CONFIGS[name]
    _, logits32, _, bias_np = router_inputs(tensor_lib, cfg, tokens, "float32")
    s, u = ref.fused_cast_sigmoid_bias(logits32, bias_np)
    scores = tensor_lib.to_device(s)
    out = moe_routing.noaux_tc(scores, tensor_lib.to_device(u), *cfg.args())
    assert out[0] is scores, "noaux_tc must return the tensor it wrote in place"
    got = tuple(tensor_lib.from_device(t) for t in out)
    # The kernel selects on exactly the reference's u, so every row must match, ties included.
    assert_matches(cfg, got, ref.noaux_tc(s, u, *cfg.args()), np.ones(tokens, dtype=bool))


@pytest.mark.parametrize("cast_type", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("dtype", LOGIT_DTYPES)
@pytest.mark.parametrize("tokens", [0, 1, 513, 8192])
def test_fused_cast_sigmoid_bias_matches_reference(tensor_lib: TensorLib, tokens: int, dtype: str,
                                                   cast_type: str) -> None:
    tensor_lib.require(cast_type)
    cfg = CONFIGS["deepseek_v3"]
    logits, logits32, bias, bias_np = router_inputs(tensor_lib, cfg, tokens, dtype)
    outputs = moe_routing.fused_cast_sigmoid_bias(logits, bias, cast_type)
    for got, want in zip(outputs, ref.fused_cast_sigmoid_bias(logits32, bias_np), strict=True):
        got = tensor_lib.from_device(got).astype(np.float64)
        assert got.shape == (tokens, cfg.experts)
        # One rounding to cast_type (1 ulp of it) after an fp32 sigmoid within ~3 ulp of
        # numpy's (4 * 2**-24 bounds that for values below 1).
        tolerance = ulp(want, cast_type) + 4 * 2.0**-24
        assert (np.abs(got - want) <= tolerance).all()
    assert str(outputs[0].dtype).endswith(cast_type) and str(outputs[1].dtype).endswith(cast_type)


@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", CONFIGS)
def test_grouped_topk_equals_the_two_step_path(tensor_lib: TensorLib, name: str, dtype: str,
                                               renormalize: bool) -> None:
    cfg = CONFIGS[name]
    args = (cfg.n_group, cfg.topk_group, cfg.topk, renormalize, cfg.rsf)
    logits, _, bias, _ = router_inputs(tensor_lib, cfg, 513, dtype)
    fused = run_grouped_topk(tensor_lib, logits, bias, args)
    scores, scores_with_bias = moe_routing.fused_cast_sigmoid_bias(logits, bias)
    two_step = moe_routing.noaux_tc(scores, scores_with_bias, *args)
    two_step = [tensor_lib.from_device(t) for t in two_step]
    # Same sigmoid and bias add, so the same picks; the two renormalisation forms round
    # differently (up to 2 ulp), without renormalisation the values are identical.
    np.testing.assert_array_equal(fused[2], two_step[2])
    for a, b in zip(fused[:2], two_step[:2], strict=True):
        np.testing.assert_array_max_ulp(a, b, maxulp=2 if renormalize else 0)


def test_repeat_calls_are_bit_identical(tensor_lib: TensorLib) -> None:
    cfg = CONFIGS["deepseek_v3"]
    logits, _, bias, _ = router_inputs(tensor_lib, cfg, 4096, "bfloat16")
    first = run_grouped_topk(tensor_lib, logits, bias, cfg.args())
    second = run_grouped_topk(tensor_lib, logits, bias, cfg.args())
    for a, b in zip(first, second, strict=True):
        assert a.tobytes() == b.tobytes()
    s, u = moe_routing.fused_cast_sigmoid_bias(logits, bias)
    s_np = tensor_lib.from_device(s)
    runs = [moe_routing.noaux_tc(tensor_lib.to_device(s_np), u, *cfg.args()) for _ in range(2)]
    for a, b in zip(*runs, strict=True):
        assert tensor_lib.from_device(a).tobytes() == tensor_lib.from_device(b).tobytes()


@pytest.mark.parametrize("name", CONFIGS)
def test_bias_steers_every_pick_into_the_favoured_half(tensor_lib: TensorLib, name: str) -> None:
    cfg = CONFIGS[name]
    logits, logits32, _, _ = router_inputs(tensor_lib, cfg, 64, "float32")
    half = cfg.experts // 2
    bias_np = np.where(np.arange(cfg.experts) < half, -2.0, 2.0).astype(np.float32)
    got = run_grouped_topk(tensor_lib, logits, tensor_lib.to_device(bias_np), cfg.args())
    assert (got[2] >= half).all()
    _, u = ref.fused_cast_sigmoid_bias(logits32, bias_np)
    want = ref.grouped_topk(logits32, bias_np, *cfg.args())
    assert_matches(cfg, got, want, decision_gap(u, cfg) > TIE_GAP)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", CONFIGS)
def test_large_logits_stay_finite(tensor_lib: TensorLib, name: str, dtype: str) -> None:
    cfg = CONFIGS[name]
    logits, logits32, bias, bias_np = router_inputs(tensor_lib, cfg, 513, dtype, scale=50.0)
    got = run_grouped_topk(tensor_lib, logits, bias, cfg.args())
    for array in got[:2]:
        assert np.isfinite(array).all()
    _, u = ref.fused_cast_sigmoid_bias(logits32, bias_np)
    want = ref.grouped_topk(logits32, bias_np, *cfg.args())
    # Most sigmoids saturate to exactly 1, so u = 1 + bias has many close (but unambiguous:
    # computed identically on both sides) values; the gap criterion flags them anyway.
    assert_matches(cfg, got, want, decision_gap(u, cfg) > TIE_GAP, min_clear=0.5)


@pytest.mark.parametrize("rsf", [1.0, 2.5])
def test_topk_one_renormalised_gives_the_scaling_factor(tensor_lib: TensorLib, rsf: float) -> None:
    cfg = Routing(256, 8, 4, 1, True, rsf)
    logits, _, bias, _ = router_inputs(tensor_lib, cfg, 513, "float32")
    expected = np.full((513, 1), rsf, dtype=np.float32)
    values = run_grouped_topk(tensor_lib, logits, bias, cfg.args())[1]
    # w * (rsf / w) rounds twice: within 1 ulp of rsf.
    np.testing.assert_array_max_ulp(values, expected, maxulp=1)
    s, u = moe_routing.fused_cast_sigmoid_bias(logits, bias)
    # (w / w) * rsf is exact.
    values = tensor_lib.from_device(moe_routing.noaux_tc(s, u, *cfg.args())[1])
    np.testing.assert_array_equal(values, expected)


@pytest.mark.parametrize("name", CONFIGS)
def test_exact_ties_go_to_the_lowest_group_and_expert(tensor_lib: TensorLib, name: str) -> None:
    cfg = CONFIGS[name]
    zeros = np.zeros((7, cfg.experts), dtype=np.float32)  # every sigmoid is exactly 0.5
    got = run_grouped_topk(tensor_lib, tensor_lib.to_device(zeros),
                           tensor_lib.to_device(zeros[0]), cfg.args())
    want = ref.grouped_topk(zeros, zeros[0], *cfg.args())
    np.testing.assert_array_equal(got[2], np.tile(np.arange(cfg.topk), (7, 1)))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)  # all of it is exact in fp32


def fallback_bias(cfg: Routing) -> np.ndarray:
    """-inf except on the first topk_group - 1 groups: the topk_group-th group score is -inf."""
    bias = np.full(cfg.experts, -np.inf, dtype=np.float32)
    bias[: (cfg.topk_group - 1) * (cfg.experts // cfg.n_group)] = 0.0
    return bias


def finite_only_at(cfg: Routing, experts: list[int]) -> np.ndarray:
    bias = np.full(cfg.experts, -np.inf, dtype=np.float32)
    bias[experts] = 0.0
    return bias


FALLBACK_CASES = {f"{name}-kth_group_-inf": (cfg, fallback_bias(cfg))
                  for name, cfg in CONFIGS.items()}
# Selected groups are finite but hold fewer than K finite experts (project rule: fallback).
for name, finite in (("kimi_k2", [0, 1, 48, 49]), ("glm_4_5_air", [3, 10, 20])):
    FALLBACK_CASES[f"{name}-{len(finite)}_candidates"] = (
        CONFIGS[name], finite_only_at(CONFIGS[name], finite))


@pytest.mark.parametrize("case", FALLBACK_CASES)
def test_fallback_rows(tensor_lib: TensorLib, case: str) -> None:
    cfg, bias_np = FALLBACK_CASES[case]
    logits, logits32, _, _ = router_inputs(tensor_lib, cfg, 64, "float32", case)
    bias = tensor_lib.to_device(bias_np)
    expected_indices = np.tile(np.arange(cfg.topk), (64, 1))
    expected_values = np.full((64, cfg.topk), np.float32(1) / np.float32(cfg.topk))
    s, u = moe_routing.fused_cast_sigmoid_bias(logits, bias)
    for outputs in (moe_routing.grouped_topk(logits, bias, *cfg.args()),
                    moe_routing.noaux_tc(s, u, *cfg.args())):
        dense, values, indices = (tensor_lib.from_device(t) for t in outputs)
        np.testing.assert_array_equal(indices, expected_indices)
        np.testing.assert_array_equal(values, expected_values)  # 1/K, not scaled
        assert not dense.any(), "the fallback row's dense scores must be zero"
    want = ref.grouped_topk(logits32, bias_np, *cfg.args())
    np.testing.assert_array_equal(want[2], expected_indices)


def test_exactly_k_finite_candidates_is_not_a_fallback(tensor_lib: TensorLib) -> None:
    cfg = CONFIGS["kimi_k2"]
    finite = [0, 1, 2, 3, 48, 49, 50, 51]
    logits, _, _, _ = router_inputs(tensor_lib, cfg, 64, "float32")
    bias = tensor_lib.to_device(finite_only_at(cfg, finite))
    got = run_grouped_topk(tensor_lib, logits, bias, cfg.args())
    np.testing.assert_array_equal(np.sort(got[2], axis=1), np.tile(finite, (64, 1)))
    assert_valid(cfg, *got)


def test_outputs_can_be_given(tensor_lib: TensorLib) -> None:
    cfg = CONFIGS["deepseek_v3"]
    logits, _, bias, _ = router_inputs(tensor_lib, cfg, 64, "float32")
    out = (tensor_lib.empty((64, cfg.experts), "float32"),
           tensor_lib.empty((64, cfg.topk), "float32"),
           tensor_lib.empty((64, cfg.topk), "int64"))
    returned = moe_routing.grouped_topk(logits, bias, *cfg.args(), out=out)
    assert all(a is b for a, b in zip(returned, out, strict=True))
    for a, b in zip(returned, run_grouped_topk(tensor_lib, logits, bias, cfg.args()), strict=True):
        np.testing.assert_array_equal(tensor_lib.from_device(a), b)


# moe_topk_select: FastDeploy's test uses T 1500, E 128, K 8, rand logits, bias rand / 10.
SOFTMAX_TIE_GAP = 1e-7  # softmax values are ~1/E; kernel and numpy differ by a few ulp of them


def assert_topk_select(got: tuple, want: tuple, keys: np.ndarray, k: int) -> None:
    ids, weights = got
    want_ids, want_weights = want
    assert ids.dtype == np.int64 and weights.dtype == np.float32
    assert ids.shape == want_ids.shape and weights.shape == want_weights.shape
    top = -np.sort(-keys, axis=1)[:, : k + 1]
    clear = np.min(top[:, :-1] - top[:, 1:], axis=1) > SOFTMAX_TIE_GAP
    assert np.count_nonzero(~clear) <= max(1, len(clear) // 20), "too many near-ties"
    np.testing.assert_array_equal(ids[clear], want_ids[clear])  # in selection order
    np.testing.assert_allclose(weights[clear], want_weights[clear], rtol=1e-5, atol=1e-7)
    assert (np.diff(np.sort(ids, axis=1), axis=1) != 0).all()


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("norm", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize(
    ("shape", "k"),
    [((1500, 128), 8), ((3, 500, 128), 8), ((64, 256), 8), ((64, 160), 4), ((7, 8), 8),
     ((0, 128), 8)],
)
def test_moe_topk_select_matches_reference(tensor_lib: TensorLib, shape: tuple[int, ...], k: int,
                                           with_bias: bool, norm: bool, fused: bool) -> None:
    rng = rng_for("moe_topk_select", shape, k, with_bias)
    logits = rng.random(shape, dtype=np.float32)
    bias_np = (rng.random((1, shape[-1]), dtype=np.float32) / 10) if with_bias else None
    bias = tensor_lib.to_device(bias_np) if with_bias else None
    got = moe_routing.moe_topk_select(tensor_lib.to_device(logits), bias, k, norm, fused)
    got = tuple(tensor_lib.from_device(t) for t in got)
    want = ref.moe_topk_select(logits, bias_np, k, norm, fused)
    flat = logits.reshape(-1, shape[-1])
    p = np.exp(flat - flat.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert_topk_select(got, want, p if bias_np is None else p + bias_np, k)
    if norm and got[1].size:
        np.testing.assert_allclose(got[1].sum(axis=1), 1.0, rtol=1e-5)
