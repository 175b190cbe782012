"""Nested Bazel builds over copies of this workspace, measured from Bazel's execution log.

Shared by the build-property and remote-cache tests: each Workspace is a copy of the source
tree at its own absolute path with its own Bazel output root, so a build in it shares nothing
with the outer build or with another Workspace except through the caches a test passes.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import shutil
import subprocess

from execution_log import read_execution_log

TMP = pathlib.Path(os.environ.get("TEST_TMPDIR", "/tmp"))
_IGNORED = shutil.ignore_patterns("bazel-*", ".git", ".scratch", ".device", "__pycache__", "user.bazelrc")

# No disk cache and no remote cache: every action that is not up to date runs.
NO_CACHES = ("--disk_cache=", "--noremote_accept_cached")


def _snapshot_workspace() -> pathlib.Path:
    """One copy of the source tree taken at the start, so every build sees the same sources."""
    snapshot = TMP / "snapshot"
    if not snapshot.exists():
        # MODULE.bazel in the runfiles is a symlink into the source tree.
        runfiles = pathlib.Path(os.environ["RUNFILES_DIR"]) / "_main"
        source = (runfiles / "MODULE.bazel").resolve().parent
        shutil.copytree(source, snapshot, ignore=_IGNORED, symlinks=False)
    return snapshot


class Workspace:
    """A copy of the workspace with its own Bazel output root."""

    def __init__(self, name: str) -> None:
        self.path = TMP / name / "ws"
        shutil.copytree(_snapshot_workspace(), self.path, symlinks=False)
        self.output_root = TMP / name / "bazel"
        self._log_count = 0

    def bazel(self, *args: str) -> list[str]:
        """The command line of a Bazel command in this workspace."""
        return ["bazel", f"--output_user_root={self.output_root}", "--max_idle_secs=60", *args]

    def build_command(self, target: str, *flags: str,
                      caches: tuple[str, ...] = NO_CACHES) -> tuple[list[str], pathlib.Path]:
        """The command line of a build of `target` and the execution log it will write."""
        self._log_count += 1
        log = self.path.parent / f"exec{self._log_count}.json"
        command = self.bazel("build", *caches, "--color=no", "--curses=no",
                             f"--execution_log_json_file={log}", target, *flags)
        return command, log

    def build(self, target: str, *flags: str, caches: tuple[str, ...] = NO_CACHES) -> list[dict]:
        """Builds `target`; returns the spawns Bazel executed or took from a cache."""
        command, log = self.build_command(target, *flags, caches=caches)
        subprocess.run(command, cwd=self.path, check=True)
        return read_execution_log(log)

    def info(self, key: str) -> pathlib.Path:
        result = subprocess.run(self.bazel("info", key), cwd=self.path, check=True,
                                capture_output=True, text=True)
        return pathlib.Path(result.stdout.strip())

    def append(self, relative: str, text: str) -> None:
        with open(self.path / relative, "a") as f:
            f.write(text)

    def replace(self, relative: str, old: str, new: str) -> None:
        """Replaces the one occurrence of `old` in a file of this workspace."""
        path = self.path / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{relative}: {old!r} occurs {text.count(old)} times"
        path.write_text(text.replace(old, new))

    def wheel_sha256(self) -> str:
        (wheel,) = (self.path / "bazel-bin/python/wheel").glob("*.whl")
        return hashlib.sha256(wheel.read_bytes()).hexdigest()

    def shutdown(self) -> None:
        subprocess.run(self.bazel("shutdown"), cwd=self.path, check=False)


def cuda_compile(spawn: dict) -> tuple[str, str]:
    """(source path, sm) of a CudaCompile spawn."""
    args = spawn["commandArgs"]
    source = args[args.index("-c") + 1]
    # One SM per action, though SM 9.0's has two -gencode flags (sm_90a SASS, compute_90 PTX).
    (sm,) = {re.match(r"\d+", a.split("compute_")[1]).group()
             for a in args if a.startswith("-gencode=")}
    return source, sm


def executed(spawns: list[dict], mnemonic: str) -> list[dict]:
    """The spawns of `mnemonic` that ran (not taken from the disk or remote cache)."""
    return [s for s in spawns if s.get("mnemonic") == mnemonic and not s.get("cacheHit")]


def executed_cuda_compiles(spawns: list[dict]) -> list[tuple[str, str]]:
    """(source path, sm) of every CudaCompile that ran, sorted."""
    return sorted(cuda_compile(s) for s in executed(spawns, "CudaCompile"))
