"""``python -m fastdeploy_ops.jit warmup|status|clear``: manage the JIT cache.

- ``warmup [--sm 90] [--family attention ...]``: compile now what first use would compile
  (default: the device's SM, every family that runs on it).
- ``status``: the cache folder, the compiler, and every entry with its size, age, state and
  ops.
- ``clear [--family F] [--sm N] [--stale]``: delete entries (all by default) and their logs;
  ``--stale``: only those this package and compiler would never load (another package
  version, another toolkit or host compiler, or broken).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence

from . import (ENV_JIT, CompilerNotFoundError, JitError, build, cache_dir, enabled, entries,
               find_compiler, load_sources)
from ._cache import Entry, locked

__all__ = ["main"]


def _device_sm() -> int | None:
    from .. import _device

    return _device.probe().sm


def _warmup(args: argparse.Namespace) -> int:
    sm = args.sm if args.sm is not None else _device_sm()
    if sm is None:
        print("no GPU found: pass --sm NN", file=sys.stderr)
        return 2
    tree = load_sources()
    families = args.family or sorted(f for f, s in tree.families.items() if s.min_sm <= sm)
    unknown = sorted(set(families) - set(tree.families))
    if unknown:
        print(f"unknown families: {', '.join(unknown)} (this package has: "
              f"{', '.join(sorted(tree.families))})", file=sys.stderr)
        return 2
    try:
        compiler = find_compiler(sm=sm)
    except CompilerNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    status = 0
    for family in families:
        try:
            done = build(tree, family, sm, compiler)
        except JitError as exc:
            print(f"{family}: FAILED: {exc}", file=sys.stderr)
            status = 1
            continue
        state = "compiled" if done.compiled else "cached"
        print(f"{family}: sm_{sm} {state} in {done.seconds:.1f} s: {done.entry.library}")
    return status


def _status(_: argparse.Namespace) -> int:
    cache = cache_dir()
    print(f"cache: {cache}")
    print(f"JIT: {'enabled' if enabled() else f'disabled ({ENV_JIT}=0)'}")
    try:
        compiler = find_compiler()
        print(f"compiler: nvcc {compiler.version} ({compiler.nvcc}, from {compiler.found_by})")
    except CompilerNotFoundError as exc:
        print(f"compiler: none: {exc}")
    try:
        version = load_sources().package_version
    except (OSError, ValueError):
        version = None
    total = 0
    found = entries(cache)
    for entry in found:
        problem = entry.problem()
        size = sum(f.stat().st_size for f in entry.path.iterdir() if f.is_file())
        total += size
        try:
            meta = entry.metadata()
            ops = ", ".join(meta.get("ops", []))
            built_for = meta["inputs"]["package_version"]
        except (OSError, ValueError, KeyError, TypeError):
            ops, built_for = "?", None
        # Entries of other package versions are never loaded by this one; `clear --stale`
        # removes them.
        other = f", from fastdeploy_ops {built_for}" if built_for not in (None, version) else ""
        print(f"{entry.name}: {size / 1e6:.1f} MB, built {_age(entry)} ago, "
              f"{problem or 'ok'}{other}; ops: {ops}")
    print(f"{len(found)} entries, {total / 1e6:.1f} MB")
    return 0


def _age(entry: Entry) -> str:
    try:
        seconds = max(0.0, time.time() - entry.path.stat().st_mtime)
    except OSError:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _stale(entry: Entry, version: str | None, compiler_identity: str | None) -> bool:
    """Whether this package (``version``) with this compiler would never load ``entry``."""
    if entry.problem() is not None:
        return True
    try:
        inputs = entry.metadata()["inputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return True
    return inputs.get("package_version") != version or (
        compiler_identity is not None and inputs.get("compiler") != compiler_identity)


def _clear(args: argparse.Namespace) -> int:
    cache = cache_dir()
    version = identity = None
    if args.stale:
        try:
            version = load_sources().package_version
        except (OSError, ValueError):
            pass
        try:
            identity = find_compiler().identity
        except CompilerNotFoundError:
            pass  # without a compiler, only the package version decides
    removed = 0
    for entry in entries(cache):
        if (args.family and entry.family not in args.family) or (
                args.sm is not None and entry.sm != args.sm) or (
                args.stale and not _stale(entry, version, identity)):
            continue
        with locked(entry.lock_path):
            entry.remove()
            entry.log_path.unlink(missing_ok=True)
        removed += 1
    if not args.family and args.sm is None and not args.stale:
        shutil.rmtree(cache / "logs", ignore_errors=True)
    print(f"removed {removed} entries from {cache}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m fastdeploy_ops.jit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    warmup = commands.add_parser("warmup", help="compile kernel libraries into the cache now")
    warmup.add_argument("--sm", type=int, help="SM to build for (default: the GPU's)")
    warmup.add_argument("--family", action="append", help="family to build (repeatable)")
    warmup.set_defaults(run=_warmup)
    status = commands.add_parser("status", help="list the cache's entries")
    status.set_defaults(run=_status)
    clear = commands.add_parser("clear", help="delete cache entries")
    clear.add_argument("--sm", type=int, help="only entries for this SM")
    clear.add_argument("--family", action="append", help="only this family (repeatable)")
    clear.add_argument("--stale", action="store_true",
                       help="only entries of other package versions or compilers, or broken ones")
    clear.set_defaults(run=_clear)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
