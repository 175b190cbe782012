"""References for the ``moe_routing`` family (semantics: ``ops/moe_routing/README.md``; "rule N"
below is rule N of its grouped selection rules).

Each function takes 2-D ``[T, E]`` float32 arrays (``moe_topk_select`` also ``[B, S, E]``) and
returns new arrays; nothing is modified in place.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["fused_cast_sigmoid_bias", "grouped_topk", "moe_topk_select", "noaux_tc", "sigmoid"]

F32 = NDArray[np.float32]
I64 = NDArray[np.int64]
_EPS = np.float32(1e-20)


def _f32(x: ArrayLike) -> F32:
    return np.asarray(x, dtype=np.float32)


def _desc_order(keys: F32, axis: int = -1) -> NDArray[np.intp]:
    """Indices sorting ``keys`` descending with ties to the lower index (stable)."""
    return np.argsort(-keys, axis=axis, kind="stable")


def sigmoid(x: ArrayLike) -> F32:
    """Rule 1: ``1 / (1 + exp(-x))`` in float32; exactly 0 or 1 for large ``|x|``, never NaN."""
    x = _f32(x)
    with np.errstate(over="ignore"):
        return np.float32(1.0) / (np.float32(1.0) + np.exp(-x))


def _grouped_select(
    s: F32,
    u: F32,
    n_group: int,
    topk_group: int,
    topk: int,
    renormalize: bool,
    routed_scaling_factor: float,
    form: Literal["grouped_topk", "noaux_tc"],
) -> tuple[F32, F32, I64]:
    """Rules 3-8 on weights ``s`` and selection keys ``u`` (both ``[T, E]``)."""
    rows, experts = u.shape
    if experts % n_group or experts // n_group < 2:
        raise ValueError(f"E={experts} must be a multiple of n_group={n_group} with E/n_group >= 2")
    if not (1 <= topk_group <= n_group and 1 <= topk <= topk_group * (experts // n_group)):
        raise ValueError(f"invalid topk_group={topk_group} / topk={topk} for n_group={n_group}")
    rsf = np.float32(routed_scaling_factor)
    grouped = u.reshape(rows, n_group, experts // n_group)
    top2 = -np.sort(-grouped, axis=2)[:, :, :2]
    with np.errstate(invalid="ignore"):  # inf + -inf within a group
        group_scores = top2[:, :, 0] + top2[:, :, 1]  # rule 3
    if form == "noaux_tc":  # noaux_tc never selects a group whose score is not finite
        group_scores = np.where(np.isfinite(group_scores), group_scores, -np.inf).astype(np.float32)
    group_rank = _desc_order(group_scores)[:, :topk_group]  # rule 4
    kth_group = np.take_along_axis(group_scores, group_rank[:, -1:], axis=1)[:, 0]

    in_selected = np.zeros((rows, n_group), dtype=bool)
    np.put_along_axis(in_selected, group_rank, True, axis=1)
    candidate = np.repeat(in_selected, experts // n_group, axis=1) & np.isfinite(u)  # rule 5
    keys = np.where(candidate, u, np.float32(-np.inf))
    indices = _desc_order(keys)[:, :topk].astype(np.int64)

    weights = np.take_along_axis(s, indices, axis=1)  # rule 6
    total = weights.sum(axis=1, dtype=np.float32, keepdims=True)
    if not renormalize:
        values = weights * rsf
    elif form == "grouped_topk":
        values = weights * (rsf / (total + _EPS))
    else:
        values = (weights / (total + _EPS)) * rsf

    # Rule 8: too few finite groups or candidates -> fixed fallback row.
    fallback = (kth_group == -np.inf) | (candidate.sum(axis=1) < topk)
    values[fallback] = np.float32(1.0) / np.float32(topk)
    indices[fallback] = np.arange(topk, dtype=np.int64)

    dense = np.zeros((rows, experts), dtype=np.float32)  # rule 7
    np.put_along_axis(dense, indices, values, axis=1)
    dense[fallback] = 0.0
    return dense, values.astype(np.float32), indices


def grouped_topk(
    gating_output: ArrayLike,
    e_score_correction_bias: ArrayLike,
    n_group: int,
    topk_group: int,
    topk: int,
    renormalize: bool = True,
    routed_scaling_factor: float = 1.0,
) -> tuple[F32, F32, I64]:
    """Reference ``grouped_topk``: logits ``[T, E]`` and bias ``[E]`` or ``[1, E]``.

    Returns the dense scores ``[T, E]``, ``topk_values [T, K]`` and ``topk_indices [T, K]``
    (int64), with the renormalisation ``w * (rsf / (sum(w) + 1e-20))``.
    """
    s = sigmoid(gating_output)
    u = s + _f32(e_score_correction_bias).reshape(-1)
    return _grouped_select(s, u, n_group, topk_group, topk, renormalize,
                           routed_scaling_factor, "grouped_topk")


def noaux_tc(
    scores: ArrayLike,
    scores_with_bias: ArrayLike,
    n_group: int,
    topk_group: int,
    topk: int,
    renormalize: bool = True,
    routed_scaling_factor: float = 1.0,
) -> tuple[F32, F32, I64]:
    """Reference ``noaux_tc``: sigmoid scores and biased scores, both ``[T, E]``.

    Returns the dense row that the op writes into ``scores``, ``topk_values`` and
    ``topk_indices``, with the renormalisation ``(w / (sum(w) + 1e-20)) * rsf``.
    """
    return _grouped_select(_f32(scores), _f32(scores_with_bias), n_group, topk_group, topk,
                           renormalize, routed_scaling_factor, "noaux_tc")


def fused_cast_sigmoid_bias(input: ArrayLike, bias: ArrayLike) -> tuple[F32, F32]:
    """Reference ``fused_cast_sigmoid_bias`` before the cast: float32 ``(s, s + bias)``.

    Rounding to the op's ``cast_type`` is left to the caller (one rounding of these values).
    """
    s = sigmoid(input)
    return s, s + _f32(bias).reshape(-1)


def moe_topk_select(
    gating_logits: ArrayLike,
    bias: ArrayLike | None,
    moe_topk: int,
    apply_norm_weight: bool = False,
    enable_softmax_top_k_fused: bool = False,
) -> tuple[I64, F32]:
    """Reference ``moe_topk_select``: logits ``[T, E]`` or ``[B, S, E]``.

    ``p = softmax(x)`` (max-subtracted, times the reciprocal of the sum); ids are the top-K of
    ``p`` (or ``p + bias``), weights the unbiased ``p[id]``; the fused path with a bias returns
    ``(p + bias) - bias``. Returns ``topk_ids [rows, K]`` int64 and ``topk_weights [rows, K]``.
    """
    x = _f32(gating_logits)
    x = x.reshape(-1, x.shape[-1])
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = e * (np.float32(1.0) / e.sum(axis=1, dtype=np.float32, keepdims=True))
    keys = p if bias is None else p + _f32(bias).reshape(-1)
    ids = _desc_order(keys)[:, :moe_topk].astype(np.int64)
    if bias is not None and enable_softmax_top_k_fused:
        weights = np.take_along_axis(keys, ids, axis=1) - _f32(bias).reshape(-1)[ids]
    else:
        weights = np.take_along_axis(p, ids, axis=1)
    if apply_norm_weight:
        weights = weights / weights.sum(axis=1, dtype=np.float32, keepdims=True)
    return ids, weights.astype(np.float32)
