"""``python -m fastdeploy_ops.bench [--ops OP ...] [--out DIR] [--repetitions N] [--no-overhead]``.

Writes results.md, results.json and one PNG per op; unless ``--no-overhead``, also the host
time per call of a few ops next to torch's own (:mod:`.overhead`): call-overhead.md and .json.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import pathlib
import pkgutil
import sys

from ..errors import OpUnavailableError
from .common import CaseGenerator
from .results import Measurement, plot, to_json, to_markdown


def discover_ops() -> dict[str, CaseGenerator]:
    """op -> its case generator, from the ``OPS`` of every module of this package that has one
    (one module per family, ``bench/<family>.py``), so that a new family's cases need no entry
    here.

    Raises:
        RuntimeError: two modules have cases for the same op.
    """
    package = importlib.import_module(__package__)
    ops: dict[str, CaseGenerator] = {}
    owners: dict[str, str] = {}
    for found in pkgutil.iter_modules(package.__path__):
        if found.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__}.{found.name}")
        for op, cases in getattr(module, "OPS", {}).items():
            if op in ops:
                raise RuntimeError(f"bench: op {op!r} has cases in both {owners[op]} and "
                                   f"{found.name}")
            ops[op], owners[op] = cases, found.name
    return ops


def _device_info(torch, bandwidth: float) -> dict[str, object]:
    import fastdeploy_ops

    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    info: dict[str, object] = {
        "device": props.name,
        "SM": f"{props.major}{props.minor}",
        "streaming bandwidth (measured, D2D copy)": f"{bandwidth / 1e12:.2f} TB/s",
        "fastdeploy_ops": fastdeploy_ops.__version__,
        "module": fastdeploy_ops.info()["module"],
        "torch": torch.__version__,
    }
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        info["driver"] = pynvml.nvmlSystemGetDriverVersion()
        info["SM clock (now / max)"] = (
            f"{pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)} / "
            f"{pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM)} MHz")
    except Exception as exc:  # clocks are informative only  # noqa: BLE001
        info["driver"] = f"unreadable ({type(exc).__name__})"
    return info


def main(argv: list[str] | None = None) -> int:
    ops = discover_ops()
    parser = argparse.ArgumentParser(prog="python -m fastdeploy_ops.bench", description=__doc__)
    parser.add_argument("--ops", nargs="+", choices=sorted(ops), default=sorted(ops))
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench-results"))
    parser.add_argument("--repetitions", type=int, default=50)
    parser.add_argument("--no-overhead", action="store_true",
                        help="skip the host time per call (bench/overhead.py)")
    args = parser.parse_args(argv)

    try:
        import torch
    except ImportError:
        print("fastdeploy_ops.bench needs PyTorch with CUDA", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("fastdeploy_ops.bench needs a CUDA GPU", file=sys.stderr)
        return 2
    from .timing import Timer

    timer = Timer(torch, repetitions=args.repetitions)
    bandwidth = timer.streaming_bandwidth()
    device = _device_info(torch, bandwidth)
    rows: list[Measurement] = []
    notes: dict[str, str] = {}
    for op in args.ops:
        try:
            for case in ops[op](torch):
                if case.note:
                    notes.setdefault(op, case.note)
                for name, fn in case.implementations.items():
                    cold, warm = timer.graph(fn)
                    rows.append(Measurement(
                        op=op, case=case.label, tokens=case.tokens, implementation=name,
                        eager=timer.eager(fn), cold=cold, warm=warm, bytes_moved=case.bytes_moved,
                        bandwidth_fraction=case.bytes_moved / (cold.median_us * 1e-6) / bandwidth,
                        shape=case.shape, axis=case.axis, flops=case.flops))
                print(f"{op} {case.label} {case.axis}={case.tokens}: " + ", ".join(
                    f"{r.implementation} {r.cold.median_us:.2f}/{r.warm.median_us:.2f} us"
                    for r in rows[-len(case.implementations):]) + " (cold/warm)", flush=True)
        except OpUnavailableError as exc:  # SM89+ ops on an older GPU, for example
            print(f"{op}: skipped: {exc}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(to_markdown(device, rows, notes=notes))
    to_json(args.out / "results.json", device, rows)
    for op in sorted({r.op for r in rows}, key=args.ops.index):
        plot(args.out / f"{op}.png", op, [r for r in rows if r.op == op])
    print(f"wrote {args.out}/results.md, results.json and one PNG per op")
    if not args.no_overhead:
        from . import overhead

        calls = overhead.measure(torch)
        (args.out / "call-overhead.md").write_text(overhead.to_markdown(calls))
        (args.out / "call-overhead.json").write_text(json.dumps(
            {"device": device, "rows": [dataclasses.asdict(r) for r in calls]}, indent=1))
        print(overhead.to_markdown(calls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
