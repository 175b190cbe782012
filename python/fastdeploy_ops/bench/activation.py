"""Benchmark cases of the activation family: GELU at the feed-forward widths of real models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import Case, CaseGenerator

# Feed-forward widths of real models, for the elementwise activation.
ACTIVATION_WIDTHS = {
    "Llama-3-8B d_ff": 14336,
    "Qwen3-30B-A3B hidden": 2048,
    "DeepSeek-V3 hidden": 7168,
}
ACTIVATION_TOKENS = (1, 16, 128, 1024, 4096, 16384)


def gelu_tanh_cases(torch: Any) -> Iterator[Case]:
    from .. import activation

    for label, width in ACTIVATION_WIDTHS.items():
        for tokens in ACTIVATION_TOKENS:
            x = torch.randn(tokens, width, device="cuda", dtype=torch.bfloat16)
            out = torch.empty_like(x)
            yield Case(
                op="gelu_tanh", label=label, tokens=tokens, shape={"T": tokens, "d": width},
                implementations={
                    "fastdeploy_ops": lambda x=x, out=out: activation.gelu_tanh(x, out=out),
                    "torch": lambda x=x: torch.nn.functional.gelu(x, approximate="tanh"),
                },
                bytes_moved=2 * x.numel() * x.element_size(),
            )


OPS: dict[str, CaseGenerator] = {"gelu_tanh": gelu_tanh_cases}
