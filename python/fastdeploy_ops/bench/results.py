"""Benchmark results: statistics, and the markdown / JSON / PNG writers (no GPU needed)."""

from __future__ import annotations

import json
import pathlib
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from .targets import TARGETS, Target


@dataclass(frozen=True)
class Stats:
    """Median and interquartile range of repeated timings, in microseconds."""

    median_us: float
    q1_us: float
    q3_us: float
    repetitions: int

    @property
    def iqr_us(self) -> float:
        return self.q3_us - self.q1_us


def summarize(samples_us: Sequence[float]) -> Stats:
    """Median and quartiles of ``samples_us`` (at least two samples)."""
    if len(samples_us) < 2:
        raise ValueError(f"summarize: need at least 2 samples, got {len(samples_us)}")
    q1, median, q3 = statistics.quantiles(samples_us, n=4, method="inclusive")
    return Stats(median, q1, q3, len(samples_us))


@dataclass(frozen=True)
class Measurement:
    """One implementation of one op at one shape."""

    op: str
    case: str  # the model/config label, e.g. "DeepSeek-V3"
    tokens: int  # the swept size: tokens, or batch rows for per-sequence ops (see axis)
    implementation: str  # "fastdeploy_ops", "unfused", "torch"
    eager: Stats  # one ordinary call, launch and Python call path included
    cold: Stats  # GPU time per call from a CUDA graph, L2 flushed before each call
    warm: Stats  # GPU time per call, back-to-back calls in a CUDA graph
    bytes_moved: int
    bandwidth_fraction: float  # bytes_moved / cold median / measured streaming bandwidth
    shape: Mapping[str, int] = field(default_factory=dict)
    axis: str = "tokens"  # what `tokens` counts
    flops: int = 0  # the op's arithmetic (0: memory-bound, not reported)

    @property
    def tflops(self) -> float:
        """flops / cold median, in TFLOP/s."""
        return self.flops / (self.cold.median_us * 1e-6) / 1e12


def to_json(path: pathlib.Path, device: Mapping[str, object], rows: Sequence[Measurement]) -> None:
    path.write_text(json.dumps({"device": dict(device), "results": [asdict(r) for r in rows]},
                               indent=1) + "\n")


def _in_scope(target: Target, row: Measurement) -> bool:
    low, high = target.tokens
    return ((target.case is None or row.case == target.case)
            and (low is None or row.tokens >= low) and (high is None or row.tokens <= high))


def _scope(target: Target, axis: str) -> str:
    """The cases a target applies to, in words: "DeepSeek-V3, tokens ≤ 32"."""
    low, high = target.tokens
    parts = [target.case] if target.case else []
    if low is not None and low == high:
        parts.append(f"{axis} = {low}")
    else:
        parts += [f"{axis} ≥ {low}"] if low is not None else []
        parts += [f"{axis} ≤ {high}"] if high is not None else []
    return ", ".join(parts) or "all cases"


def summary(rows: Sequence[Measurement],
            targets: Mapping[str, Sequence[Target]]) -> list[tuple[str, str, str, str, str]]:
    """``(op, measured, cases, target, verdict)`` per target of each measured op, in the order
    of ``rows``; one row with target "—" and no verdict for an op without targets.

    Only our implementation (each op's first) counts. A target is judged on the worst of the
    cases it applies to (lowest BW, highest time), since it must hold at each; "measured" names
    that case. An op without targets shows its best BW over all its cases.
    """
    table: list[tuple[str, str, str, str, str]] = []
    for op in dict.fromkeys(r.op for r in rows):
        op_rows = [r for r in rows if r.op == op]
        ours = [r for r in op_rows if r.implementation == op_rows[0].implementation]
        axis = op_rows[0].axis
        if not targets.get(op):
            best = max(ours, key=lambda r: r.bandwidth_fraction)
            table.append((op, f"best BW {best.bandwidth_fraction:.0%} ({best.case}, {axis} "
                              f"{best.tokens})", "all cases", "—", ""))
            continue
        for target in targets[op]:
            scoped = [r for r in ours if _in_scope(target, r)]
            if target.kind == "bandwidth":
                goal = f"BW ≥ {target.value:.0%}"
            else:
                goal = f"≤ {target.value:.2f} µs {target.timing}"
            if not scoped:
                table.append((op, "no case measured", _scope(target, axis), goal, ""))
                continue
            if target.kind == "bandwidth":
                worst = min(scoped, key=lambda r: r.bandwidth_fraction)
                got = f"BW {worst.bandwidth_fraction:.0%}"
                met = worst.bandwidth_fraction >= target.value
            else:
                worst = max(scoped, key=lambda r: getattr(r, target.timing).median_us)
                time_us = getattr(worst, target.timing).median_us
                got, met = f"{time_us:.2f} µs {target.timing}", time_us <= target.value
            table.append((op, f"{got} ({worst.case}, {axis} {worst.tokens})",
                          _scope(target, axis), goal, "met" if met else "missed"))
    return table


