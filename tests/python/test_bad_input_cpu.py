"""Argument validation through the real sm70 / sm80 modules, without a GPU.

``FASTDEPLOY_OPS_SM`` forces the module, which then loads without a GPU: numpy arrays reach the
bindings, which check dtypes, ranks, shapes and ranges before the device, so each error names
the op and the argument; a correctly typed numpy array gets the "must be a CUDA tensor" error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import activation, moe_routing

T, E, K = 4, 64, 8




def f32(*shape: int) -> np.ndarray:
    return np.zeros(shape, dtype=np.float32)


def arr(dtype: str, *shape: int) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


# name: (error, op, argument named, call)
CASES: dict[str, tuple[type[Exception], str, str, Callable[[], Any]]] = {
    "gt-logits-fp64": (TypeError, "grouped_topk", "gating_output",
        lambda: moe_routing.grouped_topk(arr("float64", T, E), f32(E), 8, 4, K)),
    "gt-logits-3d": (ValueError, "grouped_topk", "gating_output",
        lambda: moe_routing.grouped_topk(f32(1, T, E), f32(E), 8, 4, K)),
    "gt-bias-fp16": (TypeError, "grouped_topk", "e_score_correction_bias",
        lambda: moe_routing.grouped_topk(f32(T, E), arr("float16", E), 8, 4, K)),
    "gt-bias-2xE": (ValueError, "grouped_topk", "e_score_correction_bias",
        lambda: moe_routing.grouped_topk(f32(T, E), f32(2, E), 8, 4, K)),
    "gt-n_group": (ValueError, "grouped_topk", "n_group",
        lambda: moe_routing.grouped_topk(f32(T, E), f32(E), 3, 1, K)),
    "gt-topk_group": (ValueError, "grouped_topk", "topk_group",
        lambda: moe_routing.grouped_topk(f32(T, E), f32(E), 8, 9, K)),
    "gt-topk": (ValueError, "grouped_topk", "topk",
        lambda: moe_routing.grouped_topk(f32(T, E), f32(E), 8, 4, E + 1)),
    "gt-out-int32": (TypeError, "grouped_topk", "topk_indices",
        lambda: moe_routing.grouped_topk(f32(T, E), f32(E), 8, 4, K,
                                         out=(f32(T, E), f32(T, K), arr("int32", T, K)))),
    "gt-cpu": (ValueError, "grouped_topk", "gating_output",
        lambda: moe_routing.grouped_topk(f32(T, E), f32(E), 8, 4, K)),
    "nt-scores-fp64": (TypeError, "noaux_tc", "scores",
        lambda: moe_routing.noaux_tc(arr("float64", T, E), f32(T, E), 8, 4, K)),
    "nt-swb-shape": (ValueError, "noaux_tc", "scores_with_bias",
        lambda: moe_routing.noaux_tc(f32(T, E), f32(T, E + 1), 8, 4, K)),
    "nt-n_group-over-32": (ValueError, "noaux_tc", "n_group",
        lambda: moe_routing.noaux_tc(f32(T, 128), f32(T, 128), 64, 4, K)),
    "nt-cpu": (ValueError, "noaux_tc", "scores",
        lambda: moe_routing.noaux_tc(f32(T, E), f32(T, E), 8, 4, K)),
    "fc-input-int32": (TypeError, "fused_cast_sigmoid_bias", "input",
        lambda: moe_routing.fused_cast_sigmoid_bias(arr("int32", T, E), f32(E))),
    "fc-cast_type": (ValueError, "fused_cast_sigmoid_bias", "cast_type",
        lambda: moe_routing.fused_cast_sigmoid_bias(f32(T, E), f32(E), "int8")),
    "fc-cpu": (ValueError, "fused_cast_sigmoid_bias", "input",
        lambda: moe_routing.fused_cast_sigmoid_bias(f32(T, E), f32(E), "float16")),
    "ts-logits-fp16": (TypeError, "moe_topk_select", "gating_logits",
        lambda: moe_routing.moe_topk_select(arr("float16", T, E), None, K)),
    "ts-logits-1d": (ValueError, "moe_topk_select", "gating_logits",
        lambda: moe_routing.moe_topk_select(f32(E), None, K)),
    "ts-bias-long": (ValueError, "moe_topk_select", "bias",
        lambda: moe_routing.moe_topk_select(f32(T, E), f32(1, E + 1), K)),
    "ts-topk": (ValueError, "moe_topk_select", "moe_topk",
        lambda: moe_routing.moe_topk_select(f32(T, E), None, 0)),
    "ts-cpu": (ValueError, "moe_topk_select", "gating_logits",
        lambda: moe_routing.moe_topk_select(f32(2, T, E), f32(E), K)),
}


@pytest.mark.usefixtures("sm70")
@pytest.mark.parametrize("name", CASES)
def test_routing_rejects_through_the_sm70_module(name: str, rejects: Callable[..., str]) -> None:
    message = rejects(*CASES[name])
    assert ("CUDA" in message) == name.endswith("-cpu"), message


@pytest.fixture(params=[70, 80], ids=["sm70", "sm80"])
def either_module(request: pytest.FixtureRequest) -> None:
    """The sm70 module (activation is SM70+: it uses tanhf there) and the sm80 module."""
    request.getfixturevalue(f"sm{request.param}")


@pytest.mark.usefixtures("either_module")
@pytest.mark.parametrize(
    ("x", "out", "error", "arg"),
    [(arr("float64", T, E), None, TypeError, "input"),
     (f32(T, E), arr("float16", T, E), TypeError, "out"),
     (f32(T, E), f32(T, E + 1), ValueError, "out"),
     (f32(T, E), None, ValueError, "input")],
    ids=["input-fp64", "out-dtype", "out-shape", "cpu"],
)
def test_gelu_tanh_rejects_through_both_modules(x: np.ndarray, out: np.ndarray | None,
                                                error: type[Exception], arg: str,
                                                rejects: Callable[..., str]) -> None:
    rejects(error, "gelu_tanh", arg, lambda: activation.gelu_tanh(x, out=out))
