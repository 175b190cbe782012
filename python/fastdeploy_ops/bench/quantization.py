"""Benchmark cases of the quantization family: fp8 per-token quantization of activations, with
row-major scales and with the column-major padded scales FP8 GEMMs read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import Case, CaseGenerator

# fp8 quantization of activations before an FP8 GEMM: DeepSeek-V3's hidden size, bf16.
QUANT_HIDDEN = {"DeepSeek-V3 hidden": 7168}
QUANT_TOKENS = (64, 4096, 16384)


def _torch_per_token_quant(torch: Any, x: Any) -> tuple[Any, Any]:
    """Per-token, per-128-block fp8 quantization with torch operations (H % 128 == 0)."""
    tokens, hidden = x.shape
    blocks = x.float().view(tokens, hidden // 128, 128)
    m = blocks.abs().amax(dim=-1, keepdim=True).clamp(min=1e-10)
    q = (blocks * 448.0 / m).to(torch.float8_e4m3fn).view(tokens, hidden)
    return q, (m / 448.0).squeeze(-1)


def per_token_quant_cases(torch: Any) -> Iterator[Case]:
    from .. import quantization

    for label, hidden in QUANT_HIDDEN.items():
        for tokens in QUANT_TOKENS:
            x = torch.randn(tokens, hidden, device="cuda", dtype=torch.bfloat16)
            yield Case(
                op="per_token_quant", label=label, tokens=tokens, shape={"T": tokens, "H": hidden},
                implementations={
                    "fastdeploy_ops": lambda x=x: quantization.per_token_quant(x, 128),
                    "torch": lambda x=x: _torch_per_token_quant(torch, x),
                },
                # bf16 in; one fp8 byte per element and an fp32 scale per 128 elements out.
                bytes_moved=tokens * hidden * 3 + tokens * (hidden // 128) * 4,
            )


def _torch_per_token_quant_padding(torch: Any, x: Any) -> tuple[Any, Any]:
    """_torch_per_token_quant with the scales transposed into a zeroed ``[H / 128, pad_T]``
    float32 buffer (``pad_T = ceil(T / 4) * 4``); returns ``q`` and that buffer's transpose."""
    tokens, hidden = x.shape
    q, scale = _torch_per_token_quant(torch, x)
    padded = scale.new_zeros(hidden // 128, -(-tokens // 4) * 4)
    padded[:, :tokens] = scale.T
    return q, padded.T


def per_token_quant_padding_cases(torch: Any) -> Iterator[Case]:
    from .. import quantization

    for label, hidden in QUANT_HIDDEN.items():
        for tokens in QUANT_TOKENS:
            x = torch.randn(tokens, hidden, device="cuda", dtype=torch.bfloat16)
            padded_tokens = -(-tokens // 4) * 4
            yield Case(
                op="per_token_quant_padding", label=label, tokens=tokens,
                shape={"T": tokens, "H": hidden},
                implementations={
                    "fastdeploy_ops": lambda x=x: quantization.per_token_quant_padding(x, 128),
                    "torch": lambda x=x: _torch_per_token_quant_padding(torch, x),
                },
                # bf16 in; one fp8 byte per element and the padded fp32 scales out.
                bytes_moved=tokens * hidden * 3 + padded_tokens * (hidden // 128) * 4,
            )


OPS: dict[str, CaseGenerator] = {
    "per_token_quant": per_token_quant_cases,
    "per_token_quant_padding": per_token_quant_padding_cases,
}
