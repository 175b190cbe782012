"""Benchmark results: statistics, and the markdown / JSON / PNG writers (no GPU needed)."""

from __future__ import annotations

import json
import pathlib
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field


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
    tokens: int
    implementation: str  # "fastdeploy_ops", "unfused", "torch"
    eager: Stats
    graph: Stats
    bytes_moved: int
    bandwidth_fraction: float  # bytes_moved / graph median / measured streaming bandwidth
    shape: Mapping[str, int] = field(default_factory=dict)


def to_json(path: pathlib.Path, device: Mapping[str, object], rows: Sequence[Measurement]) -> None:
    path.write_text(json.dumps({"device": dict(device), "results": [asdict(r) for r in rows]},
                               indent=1) + "\n")


def to_markdown(device: Mapping[str, object], rows: Sequence[Measurement]) -> str:
    """One table per op: each (case, T) row, each implementation's graph and eager medians."""
    lines = ["# fastdeploy_ops kernel benchmarks", ""]
    lines += [f"- {key}: {value}" for key, value in device.items()]
    lines += [
        "",
        "Times are medians in µs (IQR in brackets) over the repetitions, L2 flushed before every "
        "timed call. *graph*: GPU time of one call replayed from a CUDA graph; *eager*: one "
        "ordinary call, launch included. *BW*: bytes moved / graph time as a fraction of the "
        "measured streaming bandwidth. *vs*: our graph time against the other implementations'.",
    ]
    for op in dict.fromkeys(r.op for r in rows):
        op_rows = [r for r in rows if r.op == op]
        impls = list(dict.fromkeys(r.implementation for r in op_rows))
        header = ["case", "T"] + [f"{i} graph" for i in impls] + [f"{i} eager" for i in impls]
        header += ["BW"] + [f"vs {i}" for i in impls[1:]]
        lines += ["", f"## {op}", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        for case, tokens in dict.fromkeys((r.case, r.tokens) for r in op_rows):
            by_impl = {r.implementation: r for r in op_rows if (r.case, r.tokens) == (case, tokens)}
            cells = [case, str(tokens)]
            for kind in ("graph", "eager"):
                for impl in impls:
                    r = by_impl.get(impl)
                    s = getattr(r, kind) if r else None
                    cells.append(f"{s.median_us:.2f} [{s.iqr_us:.2f}]" if s else "-")
            ours = by_impl.get(impls[0])
            cells.append(f"{ours.bandwidth_fraction:.0%}" if ours else "-")
            for impl in impls[1:]:
                other = by_impl.get(impl)
                ratio = other.graph.median_us / ours.graph.median_us if ours and other else None
                cells.append(f"{ratio:.2f}×" if ratio else "-")
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
            line = sorted((r.tokens, r.graph.median_us) for r in rows
                          if r.case == case and r.implementation == impl)
            if line:
                axes.plot(*zip(*line), marker="o", label=f"{case}: {impl}")
    axes.set(xscale="log", yscale="log", xlabel="tokens", ylabel="GPU time per call in a graph (µs)",
             title=op)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
