"""Host time of one call (the call path, not the kernel): our ops next to torch's own.

Each op is called with tiny inputs ``calls`` times back to back and the wall time is divided by
``calls``. Launches are asynchronous and a batch stays well within the launch queue, so the
host never waits for the GPU: what is measured is the host's time per call, the kernel's time
excluded (one synchronisation after each batch, outside the timing). The median of ``rounds``
batches is reported.

Per op: the typed API with torch tensors (through ``torch.ops.fastdeploy_ops``), the operator
called directly with preallocated outputs, the typed API with CuPy arrays, and in the same run
torch's own op of similar arity (as many tensor arguments, the same kind of work where torch has
it: ``gelu``, ``topk``, ``addcmul``, ``scaled_dot_product_attention``, ``cat`` of as many
tensors) and ``torch.add`` (two inputs and ``out``) for scale; with CuPy, CuPy's own
``cupy.add(a, b)`` (two inputs, a new output) as the scale of its column. Targets: the torch path
at most 1.5x torch's op of similar arity, other frameworks at most 10 µs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TORCH_RATIO_TARGET = 1.5
OTHER_FRAMEWORK_TARGET_US = 10.0


@dataclass(frozen=True)
class Overhead:
    """Host µs per call of one op by each path (``None``: not measured here)."""

    op: str
    typed_torch_us: float
    operator_us: float
    cupy_us: float | None
    reference: str
    reference_us: float
    add_us: float | None = None  # torch.add(a, b, out=c) in the same run
    cupy_add_us: float | None = None  # cupy.add(a, b), a new output, in the same run

    @property
    def ratio(self) -> float:
        return self.typed_torch_us / self.reference_us


def host_us_per_call(torch: Any, fn: Callable[[], object], calls: int = 300,
                     rounds: int = 7) -> float:
    """Median over ``rounds`` of the host time per call of ``calls`` back-to-back calls."""
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
        torch.cuda.synchronize()
    return statistics.median(samples)


Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class _Case:
    op: str
    typed: Callable[[Convert], Callable[[], object]]  # the typed API's call, inputs converted
    operator: Callable[[], object]  # torch.ops.fastdeploy_ops.<op>, outputs preallocated
    reference: str  # torch's op of similar arity
    reference_call: Callable[[], object]


def _cases(torch: Any) -> list[_Case]:
    """Tiny inputs on the GPU for a few ops of different arity."""
    from .. import activation, attention, moe_routing, penalty, rotary, sampling  # noqa: PLC0415

    ops = torch.ops.fastdeploy_ops
    cuda = {"device": "cuda"}
    bf16 = {"device": "cuda", "dtype": torch.bfloat16}
    i32 = {"device": "cuda", "dtype": torch.int32}
    i64 = {"device": "cuda", "dtype": torch.int64}
    a, b, c, d = (torch.randn(8, 64, **cuda) for _ in range(4))
    topk_input = torch.randn(1, 256, **cuda)
    topk = ("torch.topk", lambda: torch.topk(topk_input, 8))

    x = torch.randn(8, 64, **bf16)
    x_out = torch.empty_like(x)
    logits, bias = torch.randn(1, 256, **cuda), torch.randn(256, **cuda)
    routed = (torch.empty(1, 256, **cuda), torch.empty(1, 8, **cuda), torch.empty(1, 8, **i64))
    q, k = torch.randn(1, 32 * 128, **bf16), torch.randn(1, 8 * 128, **bf16)
    positions = torch.zeros(1, **i32)
    cos_sin = torch.randn(64, 128, **bf16)
    query = torch.randn(1, 8, 128, **bf16)
    caches = (torch.randn(2, 8, 16, 128, **bf16), torch.randn(2, 8, 16, 128, **bf16))
    tables = torch.tensor([[0, 1]], **i32)
    seq_lens = torch.tensor([20], **i32)
    attention_out = torch.empty_like(query)
    probs = torch.softmax(torch.randn(1, 1000, **cuda), dim=-1)
    samples = torch.empty(1, **i64)
    ids = torch.zeros(1, 16, **i64)
    row = torch.ones(1, 1, **cuda)
    lengths = torch.ones(1, 1, **i64)
    penalty_args = (ids, torch.randn(1, 1000, **cuda), row, row, row, row, ids[:, :2].clone(),
                    lengths, lengths, lengths, lengths, torch.tensor([2], **i64))
    # Dense K/V of the decode case for SDPA: [batch, kv_heads, tokens, head_dim].
    dense = (query[:, :, None], torch.randn(1, 8, 20, 128, **bf16),
             torch.randn(1, 8, 20, 128, **bf16))
    pieces = [torch.randn(1, 1, **cuda) for _ in penalty_args]
    joined = torch.empty(len(pieces), 1, **cuda)

    def convert_all(convert: Convert, *tensors: Any) -> list[Any]:
        return [convert(t) for t in tensors]

    def gelu(convert: Convert) -> Callable[[], object]:
        (xc,) = convert_all(convert, x)
        return lambda: activation.gelu_tanh(xc)

    def route(convert: Convert) -> Callable[[], object]:
        lc, bc = convert_all(convert, logits, bias)
        return lambda: moe_routing.grouped_topk(lc, bc, 8, 4, 8)

    def rotate(convert: Convert) -> Callable[[], object]:
        args = convert_all(convert, q, k, positions, cos_sin)
        return lambda: rotary.fused_rotary_position_encoding(*args, 128)

    def attend(convert: Convert) -> Callable[[], object]:
        args = convert_all(convert, query, *caches, tables, seq_lens)
        return lambda: attention.paged_decode_attention(*args, check_metadata=False)

    def sample(convert: Convert) -> Callable[[], object]:
        (pc,) = convert_all(convert, probs)
        return lambda: sampling.top_k_top_p_sampling_from_probs(pc, 20, 0.9, 1)

    def penalize(convert: Convert) -> Callable[[], object]:
        args = convert_all(convert, *penalty_args)
        return lambda: penalty.get_token_penalty_multi_scores(*args)

    return [
        _Case("gelu_tanh", gelu, lambda: ops.gelu_tanh(x, x_out), "torch.nn.functional.gelu",
              lambda: torch.nn.functional.gelu(x, approximate="tanh")),
        _Case("grouped_topk", route,
              lambda: ops.grouped_topk(logits, bias, *routed, 8, 4, 8, True, 1.0), *topk),
        _Case("fused_rotary_position_encoding", rotate,
              lambda: ops.fused_rotary_position_encoding(q, k, positions, cos_sin, 128, True),
              "torch.addcmul", lambda: torch.addcmul(a, b, c, out=d)),
        _Case("paged_decode_attention", attend,
              lambda: ops.paged_decode_attention(query, attention_out, *caches, tables, seq_lens,
                                                 None, None, 0.088, 0, False),
              "torch.nn.functional.scaled_dot_product_attention",
              lambda: torch.nn.functional.scaled_dot_product_attention(*dense, scale=0.088,
                                                                       enable_gqa=True)),
        _Case("top_k_top_p_sampling_from_probs", sample,
              lambda: ops.top_k_top_p_sampling_from_probs(probs, None, 20, None, 0.9, 1, 0,
                                                          samples), *topk),
        _Case("get_token_penalty_multi_scores", penalize,
              lambda: ops.get_token_penalty_multi_scores(*penalty_args),
              f"torch.cat ({len(pieces)} tensors)", lambda: torch.cat(pieces, out=joined)),
    ]


def measure(torch: Any) -> list[Overhead]:
    """Every case's host time per call by every path, in one run."""
    try:
        import cupy  # noqa: PLC0415
    except ImportError:
        cupy = None
    a, b, c = (torch.randn(8, 64, device="cuda") for _ in range(3))
    add_us = host_us_per_call(torch, lambda: torch.add(a, b, out=c))
    cupy_add_us = None
    if cupy is not None:
        ca, cb = cupy.from_dlpack(a), cupy.from_dlpack(b)
        cupy_add_us = host_us_per_call(torch, lambda: cupy.add(ca, cb))
    rows = []
    for case in _cases(torch):
        cupy_us = None
        if cupy is not None:
            cupy_us = host_us_per_call(torch, case.typed(cupy.from_dlpack))
        rows.append(Overhead(
            op=case.op,
            typed_torch_us=host_us_per_call(torch, case.typed(lambda t: t)),
            operator_us=host_us_per_call(torch, case.operator),
            cupy_us=cupy_us,
            reference=case.reference,
            reference_us=host_us_per_call(torch, case.reference_call),
            add_us=add_us,
            cupy_add_us=cupy_add_us))
    return rows


