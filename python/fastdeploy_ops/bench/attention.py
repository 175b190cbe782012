"""Benchmark cases of the attention family: paged decode attention at the shapes of real
models, c16, int8 and fp8 caches; appends of decode tokens and prefill chunks to a c16 cache;
chunked-prefill attention. (paged_attention_plan is host logic: see common.UNTIMED_OPS.)"""

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


# Appends: (kind, kv heads, batch, tokens appended per sequence, tokens cached before). The
# decode rows append the token each decode shape above attends with; the prefill rows write a
# whole 8k prompt, and second 2k chunks of four prompts (chunked prefill).
APPEND_SHAPES = (
    ("decode", 4, 64, 1, 4095),
    ("decode", 4, 256, 1, 1023),
    ("decode", 8, 128, 1, 2047),
    ("prefill", 4, 1, 8192, 0),
    ("prefill", 4, 4, 2048, 2048),
)


def _torch_kv_append(torch: Any, key: Any, value: Any, key_cache: Any, value_cache: Any,
                     block_tables: Any, cache_lens: Any, cu_seqlens_q: Any,
                     token_seq: Any) -> None:
    """paged_kv_append (c16 cache, no rotary) with torch operations: ``key``, ``value``
    ``[T, kv_heads, D]`` into the ``[num_blocks, kv_heads, block_size, D]`` caches.
    ``token_seq`` ``[T]`` int64 is each token's sequence, which an engine has from
    get_padding_offset."""
    position = (cache_lens[token_seq] + torch.arange(key.shape[0], device=key.device)
                - cu_seqlens_q[token_seq])
    block = block_tables[token_seq, position // DECODE_BLOCK_SIZE].long()
    slot = position % DECODE_BLOCK_SIZE
    key_cache[block, :, slot] = key
    value_cache[block, :, slot] = value


def paged_kv_append_cases(torch: Any) -> Iterator[Case]:
    from .. import attention

    head_dim = DECODE_HEAD_DIM
    for kind, kv_heads, batch, new, cached in APPEND_SHAPES:
        context = cached + new
        key_cache, value_cache, tables, _ = _paged_cache(torch, batch, context, kv_heads,
                                                          head_dim, torch.bfloat16)
        tokens = batch * new
        key = torch.randn(tokens, kv_heads, head_dim, device="cuda", dtype=torch.bfloat16)
        value = torch.randn_like(key)
        cache_lens = torch.full((batch,), cached, device="cuda", dtype=torch.int32)
        cu_seqlens = (torch.arange(batch + 1, device="cuda") * new).int()
        token_seq = torch.arange(batch, device="cuda").repeat_interleave(new)
        args = (key, value, key_cache, value_cache, tables, cache_lens, cu_seqlens)
        # Blocks a sequence's new tokens land in: their ids are read from the block table.
        blocks = (context - 1) // DECODE_BLOCK_SIZE - cached // DECODE_BLOCK_SIZE + 1
        yield Case(
            op="paged_kv_append", label=f"c16 {kv_heads}kv {kind} ctx {context}",
            tokens=tokens,
            shape={"T": tokens, "batch": batch, "cached": cached, "kv_heads": kv_heads,
                   "D": head_dim, "block_size": DECODE_BLOCK_SIZE},
            implementations={
                "fastdeploy_ops": lambda args=args: attention.paged_kv_append(
                    *args, check_metadata=False),
                "torch": lambda args=args, token_seq=token_seq: _torch_kv_append(
                    torch, *args, token_seq),
            },
            # New K and V read and written to the cache; the offsets, cache lengths and the
            # block ids written to.
            bytes_moved=2 * 2 * key.numel() * 2 + 4 * (batch + 1) + 4 * batch
            + 4 * batch * blocks,
        )


# Chunked prefill: (heads, q heads, kv heads, batch, new tokens per sequence, context with
# them). A fresh 2k prompt, the last 512-token chunk of an 8k prompt, four 512-token chunks.
PREFILL_SHAPES = (
    ("32q/4kv", 32, 4, 1, 2048, 2048),
    ("32q/4kv", 32, 4, 1, 512, 8192),
    ("32q/4kv", 32, 4, 4, 512, 4096),
)


def paged_prefill_cases(torch: Any) -> Iterator[Case]:
    from .. import attention

    head_dim = DECODE_HEAD_DIM
    for heads, num_heads, kv_heads, batch, new, context in PREFILL_SHAPES:
        key, value, tables, lens = _paged_cache(torch, batch, context, kv_heads, head_dim,
                                                torch.bfloat16)
        tokens = batch * new
        query = torch.randn(tokens, num_heads, head_dim, device="cuda", dtype=torch.bfloat16)
        cu_seqlens = (torch.arange(batch + 1, device="cuda") * new).int()
        out = torch.empty_like(query)
        # torch's SDPA on the same tokens stored densely (bf16 [batch, kv_heads, context, D]).
        # The query heads sharing a KV head are stacked along the sequence (no GQA support
        # needed), and the causal mask is aligned to the end of the context: the new tokens
        # are its last `new` positions.
        group = num_heads // kv_heads
        dense_k = torch.randn(batch, kv_heads, context, head_dim, device="cuda",
                              dtype=torch.bfloat16)
        dense_v = torch.randn_like(dense_k)
        last_key = (context - new + torch.arange(new, device="cuda")).repeat(group)
        mask = torch.arange(context, device="cuda")[None, :] <= last_key[:, None]

        def torch_prefill(query=query, k=dense_k, v=dense_v, mask=mask, batch=batch,
                          new=new, kv_heads=kv_heads, group=group):
            q = query.view(batch, new, kv_heads, group, head_dim).permute(0, 2, 3, 1, 4)
            return torch.nn.functional.scaled_dot_product_attention(
                q.reshape(batch, kv_heads, group * new, head_dim), k, v, attn_mask=mask)

        yield Case(
            op="paged_prefill_attention",
            label=f"bf16 c16 {heads} chunk {new} ctx {context}", tokens=tokens,
            shape={"T": tokens, "batch": batch, "context": context, "q_heads": num_heads,
                   "kv_heads": kv_heads, "D": head_dim, "block_size": DECODE_BLOCK_SIZE},
            implementations={
                "fastdeploy_ops": lambda query=query, cu=cu_seqlens, key=key, value=value,
                    tables=tables, lens=lens, out=out: attention.paged_prefill_attention(
                        query, cu, key, value, tables, lens, out=out, check_metadata=False),
                "torch sdpa (dense bf16 KV)": torch_prefill,
            },
            # K and V of every cached token once (the floor: the kernel re-reads a sequence's
            # prefix for each of its query tokens, from L2), plus query and output.
            bytes_moved=2 * batch * context * kv_heads * head_dim * 2 + 2 * 2 * query.numel(),
        )


OPS: dict[str, CaseGenerator] = {
    "paged_decode_attention": paged_decode_cases,
    "paged_kv_append": paged_kv_append_cases,
    "paged_prefill_attention": paged_prefill_cases,
}
