"""Check the JIT on this GPU: ``python -m fastdeploy_ops.jit.selfcheck [--no-suite]``.

Needs a GPU, nvcc (as the JIT finds it) and PyTorch. Works in a fresh temporary cache, never
in the user's. Scenarios, each printed as PASS or FAIL with its numbers:

1. cold compile of every family that runs on this GPU, for its SM (families built concurrently);
2. warm load of each family (cache verification + dlopen + registration), in a new process;
3. the call path: cost of ``get_op`` once resolved, and of a small op call, JIT vs first call;
4. 8 processes started together on an empty cache: one compile, 8 correct results;
5. a truncated entry is detected, removed and rebuilt, with correct results;
6. changed sources (a wheel upgrade) never load the old entry;
7. unless ``--no-suite``: the shipped test suite with this cache; when the wheel has no module
   of the GPU's major version, every family must have run from a JIT-built library.

Exits non-zero if any scenario failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import _device, _loader, _selection
from . import CompilerNotFoundError, JitError, build, find_compiler, load_sources, sources

__all__ = ["main"]

WARM_LOAD_LIMIT_MS = 50.0

# Runs in a child: load the activation kernels through the JIT (whatever modules the wheel
# holds), then check gelu_tanh against the numpy reference.
_CHILD_GELU = """
import json, sys, numpy as np, torch
from fastdeploy_ops import _loader, _selection, activation, jit, reference
sm = _selection.selection().device.sm
library = jit.kernel_library("activation", sm)
_loader.load_module()._load_kernel_library("activation", str(library), replace=True)
x = torch.linspace(-6, 6, 4099, device="cuda", dtype=torch.float32)
y = activation.gelu_tanh(x)
torch.cuda.synchronize()
# tanh.approx.f32 (SM75+): relative error 2**-10.7 in tanh, times 0.5 |x| <= 3.
want = reference.gelu_tanh(x.cpu().numpy())
ok = bool(np.allclose(y.cpu().numpy(), want, rtol=2e-3, atol=2e-3))
print(json.dumps({"ok": ok, "library": str(library)}))
"""

_CHILD_WARM = """
import json, sys, time
from fastdeploy_ops import _loader, _selection, jit
sm = _selection.selection().device.sm
module = _loader.load_module()
start = time.perf_counter()
tree = jit.sources()
compiler = jit.compiler()
times = {"(once per process: sources, nvcc --version)": {
    "ms": (time.perf_counter() - start) * 1e3, "compiled": False}}
for family in sys.argv[1].split(","):
    start = time.perf_counter()
    done = jit.build(tree, family, sm, compiler)
    module._load_kernel_library(family, str(done.entry.library), replace=True)
    times[family] = {"ms": (time.perf_counter() - start) * 1e3, "compiled": done.compiled}
print(json.dumps(times))
"""

_CHILD_CALL_PATH = """
import json, time, torch
from fastdeploy_ops import _loader, activation
x = torch.randn(1024, device="cuda")
start = time.perf_counter()
activation.gelu_tanh(x)
torch.cuda.synchronize()
first_ms = (time.perf_counter() - start) * 1e3
origin = _loader.load_module()._kernel_families()["activation"]
n = 100000
start = time.perf_counter()
for _ in range(n):
    _loader.get_op("activation", "gelu_tanh")
get_op_ns = (time.perf_counter() - start) / n * 1e9
table = {("activation", "gelu_tanh"): None}
start = time.perf_counter()
for _ in range(n):
    table[("activation", "gelu_tanh")]
dict_ns = (time.perf_counter() - start) / n * 1e9
out = torch.empty_like(x)
for _ in range(100):
    activation.gelu_tanh(x, out=out)
torch.cuda.synchronize()
calls = 2000
start = time.perf_counter()
for _ in range(calls):
    activation.gelu_tanh(x, out=out)
