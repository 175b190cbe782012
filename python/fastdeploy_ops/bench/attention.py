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


# Prefill (issue 13's targets, Llama-3-8B heads: 32 q / 8 kv, head dim 128, bf16): (label,
# new tokens per sequence, cached tokens before them, sequences). One 8k prompt, four 2k
# chunks over 16k cached tokens each, and shorter prompts and chunks.
PREFILL_HEADS = (32, 8)
PREFILL_SHAPES = (
    ("prompt 8192", 8192, 0, 1),
    ("4 x chunk 2048 over 16k", 2048, 16384, 4),
    ("prompt 2048", 2048, 0, 1),
    ("chunk 512 over 7.5k", 512, 7680, 1),
    ("4 x chunk 512 over 3.5k", 512, 3584, 4),
)
# A mixed step: 8 prompt chunks of 512 tokens and 120 decode tokens over 2k contexts.
MIXED_PREFILL = ((512, 0, 8), (1, 2047, 120))
PREFILL_NOTE = (
    "Causal attention FLOPs (2 matmuls of 2 FLOPs per multiply-add, over the keys each row "
    "sees): 4 · H · D · Σ (q_len · cached + q_len (q_len + 1) / 2). Baseline: torch SDPA "
    "(`enable_gqa=True`; `is_causal=True` for prompts, a bottom-right causal mask for chunks "
    "over a prefix) on the same tokens with dense bf16 K/V, on the backend torch picks; its "
    "kernel in this run: {sdpa_kernels}. The mixed step is compared with the same work as two "
    "calls: the prompt chunks through paged_prefill_attention and the decode tokens through "
    "paged_decode_attention.")


def _kernel_names(torch: Any, fn: Any) -> str:
    """The GPU kernels one call of `fn` launches (names cut at 80 characters)."""
    fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profile:
        fn()
        torch.cuda.synchronize()
    names = dict.fromkeys(event.name[:80] for event in profile.events()
                          if event.device_type == torch.autograd.DeviceType.CUDA
                          and not event.name.startswith("Memset"))
    return ", ".join(f"`{name}`" for name in names) or "none recorded"


