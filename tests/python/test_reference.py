"""The numpy references against small cases whose answers are worked out by hand here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastdeploy_ops import reference as ref

NEG_INF = -np.inf


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# E = 8 experts in n_group = 2 groups of M = 4: group 0 = experts 0-3, group 1 = experts 4-7.
# Group scores (sum of the two largest sigmoids): group 0 sig(2.0) + sig(0.5) = 0.8808 + 0.6225
# = 1.5033; group 1 sig(1.5) + sig(1.4) = 0.8176 + 0.8022 = 1.6198. So with topk_group = 1 the
# picks come from group 1 (experts 4, 5) although expert 1 has the largest logit overall.
LOGITS = np.array([[0.1, 2.0, -1.0, 0.5, 1.5, 1.4, -3.0, 0.0]], dtype=np.float32)
ZERO_BIAS = np.zeros(8, dtype=np.float32)


def test_grouped_topk_selects_the_best_group_not_the_best_expert() -> None:
    dense, values, indices = ref.grouped_topk(LOGITS, ZERO_BIAS, 2, 1, 2, renormalize=False)
    assert indices.tolist() == [[4, 5]]
    assert indices.dtype == np.int64
    np.testing.assert_allclose(values, [[sig(1.5), sig(1.4)]], rtol=1e-6)
    expected_dense = np.zeros((1, 8))
    expected_dense[0, 4], expected_dense[0, 5] = sig(1.5), sig(1.4)
    np.testing.assert_allclose(dense, expected_dense, rtol=1e-6)


def test_grouped_topk_both_groups_gives_global_top_k() -> None:
    _, values, indices = ref.grouped_topk(LOGITS, ZERO_BIAS, 2, 2, 3, renormalize=False)
    assert indices.tolist() == [[1, 4, 5]]
    np.testing.assert_allclose(values, [[sig(2.0), sig(1.5), sig(1.4)]], rtol=1e-6)


def test_grouped_topk_renormalises_with_the_scaling_factor() -> None:
    _, values, _ = ref.grouped_topk(LOGITS, ZERO_BIAS, 2, 1, 2, True, 2.5)
    total = sig(1.5) + sig(1.4)
    expected = [[2.5 * sig(1.5) / total, 2.5 * sig(1.4) / total]]
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    assert values.sum() == pytest.approx(2.5, rel=1e-6)


def test_bias_selects_but_weights_stay_unbiased() -> None:
    # Bias -1 on group 1: its biased group score drops to 1.6198 - 2 < 1.5033, so group 0 wins
    # and its best experts are 1 (logit 2.0) and 3 (logit 0.5); weights are the plain sigmoids.
    bias = np.array([0, 0, 0, 0, -1, -1, -1, -1], dtype=np.float32)
    _, values, indices = ref.grouped_topk(LOGITS, bias, 2, 1, 2, renormalize=False)
    assert indices.tolist() == [[1, 3]]
    np.testing.assert_allclose(values, [[sig(2.0), sig(0.5)]], rtol=1e-6)


def test_group_score_counts_a_repeated_maximum_twice() -> None:
    # Group 0 = [3, 3, -5, -5]: 2 * sig(3) = 1.9051. Group 1 = [3.5, 1, -5, -5]:
    # sig(3.5) + sig(1) = 0.9707 + 0.7311 = 1.7018. Counting the repeated max twice, group 0
    # wins; a rule taking the second *distinct* value would give group 0 only 0.959.
    logits = np.array([[3, 3, -5, -5, 3.5, 1, -5, -5]], dtype=np.float32)
    _, values, indices = ref.grouped_topk(logits, ZERO_BIAS, 2, 1, 2, renormalize=False)
    assert indices.tolist() == [[0, 1]]
    np.testing.assert_allclose(values, [[sig(3), sig(3)]], rtol=1e-6)


def test_ties_go_to_the_lowest_group_and_index() -> None:
    logits = np.zeros((1, 8), dtype=np.float32)  # every sigmoid is exactly 0.5
    dense, values, indices = ref.grouped_topk(logits, ZERO_BIAS, 2, 1, 3, True, 1.0)
    assert indices.tolist() == [[0, 1, 2]]
    np.testing.assert_array_equal(values, np.full((1, 3), np.float32(0.5) / np.float32(1.5)))
    assert np.count_nonzero(dense) == 3
    # A tie inside the picks: experts 0 and 2 are equal, expert 0 comes first.
    logits = np.array([[1, 0, 1, 0, -2, -2, -2, -2]], dtype=np.float32)
    _, _, indices = ref.grouped_topk(logits, ZERO_BIAS, 2, 2, 3, renormalize=False)
    assert indices.tolist() == [[0, 2, 1]]


@pytest.mark.parametrize("op", ["grouped_topk", "noaux_tc"])
def test_fallback_when_the_kth_group_score_is_minus_inf(op: str) -> None:
    # topk_group = 2 but group 1 is all -inf: the second-best group score is -inf.
    bias = np.array([0, 0, 0, 0] + [NEG_INF] * 4, dtype=np.float32)
    if op == "grouped_topk":
        dense, values, indices = ref.grouped_topk(LOGITS, bias, 2, 2, 3, True, 2.5)
    else:
        s = ref.sigmoid(LOGITS)
        dense, values, indices = ref.noaux_tc(s, s + bias, 2, 2, 3, True, 2.5)
    assert indices.tolist() == [[0, 1, 2]]
    np.testing.assert_array_equal(values, np.full((1, 3), np.float32(1) / np.float32(3)))
    np.testing.assert_array_equal(dense, np.zeros((1, 8), dtype=np.float32))


def test_no_fallback_when_enough_groups_are_finite() -> None:
    # Same bias with topk_group = 1: group 0 is finite and is picked normally.
    bias = np.array([0, 0, 0, 0] + [NEG_INF] * 4, dtype=np.float32)
    _, _, indices = ref.grouped_topk(LOGITS, bias, 2, 1, 2, renormalize=False)
    assert indices.tolist() == [[1, 3]]


def test_fallback_when_fewer_than_k_candidates_are_finite() -> None:
    # One group; only experts 5 and 6 are finite, so the group score is finite but there are
    # 2 < K = 4 candidates: project rule, the row falls back.
    bias = np.full(8, NEG_INF, dtype=np.float32)
    bias[[5, 6]] = 0.0
    dense, values, indices = ref.grouped_topk(LOGITS, bias, 1, 1, 4, True, 1.0)
    assert indices.tolist() == [[0, 1, 2, 3]]
    np.testing.assert_array_equal(values, np.full((1, 4), 0.25, dtype=np.float32))
    assert not dense.any()
    # With K = 2 the same row is a normal pick of the two finite experts.
    _, _, indices = ref.grouped_topk(LOGITS, bias, 1, 1, 2, renormalize=False)
    assert indices.tolist() == [[5, 6]]


# noaux_tc on dyadic scores, so every sum below is exact in float32.
S = np.array([[0.125, 0.875, 0.25, 0.625, 0.75, 0.75, 0.375, 0.0625]], dtype=np.float32)


def test_noaux_tc_group_tie_goes_to_group_zero() -> None:
    # Group scores: 0.875 + 0.625 = 1.5 and 0.75 + 0.75 = 1.5, a tie: group 0.
    dense, values, indices = ref.noaux_tc(S, S, 2, 1, 2, True, 2.5)
    assert indices.tolist() == [[1, 3]]
    np.testing.assert_allclose(values, [[0.875 / 1.5 * 2.5, 0.625 / 1.5 * 2.5]], rtol=1e-6)
    assert np.flatnonzero(dense).tolist() == [1, 3]
    np.testing.assert_array_equal(dense[0, [1, 3]], values[0])


def test_noaux_tc_selects_on_biased_scores_and_weighs_unbiased() -> None:
    # +0.125 on group 1 makes its score 1.75 > 1.5; its two 0.75 tie (4 before 5) and the
    # normalised weights are exactly 0.75 / 1.5 = 0.5, times rsf.
    bias = np.array([0, 0, 0, 0, 0.125, 0.125, 0.125, 0.125], dtype=np.float32)
    _, values, indices = ref.noaux_tc(S, S + bias, 2, 1, 2, True, 2.5)
    assert indices.tolist() == [[4, 5]]
    np.testing.assert_array_equal(values, [[1.25, 1.25]])
    _, values, _ = ref.noaux_tc(S, S + bias, 2, 1, 2, False, 2.0)
    np.testing.assert_array_equal(values, [[1.5, 1.5]])


def test_noaux_tc_output_is_in_descending_biased_order() -> None:
    _, _, indices = ref.noaux_tc(S, S, 1, 1, 4, renormalize=False)
    assert indices.tolist() == [[1, 4, 5, 3]]


def test_renormalisation_forms_follow_their_formulas() -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((64, 16)).astype(np.float32)
    bias = np.zeros(16, dtype=np.float32)
    s, u = ref.fused_cast_sigmoid_bias(logits, bias)
    _, g_values, g_idx = ref.grouped_topk(logits, bias, 4, 2, 3, True, 2.5)
    _, n_values, n_idx = ref.noaux_tc(s, u, 4, 2, 3, True, 2.5)
    np.testing.assert_array_equal(g_idx, n_idx)
    w = np.take_along_axis(s, g_idx, axis=1)
    total = w.sum(axis=1, keepdims=True, dtype=np.float32) + np.float32(1e-20)
    np.testing.assert_array_equal(g_values, w * (np.float32(2.5) / total))
    np.testing.assert_array_equal(n_values, (w / total) * np.float32(2.5))
    # Each form rounds twice, so they can differ by 2 ulp (rule 6 of ops/moe_routing/README.md;
    # this seeded case shows more than 1 ulp); the GPU suite allows the same 2 ulp between paths.
    np.testing.assert_array_max_ulp(g_values, n_values, maxulp=2)
    assert not np.array_equal(g_values, n_values)


def test_sigmoid_saturates_without_nan() -> None:
    out = ref.sigmoid(np.array([-1000, -100, 0, 100, 1000], dtype=np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [0, 0, 0.5, 1, 1])


def test_fused_cast_sigmoid_bias_adds_bias_per_expert() -> None:
    x = np.array([[0.0, 1.0], [-1.0, 2.0]], dtype=np.float32)
    s, u = ref.fused_cast_sigmoid_bias(x, np.array([[0.5, -0.25]], dtype=np.float32))
    np.testing.assert_allclose(s, [[0.5, sig(1)], [sig(-1), sig(2)]], rtol=1e-6)
    np.testing.assert_allclose(u, [[1.0, sig(1) - 0.25], [sig(-1) + 0.5, sig(2) - 0.25]], rtol=1e-6)


# softmax of log([1, 2, 3, 4]) is exactly [0.1, 0.2, 0.3, 0.4].
SOFTMAX_LOGITS = np.log(np.array([[1, 2, 3, 4]], dtype=np.float32))


def test_moe_topk_select_without_bias() -> None:
    ids, weights = ref.moe_topk_select(SOFTMAX_LOGITS, None, 2)
    assert ids.tolist() == [[3, 2]]
    np.testing.assert_allclose(weights, [[0.4, 0.3]], rtol=1e-6)
    _, weights = ref.moe_topk_select(SOFTMAX_LOGITS, None, 2, apply_norm_weight=True)
    np.testing.assert_allclose(weights, [[4 / 7, 3 / 7]], rtol=1e-6)


@pytest.mark.parametrize("fused", [False, True])
def test_moe_topk_select_bias_selects_weights_unbiased(fused: bool) -> None:
    # keys = p + bias = [0.45, 0.2, 0.3, 0.4]: experts 0 then 3, weighted 0.1 and 0.4.
    bias = np.array([[0.35, 0, 0, 0]], dtype=np.float32)
    ids, weights = ref.moe_topk_select(SOFTMAX_LOGITS, bias, 2, False, fused)
    assert ids.tolist() == [[0, 3]]
    np.testing.assert_allclose(weights, [[0.1, 0.4]], rtol=1e-6)
    _, weights = ref.moe_topk_select(SOFTMAX_LOGITS, bias, 2, True, fused)
    np.testing.assert_allclose(weights, [[0.2, 0.8]], rtol=1e-6)


def test_moe_topk_select_ties_and_three_dims() -> None:
    logits = np.zeros((2, 3, 4), dtype=np.float32)
    logits[1, 2] = SOFTMAX_LOGITS[0]
    ids, weights = ref.moe_topk_select(logits, None, 2)
    assert ids.shape == (6, 2)
    assert ids[:5].tolist() == [[0, 1]] * 5
    assert ids[5].tolist() == [3, 2]
    np.testing.assert_allclose(weights[0], [0.25, 0.25], rtol=1e-6)


@pytest.mark.parametrize("x", [-6.0, -3.0, -1.0, -0.5, 0.0, 0.25, 1.0, 2.0, 5.0])
def test_gelu_tanh_matches_the_formula(x: float) -> None:
    expected = 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    out = ref.gelu_tanh(np.array([x], dtype=np.float32))
    assert out.dtype == np.float32
    assert out[0] == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_gelu_tanh_known_values() -> None:
    out = ref.gelu_tanh(np.array([[0.0, 10.0], [-10.0, 1.0]], dtype=np.float32))
    assert out.shape == (2, 2)
    assert out[0, 0] == 0.0 and out[0, 1] == 10.0 and out[1, 0] == 0.0
    assert out[1, 1] == pytest.approx(0.841192, abs=1e-6)
