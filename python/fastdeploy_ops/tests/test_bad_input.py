"""Bad arguments on the GPU: each raises before any launch, naming the op and the argument.

Convention of the bindings: a wrong dtype raises ``TypeError``, including an allowed dtype that
does not match another argument's (``out`` of ``gelu_tanh``, the second output of
``fused_cast_sigmoid_bias``); a wrong shape, range, layout or device raises ``ValueError``.
Output and in-place tensors are checked as strictly as inputs: a tensor the kernel writes is
never converted behind the caller's back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import activation, moe_routing
from fastdeploy_ops.testing import TensorLib, requires_op

T, E, K = 4, 64, 8  # E = 64 in 8 groups of 8


@dataclass(frozen=True)
class Case:
    error: type[Exception]
    op: str
    arg: str
    call: Callable[[TensorLib], Any]
    detail: str = ""  # something else the message must say


def dev(lib: TensorLib, shape: tuple[int, ...], dtype: str = "float32") -> Any:
    return lib.to_device(np.random.default_rng(0).random(shape).astype(np.float32), dtype)


def cpu(shape: tuple[int, ...], dtype: str = "float32") -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def transposed(lib: TensorLib, shape: tuple[int, int], dtype: str = "float32") -> Any:
    """A non-contiguous view of the given shape."""
    return dev(lib, shape[::-1], dtype).T


def grouped_topk(lib: TensorLib, *, logits: Any = None, bias: Any = None, experts: int = E,
                 n_group: int = 8, topk_group: int = 4, topk: int = K, rsf: float = 1.0,
                 out: Any = None) -> Any:
    logits = dev(lib, (T, experts)) if logits is None else logits
    bias = dev(lib, (experts,)) if bias is None else bias
    return moe_routing.grouped_topk(logits, bias, n_group, topk_group, topk, True, rsf, out=out)


def grouped_out(lib: TensorLib, **change: Any) -> tuple[Any, Any, Any]:
    """Valid outputs for grouped_topk, except those given by name."""
    out = {"scores": dev(lib, (T, E)), "values": dev(lib, (T, K)),
           "indices": dev(lib, (T, K), "int64"), **change}
    return out["scores"], out["values"], out["indices"]


def noaux_tc(lib: TensorLib, *, scores: Any = None, swb: Any = None, experts: int = E,
             n_group: int = 8, topk_group: int = 4, topk: int = K, out: Any = None) -> Any:
    scores = dev(lib, (T, experts)) if scores is None else scores
    swb = dev(lib, (T, experts)) if swb is None else swb
    return moe_routing.noaux_tc(scores, swb, n_group, topk_group, topk, True, 1.0, out=out)


def fused(lib: TensorLib, *, x: Any = None, bias: Any = None, cast_type: str = "float32",
          out: Any = None) -> Any:
    x = dev(lib, (T, E)) if x is None else x
    bias = dev(lib, (E,)) if bias is None else bias
    return moe_routing.fused_cast_sigmoid_bias(x, bias, cast_type, out=out)


def topk_select(lib: TensorLib, *, logits: Any = None, bias: Any = ..., k: int = K,
                is_fused: bool = False, out: Any = None) -> Any:
    """moe_topk_select with valid arguments except those given (``bias=None``: no bias)."""
    logits = dev(lib, (T, E)) if logits is None else logits
    bias = dev(lib, (1, E)) if bias is ... else bias
    return moe_routing.moe_topk_select(logits, bias, k, True, is_fused, out=out)


ROUTING_CASES = {
    # grouped_topk: inputs
    "gt-logits-fp64": Case(TypeError, "grouped_topk", "gating_output",
        lambda l: grouped_topk(l, logits=dev(l, (T, E), "float64"))),
    "gt-logits-int32": Case(TypeError, "grouped_topk", "gating_output",
        lambda l: grouped_topk(l, logits=dev(l, (T, E), "int32"))),
    "gt-logits-3d": Case(ValueError, "grouped_topk", "gating_output",
        lambda l: grouped_topk(l, logits=dev(l, (2, T, E)))),
    "gt-logits-1d": Case(ValueError, "grouped_topk", "gating_output",
        lambda l: grouped_topk(l, logits=dev(l, (E,)))),
    "gt-logits-noncontiguous": Case(ValueError, "grouped_topk", "gating_output",
        lambda l: grouped_topk(l, logits=transposed(l, (T, E)))),
    "gt-logits-cpu": Case(ValueError, "grouped_topk", "gating_output",
        lambda l: grouped_topk(l, logits=cpu((T, E)))),
    "gt-bias-fp16": Case(TypeError, "grouped_topk", "e_score_correction_bias",
        lambda l: grouped_topk(l, bias=dev(l, (E,), "float16"))),
    "gt-bias-short": Case(ValueError, "grouped_topk", "e_score_correction_bias",
        lambda l: grouped_topk(l, bias=dev(l, (E - 1,)))),
    "gt-bias-2xE": Case(ValueError, "grouped_topk", "e_score_correction_bias",
        lambda l: grouped_topk(l, bias=dev(l, (2, E)))),
    "gt-bias-cpu": Case(ValueError, "grouped_topk", "e_score_correction_bias",
        lambda l: grouped_topk(l, bias=cpu((E,)))),
    # grouped_topk: attributes
    "gt-E-not-divisible": Case(ValueError, "grouped_topk", "n_group",
        lambda l: grouped_topk(l, n_group=3, topk_group=1)),
    "gt-n_group-0": Case(ValueError, "grouped_topk", "n_group",
        lambda l: grouped_topk(l, n_group=0, topk_group=1)),
    "gt-n_group-over-32": Case(ValueError, "grouped_topk", "n_group",
        lambda l: grouped_topk(l, experts=128, n_group=64, topk_group=4)),
    "gt-one-expert-per-group": Case(ValueError, "grouped_topk", "n_group",
        lambda l: grouped_topk(l, experts=32, n_group=32, topk_group=8)),
    "gt-topk_group-over-n_group": Case(ValueError, "grouped_topk", "topk_group",
        lambda l: grouped_topk(l, topk_group=9)),
    "gt-topk_group-0": Case(ValueError, "grouped_topk", "topk_group",
        lambda l: grouped_topk(l, topk_group=0)),
    "gt-topk-over-E": Case(ValueError, "grouped_topk", "topk",
        lambda l: grouped_topk(l, topk=E + 1)),
    "gt-topk-0": Case(ValueError, "grouped_topk", "topk",
        lambda l: grouped_topk(l, topk=0)),
    "gt-topk-over-32": Case(ValueError, "grouped_topk", "topk",
        lambda l: grouped_topk(l, experts=128, n_group=1, topk_group=1, topk=33)),
    "gt-topk-over-candidates": Case(ValueError, "grouped_topk", "topk",
        lambda l: grouped_topk(l, topk_group=1, topk=9)),
    "gt-rsf-nan": Case(ValueError, "grouped_topk", "routed_scaling_factor",
        lambda l: grouped_topk(l, rsf=float("nan"))),
    "gt-rsf-inf": Case(ValueError, "grouped_topk", "routed_scaling_factor",
        lambda l: grouped_topk(l, rsf=float("inf"))),
    # grouped_topk: outputs
    "gt-out-scores-fp16": Case(TypeError, "grouped_topk", "scores",
        lambda l: grouped_topk(l, out=grouped_out(l, scores=dev(l, (T, E), "float16")))),
    "gt-out-scores-cpu": Case(ValueError, "grouped_topk", "scores",
        lambda l: grouped_topk(l, out=grouped_out(l, scores=cpu((T, E))))),
    "gt-out-values-fp64": Case(TypeError, "grouped_topk", "topk_values",
        lambda l: grouped_topk(l, out=grouped_out(l, values=dev(l, (T, K), "float64")))),
    "gt-out-values-shape": Case(ValueError, "grouped_topk", "topk_values",
        lambda l: grouped_topk(l, out=grouped_out(l, values=dev(l, (T, K + 1))))),
    "gt-out-indices-int32": Case(TypeError, "grouped_topk", "topk_indices",
        lambda l: grouped_topk(l, out=grouped_out(l, indices=dev(l, (T, K), "int32")))),
    "gt-out-indices-noncontiguous": Case(ValueError, "grouped_topk", "topk_indices",
        lambda l: grouped_topk(l, out=grouped_out(l, indices=transposed(l, (T, K), "int64")))),
    "gt-out-two-tensors": Case(ValueError, "grouped_topk", "out",
        lambda l: grouped_topk(l, out=grouped_out(l)[:2])),
    # noaux_tc
    "nt-scores-fp64": Case(TypeError, "noaux_tc", "scores",
        lambda l: noaux_tc(l, scores=dev(l, (T, E), "float64"))),
    "nt-scores-fp16": Case(TypeError, "noaux_tc", "scores",
        lambda l: noaux_tc(l, scores=dev(l, (T, E), "float16"))),
    "nt-scores-1d": Case(ValueError, "noaux_tc", "scores",
        lambda l: noaux_tc(l, scores=dev(l, (E,)))),
    "nt-scores-noncontiguous": Case(ValueError, "noaux_tc", "scores",
        lambda l: noaux_tc(l, scores=transposed(l, (T, E)))),
    "nt-swb-fp16": Case(TypeError, "noaux_tc", "scores_with_bias",
        lambda l: noaux_tc(l, swb=dev(l, (T, E), "float16"))),
    "nt-swb-shape": Case(ValueError, "noaux_tc", "scores_with_bias",
        lambda l: noaux_tc(l, swb=dev(l, (T, E // 2)))),
    "nt-swb-cpu": Case(ValueError, "noaux_tc", "scores_with_bias",
        lambda l: noaux_tc(l, swb=cpu((T, E)))),
    "nt-E-not-divisible": Case(ValueError, "noaux_tc", "n_group",
        lambda l: noaux_tc(l, n_group=3, topk_group=1)),
    "nt-n_group-over-32": Case(ValueError, "noaux_tc", "n_group",
        lambda l: noaux_tc(l, experts=128, n_group=64, topk_group=4)),
    "nt-topk_group-over-n_group": Case(ValueError, "noaux_tc", "topk_group",
        lambda l: noaux_tc(l, topk_group=9)),
    "nt-topk-over-32": Case(ValueError, "noaux_tc", "topk",
        lambda l: noaux_tc(l, experts=128, n_group=1, topk_group=1, topk=33)),
    "nt-topk-over-E": Case(ValueError, "noaux_tc", "topk",
        lambda l: noaux_tc(l, topk=E + 1)),
    "nt-out-values-fp16": Case(TypeError, "noaux_tc", "topk_values",
        lambda l: noaux_tc(l, out=(dev(l, (T, K), "float16"), dev(l, (T, K), "int64")))),
    "nt-out-indices-int32": Case(TypeError, "noaux_tc", "topk_indices",
        lambda l: noaux_tc(l, out=(dev(l, (T, K)), dev(l, (T, K), "int32")))),
    "nt-out-indices-shape": Case(ValueError, "noaux_tc", "topk_indices",
        lambda l: noaux_tc(l, out=(dev(l, (T, K)), dev(l, (T + 1, K), "int64")))),
    # fused_cast_sigmoid_bias
    "fc-input-fp64": Case(TypeError, "fused_cast_sigmoid_bias", "input",
        lambda l: fused(l, x=dev(l, (T, E), "float64"))),
    "fc-input-3d": Case(ValueError, "fused_cast_sigmoid_bias", "input",
        lambda l: fused(l, x=dev(l, (1, T, E)))),
    "fc-input-noncontiguous": Case(ValueError, "fused_cast_sigmoid_bias", "input",
        lambda l: fused(l, x=transposed(l, (T, E)))),
    "fc-input-cpu": Case(ValueError, "fused_cast_sigmoid_bias", "input",
        lambda l: fused(l, x=cpu((T, E)))),
    "fc-bias-fp16": Case(TypeError, "fused_cast_sigmoid_bias", "bias",
        lambda l: fused(l, bias=dev(l, (E,), "float16"))),
    "fc-bias-long": Case(ValueError, "fused_cast_sigmoid_bias", "bias",
        lambda l: fused(l, bias=dev(l, (E + 1,)))),
    "fc-cast_type": Case(ValueError, "fused_cast_sigmoid_bias", "cast_type",
        lambda l: fused(l, cast_type="float64")),
    "fc-out-fp64": Case(TypeError, "fused_cast_sigmoid_bias", "scores",
        lambda l: fused(l, out=(dev(l, (T, E), "float64"), dev(l, (T, E), "float64")))),
    "fc-out-mixed-dtypes": Case(TypeError, "fused_cast_sigmoid_bias", "scores_with_bias",
        lambda l: fused(l, out=(dev(l, (T, E)), dev(l, (T, E), "float16")))),
    "fc-out-shape": Case(ValueError, "fused_cast_sigmoid_bias", "scores_with_bias",
        lambda l: fused(l, out=(dev(l, (T, E)), dev(l, (T, E + 1))))),
    # moe_topk_select
    "ts-logits-fp16": Case(TypeError, "moe_topk_select", "gating_logits",
        lambda l: topk_select(l, logits=dev(l, (T, E), "float16"))),
    "ts-logits-1d": Case(ValueError, "moe_topk_select", "gating_logits",
        lambda l: topk_select(l, logits=dev(l, (E,)))),
    "ts-logits-4d": Case(ValueError, "moe_topk_select", "gating_logits",
        lambda l: topk_select(l, logits=dev(l, (1, 1, T, E)))),
    "ts-logits-noncontiguous": Case(ValueError, "moe_topk_select", "gating_logits",
        lambda l: topk_select(l, logits=transposed(l, (T, E)))),
    "ts-logits-cpu": Case(ValueError, "moe_topk_select", "gating_logits",
        lambda l: topk_select(l, logits=cpu((T, E)))),
    "ts-bias-fp16": Case(TypeError, "moe_topk_select", "bias",
        lambda l: topk_select(l, bias=dev(l, (1, E), "float16"))),
    "ts-bias-long": Case(ValueError, "moe_topk_select", "bias",
        lambda l: topk_select(l, bias=dev(l, (1, E + 1)))),
    "ts-topk-over-E": Case(ValueError, "moe_topk_select", "moe_topk",
        lambda l: topk_select(l, k=E + 1)),
    "ts-topk-0": Case(ValueError, "moe_topk_select", "moe_topk",
        lambda l: topk_select(l, k=0)),
    "ts-fused-over-256-experts": Case(ValueError, "moe_topk_select", "gating_logits",
        lambda l: topk_select(l, logits=dev(l, (T, 512)), bias=None, is_fused=True), "256"),
    "ts-out-ids-int32": Case(TypeError, "moe_topk_select", "topk_ids",
        lambda l: topk_select(l, out=(dev(l, (T, K), "int32"), dev(l, (T, K))))),
    "ts-out-weights-fp16": Case(TypeError, "moe_topk_select", "topk_weights",
        lambda l: topk_select(l, out=(dev(l, (T, K), "int64"), dev(l, (T, K), "float16")))),
    "ts-out-weights-shape": Case(ValueError, "moe_topk_select", "topk_weights",
        lambda l: topk_select(l, out=(dev(l, (T, K), "int64"), dev(l, (T, K + 1))))),
}

GELU_CASES = {
    "input-fp64": Case(TypeError, "gelu_tanh", "input",
        lambda l: activation.gelu_tanh(dev(l, (T, E), "float64"))),
    "input-int32": Case(TypeError, "gelu_tanh", "input",
        lambda l: activation.gelu_tanh(dev(l, (T, E), "int32"))),
    "input-noncontiguous": Case(ValueError, "gelu_tanh", "input",
        lambda l: activation.gelu_tanh(transposed(l, (T, E)))),
    "input-cpu": Case(ValueError, "gelu_tanh", "input",
        lambda l: activation.gelu_tanh(cpu((T, E)))),
    "out-dtype": Case(TypeError, "gelu_tanh", "out",
        lambda l: activation.gelu_tanh(dev(l, (T, E)), out=dev(l, (T, E), "float16"))),
    "out-fp64": Case(TypeError, "gelu_tanh", "out",
        lambda l: activation.gelu_tanh(dev(l, (T, E)), out=dev(l, (T, E), "float64"))),
    "out-shape": Case(ValueError, "gelu_tanh", "out",
        lambda l: activation.gelu_tanh(dev(l, (T, E)), out=dev(l, (T, E + 1)))),
    "out-cpu": Case(ValueError, "gelu_tanh", "out",
        lambda l: activation.gelu_tanh(dev(l, (T, E)), out=cpu((T, E)))),
}


def check(case: Case, lib: TensorLib) -> None:
    with pytest.raises(case.error) as raised:
        case.call(lib)
    message = str(raised.value)
    # Not just any mention: nanobind's own "incompatible function arguments" lists every name.
    assert message.startswith(f"{case.op}: argument '{case.arg}' "), message
    assert case.detail in message, message


@requires_op("grouped_topk")
@pytest.mark.parametrize("name", ROUTING_CASES)
def test_routing_rejects(tensor_lib: TensorLib, name: str) -> None:
    check(ROUTING_CASES[name], tensor_lib)


@requires_op("gelu_tanh")
@pytest.mark.parametrize("name", GELU_CASES)
def test_gelu_tanh_rejects(tensor_lib: TensorLib, name: str) -> None:
    check(GELU_CASES[name], tensor_lib)


@requires_op("noaux_tc")
def test_noaux_tc_never_converts_the_in_place_tensor(tensor_lib: TensorLib) -> None:
    scores = dev(tensor_lib, (T, E), "float64")
    before = tensor_lib.from_device(scores).copy()
    with pytest.raises(TypeError, match="noaux_tc.*scores"):
        moe_routing.noaux_tc(scores, dev(tensor_lib, (T, E)), 8, 4, K)
    np.testing.assert_array_equal(tensor_lib.from_device(scores), before)
