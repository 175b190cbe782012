"""Kernel benchmarks: ``python -m fastdeploy_ops.bench --out DIR``.

For each op and shape: our kernel, the unfused path where one exists, and a framework
reference written with torch operations; time per call measured with CUDA events: eager (launch
and Python call path included), and GPU time from CUDA graphs with a cold L2 (flushed before
every call) and a warm one (back-to-back calls), see ``timing``; bytes moved and the fraction of the device's measured streaming bandwidth. Results are written
as a markdown table, JSON and one PNG plot per op. Needs PyTorch with CUDA at run time; importing
this package does not.
"""

from .results import Measurement, Stats, summarize

__all__ = ["Measurement", "Stats", "summarize"]
