"""CUDA-event timing: eager calls, and GPU time per call from CUDA graphs (PyTorch at run time).

Three numbers per implementation:

- *eager*: one ordinary call on an idle GPU after an L2 flush; launch cost and the Python call
  path count.
- *cold*: GPU time per call with a cold L2. One graph holds ``calls`` repetitions of (flush,
  call), a second graph the same flushes alone; a sample is their difference over ``calls``.
  Graph launch latency cancels, which a single-call graph cannot do (on an H100 it adds ~3 µs).
- *warm*: GPU time per call of ``calls`` back-to-back calls in one graph, data left in L2 by
  the previous call, as in a model's forward pass where the producer of the input ran just
  before.

The flush reads a buffer of twice the L2 size (a reduction), so the lines it leaves are clean
and the timed call pays no write-back of the flush's own data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .results import Stats, summarize

# Aim for this much GPU time per replayed graph, so a sample is well above event resolution.
_TARGET_GRAPH_US = 2000.0
_MAX_CALLS = 20


class Timer:
    """Times callables on the current CUDA device (see the module docstring for the method)."""

    def __init__(self, torch: Any, repetitions: int = 50, warmup: int = 10) -> None:
        if repetitions < 50:
            raise ValueError(f"bench: argument 'repetitions' must be at least 50, got {repetitions}")
        self.torch = torch
        self.repetitions = repetitions
        self.warmup = warmup
        l2_bytes = torch.cuda.get_device_properties(torch.cuda.current_device()).L2_cache_size
        words = 2 * max(l2_bytes, 1 << 20) // 8
        self._flush_buffer = torch.ones(words, dtype=torch.int64, device="cuda")

    def _flush(self) -> None:
        self._flush_buffer.sum()

    def _events(self) -> tuple[Any, Any]:
        return (self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True))

    def _elapsed_us(self, run: Callable[[], object]) -> float:
        start, end = self._events()
        start.record()
        run()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e3

    def eager(self, fn: Callable[[], object]) -> Stats:
        """One ordinary call per sample on an idle GPU, L2 flushed before it."""
        for _ in range(self.warmup):
            fn()
        samples = []
        for _ in range(self.repetitions):
            self._flush()
            self.torch.cuda.synchronize()
            samples.append(self._elapsed_us(fn))
        return summarize(samples)

    def _capture(self, body: Callable[[], object], calls: int) -> Any:
        torch = self.torch
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                body()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(calls):
                body()
        for _ in range(3):
            graph.replay()
        return graph

    def graph(self, fn: Callable[[], object]) -> tuple[Stats, Stats]:
        """``(cold, warm)`` GPU time per call, from CUDA graphs (see the module docstring)."""
        probe = self._capture(fn, 1)
        single_us = min(self._elapsed_us(probe.replay) for _ in range(5))
        calls = max(1, min(_MAX_CALLS, int(_TARGET_GRAPH_US / max(single_us, 1.0))))

        def flushed_call() -> None:
            self._flush()
            fn()

        warm_graph = self._capture(fn, calls)
        cold_graph = self._capture(flushed_call, calls)
        flush_graph = self._capture(self._flush, calls)
        warm, cold = [], []
        for _ in range(self.repetitions):
            warm.append(self._elapsed_us(warm_graph.replay) / calls)
            with_call = self._elapsed_us(cold_graph.replay)
            flush_only = self._elapsed_us(flush_graph.replay)
            cold.append((with_call - flush_only) / calls)
        return summarize(cold), summarize(warm)

    def streaming_bandwidth(self, nbytes: int = 1 << 30) -> float:
        """Bytes per second of a device-to-device copy (read + write counted), median of 20."""
        torch = self.torch
        src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        dst = torch.empty_like(src)
        samples = [self._elapsed_us(lambda: dst.copy_(src)) * 1e-6 for _ in range(25)][5:]
        return 2 * nbytes / sorted(samples)[len(samples) // 2]
