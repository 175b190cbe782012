"""numpy reference implementations of the ops, written from each family's documented semantics
(``ops/<family>/README.md``).

Inputs are numpy arrays; half-precision callers widen to float32 first (exactly). Math is
float32 throughout, so results track the kernels to a few ulp; selections use a stable sort
(value descending, index ascending), i.e. ties go to the lowest index.
"""

from .activation import gelu_tanh
from .attention import AttentionSpread, paged_attention, paged_attention_spread, paged_kv_append
from .moe_routing import fused_cast_sigmoid_bias, grouped_topk, moe_topk_select, noaux_tc, sigmoid
from .penalty import get_token_penalty_multi_scores, get_token_penalty_once
from .preprocess import (
    get_padding_offset,
    rebuild_padding,
    set_stop_value_multi_ends,
    set_value_by_flags_and_idx,
)
from .quantization import (
    e4m3_bytes,
    e4m3_to_float,
    per_token_dequant,
    per_token_quant,
    per_token_quant_padding,
)
from .rotary import fused_rotary_position_encoding
from .sampling import (
    philox4x32_10,
    sampling_uniform,
    top_k_renorm_probs,
    top_k_top_p_allowed_set,
    top_k_top_p_distribution,
    top_p_renorm_probs,
)
from .speculative import speculate_update, speculate_verify

__all__ = [
    "AttentionSpread",
    "e4m3_bytes",
    "e4m3_to_float",
    "fused_cast_sigmoid_bias",
    "fused_rotary_position_encoding",
    "gelu_tanh",
    "get_padding_offset",
    "get_token_penalty_multi_scores",
    "get_token_penalty_once",
    "grouped_topk",
    "moe_topk_select",
    "noaux_tc",
    "paged_attention",
    "paged_attention_spread",
    "paged_kv_append",
    "per_token_dequant",
    "per_token_quant",
    "per_token_quant_padding",
    "philox4x32_10",
    "rebuild_padding",
    "sampling_uniform",
    "set_stop_value_multi_ends",
    "set_value_by_flags_and_idx",
    "sigmoid",
    "speculate_update",
    "speculate_verify",
    "top_k_renorm_probs",
    "top_k_top_p_allowed_set",
    "top_k_top_p_distribution",
    "top_p_renorm_probs",
]
