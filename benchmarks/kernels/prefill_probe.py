"""A quick GPU probe of paged_prefill_attention, for comparing kernel variants in one device call.

Run on a GPU machine with torch, one wheel on PYTHONPATH: ``python prefill_probe.py TAG``. It
prints, each line starting with TAG:

- checks: the output against torch SDPA in float32 over the cache gathered densely (head dims
  128 and 64; bf16 and fp16; one sequence, a ragged batch mixing decode tokens and chunks over
  prefixes, groups of 1, 4 and 5 query heads per KV head, a context split over partitions),
  with the kernel the plan names; a loose bound (0.03 bf16, 0.005 fp16: a smoke test, the
  suite's tests hold the per-element bound);
- eager timings (CUDA events, median of 20 after 3 warm-ups) of issue 13's shapes (32 q / 8 kv
  heads, head dim 128, bf16) next to SDPA on dense K/V in the same process, and decode;
- ``ALL_CHECKS OK`` or ``FAIL``, which a calling script can test before going on.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import torch

from fastdeploy_ops import attention
from fastdeploy_ops.bench.attention import _dense_sdpa  # the bench's SDPA baseline

BLOCK_SIZE = 16
Groups = list[tuple[int, int, int]]  # (new tokens, cached tokens, sequences)


def paged_inputs(groups: Groups, num_heads: int, kv_heads: int, head_dim: int,
                 dtype: torch.dtype) -> dict[str, Any]:
    """Packed queries and a paged cache (blocks shuffled, spare ones unused) for the groups."""
    new = [n for n, _, count in groups for _ in range(count)]
    lens = [n + c for n, c, count in groups for _ in range(count)]
    per_seq = [-(-length // BLOCK_SIZE) for length in lens]
    num_blocks = sum(per_seq) + 3
    key = torch.randn(num_blocks, kv_heads, BLOCK_SIZE, head_dim, device="cuda", dtype=dtype)
    ids = torch.randperm(num_blocks, device="cuda", dtype=torch.int32)
    tables = torch.full((len(lens), max(per_seq) + 2), -1, device="cuda", dtype=torch.int32)
    start = 0
    for b, n in enumerate(per_seq):
        tables[b, :n] = ids[start:start + n]
        start += n
    cu = torch.tensor([0] + new, device="cuda", dtype=torch.int32).cumsum(0, dtype=torch.int32)
    return {"query": torch.randn(sum(new), num_heads, head_dim, device="cuda", dtype=dtype),
            "cu": cu, "key": key, "value": torch.randn_like(key), "tables": tables,
            "lens": torch.tensor(lens, device="cuda", dtype=torch.int32), "new": new,
            "seq_lens": lens, "max_len": max(lens)}


def prefill(x: dict[str, Any]) -> torch.Tensor:
    return attention.paged_prefill_attention(x["query"], x["cu"], x["key"], x["value"],
                                             x["tables"], x["lens"], max_seq_len=x["max_len"])


def reference(x: dict[str, Any]) -> torch.Tensor:
    """SDPA in float32 per sequence over its cache gathered densely, bottom-right causal."""
    kv_heads, head_dim = x["key"].shape[1], x["key"].shape[3]
    outs = []
    for b, (new, length) in enumerate(zip(x["new"], x["seq_lens"])):
        blocks = x["tables"][b, :-(-length // BLOCK_SIZE)].long()
        k, v = (c[blocks].permute(1, 0, 2, 3).reshape(kv_heads, -1, head_dim)[:, :length].float()
                for c in (x["key"], x["value"]))
        first = int(x["cu"][b])
        q = x["query"][first:first + new].float().permute(1, 0, 2)
        mask = (torch.arange(length, device="cuda")[None, :]
                <= length - new + torch.arange(new, device="cuda")[:, None])
        out = torch.nn.functional.scaled_dot_product_attention(
            q[None], k[None], v[None], attn_mask=mask, enable_gqa=True)[0]
        outs.append(out.permute(1, 0, 2))
    return torch.cat(outs)


CHECKS: list[tuple[str, Groups, int, int, torch.dtype]] = [
    ("one_seq_300", [(300, 0, 1)], 32, 8, torch.bfloat16),
    ("ragged", [(1, 40, 3), (77, 500, 2), (130, 0, 1), (5, 3, 2), (260, 1000, 1)], 32, 8,
     torch.bfloat16),
    ("group1", [(200, 100, 2)], 8, 8, torch.bfloat16),
    ("group5", [(90, 31, 3)], 40, 8, torch.bfloat16),
    ("fp16", [(333, 64, 2)], 32, 4, torch.float16),
    ("long_split", [(37, 20000, 1)], 32, 8, torch.bfloat16),
    ("chunk2k_over4k", [(2048, 4096, 1)], 32, 8, torch.bfloat16),
]


def check_all(tag: str) -> bool:
    ok_all = True
    for head_dim in (128, 64):
        for name, groups, num_heads, kv_heads, dtype in CHECKS:
            x = paged_inputs(groups, num_heads, kv_heads, head_dim, dtype)
            plan = attention.paged_attention_plan(
                num_heads, kv_heads, head_dim, batch=len(x["new"]), block_size=BLOCK_SIZE,
                max_blocks_per_seq=x["tables"].shape[1], query_tokens=x["query"].shape[0],
                dtype=str(dtype).rpartition(".")[2], resident_blocks=132)
            got = prefill(x).float()
            error = (got - reference(x)).abs().max().item()
            ok = error < (0.03 if dtype == torch.bfloat16 else 0.005)  # NaN fails
            ok_all &= ok
            print(f"{tag} check {name}_hd{head_dim} kernel={plan.kernel}/{plan.threads}/"
                  f"splits{plan.num_splits} max_abs_err={error:.4g} {'OK' if ok else 'FAIL'}",
                  flush=True)
    return ok_all


def median_ms(fn: Callable[[], object], repetitions: int = 20) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repetitions):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        fn()
        end.record()
        end.synchronize()
        times.append(begin.elapsed_time(end))
    return sorted(times)[len(times) // 2]


TIMED: list[tuple[str, Groups]] = [
    ("prompt8k", [(8192, 0, 1)]),
    ("4x2k_over16k", [(2048, 16384, 4)]),
    ("prompt2k", [(2048, 0, 1)]),
    ("only_8x512", [(512, 0, 8)]),
    ("mixed_8x512_120dec", [(512, 0, 8), (1, 2047, 120)]),
]


def time_all(tag: str) -> None:
    for name, groups in TIMED:
        x = paged_inputs(groups, 32, 8, 128, torch.bfloat16)
        ms = median_ms(lambda x=x: prefill(x))
        flops = sum(4 * 32 * 128 * (n * c + n * (n + 1) // 2) for n, c, count in groups
                    for _ in range(count))
        result: dict[str, float] = {"ours_ms": ms, "ours_tflops": round(flops / ms / 1e9, 1)}
        if len(groups) == 1:  # SDPA has no mixed batch
            new, cached, batch = groups[0]
            sdpa_ms = median_ms(_dense_sdpa(torch, batch, new, cached, 32, 8, 128))
            result.update(sdpa_ms=sdpa_ms, sdpa_over_ours=round(sdpa_ms / ms, 3))
        print(f"{tag} {name} {json.dumps(result)}", flush=True)
    x = paged_inputs([(1, 2047, 120)], 32, 8, 128, torch.bfloat16)
    ms = median_ms(lambda: attention.paged_decode_attention(
        x["query"], x["key"], x["value"], x["tables"], x["lens"], max_seq_len=x["max_len"]))
    print(f"{tag} decode_120x2k {ms}", flush=True)


def main() -> None:
    tag = sys.argv[1]
    torch.manual_seed(0)
    ok = check_all(tag)
    time_all(tag)
    print(f"{tag} ALL_CHECKS {'OK' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
