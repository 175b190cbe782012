"""MoE routing ops (family ``moe_routing``, SM70+): grouped top-k and softmax top-k selection.

All functions take tensors of any DLPack framework (torch, paddle, cupy, jax), allocate their
outputs with the caller's framework on the input's device, and run on the caller's current
stream. Arguments are validated before launch; a violation raises ``TypeError`` (dtype) or
``ValueError`` (shape, range, device, layout) naming the op and the argument. With ``T == 0``
rows the outputs are correctly shaped empty tensors and nothing is launched.

Deliberate differences from FastDeploy, common to the grouped ops (``grouped_topk``,
``noaux_tc``):

- The fallback row (fewer than ``topk_group`` groups with a finite score) zeroes the dense
  scores row in both ops (FastDeploy's ``noaux_tc`` leaves it untouched).
- A row with fewer than ``topk`` finite candidates in its selected groups also takes the
  fallback (FastDeploy pads with expert 0, duplicating indices).
- Every limit is checked: ``1 <= n_group <= 32``, ``E % n_group == 0``, ``E / n_group >= 2``,
  ``1 <= topk_group <= n_group``, ``1 <= topk <= min(32, topk_group * E / n_group)``, finite
  ``routed_scaling_factor`` (FastDeploy checks only the ``<= 32`` bounds, in ``grouped_topk``).
- ``T == 0`` is allowed.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

from ._tensors import Kernel, Tensor, framework_of, kernels_by_op, launch, shape_of

__all__ = ["fused_cast_sigmoid_bias", "grouped_topk", "moe_topk_select", "noaux_tc"]

FAMILY = "moe_routing"
CAST_TYPES = ("float32", "float16", "bfloat16")

# The family's torch operators (fastdeploy_ops._torch_library): each binding's arguments but
# the stream; (a!) marks a tensor the kernel writes.
TORCH_SCHEMAS = {
    Kernel(FAMILY, "grouped_topk"): (
        "(Tensor gating_output, Tensor e_score_correction_bias, Tensor(a!) scores, "
        "Tensor(b!) topk_values, Tensor(c!) topk_indices, int n_group, int topk_group, int topk, "
        "bool renormalize, float routed_scaling_factor) -> ()"
    ),
    Kernel(FAMILY, "noaux_tc"): (
        "(Tensor(a!) scores, Tensor scores_with_bias, Tensor(b!) topk_values, "
        "Tensor(c!) topk_indices, int n_group, int topk_group, int topk, bool renormalize, "
        "float routed_scaling_factor) -> ()"
    ),
    Kernel(FAMILY, "fused_cast_sigmoid_bias"): (
        "(Tensor input, Tensor bias, Tensor(a!) scores, Tensor(b!) scores_with_bias) -> ()"
    ),
    Kernel(FAMILY, "moe_topk_select"): (
        "(Tensor gating_logits, Tensor? bias, Tensor(a!) topk_ids, Tensor(b!) topk_weights, "
        "bool apply_norm_weight, bool enable_softmax_top_k_fused) -> ()"
    ),
}
_KERNELS = kernels_by_op(TORCH_SCHEMAS)


def _topk(op: str, arg: str, value: int, num_experts: int) -> int:
    """Check a top-k count before it becomes an output shape: an int in ``[1, num_experts]``."""
    try:
        k = operator.index(value)
    except TypeError:
        given = type(value).__name__
        raise TypeError(f"{op}: argument '{arg}' must be an int, got {given}") from None
    if not 1 <= k <= num_experts:
        raise ValueError(
            f"{op}: argument '{arg}' must be in [1, {num_experts}] (the number of experts), got {k}"
        )
    return k


def _unpack_out(op: str, out: Sequence[Tensor], names: Sequence[str]) -> tuple[Tensor, ...]:
    if len(out) != len(names):
        raise ValueError(
            f"{op}: argument 'out' must be a tuple ({', '.join(names)}), got {len(out)} tensors"
        )
    return tuple(out)


def grouped_topk(
    gating_output: Tensor,
    e_score_correction_bias: Tensor,
    n_group: int,
    topk_group: int,
    topk: int,
    renormalize: bool = True,
    routed_scaling_factor: float = 1.0,
    *,
    out: tuple[Tensor, Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """DeepSeek-V3 style grouped top-k routing from raw router logits, in one launch.

    Per row ``x`` of ``gating_output``: ``s = 1 / (1 + exp(-x))`` in fp32, ``u = s + bias``
    (used only to select). Experts form ``n_group`` contiguous groups; a group's score is the
    sum of its two largest ``u``. The ``topk_group`` best groups are kept (ties to the lower
    group), and among their experts with finite ``u`` the ``topk`` largest ``u`` are picked
    (ties to the lower index), in descending ``u`` order. The weights are ``w = s[idx]``, with
    ``renormalize``: ``w * (routed_scaling_factor / (sum(w) + 1e-20))``, else
    ``w * routed_scaling_factor``. If the ``topk_group``-th best group score is ``-inf`` (or
    fewer than ``topk`` candidates are finite), the row falls back to indices ``0..topk-1``
    with weights ``1/topk`` (unscaled) and a zero dense row.

    Args:
        gating_output: ``[T, E]`` float32, float16 or bfloat16 router logits.
        e_score_correction_bias: ``[E]`` or ``[1, E]`` float32.
        n_group: number of expert groups ``G`` (``E % G == 0``, ``2 <= E / G``, ``G <= 32``).
        topk_group: groups kept per row, ``1 <= topk_group <= G``.
        topk: experts picked per row ``K``, ``1 <= K <= min(32, topk_group * E / G)``.
        renormalize: normalise the picked weights to sum to ``routed_scaling_factor``.
        routed_scaling_factor: finite scale of the weights.
        out: optional ``(scores, topk_values, topk_indices)`` to write instead of allocating.

    Returns:
        ``scores`` ``[T, E]`` float32 (zero except ``scores[t, idx] = w``), ``topk_values``
        ``[T, K]`` float32 and ``topk_indices`` ``[T, K]`` int64.

    Differences from FastDeploy: those listed in the module docstring, plus ``out=``.
    """
    op = "grouped_topk"
    kernel = _KERNELS[op]
    framework = framework_of(op, "gating_output", gating_output)
    rows, experts = shape_of(op, "gating_output", gating_output, (2,))
    k = _topk(op, "topk", topk, experts)
    if out is None:
        out = framework.empties(gating_output, ((rows, experts), "float32"),
                                ((rows, k), "float32"), ((rows, k), "int64"))
    scores, values, indices = _unpack_out(op, out, ("scores", "topk_values", "topk_indices"))
    launch(framework, kernel, gating_output, e_score_correction_bias, scores, values, indices,
           n_group, topk_group, k, renormalize, routed_scaling_factor)
    return scores, values, indices


def noaux_tc(
    scores: Tensor,
    scores_with_bias: Tensor,
    n_group: int,
    topk_group: int,
    topk: int,
    renormalize: bool = True,
    routed_scaling_factor: float = 1.0,
    *,
    out: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Grouped top-k on precomputed sigmoid scores (step 2 of the two-step routing path).

    The selection of :func:`grouped_topk` applied to ``u = scores_with_bias`` with weights
    ``w = scores[idx]``; groups whose score is not finite are never selected. With
    ``renormalize`` the weights are ``(w / (sum(w) + 1e-20)) * routed_scaling_factor`` (at most
    1 ulp from :func:`grouped_topk`'s form). ``scores`` is overwritten in place with the dense
    row (zero except the picks; zero entirely on fallback rows).

    Args:
        scores: ``[T, E]`` float32, contiguous, on the GPU: ``sigmoid(logits)``; written in place.
        scores_with_bias: ``[T, E]`` float32: ``scores + bias``.
        n_group, topk_group, topk, renormalize, routed_scaling_factor: as in :func:`grouped_topk`.
        out: optional ``(topk_values, topk_indices)`` to write instead of allocating.

    Returns:
        ``scores`` (the same tensor, now the dense row), ``topk_values`` ``[T, K]`` float32 and
        ``topk_indices`` ``[T, K]`` int64.

    Differences from FastDeploy: those listed in the module docstring; the in-place ``scores``
    is never converted (a wrong dtype is an error, not a silent copy); ``out=``.
    """
    op = "noaux_tc"
    kernel = _KERNELS[op]
    framework = framework_of(op, "scores", scores)
    rows, experts = shape_of(op, "scores", scores, (2,))
    k = _topk(op, "topk", topk, experts)
    if out is None:
        out = framework.empties(scores, ((rows, k), "float32"), ((rows, k), "int64"))
    values, indices = _unpack_out(op, out, ("topk_values", "topk_indices"))
    launch(framework, kernel, scores, scores_with_bias, values, indices,
           n_group, topk_group, k, renormalize, routed_scaling_factor)
    return scores, values, indices


