"""CUDA-event timing with a cold L2, eager and inside a CUDA graph (PyTorch at run time)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .results import Stats, summarize


class Timer:
    """Times callables on the current CUDA device, flushing L2 before every timed call."""

    def __init__(self, torch: Any, repetitions: int = 50, warmup: int = 10) -> None:
        if repetitions < 50:
            raise ValueError(f"bench: argument 'repetitions' must be at least 50, got {repetitions}")
        self.torch = torch
        self.repetitions = repetitions
        self.warmup = warmup
        l2_bytes = torch.cuda.get_device_properties(torch.cuda.current_device()).L2_cache_size
        # Writing twice the L2 size evicts everything the previous call left there.
        self._flush_buffer = torch.empty(2 * max(l2_bytes, 1 << 20), dtype=torch.uint8, device="cuda")

    def _events(self) -> tuple[Any, Any]:
        return (self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True))

    def eager(self, fn: Callable[[], object]) -> Stats:
        """One ordinary call per sample; the GPU is idle when it starts, so launch cost counts."""
        for _ in range(self.warmup):
            fn()
        samples = []
        for _ in range(self.repetitions):
            self._flush_buffer.zero_()
            self.torch.cuda.synchronize()
            start, end = self._events()
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) * 1e3)
        return summarize(samples)

    def graph(self, fn: Callable[[], object]) -> Stats:
        """One call captured in a CUDA graph; replays queue behind the flush: GPU time only."""
        torch = self.torch
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        for _ in range(self.warmup):
            graph.replay()
        samples = []
        for _ in range(self.repetitions):
            self._flush_buffer.zero_()
            start, end = self._events()
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) * 1e3)
        return summarize(samples)

    def streaming_bandwidth(self, nbytes: int = 1 << 30) -> float:
        """Bytes per second of a device-to-device copy (read + write counted), median of 20."""
        torch = self.torch
        src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        dst = torch.empty_like(src)
        samples = []
        for _ in range(25):
            start, end = self._events()
            start.record()
            dst.copy_(src)
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) * 1e-3)
        return 2 * nbytes / sorted(samples[5:])[len(samples[5:]) // 2]
