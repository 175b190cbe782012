"""numpy reference implementations of the ops, written from the op semantics.

Inputs are numpy arrays; half-precision callers widen to float32 first (exactly). Math is
float32 throughout, so results track the kernels to a few ulp; selections use a stable sort
(value descending, index ascending), i.e. ties go to the lowest index.
"""

from .activation import gelu_tanh
from .moe_routing import fused_cast_sigmoid_bias, grouped_topk, moe_topk_select, noaux_tc, sigmoid

__all__ = [
    "fused_cast_sigmoid_bias",
    "gelu_tanh",
    "grouped_topk",
    "moe_topk_select",
    "noaux_tc",
    "sigmoid",
]