def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def to_markdown(rows: list[Overhead]) -> str:
    """The table of :func:`measure`'s rows with each target, met or missed."""
    lines = [
        "## Host time per call (tiny inputs; median of 7 batches of 300 calls)",
        "",
        f"Targets: typed API with torch tensors <= {TORCH_RATIO_TARGET}x torch's own op of "
        f"similar arity; CuPy <= {OTHER_FRAMEWORK_TARGET_US:g} µs.",
        "",
        "| op | typed API, torch (µs) | operator, direct (µs) | typed API, CuPy (µs) | "
        "torch's op of similar arity | its µs | torch ratio | torch target | CuPy target | "
        "torch.add (µs) | cupy.add (µs) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cupy_met = ("n/a" if r.cupy_us is None
                    else "met" if r.cupy_us <= OTHER_FRAMEWORK_TARGET_US else "missed")
        torch_met = "met" if r.ratio <= TORCH_RATIO_TARGET else "missed"
        lines.append(f"| {r.op} | {r.typed_torch_us:.1f} | {r.operator_us:.1f} | "
                     f"{_us(r.cupy_us)} | {r.reference} | {r.reference_us:.1f} | {r.ratio:.2f}x | "
                     f"{torch_met} | {cupy_met} | {_us(r.add_us)} | {_us(r.cupy_add_us)} |")
    return "\n".join(lines) + "\n"
