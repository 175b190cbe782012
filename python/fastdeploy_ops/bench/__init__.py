"""Kernel benchmarks: ``python -m fastdeploy_ops.bench --out DIR``.

For each op and shape: our kernel, the unfused path where one exists, and a framework
reference written with torch operations; GPU time per call measured with CUDA events, both eager
(launch included) and inside a CUDA graph, with the L2 cache flushed before every timed call;
bytes moved and the fraction of the device's measured streaming bandwidth. Results are written
as a markdown table, JSON and one PNG plot per op. Needs PyTorch with CUDA at run time; importing
this package does not.
"""

from .results import Measurement, Stats, summarize

__all__ = ["Measurement", "Stats", "summarize"]
