"""Runs chosen cases of ``python -m fastdeploy_ops.bench`` once each inside a profiler range, for
``ncu --profile-from-start off``: ``python profile_cases.py OP:LABEL:SIZE ...``.

Each case's implementation of ours is called twice first (allocation, first-launch setup), then
once per case between ``cudaProfilerStart`` and ``cudaProfilerStop``, so ncu sees only those
kernels, in the order given.
"""

import sys

import torch

from fastdeploy_ops.bench.__main__ import discover_ops


def main(specs: list[str]) -> None:
    wanted: dict[str, set[tuple[str, int]]] = {}
    for spec in specs:
        op, label, size = spec.split(":")
        wanted.setdefault(op, set()).add((label, int(size)))
    ops = discover_ops()
    calls = []
    for op, cases in wanted.items():
        for case in ops[op](torch):
            if (case.label, case.tokens) in cases:
                call = case.implementations["fastdeploy_ops"]
                call()
                call()
                calls.append(call)
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    for call in calls:
        call()
        torch.cuda.synchronize()
    torch.cuda.profiler.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
