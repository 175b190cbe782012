"""The kernel families every extension module is built from.

Adding a family adds its own files and one line here; nothing else lists the families (README,
"Adding a kernel family"; //tests/build:test_scaffold_family).
"""

FAMILIES = [
    "//ops/activation",
    "//ops/attention",
    "//ops/moe_routing",
    "//ops/penalty",
    "//ops/preprocess",
    "//ops/quantization",
    "//ops/rotary",
    "//ops/sampling",
    "//ops/speculative",
]
