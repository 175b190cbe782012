"""Compiling one family's kernel library for one SM into the cache (once, across processes)."""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ._cache import (
    ENV_CACHE,
    ENV_TRUST,
    Entry,
    LockTimeout,
    cache_dir,
    entries,
    entry_for,
    key_inputs,
    locked,
    untrusted,
)
from ._compiler import Compiler
from ._sources import FamilySources, SourceTree

__all__ = ["ENV_TIMEOUT", "ENV_WAIT", "Build", "JitError", "build"]

# Deadlines, in seconds: of one nvcc command, and of waiting for another process's compile of
# the same entry. Generous (attention's sources take minutes on few cores), never unbounded: a
# stuck compiler must not stall every process of a server.
ENV_TIMEOUT = "FASTDEPLOY_OPS_JIT_TIMEOUT"
ENV_WAIT = "FASTDEPLOY_OPS_JIT_WAIT"
_DEFAULT_TIMEOUT = 1800.0
_DEFAULT_WAIT = 3600.0

# Seconds one kernel source takes to compile when nothing better is known (a family's earlier
# builds in the cache are a better estimate).
_SECONDS_PER_SOURCE = 15.0


class JitError(RuntimeError):
    """A kernel library could not be built; ``log`` is the compile log, when one was written."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        self.log = log
        super().__init__(message + (f" (compile log: {log})" if log else ""))


@dataclass(frozen=True)
class Build:
    """The outcome of :func:`build`.

    Attributes:
        entry: the cache entry; ``entry.library`` is the shared object to load.
        compiled: whether this call compiled it (``False``: it was in the cache).
        seconds: time spent in this call (compile, or verification and waiting).
        replaced: why a previous entry of the same key was removed, if one was.
    """

    entry: Entry
    compiled: bool
    seconds: float
    replaced: str | None = None


def _estimate(cache: Path, family: FamilySources, workers: int) -> float:
    for entry in reversed(entries(cache)):
        if entry.family == family.name:
            try:
                return float(entry.metadata()["seconds"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
    rounds = -(-len(family.sources) // max(workers, 1))  # an upper bound: all SMs' sources
    return _SECONDS_PER_SOURCE * rounds


def _seconds(name: str, default: float) -> float:
    """A deadline from the environment variable ``name`` (seconds > 0), else ``default``.

    Raises:
        JitError: the value is not a number of seconds.
    """
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise JitError(f"{name}={text!r} is not a number of seconds > 0")
    return value


def _run(command: list[str], log: list[str], timeout: float) -> bool:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        log.append(f"$ {shlex.join(command)}\n(stopped: it did not finish within {timeout:g} s, "
                   f"{ENV_TIMEOUT})\n")
        return False
    log.append(f"$ {shlex.join(command)}\n{done.stdout}{done.stderr}(exit {done.returncode})\n")
    return done.returncode == 0


def _compile(tree: SourceTree, family: FamilySources, sm: int, compiler: Compiler,
             work: Path, library: Path, workers: int) -> tuple[bool, str]:
    """Compile each source into ``work`` (in parallel) and link ``library``, each nvcc command
    under the ``FASTDEPLOY_OPS_JIT_TIMEOUT`` deadline; returns (ok, log text)."""
    timeout = _seconds(ENV_TIMEOUT, _DEFAULT_TIMEOUT)
    nvcc = str(compiler.nvcc)
    sources = family.sources_for(sm)
    objects = [work / f"{i}-{Path(src).name}.o" for i, src in enumerate(sources)]
    commands = [
        [nvcc, *family.nvcc_flags, tree.gencode(sm), "-I", str(tree.root), "-c",
         str(tree.root / src), "-o", str(obj)]
        for src, obj in zip(sources, objects)
    ]
    logs: list[list[str]] = [[] for _ in commands]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        compiled = list(pool.map(_run, commands, logs, [timeout] * len(commands)))
    log = [line for part in logs for line in part]
    if not all(compiled):
        return False, "".join(log)
    # Only the table function is exported: the library's cudart and kernels stay private.
    exports = work / "exports.lds"
    exports.write_text(f"{{ global: fdops_kernel_table_{family.name}; local: *; }};\n")
    link = [nvcc, "-shared", "-cudart=static", "-o", str(library), *map(str, objects),
            f"-Xlinker=--version-script={exports}"]
    linked = _run(link, log, timeout)
    return linked, "".join(log)


def build(
    tree: SourceTree,
    family: str,
    sm: int,
    compiler: Compiler,
    cache: Path | None = None,
    quiet: bool = False,
) -> Build:
    """The cache entry of ``family``'s kernels for ``sm``, compiled first if needed.

    Concurrent callers (threads or processes) of one entry compile it once: the others wait
    on its lock and load the result. A corrupted or truncated entry is removed and rebuilt.
    Unless ``quiet``, a compile announces itself on stderr with a time estimate.

    Raises:
        JitError: unknown family, SM below its minimum, a source missing, the cache not
            writable, nvcc failed or ran past ``FASTDEPLOY_OPS_JIT_TIMEOUT`` (the message
            names the log file holding the commands and their output), or another process's
            compile of the same entry held it past ``FASTDEPLOY_OPS_JIT_WAIT`` (the message
            names that process), the disk is full or not writable (said as such), or the cache
            is one other users can change (see ``FASTDEPLOY_OPS_CACHE_TRUST``).
    """
    start = time.monotonic()
    cache = cache_dir() if cache is None else cache
    if family not in tree.families:
        raise JitError(f"no JIT sources for family '{family}' "
                       f"(this package has: {', '.join(sorted(tree.families))})")
    sources = tree.families[family]
    if sm < sources.min_sm:
        raise JitError(f"family '{family}' requires SM{sources.min_sm}+, cannot build for sm{sm}")
    try:
        hashes = tree.file_hashes(family)
    except OSError as exc:
        raise JitError(f"JIT sources of '{family}' are incomplete: {exc}") from exc
    flags = [*sources.nvcc_flags, tree.gencode(sm)]
    inputs = key_inputs(family, sm, tree.package_version, hashes, flags, compiler.identity)
    entry = entry_for(cache, inputs)
    try:
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        _check_trusted(cache)
        if entry.problem() is None:
            _check_trusted(entry.path, entry.library)
            return Build(entry, False, time.monotonic() - start)
        built = _build_locked(tree, sources, sm, compiler, cache, entry, inputs, start, quiet)
        _check_trusted(entry.path, entry.library)
        return built
    except OSError as exc:
        raise JitError(_describe_os_error(exc, cache)) from exc


def _check_trusted(*paths: Path) -> None:
    """Raises JitError if another user could have put what is at ``paths`` there."""
    for path in paths:
        reason = untrusted(path)
        if reason is not None:
            raise JitError(f"refusing to load JIT kernels from a cache other users can change: "
                           f"{reason}. Use a private folder ({ENV_CACHE}), or set "
                           f"{ENV_TRUST}=shared if the folder is shared on purpose")


def _describe_os_error(exc: OSError, cache: Path) -> str:
    where = exc.filename or cache
    if exc.errno == errno.ENOSPC:
        try:
            free = f"{shutil.disk_usage(cache).free / 1e6:.0f} MB free"
        except OSError:
            free = "free space unknown"
        return (f"the disk holding the JIT cache {cache} is full ({free}; a family's objects and "
                f"library take up to a few hundred MB while it compiles): free space there or "
                f"set {ENV_CACHE} to a folder on another disk")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"no permission to write {where} in the JIT cache {cache} ({exc.strerror}): "
                f"set {ENV_CACHE} to a folder this user can write")
    return f"cannot build in the JIT cache {cache}: {exc}; set {ENV_CACHE} to a writable folder"


def _build_locked(tree: SourceTree, sources: FamilySources, sm: int, compiler: Compiler,
                  cache: Path, entry: Entry, inputs: dict, start: float, quiet: bool) -> Build:
    """:func:`build` once the entry is known to be absent or broken: under its lock."""
    family = sources.name

    def waiting() -> None:
        if not quiet:
            print(f"fastdeploy_ops: waiting for another process compiling '{family}' for "
                  f"sm_{sm} ({entry.path})", file=sys.stderr, flush=True)

    wait = _seconds(ENV_WAIT, _DEFAULT_WAIT)
    try:
        with locked(entry.lock_path, waiting, wait, f"compiling '{family}' for sm_{sm}"):
            return _build_held(tree, sources, sm, compiler, cache, entry, inputs, start, quiet)
    except LockTimeout as exc:
        raise JitError(f"gave up on the '{family}' kernels for sm_{sm} after waiting {wait:g} s "
                       f"({ENV_WAIT}) for {exc.holder}, which holds {exc.path}; if that process "
                       f"is stuck, stop it") from exc


def _build_held(tree: SourceTree, sources: FamilySources, sm: int, compiler: Compiler,
                cache: Path, entry: Entry, inputs: dict, start: float, quiet: bool) -> Build:
    """:func:`build` under the entry's lock."""
    family = sources.name
    problem = entry.problem()
    if problem is None:
        return Build(entry, False, time.monotonic() - start)
    replaced = None if problem == "absent" else problem
    if replaced:
        entry.remove()
    workers = max(1, min(len(sources.sources_for(sm)), os.cpu_count() or 1))
    if not quiet:
        estimate = _estimate(cache, sources, workers)
        fixed = f", replacing a broken cache entry ({replaced})" if replaced else ""
        print(f"fastdeploy_ops: compiling the '{family}' kernels for sm_{sm} with nvcc "
              f"{compiler.version} ({compiler.nvcc}): {len(sources.sources_for(sm))} sources, "
              f"about {estimate:.0f} s, once; later runs load them from {cache}{fixed}",
              file=sys.stderr, flush=True)
    # Objects go to a private folder of the cache; only the finished entry is renamed out.
    # Folders of this entry's earlier compiles are leftovers of killed processes (a compile
    # holds the lock while its folder exists).
    for leftover in cache.glob(f".{entry.name}.*"):
        shutil.rmtree(leftover, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=cache))
    staging = work / "entry"
    staging.mkdir()
    try:
        ok, log = _compile(tree, sources, sm, compiler, work, staging / entry.library.name,
                           workers)
        try:
            entry.log_path.parent.mkdir(parents=True, exist_ok=True)
            entry.log_path.write_text(log, encoding="utf-8")
        except OSError:
            if ok:
                raise
            log_path = None  # nvcc's failure is the news; the disk's comes with the next build
        else:
            log_path = entry.log_path
        if not ok:
            tail = "\n".join(log.strip().splitlines()[-15:])
            raise JitError(f"nvcc {compiler.version} failed to build the '{family}' kernels "
                           f"for sm_{sm}:\n{tail}\n", log_path)
        seconds = time.monotonic() - start
        entry.publish(staging, inputs, {"seconds": round(seconds, 3), "ops": sources.ops,
                                        "nvcc": str(compiler.nvcc)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Build(entry, True, time.monotonic() - start, replaced)
