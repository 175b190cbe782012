"""The remote cache against a real BuildGrid server on loopback, measured from execution logs.

One checkout builds a small module (two families, sm80) with --config=remote-cache-upload; then:
- a clean build of a second checkout at another absolute path takes every CUDA compile, archive
  and link from the remote cache;
- a changed toolkit stamp or nvcc flag misses it (no false hits);
- no cached output holds the absolute path of a checkout, an output base or a sandbox;
- a server killed in the middle of a build: the build completes locally and says so.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest

from buildgrid_server import BuildGridServer
from execution_log import read_execution_log
from nested_bazel import TMP, Workspace, cuda_compile, executed

_TARGET = "//tests/build:ops_remote_cache"
_MODULE = "bazel-bin/tests/build/remote_cache_ops/_ops_sm80.abi3.so"
_CUDA_SOURCES = [
    ("ops/activation/gelu_tanh.cu", "80"),
    ("ops/activation/kernel_table.cu", "80"),
    ("ops/rotary/fused_rotary_position_encoding.cu", "80"),
    ("ops/rotary/kernel_table.cu", "80"),
]
_COMPILE_AND_LINK = ("CudaCompile", "CppArchive", "CppLink")
_COMPILE_PROGRESS = re.compile(r"\[[\d,]+ / [\d,]+\] Compiling ")


def _reading(server: BuildGridServer) -> tuple[str, ...]:
    """The developers' config against `server`, without the local disk cache."""
    return ("--disk_cache=", "--config=remote-cache", f"--remote_cache={server.url}")


def _uploading(server: BuildGridServer) -> tuple[str, ...]:
    """CI's config against `server`, without the local disk cache."""
    return ("--disk_cache=", "--config=remote-cache-upload", f"--remote_cache={server.url}")


def _of(spawns: list[dict], mnemonics: tuple[str, ...]) -> list[dict]:
    return [s for s in spawns if s.get("mnemonic") in mnemonics]


@pytest.fixture(scope="module")
def server() -> BuildGridServer:
    s = BuildGridServer(TMP / "buildgrid")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def uploader(server: BuildGridServer) -> tuple[Workspace, list[dict]]:
    """The checkout that populated the cache, and the spawns of its build."""
    ws = Workspace("uploader")
    spawns = ws.build(_TARGET, caches=_uploading(server))
    assert sorted(cuda_compile(s) for s in executed(spawns, "CudaCompile")) == _CUDA_SOURCES
    yield ws, spawns
    ws.shutdown()


@pytest.fixture(scope="module")
def reader(server: BuildGridServer, uploader: tuple[Workspace, list[dict]]) -> tuple[Workspace, list[dict]]:
    """A second checkout at another absolute path, and the spawns of its clean build."""
    ws = Workspace("reader")
    assert ws.path != uploader[0].path
    spawns = ws.build(_TARGET, caches=_reading(server))
    yield ws, spawns
    ws.shutdown()


def test_clean_build_elsewhere_takes_every_compile_and_link_from_the_cache(reader) -> None:
    _, spawns = reader
    for mnemonic in _COMPILE_AND_LINK:
        assert _of(spawns, (mnemonic,)), f"no {mnemonic} action in the build"
    misses = [(s["mnemonic"], s["runner"]) for s in _of(spawns, _COMPILE_AND_LINK)
              if s["runner"] != "remote cache hit"]
    assert misses == []


def test_changed_nvcc_flag_misses_the_cache(server, reader) -> None:
    ws, _ = reader
    spawns = ws.build(_TARGET, "--//cuda:nvcc_threads=2", caches=_reading(server))
    assert sorted(cuda_compile(s) for s in executed(spawns, "CudaCompile")) == _CUDA_SOURCES


def test_changed_toolkit_stamp_misses_the_cache(server, reader) -> None:
    ws, _ = reader
    # The toolkit repository as generated, with one line added to its stamp: same nvcc, same
    # command lines, only the stamp's content differs.
    (generated,) = [p for p in (ws.info("output_base") / "external").glob("*cuda_toolkit")
                    if p.is_dir()]
    changed = TMP / "cuda_toolkit_changed"
    shutil.copytree(generated, changed, symlinks=True)
    with open(changed / "version.txt", "a") as f:
        f.write("toolkit rebuilt with a different patch level\n")
    spawns = ws.build(_TARGET, f"--override_repository={generated.name}={changed}",
                      caches=_reading(server))
    assert sorted(cuda_compile(s) for s in executed(spawns, "CudaCompile")) == _CUDA_SOURCES


def test_no_cached_output_holds_an_absolute_build_path(uploader) -> None:
    ws, spawns = uploader
    execroot = ws.info("execution_root")
    forbidden = [str(ws.path).encode(), str(ws.output_root).encode(), b"/execroot/", b"/sandbox/"]
    checked, leaks = 0, []
    for spawn in spawns:
        if not spawn.get("remoteCacheable"):
            continue
        for output in spawn.get("actualOutputs", []):
            path = execroot / output["path"]
            if not path.is_file():
                continue
            data = path.read_bytes()
            checked += 1
            leaks += [(output["path"], f.decode()) for f in forbidden if f in data]
    assert checked >= len(_CUDA_SOURCES) + 1  # the objects and the module at least
    assert leaks == []


def test_server_killed_mid_build_falls_back_to_local(tmp_path: pathlib.Path) -> None:
    server = BuildGridServer(tmp_path / "buildgrid")
    server.start()
    ws = Workspace("fallback")
    command, log = ws.build_command(_TARGET, "--show_progress_rate_limit=0.5",
                                    caches=_uploading(server))
    output, killed_at = [], None
    try:
        build = subprocess.Popen(command, cwd=ws.path, stderr=subprocess.PIPE, text=True)
        for line in build.stderr:
            output.append(line)
            # The progress line names only the oldest running action, which may be a C++
            # compile (nanobind) rather than a CUDA one: any compile means the build is under way.
            if killed_at is None and _COMPILE_PROGRESS.search(line):
                server.kill()
                killed_at = line.strip()
        assert build.wait() == 0, "".join(output[-40:])
    finally:
        server.kill()
        ws.shutdown()
    assert killed_at, "no compile in the build's progress, so the server was never killed:\n" + (
        "".join(output[-40:]))
    # Bazel names the failed remote calls and runs the actions itself.
    text = "".join(output)
    assert re.search(r"WARNING: .*Remote Cache.*UNAVAILABLE", text), text[-4000:]
    spawns = read_execution_log(log)
    assert sorted(cuda_compile(s) for s in executed(spawns, "CudaCompile")) == _CUDA_SOURCES
    assert (ws.path / _MODULE).is_file()