torch.cuda.synchronize()
call_us = (time.perf_counter() - start) / calls * 1e6
print(json.dumps({"first_ms": first_ms, "get_op_ns": get_op_ns, "dict_ns": dict_ns,
                  "call_us": call_us, "origin": origin}))
"""

_CHILD_SUITE = """
import json, sys
from fastdeploy_ops import _loader, selftest
status = selftest.main([])
origins = _loader.load_module()._kernel_families()
print(json.dumps({"status": status, "origins": origins}))
"""


class Report:
    """Collects PASS/FAIL lines."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, name: str, ok: bool, detail: str) -> None:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)
        if not ok:
            self.failed.append(name)


def _child(code: str, cache: Path, *args: str, timeout: float = 300,
           extra_env: dict[str, str] | None = None) -> tuple[dict | None, str]:
    """Run ``code`` in a fresh interpreter using ``cache``; (its last JSON line, its stderr)."""
    env = dict(os.environ, FASTDEPLOY_OPS_CACHE=str(cache), PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("FASTDEPLOY_OPS_SM", None)
    env.update(extra_env or {})
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr
    except (IndexError, ValueError):
        return None, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios; returns 0 when all passed."""
    parser = argparse.ArgumentParser(prog="python -m fastdeploy_ops.jit.selfcheck")
    parser.add_argument("--no-suite", action="store_true", help="skip the shipped test suite")
    args = parser.parse_args(argv)
    device = _device.probe()
    if device.sm is None:
        print(f"no GPU: {device.problem}")
        return 1
    sm = device.sm
    try:
        compiler = find_compiler()
    except CompilerNotFoundError as exc:
        print(exc)
        return 1
    tree = sources()
    chosen = _selection.selection()
    print(f"device: {device.name} (SM{sm}); nvcc {compiler.version} ({compiler.nvcc}, "
          f"{compiler.found_by}); module: {chosen.manifest.module if chosen.manifest else None} "
          f"({chosen.reason}); CPUs: {os.cpu_count()}", flush=True)
    families = sorted(f for f, s in tree.families.items() if s.min_sm <= sm)
    report = Report()
    work = Path(tempfile.mkdtemp(prefix="fdops-jit-selfcheck-"))
    try:
        cache = work / "cache"

        # 1. Cold compile.
        def cold(family: str) -> tuple[str, str]:
            try:
                seconds = _timed(lambda: build(tree, family, sm, compiler, cache, quiet=True))
            except JitError as exc:
                return family, f"FAILED: {exc}"
            return family, f"{seconds:.1f} s ({len(tree.families[family].sources)} sources)"

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(families)) as pool:
            cold_times = dict(pool.map(cold, families))
        total = time.perf_counter() - start
        detail = ", ".join(f"{f} {t}" for f, t in cold_times.items())
        report.check("cold compile", not any("FAILED" in t for t in cold_times.values()),
                     f"{total:.1f} s wall for all, concurrently: {detail}")

        # 2. Warm load, in a fresh process.
        warm, err = _child(_CHILD_WARM, cache, ",".join(families))
        if warm is None:
            report.check("warm load", False, err)
        else:
            slowest = max(v["ms"] for f, v in warm.items() if f in families)
            rebuilt = [f for f, v in warm.items() if v["compiled"]]
            detail = ", ".join(f"{f} {v['ms']:.1f} ms" for f, v in warm.items())
            report.check("warm load", slowest < WARM_LOAD_LIMIT_MS and not rebuilt,
                         f"limit {WARM_LOAD_LIMIT_MS:.0f} ms per module; {detail}"
                         + (f"; unexpectedly recompiled: {rebuilt}" if rebuilt else ""))

        # 3. Call path.
        calls, err = _child(_CHILD_CALL_PATH, cache)
        if calls is None:
            report.check("call path", False, err)
        else:
            report.check(
                "call path", calls["get_op_ns"] < 1000,
                f"kernels from {calls['origin']}; first call {calls['first_ms']:.1f} ms "
                f"(resolution, maybe JIT load); then get_op {calls['get_op_ns']:.0f} ns "
                f"(a dict lookup: {calls['dict_ns']:.0f} ns), gelu_tanh[1024] "
                f"{calls['call_us']:.1f} us per call")

        # 4. Eight processes on an empty cache.
        race_cache = work / "race"
        env = dict(os.environ, FASTDEPLOY_OPS_CACHE=str(race_cache),
                   PYTHONPATH=os.pathsep.join(sys.path))
        env.pop("FASTDEPLOY_OPS_SM", None)
        children = [subprocess.Popen([sys.executable, "-c", _CHILD_GELU], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    for _ in range(8)]
        outputs = [child.communicate(timeout=300) for child in children]
        results = []
        for out, _ in outputs:
            try:
                results.append(json.loads(out.strip().splitlines()[-1]))
            except (IndexError, ValueError):
                results.append({"ok": False, "library": None})
        compiles = sum(err.count("compiling the 'activation' kernels") for _, err in outputs)
        libraries = {r["library"] for r in results}
        ok = compiles == 1 and all(r["ok"] for r in results) and len(libraries) == 1
        report.check("8 processes, empty cache", ok,
                     f"{compiles} compile(s), {sum(r['ok'] for r in results)}/8 correct, "
                     f"{len(libraries)} distinct librar(ies)"
                     + ("" if ok else "\n" + "\n".join(err[-1500:] for _, err in outputs)))

        # 5. Truncated entry.
        library = Path(next(iter(libraries))) if len(libraries) == 1 and None not in libraries \
            else None
        if library is None:
            report.check("truncated entry", False, "no entry from scenario 4")
        else:
            library.write_bytes(library.read_bytes()[: library.stat().st_size // 3])
            fixed, err = _child(_CHILD_GELU, race_cache)
            ok = fixed is not None and fixed["ok"] and "replacing a broken cache entry" in err
            report.check("truncated entry", ok,
                         "detected, removed, rebuilt; results correct" if ok else err[-3000:])

        # 6. A wheel upgrade: changed sources and version never load the old entry.
        upgraded = work / "upgraded-jit"
        # copyfile: writable copies even of a read-only installation.
        shutil.copytree(tree.root, upgraded / "sources", copy_function=shutil.copyfile)
        description = json.loads((tree.root.parent / "families.json").read_text())
        description["package_version"] += ".post1"
        (upgraded / "families.json").write_text(json.dumps(description))
        first_source = upgraded / "sources" / tree.families["activation"].sources[0]
        first_source.write_text(first_source.read_text() + "\n// upgraded\n")
        new_tree = load_sources(upgraded)
        old = build(tree, "activation", sm, compiler, cache, quiet=True)
        new = build(new_tree, "activation", sm, compiler, cache, quiet=True)
        ok = (not old.compiled and new.compiled and new.entry.path != old.entry.path
              and old.entry.problem() is None)
        report.check("upgrade", ok, f"old entry {old.entry.name} kept and unused; new sources "
                                    f"compiled into {new.entry.name} in {new.seconds:.1f} s")

        # 7. The shipped suite with the JIT.
        if not args.no_suite:
            suite, err = _child(_CHILD_SUITE, cache, timeout=900)
            if suite is None:
                report.check("test suite", False, err)
            else:
                native = chosen.manifest is not None and chosen.manifest.sm // 10 == sm // 10
                via_jit = sorted(f for f, o in suite["origins"].items() if o not in ("", "builtin"))
                expected_jit = native or set(via_jit) >= set(families)
                report.check("test suite", suite["status"] == 0 and expected_jit,
                             f"exit {suite['status']}; families on JIT kernels: {via_jit or 'none'}"
                             + ("" if native else " (no native module: all must be JIT)"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{len(report.failed)} scenario(s) failed" + (f": {report.failed}" if report.failed
                                                            else ""))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