def fused_cast_sigmoid_bias(
    input: Tensor,
    bias: Tensor,
    cast_type: str = "float32",
    *,
    out: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Both inputs of :func:`noaux_tc` in one pass.

    With ``s = 1 / (1 + exp(-float32(x)))``: ``scores = s`` and ``scores_with_bias = s + bias``
    (fp32 add), each rounded once to ``cast_type``. The sigmoid is the same as in
    :func:`grouped_topk`, so the fused and two-step paths select identically.

    Args:
        input: ``[T, E]`` float32, float16 or bfloat16 logits.
        bias: ``[E]`` or ``[1, E]`` float32.
        cast_type: output dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"``.
        out: optional ``(scores, scores_with_bias)``, both ``[T, E]`` of one of those dtypes.

    Returns:
        ``scores`` and ``scores_with_bias``, ``[T, E]`` of dtype ``cast_type``.

    Differences from FastDeploy: ``out=``; ``T == 0`` is allowed.
    """
    op = "fused_cast_sigmoid_bias"
    kernel = _KERNELS[op]
    framework = framework_of(op, "input", input)
    shape = shape_of(op, "input", input, (2,))
    if cast_type not in CAST_TYPES:
        raise ValueError(
            f"{op}: argument 'cast_type' must be one of {CAST_TYPES}, got {cast_type!r}"
        )
    if out is None and cast_type == "bfloat16" and not framework.bfloat16:
        raise TypeError(
            f"{op}: argument 'cast_type' is bfloat16, which {framework.name} arrays cannot hold"
        )
    if out is None:
        out = framework.empties(input, (shape, cast_type), (shape, cast_type))
    scores, scores_with_bias = _unpack_out(op, out, ("scores", "scores_with_bias"))
    launch(framework, kernel, input, bias, scores, scores_with_bias)
    return scores, scores_with_bias


def moe_topk_select(
    gating_logits: Tensor,
    bias: Tensor | None,
    moe_topk: int,
    apply_norm_weight: bool = False,
    enable_softmax_top_k_fused: bool = False,
    *,
    out: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Softmax top-k routing (Qwen / Mixtral style) with an optional selection bias.

    Per row: ``p = softmax(x)`` in fp32; the ids are the ``moe_topk`` largest ``p`` (or
    ``p + bias`` when a bias is given), ties to the lower index, in selection order; the
    weights are the unbiased ``p[id]``, divided by their sum (no epsilon) when
    ``apply_norm_weight``. ``enable_softmax_top_k_fused`` selects the fused kernel
    (``E <= 256``), whose biased weights are ``(p + bias) - bias`` (last-ulp differences).

    Args:
        gating_logits: ``[T, E]`` or ``[B, S, E]`` float32.
        bias: ``[E]`` or ``[1, E]`` float32, or ``None``.
        moe_topk: experts per row ``K``, ``1 <= K <= min(E, 32)``.
        apply_norm_weight: normalise the weights of each row to sum to 1.
        enable_softmax_top_k_fused: use the fused kernel (requires ``E <= 256``).
        out: optional ``(topk_ids, topk_weights)`` to write instead of allocating.

    Returns:
        ``topk_ids`` ``[rows, K]`` int64 and ``topk_weights`` ``[rows, K]`` float32, where
        ``rows`` is the product of the leading dimensions of ``gating_logits``.

    Differences from FastDeploy: ``out=``; ``T == 0`` is allowed.
    """
    op = "moe_topk_select"
    kernel = _KERNELS[op]
    framework = framework_of(op, "gating_logits", gating_logits)
    *leading, experts = shape_of(op, "gating_logits", gating_logits, (2, 3))
    rows = math.prod(leading)
    k = _topk(op, "moe_topk", moe_topk, experts)
    if out is None:
        out = framework.empties(gating_logits, ((rows, k), "int64"), ((rows, k), "float32"))
    topk_ids, topk_weights = _unpack_out(op, out, ("topk_ids", "topk_weights"))
    launch(framework, kernel, gating_logits, bias, topk_ids, topk_weights,
           apply_norm_weight, enable_softmax_top_k_fused)
    return topk_ids, topk_weights