def _causal_flops(num_heads: int, head_dim: int, chunks: list[tuple[int, int]]) -> int:
    """Multiply-adds x 2 of both matmuls over the keys each query row sees."""
    return sum(4 * num_heads * head_dim * (new * cached + new * (new + 1) // 2)
               for new, cached in chunks)


def _prefill_inputs(torch: Any, groups: tuple[tuple[int, int, int], ...], num_heads: int,
                    kv_heads: int, head_dim: int) -> dict[str, Any]:
    """A paged bf16 cache and packed queries for sequences of (new, cached, count) groups."""
    new = [n for n, _, count in groups for _ in range(count)]
    lens = [n + c for n, c, count in groups for _ in range(count)]
    per_seq = [-(-n // DECODE_BLOCK_SIZE) for n in lens]
    num_blocks = sum(per_seq)
    shape = (num_blocks, kv_heads, DECODE_BLOCK_SIZE, head_dim)
    key = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
    value = torch.randn_like(key)
    ids = torch.randperm(num_blocks, device="cuda", dtype=torch.int32)
    tables = torch.full((len(lens), max(per_seq)), -1, device="cuda", dtype=torch.int32)
    start = 0
    for b, n in enumerate(per_seq):
        tables[b, :n] = ids[start:start + n]
        start += n
    cu = torch.tensor([0] + new, device="cuda", dtype=torch.int32).cumsum(0, dtype=torch.int32)
    query = torch.randn(sum(new), num_heads, head_dim, device="cuda", dtype=torch.bfloat16)
    return {"query": query, "cu": cu, "key": key, "value": value, "tables": tables,
            "lens": torch.tensor(lens, device="cuda", dtype=torch.int32), "max_len": max(lens),
            "out": torch.empty_like(query), "new": new, "cached": [l - n for l, n in
                                                                  zip(lens, new)]}


def _dense_sdpa(torch: Any, batch: int, new: int, cached: int, num_heads: int, kv_heads: int,
                head_dim: int) -> Any:
    """torch SDPA over dense bf16 K/V of `cached + new` tokens per sequence."""
    context = cached + new
    query = torch.randn(batch, num_heads, new, head_dim, device="cuda", dtype=torch.bfloat16)
    key = torch.randn(batch, kv_heads, context, head_dim, device="cuda", dtype=torch.bfloat16)
    value = torch.randn_like(key)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    if cached == 0:
        return lambda: sdpa(query, key, value, is_causal=True, enable_gqa=True)
    # is_causal aligns the mask to the top left; the new tokens are the context's last ones.
    mask = (torch.arange(context, device="cuda")[None, :]
            <= cached + torch.arange(new, device="cuda")[:, None])
    return lambda: sdpa(query, key, value, attn_mask=mask, enable_gqa=True)


def paged_prefill_cases(torch: Any) -> Iterator[Case]:
    from .. import attention

    num_heads, kv_heads = PREFILL_HEADS
    head_dim = DECODE_HEAD_DIM
    element = 2

    def prefill(x: dict[str, Any]) -> Any:
        return lambda: attention.paged_prefill_attention(
            x["query"], x["cu"], x["key"], x["value"], x["tables"], x["lens"], out=x["out"],
            max_seq_len=x["max_len"], check_metadata=False)

    shape = {"q_heads": num_heads, "kv_heads": kv_heads, "D": head_dim,
             "block_size": DECODE_BLOCK_SIZE}
    note = None
    for label, new, cached, batch in PREFILL_SHAPES:
        x = _prefill_inputs(torch, ((new, cached, batch),), num_heads, kv_heads, head_dim)
        sdpa = _dense_sdpa(torch, batch, new, cached, num_heads, kv_heads, head_dim)
        if note is None:
            note = PREFILL_NOTE.format(sdpa_kernels=_kernel_names(torch, sdpa))
        yield Case(
            op="paged_prefill_attention", label=f"bf16 c16 32q/8kv {label}",
            tokens=batch * new, shape={**shape, "batch": batch, "cached": cached},
            implementations={
                "fastdeploy_ops": prefill(x),
                "torch sdpa (dense bf16 KV)": sdpa,
            },
            # K and V of every token once, plus query and output.
            bytes_moved=2 * batch * (cached + new) * kv_heads * head_dim * element
            + 2 * element * x["query"].numel(),
            flops=_causal_flops(num_heads, head_dim, [(new, cached)] * batch), note=note)

    mixed = _prefill_inputs(torch, MIXED_PREFILL, num_heads, kv_heads, head_dim)
    (chunk, _, chunks), (_, _, decodes) = MIXED_PREFILL
    prompts = _prefill_inputs(torch, MIXED_PREFILL[:1], num_heads, kv_heads, head_dim)
    decode = _prefill_inputs(torch, MIXED_PREFILL[1:], num_heads, kv_heads, head_dim)

    def separately(prompts=prompts, decode=decode) -> None:
        prefill(prompts)()
        attention.paged_decode_attention(
            decode["query"], decode["key"], decode["value"], decode["tables"], decode["lens"],
            out=decode["out"], max_seq_len=decode["max_len"], check_metadata=False)

    yield Case(
        op="paged_prefill_attention",
        label=f"bf16 c16 32q/8kv mixed: {chunks} x chunk {chunk} + {decodes} decode",
        tokens=chunks * chunk + decodes, shape={**shape, "batch": chunks + decodes},
        implementations={"fastdeploy_ops": prefill(mixed),
                         "fastdeploy_ops prefill + decode calls": separately},
        bytes_moved=2 * sum(n + c for n, c in zip(mixed["new"], mixed["cached"])) * kv_heads
        * head_dim * element + 2 * element * mixed["query"].numel(),
        flops=_causal_flops(num_heads, head_dim, list(zip(mixed["new"], mixed["cached"]))))


OPS: dict[str, CaseGenerator] = {
    "paged_decode_attention": paged_decode_cases,
    "paged_kv_append": paged_kv_append_cases,
    "paged_prefill_attention": paged_prefill_cases,
}
