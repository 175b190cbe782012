"""Benchmark cases of the moe_routing family: grouped top-k (fused, and its two steps) and
softmax top-k at the routing of real MoE models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import Case, CaseGenerator

# (E, n_group, topk_group, topk, renormalize, routed_scaling_factor), as FastDeploy PR #7777 tests.
ROUTING_CONFIGS = {
    "DeepSeek-V3": (256, 8, 4, 8, True, 2.5),
    "GLM-4.5-Air": (128, 1, 1, 8, True, 1.0),
    "Qwen3-30B-A3B": (128, 4, 2, 8, False, 1.0),
    "Kimi-K2": (384, 8, 2, 8, False, 1.0),
}
ROUTING_TOKENS = (1, 8, 32, 128, 256, 512, 1024, 2048, 4096, 8192)


def _torch_grouped_topk(torch: Any, x: Any, bias: Any, cfg: tuple) -> Any:
    """Grouped top-k as an engine without custom kernels computes it, with torch operations."""
    s = torch.sigmoid(x.float())
    return _torch_noaux_tc(torch, s, s + bias, cfg)


def _torch_noaux_tc(torch: Any, s: Any, u: Any, cfg: tuple) -> Any:
    """The selection of grouped top-k on sigmoid scores ``s`` and biased scores ``u`` (both
    ``[T, E]`` float32): the dense scores, top-k weights and indices."""
    experts, groups, topk_group, topk, renormalize, scale = cfg
    tokens = s.shape[0]
    group_scores = u.view(tokens, groups, experts // groups).topk(2, dim=-1).values.sum(-1)
    keep = torch.zeros_like(group_scores).scatter_(
        1, group_scores.topk(topk_group, dim=-1).indices, 1.0)
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
            x = torch.randn(tokens, experts, device="cuda", dtype=torch.bfloat16,
                            generator=generator)
            args = (groups, topk_group, topk, renormalize, scale)

            def unfused(x=x, bias=bias, args=args):
                scores, with_bias = mr.fused_cast_sigmoid_bias(x, bias)
                return mr.noaux_tc(scores, with_bias, *args)

            yield Case(
                op="grouped_topk", label=label, tokens=tokens,
                shape={"T": tokens, "E": experts, "n_group": groups, "topk": topk},
                implementations={
                    "fastdeploy_ops": lambda x=x, bias=bias, args=args:
                        mr.grouped_topk(x, bias, *args),
                    "unfused": unfused,
                    "torch": lambda x=x, bias=bias, cfg=cfg:
                        _torch_grouped_topk(torch, x, bias, cfg),
                },
                # bf16 logits and fp32 bias in; dense fp32 scores, fp32 values, int64 indices out.
                bytes_moved=tokens * experts * 2 + experts * 4 + tokens * experts * 4
                + tokens * topk * 12,
            )


def fused_cast_sigmoid_bias_cases(torch: Any) -> Iterator[Case]:
    from .. import moe_routing as mr

    generator = torch.Generator(device="cuda").manual_seed(2)
    for label, cfg in ROUTING_CONFIGS.items():
        experts = cfg[0]
        bias = (torch.rand(experts, device="cuda", generator=generator) - 0.5) * 0.1
        for tokens in ROUTING_TOKENS:
            x = torch.randn(tokens, experts, device="cuda", dtype=torch.bfloat16,
                            generator=generator)
            # fp32 outputs: what noaux_tc, the second step, takes.
            out = (torch.empty(tokens, experts, device="cuda"),
                   torch.empty(tokens, experts, device="cuda"))

            def torch_step(x=x, bias=bias):
                s = torch.sigmoid(x.float())
                return s, s + bias

            yield Case(
                op="fused_cast_sigmoid_bias", label=label, tokens=tokens,
                shape={"T": tokens, "E": experts},
                implementations={
                    "fastdeploy_ops": lambda x=x, bias=bias, out=out:
                        mr.fused_cast_sigmoid_bias(x, bias, out=out),
                    "torch": torch_step,
                },
                # bf16 logits and fp32 bias in; fp32 scores and biased scores out.
                bytes_moved=tokens * experts * 2 + experts * 4 + 2 * tokens * experts * 4,
            )


def noaux_tc_cases(torch: Any) -> Iterator[Case]:
    from .. import moe_routing as mr

    generator = torch.Generator(device="cuda").manual_seed(3)
    for label, cfg in ROUTING_CONFIGS.items():
        experts, groups, topk_group, topk, renormalize, scale = cfg
        bias = (torch.rand(experts, device="cuda", generator=generator) - 0.5) * 0.1
        for tokens in ROUTING_TOKENS:
            # The first step's outputs. The op overwrites `scores` with the dense row; the
            # selection reads only the biased scores, so every call does the same work.
            scores = torch.sigmoid(torch.randn(tokens, experts, device="cuda",
                                               generator=generator))
            with_bias = scores + bias
            out = (torch.empty(tokens, topk, device="cuda"),
                   torch.empty(tokens, topk, device="cuda", dtype=torch.int64))
            args = (groups, topk_group, topk, renormalize, scale)
            yield Case(
                op="noaux_tc", label=label, tokens=tokens,
                shape={"T": tokens, "E": experts, "n_group": groups, "topk": topk},
                implementations={
                    "fastdeploy_ops": lambda scores=scores, with_bias=with_bias, args=args,
                        out=out: mr.noaux_tc(scores, with_bias, *args, out=out),
                    "torch": lambda scores=scores, with_bias=with_bias, cfg=cfg:
                        _torch_noaux_tc(torch, scores, with_bias, cfg),
                },
                # fp32 biased scores read, the picked scores read, the dense fp32 row written;
                # fp32 values and int64 indices out.
                bytes_moved=tokens * experts * 4 * 2 + tokens * topk * (4 + 12),
            )


# Softmax top-k routing (E, topk), normalised weights: Qwen3-30B-A3B, Qwen2-57B-A14B, Mixtral.
SOFTMAX_ROUTING_CONFIGS = {
    "Qwen3-30B-A3B": (128, 8),
    "Qwen2-57B-A14B": (64, 8),
    "Mixtral-8x7B": (8, 2),
}


def moe_topk_select_cases(torch: Any) -> Iterator[Case]:
    from .. import moe_routing as mr

    generator = torch.Generator(device="cuda").manual_seed(1)
    for label, (experts, topk) in SOFTMAX_ROUTING_CONFIGS.items():
        for tokens in ROUTING_TOKENS:
            x = torch.randn(tokens, experts, device="cuda", generator=generator)
            out = (torch.empty(tokens, topk, device="cuda", dtype=torch.int64),
                   torch.empty(tokens, topk, device="cuda", dtype=torch.float32))

            def torch_select(x=x, topk=topk):
                weights, ids = torch.softmax(x, dim=-1).topk(topk, dim=-1)
                return ids, weights / weights.sum(dim=-1, keepdim=True)

            yield Case(
                op="moe_topk_select", label=label, tokens=tokens,
                shape={"T": tokens, "E": experts, "topk": topk},
                implementations={
                    "fastdeploy_ops": lambda x=x, topk=topk, out=out:
                        mr.moe_topk_select(x, None, topk, apply_norm_weight=True,
                                           enable_softmax_top_k_fused=True, out=out),
                    "torch": torch_select,
                },
                # fp32 logits in; int64 ids and fp32 weights out.
                bytes_moved=tokens * experts * 4 + tokens * topk * 12,
            )


OPS: dict[str, CaseGenerator] = {
    "fused_cast_sigmoid_bias": fused_cast_sigmoid_bias_cases,
    "grouped_topk": grouped_topk_cases,
    "moe_topk_select": moe_topk_select_cases,
    "noaux_tc": noaux_tc_cases,
}
