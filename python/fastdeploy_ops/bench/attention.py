"""Benchmark cases of the attention family: paged decode attention at the shapes of real
models, c16, int8 and fp8 caches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import Case, CaseGenerator

# Decode targets: (label, q heads, kv heads, batch, context), head dim 128, bf16 queries.
# Llama-3-8B-like grouping (32 q / 4 kv) at the three extremes, and Llama-3-70B's
# 64 q / 8 kv; quantised caches at the batch-64 shape, where they should be ~2x faster.
DECODE_SHAPES = (
    ("32q/4kv", 32, 4, 64, 4096),
    ("32q/4kv", 32, 4, 256, 1024),
    ("32q/4kv", 32, 4, 1, 32768),
    ("64q/8kv", 64, 8, 128, 2048),
)
DECODE_HEAD_DIM = 128
DECODE_BLOCK_SIZE = 16


def _paged_cache(torch: Any, batch: int, context: int, kv_heads: int, head_dim: int,
                 dtype: Any) -> tuple[Any, Any, Any, Any]:
    """Caches holding exactly batch x context tokens, blocks shuffled over the pool."""
    per_seq = -(-context // DECODE_BLOCK_SIZE)
    num_blocks = batch * per_seq
    shape = (num_blocks, kv_heads, DECODE_BLOCK_SIZE, head_dim)
    if dtype == torch.int8:
        key = torch.randint(-127, 128, shape, device="cuda", dtype=torch.int8)
        value = torch.randint(-127, 128, shape, device="cuda", dtype=torch.int8)
    else:
        key = torch.randn(shape, device="cuda", dtype=torch.bfloat16).to(dtype)
        value = torch.randn(shape, device="cuda", dtype=torch.bfloat16).to(dtype)
    tables = torch.randperm(num_blocks, device="cuda", dtype=torch.int32).view(batch, per_seq)
    lens = torch.full((batch,), context, device="cuda", dtype=torch.int32)
    return key, value, tables, lens


def paged_decode_cases(torch: Any) -> Iterator[Case]:
    from .. import attention

    head_dim = DECODE_HEAD_DIM
    caches = {"c16": torch.bfloat16, "int8": torch.int8, "fp8": torch.float8_e4m3fn}
    for cache, cache_dtype in caches.items():
        for heads, num_heads, kv_heads, batch, context in DECODE_SHAPES:
            if cache != "c16" and (batch, context) != (64, 4096):
                continue
            key, value, tables, lens = _paged_cache(torch, batch, context, kv_heads, head_dim,
                                                    cache_dtype)
            scales = {}
            if cache != "c16":
                scales = {"key_scale": torch.full((kv_heads,), 0.02, device="cuda"),
                          "value_scale": torch.full((kv_heads,), 0.02, device="cuda")}
            query = torch.randn(batch, num_heads, head_dim, device="cuda", dtype=torch.bfloat16)
            out = torch.empty_like(query)
            implementations = {
                "fastdeploy_ops": lambda query=query, key=key, value=value, tables=tables,
                    lens=lens, out=out, scales=scales: attention.paged_decode_attention(
                        query, key, value, tables, lens, out=out, check_metadata=False, **scales),
            }
            # Dense (unpaged) bf16 K/V through torch's SDPA: what a contiguous cache would cost.
            dense_k = torch.randn(batch, kv_heads, context, head_dim, device="cuda",
                                  dtype=torch.bfloat16)
            dense_v = torch.randn_like(dense_k)
            implementations["torch sdpa (dense bf16 KV)"] = (
                lambda q=query[:, :, None, :], k=dense_k, v=dense_v:
                    torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True))
            element = key.element_size()
            yield Case(
                op="paged_decode_attention",
                label=f"bf16 {cache} {heads} ctx {context}", tokens=batch, axis="batch",
                shape={"batch": batch, "context": context, "q_heads": num_heads,
                       "kv_heads": kv_heads, "D": head_dim, "block_size": DECODE_BLOCK_SIZE},
                implementations=implementations,
                # K and V of every cached token, plus query and output.
                bytes_moved=2 * batch * context * kv_heads * head_dim * element
                + 2 * 2 * query.numel(),
            )


OPS: dict[str, CaseGenerator] = {"paged_decode_attention": paged_decode_cases}
