"""Build-system properties, measured from Bazel's execution log (never from timings).

Runs a nested Bazel over a copy of this workspace, so the counts are of real CUDA compiles:
- touching one kernel source recompiles exactly that source once per SM, then relinks;
- touching a family's private header recompiles only that family's sources;
- adding sm90 to an sm70+sm80 build compiles only sm90 actions;
- two clean builds in different folders give byte-identical wheels.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import subprocess

import pytest

_TMP = pathlib.Path(os.environ.get("TEST_TMPDIR", "/tmp"))
_IGNORED = shutil.ignore_patterns("bazel-*", ".git", ".scratch", ".device", "__pycache__", "user.bazelrc")
_SMS_70_80 = ["--//tools/cuda:sms=70", "--//tools/cuda:sms=80"]


def _snapshot_workspace() -> pathlib.Path:
    """One copy of the source tree taken at the start, so every build sees the same sources."""
    snapshot = _TMP / "snapshot"
    if not snapshot.exists():
        # MODULE.bazel in the runfiles is a symlink into the source tree.
        runfiles = pathlib.Path(os.environ["RUNFILES_DIR"]) / "_main"
        source = (runfiles / "MODULE.bazel").resolve().parent
        shutil.copytree(source, snapshot, ignore=_IGNORED, symlinks=False)
    return snapshot


class Workspace:
    """A copy of the workspace with its own Bazel output root and no caches."""

    def __init__(self, name: str) -> None:
        self.path = _TMP / name / "ws"
        shutil.copytree(_snapshot_workspace(), self.path, symlinks=False)
        self.output_root = _TMP / name / "bazel"
        self._log_count = 0

    def build(self, target: str, *flags: str) -> list[dict]:
        """Builds `target`; returns the spawns Bazel executed (its execution log)."""
        self._log_count += 1
        log = self.path.parent / f"exec{self._log_count}.json"
        subprocess.run(
            ["bazel", f"--output_user_root={self.output_root}", "--max_idle_secs=60", "build",
             "--disk_cache=", "--noremote_accept_cached", "--color=no", "--curses=no",
             f"--execution_log_json_file={log}", target, *flags],
            cwd=self.path, check=True,
        )
        return _read_execution_log(log)

    def append(self, relative: str, text: str) -> None:
        with open(self.path / relative, "a") as f:
            f.write(text)

    def wheel_sha256(self) -> str:
        (wheel,) = (self.path / "bazel-bin/python/wheel").glob("*.whl")
        return hashlib.sha256(wheel.read_bytes()).hexdigest()

    def shutdown(self) -> None:
        subprocess.run(["bazel", f"--output_user_root={self.output_root}", "shutdown"],
                       cwd=self.path, check=False)


def _read_execution_log(path: pathlib.Path) -> list[dict]:
    """The log is a stream of concatenated JSON objects, not one array."""
    text, decoder, spawns, pos = path.read_text(), json.JSONDecoder(), [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return spawns
        spawn, pos = decoder.raw_decode(text, pos)
        spawns.append(spawn)


def _cuda_compiles(spawns: list[dict]) -> list[tuple[str, str]]:
    """(source path, sm) of every executed CudaCompile."""
    compiles = []
    for spawn in spawns:
        if spawn.get("mnemonic") != "CudaCompile" or spawn.get("remoteCacheHit"):
            continue
        args = spawn["commandArgs"]
        source = args[args.index("-c") + 1]
        (gencode,) = [a for a in args if a.startswith("-gencode=")]
        compiles.append((source, gencode.split("compute_")[1].split(",")[0]))
    return sorted(compiles)


def _mnemonics(spawns: list[dict], mnemonic: str) -> int:
    return sum(1 for s in spawns if s.get("mnemonic") == mnemonic)


def _kernel_sources(ws: Workspace) -> list[str]:
    return sorted(str(p.relative_to(ws.path)) for p in (ws.path / "ops").glob("*/*.cu"))


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    ws = Workspace("a")
    ws.build("//python:wheel", *_SMS_70_80)
    yield ws
    ws.shutdown()


@pytest.fixture(scope="module")
def clean_wheel_sha256(workspace: Workspace) -> str:
    """The wheel of the untouched sources, before any test edits them."""
    return workspace.wheel_sha256()


def test_second_clean_build_elsewhere_gives_identical_wheel(
        workspace: Workspace, clean_wheel_sha256: str) -> None:
    other = Workspace("b")
    try:
        other.build("//python:wheel", *_SMS_70_80)
        assert other.wheel_sha256() == clean_wheel_sha256
    finally:
        other.shutdown()


def test_touching_one_kernel_recompiles_it_once_per_sm(
        workspace: Workspace, clean_wheel_sha256: str) -> None:
    # A new function, so the object (and hence the archive and the modules) really changes.
    workspace.append("ops/moe_routing/grouped_topk.cu", '\nextern "C" void fdops_touched() {}\n')
    spawns = workspace.build("//python:wheel", *_SMS_70_80)
    assert _cuda_compiles(spawns) == [
        ("ops/moe_routing/grouped_topk.cu", "70"),
        ("ops/moe_routing/grouped_topk.cu", "80"),
    ]
    assert _mnemonics(spawns, "CppCompile") == 0  # bindings and nanobind untouched
    assert _mnemonics(spawns, "CppLink") == 2  # one module per SM relinked


def test_touching_a_family_header_recompiles_only_that_family(workspace: Workspace) -> None:
    workspace.append("ops/activation/activation.h", "\n// touched by the incrementality test\n")
    spawns = workspace.build("//python:wheel", *_SMS_70_80)
    compiled = {source for source, _ in _cuda_compiles(spawns)}
    assert compiled and all(s.startswith("ops/activation/") for s in compiled), compiled
    # activation is SM70+ (tanhf on sm70): every source of it is rebuilt once per SM.
    sources = [s for s in _kernel_sources(workspace) if s.startswith("ops/activation/")]
    assert _cuda_compiles(spawns) == [(s, sm) for s in sources for sm in ("70", "80")]


def test_adding_sm90_compiles_only_sm90(workspace: Workspace) -> None:
    spawns = workspace.build("//python:wheel", *_SMS_70_80, "--//tools/cuda:sms=90")
    compiles = _cuda_compiles(spawns)
    assert compiles == [(source, "90") for source in _kernel_sources(workspace)]
