"""Benchmark cases of the rotary family: rotary embedding of the heads of real models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import Case, CaseGenerator

# (query heads, kv heads, head dim) per model, for rotary embedding.
ROTARY_CONFIGS = {
    "Llama-3-8B": (32, 8, 128),
    "Llama-3-70B": (64, 8, 128),
    "Qwen3-30B-A3B": (32, 4, 128),
}
ROTARY_TOKENS = (1, 16, 128, 1024, 4096, 16384, 65536)
ROTARY_MAX_POSITION = 131072


def _torch_rotary_neox(torch: Any, x: Any, cos: Any, sin: Any) -> None:
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half].float(), x[..., half:].float()
    x.copy_(torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1))


def rotary_cases(torch: Any) -> Iterator[Case]:
    from .. import rotary

    for label, (q_heads, kv_heads, head_dim) in ROTARY_CONFIGS.items():
        cache = torch.randn(ROTARY_MAX_POSITION, head_dim, device="cuda", dtype=torch.bfloat16)
        for tokens in ROTARY_TOKENS:
            query = torch.randn(tokens, q_heads, head_dim, device="cuda", dtype=torch.bfloat16)
            key = torch.randn(tokens, kv_heads, head_dim, device="cuda", dtype=torch.bfloat16)
            positions = torch.arange(tokens, device="cuda", dtype=torch.int32) + 1000

            def torch_rotary(query=query, key=key, positions=positions, cache=cache):
                cos, sin = cache.index_select(0, positions).float()[:, None, :].chunk(2, dim=-1)
                _torch_rotary_neox(torch, query, cos, sin)
                _torch_rotary_neox(torch, key, cos, sin)

            yield Case(
                op="fused_rotary_position_encoding", label=label, tokens=tokens,
                shape={"T": tokens, "q_heads": q_heads, "kv_heads": kv_heads, "D": head_dim},
                implementations={
                    "fastdeploy_ops": lambda query=query, key=key, positions=positions, cache=cache,
                        head_dim=head_dim: rotary.fused_rotary_position_encoding(
                            query, key, positions, cache, head_dim, True),
                    "torch": torch_rotary,
                },
                # q and k read and written, positions, one cos/sin row per token.
                bytes_moved=2 * 2 * (query.numel() + key.numel()) + 4 * tokens
                + 2 * head_dim * tokens,
            )


OPS: dict[str, CaseGenerator] = {"fused_rotary_position_encoding": rotary_cases}
