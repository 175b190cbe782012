"""The torch operators on the GPU: a decode step compiled by inductor into a CUDA graph.

The step calls, through the typed API, paged_kv_append (with rotary), paged_decode_attention,
fused_rotary_position_encoding, grouped_topk, get_token_penalty_multi_scores and
top_k_top_p_sampling_from_probs. Compiled with ``fullgraph=True`` (any graph break is an error)
and ``mode="reduce-overhead"`` (inductor's CUDA graphs), its results must equal the eager step's
bit for bit: the same kernels run on the same inputs. The KV cache is a module buffer, as in a
model, so that its in-place update does not keep inductor from capturing the graph; the test
checks that no capture was skipped.

``torch.library.opcheck`` of every operator with the inputs of the whole suite: run the suite
with ``FASTDEPLOY_OPS_OPCHECK=<log file>`` (see conftest.py).
"""

from __future__ import annotations

import pytest

from fastdeploy_ops import attention, moe_routing, penalty, rotary, sampling
from fastdeploy_ops.testing import requires_op

torch = pytest.importorskip("torch")

pytestmark = [
    requires_op("paged_decode_attention"),
    pytest.mark.skipif(not torch.cuda.is_available(), reason="torch has no CUDA device"),
]

BS, HEADS, KV_HEADS, HEAD_DIM, BLOCK, VOCAB, EXPERTS = 8, 32, 8, 128, 16, 32000, 256


class DecodeStep(torch.nn.Module):
    """One decode step of a model's attention, MoE routing and sampling, our ops only."""

    def __init__(self, blocks: int) -> None:
        super().__init__()
        shape = (blocks, KV_HEADS, BLOCK, HEAD_DIM)
        self.register_buffer("key_cache", torch.randn(shape, device="cuda").to(torch.bfloat16))
        self.register_buffer("value_cache", torch.randn(shape, device="cuda").to(torch.bfloat16))

    def forward(self, query, key, value, positions, cos_sin, block_tables, cache_lens,
                cu_seqlens, router_logits, bias, token_ids, logits, scores, lengths, eos,
                bad_lengths, probs):
        query = query.clone()  # rotated in place: a copy, so the step's inputs stay unchanged
        attention.paged_kv_append(key, value, self.key_cache, self.value_cache, block_tables,
                                  cache_lens, cu_seqlens, query=query, cos_sin_cache=cos_sin,
                                  check_metadata=False)
        out = attention.paged_decode_attention(query, self.key_cache, self.value_cache,
                                               block_tables, cache_lens + 1,
                                               check_metadata=False)
        rotated, _ = rotary.fused_rotary_position_encoding(out.clone(), None, positions, cos_sin,
                                                           HEAD_DIM)
        _, weights, experts = moe_routing.grouped_topk(router_logits, bias, 8, 4, 8)
        logits = penalty.get_token_penalty_multi_scores(
            token_ids, logits.clone(), scores, scores * 0.1, scores * 0.2, scores + 0.5,
            token_ids[:, :2].contiguous(), bad_lengths, lengths, lengths, lengths, eos)
        samples = sampling.top_k_top_p_sampling_from_probs(probs, 50, 0.9, 1234, 7)
        return out, rotated, weights, experts, logits, samples


def step_inputs(generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    def randn(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device="cuda").to(dtype)

    contexts = torch.randint(1, 200, (BS,), generator=generator, device="cuda", dtype=torch.int32)
    per_seq = 200 // BLOCK + 1
    tables = torch.arange(BS * per_seq, device="cuda", dtype=torch.int32).view(BS, per_seq)
    lengths = torch.full((BS, 1), 3, device="cuda", dtype=torch.int64)
    probs = torch.softmax(randn(BS, VOCAB), dim=-1)
    return (randn(BS, HEADS, HEAD_DIM, dtype=torch.bfloat16),
            randn(BS, KV_HEADS, HEAD_DIM, dtype=torch.bfloat16),
            randn(BS, KV_HEADS, HEAD_DIM, dtype=torch.bfloat16),
            contexts, randn(4096, HEAD_DIM, dtype=torch.bfloat16), tables, contexts,
            torch.arange(BS + 1, device="cuda", dtype=torch.int32), randn(BS, EXPERTS),
            randn(EXPERTS) * 0.1,
            torch.randint(0, VOCAB, (BS, 64), generator=generator, device="cuda"),
            randn(BS, VOCAB), randn(BS, 1).abs() + 1.0, lengths,
            torch.tensor([2], device="cuda"), torch.full_like(lengths, 2), probs)


@pytest.mark.timeout(300)  # inductor compiles the step first
def test_compiled_decode_step_matches_eager_in_a_cuda_graph() -> None:
    counters = torch._dynamo.utils.counters
    torch._dynamo.reset()
    counters.clear()
    generator = torch.Generator(device="cuda").manual_seed(0)
    inputs = step_inputs(generator)
    blocks = BS * (200 // BLOCK + 1)
    eager_step = DecodeStep(blocks)
    compiled_step = DecodeStep(blocks)
    compiled_step.load_state_dict(eager_step.state_dict())
    compiled = torch.compile(compiled_step, fullgraph=True, mode="reduce-overhead")

    want = eager_step(*inputs)
    for _ in range(3):  # the first call warms up, the next ones record and replay the graph
        # Each step appends at the same positions, so the caches end equal to the eager one.
        got = compiled(*inputs)
        got = [t.clone() for t in got]  # the graph's outputs are overwritten by the next replay
    torch.cuda.synchronize()

    names = ["out", "rotated", "weights", "experts", "logits", "samples"]
    for name, g, w in zip(names, got, want, strict=True):
        assert torch.equal(g, w), name
    assert torch.equal(compiled_step.key_cache, eager_step.key_cache)
    assert torch.equal(compiled_step.value_cache, eager_step.value_cache)
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] == 1, dict(counters["stats"])
    assert not counters["inductor"].get("cudagraph_skips"), dict(counters["inductor"])
