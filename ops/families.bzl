"""The kernel families every extension module is built from. Adding a family adds one line."""

FAMILIES = [
    "//ops/activation",
    "//ops/attention",
    "//ops/attention:attention_fp8",
    "//ops/moe_routing",
    "//ops/penalty",
    "//ops/preprocess",
    "//ops/quantization",
    "//ops/rotary",
    "//ops/sampling",
    "//ops/speculative",
]
