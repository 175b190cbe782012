"""The JIT cache: entry keys, verified entries, per-entry locks.

An entry is a folder ``<family>-sm<NN>-<key>/`` holding ``lib<family>.so`` and ``entry.json``
(the key's inputs, the library's size and sha256). It is built in a temporary folder of the
cache and renamed into place, so it appears whole or not at all; it is verified against its
sha256 before every load, so a truncated or corrupted entry is found, removed and rebuilt.
The key hashes the contents of the sources (never timestamps), the flags, the compiler's
identity, the SM and the package version.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ENV_CACHE", "ENV_TRUST", "Entry", "LockTimeout", "cache_dir", "entries", "entry_for",
           "key_inputs", "locked", "untrusted"]

ENV_CACHE = "FASTDEPLOY_OPS_CACHE"
# "shared": load from a cache other users can write to or own (a team's shared folder, on
# purpose). Otherwise such a cache is refused: its sha256s prove integrity, not origin, and
# anyone who can write there could plant a library this process would load.
ENV_TRUST = "FASTDEPLOY_OPS_CACHE_TRUST"
# nvcc reads these itself; they change what it builds, so they are part of the key.
NVCC_ENV = ("NVCC_CCBIN", "NVCC_PREPEND_FLAGS", "NVCC_APPEND_FLAGS")
_META = "entry.json"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``FASTDEPLOY_OPS_CACHE``, else ``$XDG_CACHE_HOME/fastdeploy_ops/jit``, else
    ``~/.cache/fastdeploy_ops/jit``; absolute (a relative setting is taken from the current
    folder now, so a later ``chdir`` does not move the cache)."""
    env = os.environ if env is None else env
    if env.get(ENV_CACHE):
        return Path(env[ENV_CACHE]).expanduser().absolute()
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return (base / "fastdeploy_ops" / "jit").expanduser().absolute()


def untrusted(path: Path, env: Mapping[str, str] | None = None) -> str | None:
    """Why this process should not load from ``path`` (owned by another user, or writable by
    group or others), or ``None``; always ``None`` with ``FASTDEPLOY_OPS_CACHE_TRUST=shared``.

    Raises:
        OSError: ``path`` cannot be examined.
    """
    env = os.environ if env is None else env
    if env.get(ENV_TRUST, "").strip().lower() == "shared":
        return None
    status = path.stat()
    if status.st_uid != os.getuid():
        return f"{path} belongs to uid {status.st_uid}, not to this user (uid {os.getuid()})"
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by other users (mode {stat.S_IMODE(status.st_mode):o})"
    return None


def key_inputs(
    family: str,
    sm: int,
    package_version: str,
    file_hashes: Mapping[str, str],
    nvcc_flags: list[str],
    compiler_identity: str,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything an entry's bits depend on, as a JSON-able dict."""
    env = os.environ if env is None else env
    return {
        "family": family,
        "sm": sm,
        "package_version": package_version,
        "files": dict(sorted(file_hashes.items())),
        "nvcc_flags": list(nvcc_flags),
        "compiler": compiler_identity,
        "nvcc_env": {name: env[name] for name in NVCC_ENV if env.get(name)},
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Entry:
    """One cache entry (which may not exist yet)."""

    cache: Path
    family: str
    sm: int
    key: str

    @property
    def name(self) -> str:
        return f"{self.family}-sm{self.sm}-{self.key}"

    @property
    def path(self) -> Path:
        return self.cache / self.name

    @property
    def library(self) -> Path:
        return self.path / f"lib{self.family}.so"

    @property
    def lock_path(self) -> Path:
        return self.cache / "locks" / f"{self.name}.lock"

    @property
    def log_path(self) -> Path:
        return self.cache / "logs" / f"{self.name}.log"

    def metadata(self) -> dict[str, Any]:
        """``entry.json``; raises OSError / ValueError when missing or unreadable."""
        return json.loads((self.path / _META).read_text(encoding="utf-8"))

    def problem(self) -> str | None:
        """``None`` when the entry is complete and its library matches its recorded sha256;
        otherwise what is wrong (``"absent"`` when it does not exist)."""
        if not self.path.exists():
            return "absent"
        try:
            meta = self.metadata()
            size, sha256 = int(meta["size"]), str(meta["sha256"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"unreadable {_META} ({exc.__class__.__name__})"
        try:
            actual = self.library.stat().st_size
            if actual != size:
                return f"library is {actual} bytes, {_META} says {size}"
            if _sha256(self.library) != sha256:
                return "library content does not match its sha256"
        except OSError as exc:
            return f"library unreadable ({exc.strerror or exc})"
        return None

    def remove(self) -> None:
        """Delete the entry's folder (callers hold its lock)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def publish(self, staging: Path, inputs: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
        """Move ``staging`` (holding the library) into place as this entry, atomically.

        Writes ``entry.json`` into ``staging`` first, then renames the folder; callers hold the
        entry's lock and have removed any previous (corrupt) entry.
        """
        built = staging / self.library.name
        # Writable by this user only, whatever the umask: untrusted() refuses anything else.
        built.chmod(stat.S_IMODE(built.stat().st_mode) & ~0o022)
        staging.chmod(0o700)
        meta = {"size": built.stat().st_size, "sha256": _sha256(built), "key": self.key,
                "inputs": dict(inputs), **extra}
        (staging / _META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n",
                                     encoding="utf-8")
        os.rename(staging, self.path)


def entry_for(cache: Path, inputs: Mapping[str, Any]) -> Entry:
    """The entry of ``inputs`` (from :func:`key_inputs`) in ``cache``."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(text.encode()).hexdigest()[:32]
    return Entry(cache, str(inputs["family"]), int(inputs["sm"]), key)


def entries(cache: Path) -> list[Entry]:
    """Every entry folder in ``cache`` (complete or not), sorted by name."""
    found = []
    if not cache.is_dir():
        return found
    for path in sorted(cache.iterdir()):
        family, sep, rest = path.name.partition("-sm")
        sm, dash, key = rest.partition("-")
        if path.is_dir() and sep and dash and sm.isdigit() and key:
            found.append(Entry(cache, family, int(sm), key))
    return found


class LockTimeout(TimeoutError):
    """Another process held a lock past the deadline; ``holder`` is what it wrote there."""

    def __init__(self, path: Path, seconds: float, holder: str) -> None:
        self.path, self.seconds, self.holder = path, seconds, holder
        super().__init__(f"waited {seconds:g} s for the lock {path}, held by {holder}")


def _try_lock(handle: Any) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return False
    return True


@contextlib.contextmanager
def locked(path: Path, on_wait: Any = None, deadline: float | None = None,
           note: str = "") -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) and write into it this
    process's pid and ``note`` (what it does, for whoever waits). ``on_wait()`` is called once
    if another process holds it; after ``deadline`` seconds of waiting, :class:`LockTimeout`.
    The lock dies with its process, so a crashed compile never blocks the next one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        if not _try_lock(handle):
            if on_wait is not None:
                on_wait()
            start = time.monotonic()
            while not _try_lock(handle):
                if deadline is not None and time.monotonic() - start >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "a process that wrote nothing"
                    raise LockTimeout(path, deadline, holder)
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}" + (f" {note}" if note else ""))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
