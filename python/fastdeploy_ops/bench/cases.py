"""What is benchmarked: per op, the shapes of real models and the implementations compared."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# (E, n_group, topk_group, topk, renormalize, routed_scaling_factor), as FastDeploy PR #7777 tests.
ROUTING_CONFIGS = {
    "DeepSeek-V3": (256, 8, 4, 8, True, 2.5),
    "GLM-4.5-Air": (128, 1, 1, 8, True, 1.0),
    "Qwen3-30B-A3B": (128, 4, 2, 8, False, 1.0),
    "Kimi-K2": (384, 8, 2, 8, False, 1.0),
}
ROUTING_TOKENS = (1, 8, 32, 128, 256, 512, 1024, 2048, 4096, 8192)
# Feed-forward widths of real models, for the elementwise activation.
ACTIVATION_WIDTHS = {"Llama-3-8B d_ff": 14336, "Qwen3-30B-A3B hidden": 2048, "DeepSeek-V3 hidden": 7168}
ACTIVATION_TOKENS = (1, 16, 128, 1024, 4096, 16384)


@dataclass(frozen=True)
class Case:
    """One shape of one op: the implementations to time and the bytes the op must move."""

    op: str
    label: str
    tokens: int
    shape: dict[str, int]
    implementations: dict[str, Callable[[], object]]  # ours first
    bytes_moved: int
    axis: str = "tokens"  # what `tokens` counts ("batch" for per-sequence ops)


def _torch_grouped_topk(torch: Any, x: Any, bias: Any, cfg: tuple) -> Any:
    """Grouped top-k as an engine without custom kernels computes it, with torch operations."""
    experts, groups, topk_group, topk, renormalize, scale = cfg
    tokens = x.shape[0]
    s = torch.sigmoid(x.float())
    u = s + bias
    group_scores = u.view(tokens, groups, experts // groups).topk(2, dim=-1).values.sum(-1)
    keep = torch.zeros_like(group_scores).scatter_(1, group_scores.topk(topk_group, dim=-1).indices, 1.0)
    mask = keep.unsqueeze(-1).expand(tokens, groups, experts // groups).reshape(tokens, experts)
    idx = u.masked_fill(mask == 0, float("-inf")).topk(topk, dim=-1).indices
    w = s.gather(1, idx)
    if renormalize:
        w = w / (w.sum(-1, keepdim=True) + 1e-20)
    w = w * scale
    return torch.zeros_like(s).scatter_(1, idx, w), w, idx


def grouped_topk_cases(torch: Any) -> Iterator[Case]:
    from .. import moe_routing as mr

    generator = torch.Generator(device="cuda").manual_seed(0)
    for label, cfg in ROUTING_CONFIGS.items():
        experts, groups, topk_group, topk, renormalize, scale = cfg
        bias = (torch.rand(experts, device="cuda", generator=generator) - 0.5) * 0.1
        for tokens in ROUTING_TOKENS:
            x = torch.randn(tokens, experts, device="cuda", dtype=torch.bfloat16, generator=generator)
            args = (groups, topk_group, topk, renormalize, scale)

            def unfused(x=x, bias=bias, args=args):
                scores, with_bias = mr.fused_cast_sigmoid_bias(x, bias)
                return mr.noaux_tc(scores, with_bias, *args)

            yield Case(
                op="grouped_topk", label=label, tokens=tokens,
                shape={"T": tokens, "E": experts, "n_group": groups, "topk": topk},
                implementations={
                    "fastdeploy_ops": lambda x=x, bias=bias, args=args: mr.grouped_topk(x, bias, *args),
                    "unfused": unfused,
                    "torch": lambda x=x, bias=bias, cfg=cfg: _torch_grouped_topk(torch, x, bias, cfg),
                },
                # bf16 logits and fp32 bias in; dense fp32 scores, fp32 values, int64 indices out.
                bytes_moved=tokens * experts * 2 + experts * 4 + tokens * experts * 4 + tokens * topk * 12,
            )


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


# Hidden sizes of real models, for the row copy of rebuild_padding.
HIDDEN_SIZES = {"Llama-3-8B": 4096, "DeepSeek-V3": 7168, "Llama-3-70B": 8192}
DECODE_BATCHES = (1, 16, 128, 1024, 4096)
# (query heads, kv heads, head dim) per model, for rotary embedding.
ROTARY_CONFIGS = {"Llama-3-8B": (32, 8, 128), "Llama-3-70B": (64, 8, 128), "Qwen3-30B-A3B": (32, 4, 128)}
ROTARY_TOKENS = (1, 16, 128, 1024, 4096, 16384, 65536)
ROTARY_MAX_POSITION = 131072
# Vocabularies of real models, for penalties and sampling.
VOCABULARIES = {"Llama-3": 128256, "Qwen3": 151936}
SAMPLING_BATCHES = (1, 16, 64, 256)
# Penalty rows: 2048 prompt tokens and 512 generated ones in an 8192-slot history.
PENALTY_HISTORY, PENALTY_PROMPT, PENALTY_GENERATED = 8192, 2048, 512
SPECULATIVE_BATCHES = (1, 64, 256, 512)
SPECULATIVE_DRAFT = 4


def rebuild_padding_cases(torch: Any) -> Iterator[Case]:
    from .. import preprocess

    for label, hidden in HIDDEN_SIZES.items():
        for batch in DECODE_BATCHES:
            # Decode step: one token per sequence, every sequence active.
            tmp_out = torch.randn(batch, hidden, device="cuda", dtype=torch.bfloat16)
            cu_seqlens = torch.arange(batch + 1, device="cuda", dtype=torch.int32)
            this_time = torch.ones(batch, device="cuda", dtype=torch.int32)
            decoder = torch.full((batch,), 100, device="cuda", dtype=torch.int32)
            encoder = torch.zeros(batch, device="cuda", dtype=torch.int32)
            out = torch.empty_like(tmp_out)
            lengths = (cu_seqlens, this_time, decoder, encoder)

            def torch_gather(tmp_out=tmp_out, lengths=lengths):
                cu, this_time, decoder, encoder = lengths
                rows = cu[:-1] + torch.where(encoder > 0, encoder - 1, 0)
                skip = (this_time == 0) | ((decoder == 0) & (encoder == 0))
                return tmp_out.index_select(0, rows).masked_fill_(skip[:, None], 0)

            yield Case(
                op="rebuild_padding", label=label, tokens=batch, axis="batch",
                shape={"bs": batch, "dim": hidden},
                implementations={
                    "fastdeploy_ops": lambda tmp_out=tmp_out, lengths=lengths, out=out:
                        preprocess.rebuild_padding(tmp_out, *lengths, out=out),
                    "torch": torch_gather,
                },
                bytes_moved=2 * tmp_out.numel() * 2 + 4 * 4 * batch,
            )


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
                bytes_moved=2 * 2 * (query.numel() + key.numel()) + 4 * tokens + 2 * head_dim * tokens,
            )


def _torch_penalties(torch: Any, ids: Any, logits: Any, alpha: Any, beta: Any, gamma: Any,
                     temperature: Any, prompt_lens: Any) -> None:
    """Penalties as an engine without custom kernels applies them (dense count pass)."""
    rows, vocab = logits.shape
    valid = ids >= 0
    position = torch.arange(ids.shape[1], device=ids.device)
    generated = valid & (position[None, :] >= prompt_lens)
    safe = ids.clamp(min=0)
    counts = torch.zeros(rows, vocab, device=ids.device, dtype=torch.int32)
    counts.scatter_add_(1, safe, generated.int())
    seen = torch.zeros(rows, vocab, device=ids.device, dtype=torch.int32)
    seen.scatter_add_(1, safe, valid.int())
    penalised = torch.where(logits < 0, logits * alpha, logits / alpha)
    out = torch.where(seen > 0, penalised, logits)
    out = out - counts * beta - (counts > 0).float() * gamma
    logits.copy_(out / temperature)


def penalty_cases(torch: Any) -> Iterator[Case]:
    from .. import penalty

    for label, vocab in VOCABULARIES.items():
        for batch in SAMPLING_BATCHES:
            generator = torch.Generator(device="cuda").manual_seed(batch)
            logits = torch.randn(batch, vocab, device="cuda", generator=generator)
            ids = torch.full((batch, PENALTY_HISTORY), -1, device="cuda", dtype=torch.int64)
            used = PENALTY_PROMPT + PENALTY_GENERATED
            ids[:, :used] = torch.randint(0, vocab, (batch, used), device="cuda", generator=generator)
            column = {"device": "cuda"}
            alpha = torch.full((batch, 1), 1.05, **column)
            beta = torch.full((batch, 1), 0.1, **column)
            gamma = torch.full((batch, 1), 0.1, **column)
            # Temperature 1 keeps repeated calls from driving the logits to infinity.
            temperature = torch.ones((batch, 1), **column)
            bad = torch.randint(0, vocab, (batch, 8), device="cuda", generator=generator)
            bad_lens = torch.full((batch, 1), 8, device="cuda", dtype=torch.int64)
            prompt_lens = torch.full((batch, 1), PENALTY_PROMPT, device="cuda", dtype=torch.int64)
            cur = torch.full((batch, 1), PENALTY_GENERATED, device="cuda", dtype=torch.int64)
            min_lens = torch.ones((batch, 1), device="cuda", dtype=torch.int64)
            eos = torch.tensor([2], device="cuda", dtype=torch.int64)
            args = (ids, logits, alpha, beta, gamma, temperature, bad, bad_lens, prompt_lens,
                    cur, min_lens, eos)
            yield Case(
                op="get_token_penalty_multi_scores", label=label, tokens=batch, axis="batch",
                shape={"bs": batch, "V": vocab, "history": PENALTY_HISTORY},
                implementations={
                    "fastdeploy_ops": lambda args=args: penalty.get_token_penalty_multi_scores(*args),
                    "torch": lambda args=args: _torch_penalties(
                        torch, args[0], args[1], args[2], args[3], args[4], args[5], args[8]),
                },
                # fp32 logits read and written, the history read once.
                bytes_moved=2 * 4 * logits.numel() + 8 * ids.numel(),
            )


def _probabilities(torch: Any, batch: int, vocab: int) -> Any:
    generator = torch.Generator(device="cuda").manual_seed(vocab + batch)
    logits = 3.0 * torch.randn(batch, vocab, device="cuda", generator=generator)
    return torch.softmax(logits, dim=-1)


SAMPLING_TOP_K, SAMPLING_TOP_P = 50, 0.9


def top_k_renorm_cases(torch: Any) -> Iterator[Case]:
    from .. import sampling

    for label, vocab in VOCABULARIES.items():
        for batch in SAMPLING_BATCHES:
            probs = _probabilities(torch, batch, vocab)
            out = torch.empty_like(probs)

            def torch_renorm(probs=probs):
                threshold = probs.topk(SAMPLING_TOP_K, dim=-1).values[:, -1:]
                kept = torch.where(probs >= threshold, probs, 0.0)
                return kept / kept.sum(dim=-1, keepdim=True).clamp_min(1e-8)

            yield Case(
                op="top_k_renorm_probs", label=label, tokens=batch, axis="batch",
                shape={"bs": batch, "V": vocab, "k": SAMPLING_TOP_K},
                implementations={
                    "fastdeploy_ops": lambda probs=probs, out=out:
                        sampling.top_k_renorm_probs(probs, SAMPLING_TOP_K, out=out),
                    "torch": torch_renorm,
                },
                bytes_moved=2 * 4 * probs.numel(),
            )


def top_k_top_p_sampling_cases(torch: Any) -> Iterator[Case]:
    from .. import sampling

    for label, vocab in VOCABULARIES.items():
        for batch in SAMPLING_BATCHES:
            probs = _probabilities(torch, batch, vocab)
            out = torch.empty(batch, device="cuda", dtype=torch.int64)

            def torch_sample(probs=probs):
                # Sort-based top-k / top-p, then an exponential race (graph-capturable sampling).
                sorted_probs, order = probs.sort(dim=-1, descending=True)
                before = sorted_probs.cumsum(dim=-1) - sorted_probs
                rank = torch.arange(probs.shape[1], device="cuda")
                keep = (rank < SAMPLING_TOP_K) & (before < SAMPLING_TOP_P)
                kept = torch.where(keep, sorted_probs, 0.0)
                race = kept / torch.empty_like(kept).exponential_()
                return order.gather(1, race.argmax(dim=-1, keepdim=True))

            yield Case(
                op="top_k_top_p_sampling_from_probs", label=label, tokens=batch, axis="batch",
                shape={"bs": batch, "V": vocab, "k": SAMPLING_TOP_K},
                implementations={
                    "fastdeploy_ops": lambda probs=probs, out=out: sampling.top_k_top_p_sampling_from_probs(
                        probs, SAMPLING_TOP_K, SAMPLING_TOP_P, seed=1234, out=out),
                    "torch": torch_sample,
                },
                bytes_moved=4 * probs.numel() + 8 * batch,
            )


def speculate_update_cases(torch: Any) -> Iterator[Case]:
    from .. import speculative

    for batch in SPECULATIVE_BATCHES:
        draft = SPECULATIVE_DRAFT
        generator = torch.Generator(device="cuda").manual_seed(batch)

        def ints(high: int, shape: tuple[int, ...], dtype: Any = torch.int32) -> Any:
            return torch.randint(0, high, shape, device="cuda", generator=generator, dtype=dtype)

        encoder, decoder = torch.zeros(batch, device="cuda", dtype=torch.int32), ints(8192, (batch,))
        not_need_stop = torch.ones(1, device="cuda", dtype=torch.bool)
        draft_tokens, accept_tokens = ints(152064, (batch, draft), torch.int64), ints(
            152064, (batch, draft), torch.int64)
        draft_nums, accept_num = ints(draft, (batch,)) + 1, ints(draft, (batch,)) + 1
        stop_flags = torch.zeros(batch, device="cuda", dtype=torch.bool)
        this_time = torch.full((batch,), draft + 1, device="cuda", dtype=torch.int32)
        block_step = torch.zeros(batch, device="cuda", dtype=torch.bool)
        stop_nums = torch.tensor([batch], device="cuda", dtype=torch.int64)
        args = (encoder, decoder, not_need_stop, draft_tokens, draft_nums, accept_tokens,
                accept_num, stop_flags, this_time, block_step, stop_nums)
        yield Case(
            op="speculate_update", label=f"draft {draft}", tokens=batch, axis="batch",
            shape={"bs": batch, "draft": draft},
            implementations={"fastdeploy_ops": lambda args=args: speculative.speculate_update(*args)},
            bytes_moved=batch * (4 * 6 + 3 + 8 * 2 * draft),
        )


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


OPS: dict[str, Callable[[Any], Iterator[Case]]] = {
    "grouped_topk": grouped_topk_cases,
    "gelu_tanh": gelu_tanh_cases,
    "rebuild_padding": rebuild_padding_cases,
    "fused_rotary_position_encoding": rotary_cases,
    "get_token_penalty_multi_scores": penalty_cases,
    "top_k_renorm_probs": top_k_renorm_cases,
    "top_k_top_p_sampling_from_probs": top_k_top_p_sampling_cases,
    "speculate_update": speculate_update_cases,
    "paged_decode_attention": paged_decode_cases,
    "per_token_quant": per_token_quant_cases,
}