def to_markdown(device: Mapping[str, object], rows: Sequence[Measurement],
                targets: Mapping[str, Sequence[Target]] = TARGETS,
                notes: Mapping[str, str] | None = None) -> str:
    """The summary against ``targets`` (see :func:`summary`), then one table per op: each
    (case, T) row; per implementation the cold, warm and eager medians. ``notes[op]``, if any,
    is a paragraph under the op's heading (what its BW means, for instance)."""
    lines = ["# fastdeploy_ops kernel benchmarks", ""]
    lines += [f"- {key}: {value}" for key, value in device.items()]
    lines += [
        "",
        "**Against the targets** (`fastdeploy_ops/bench/targets.py`): per target, our worst case "
        "among those it applies to, since it must hold at each; BW as in the tables below. An "
        "op without a target shows its best BW.",
        "",
        "| op | measured | cases | target | verdict |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in summary(rows, targets)]
    lines += [
        "",
        "Times are medians in µs (IQR in brackets). *cold*: GPU time per call from a CUDA graph, "
        "L2 flushed before each call (the flushes are timed alone and subtracted); *warm*: GPU "
        "time per call of back-to-back calls in a CUDA graph; *eager*: one ordinary call on an "
        "idle GPU, launch and Python call path included. *BW*: bytes moved / cold time as a "
        "fraction of the measured streaming bandwidth. *TFLOP/s* (compute-bound ops): the op's "
        "arithmetic over our cold time. *vs X*: X's time over ours, cold / warm.",
    ]
    for op in dict.fromkeys(r.op for r in rows):
        op_rows = [r for r in rows if r.op == op]
        impls = list(dict.fromkeys(r.implementation for r in op_rows))
        header = ["case", op_rows[0].axis] + [f"{i} {kind}" for i in impls for kind in ("cold", "warm", "eager")]
        compute_bound = any(r.flops for r in op_rows)
        header += ["BW"] + (["TFLOP/s"] if compute_bound else []) + [f"vs {i}" for i in impls[1:]]
        lines += ["", f"## {op}", ""]
        lines += [notes[op], ""] if notes and notes.get(op) else []
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for case, tokens in dict.fromkeys((r.case, r.tokens) for r in op_rows):
            by_impl = {r.implementation: r for r in op_rows if (r.case, r.tokens) == (case, tokens)}
            cells = [case, str(tokens)]
            for impl in impls:
                r = by_impl.get(impl)
                for kind in ("cold", "warm", "eager"):
                    s = getattr(r, kind) if r else None
                    cells.append(f"{s.median_us:.2f} [{s.iqr_us:.2f}]" if s else "-")
            ours = by_impl.get(impls[0])
            cells.append(f"{ours.bandwidth_fraction:.0%}" if ours else "-")
            if compute_bound:
                cells.append(f"{ours.tflops:.0f}" if ours and ours.flops else "-")
            for impl in impls[1:]:
                other = by_impl.get(impl)
                if ours and other:
                    cells.append(f"{other.cold.median_us / ours.cold.median_us:.2f}× / "
                                 f"{other.warm.median_us / ours.warm.median_us:.2f}×")
                else:
                    cells.append("-")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(path: pathlib.Path, op: str, rows: Sequence[Measurement]) -> bool:
    """Time against tokens, one line per (case, implementation), log-log. False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(8, 5))
    for case in dict.fromkeys(r.case for r in rows):
        for impl in dict.fromkeys(r.implementation for r in rows):
            line = sorted((r.tokens, r.cold.median_us) for r in rows
                          if r.case == case and r.implementation == impl)
            if line:
                axes.plot(*zip(*line), marker="o", label=f"{case}: {impl}")
    axes.set(xscale="log", yscale="log", xlabel=rows[0].axis if rows else "tokens",
             ylabel="GPU time per call, cold L2 (µs)",
             title=op)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
