"""Remote execution on a loopback BuildGrid farm (tools/remote-exec), from Bazel's execution log.

The farm is BuildGrid with two buildbox workers in the build root; the builds are of a small
module (two families, sm80) in nested workspaces without local caches:
- built with --config=remote-exec, every compile, archive and link runs on a worker, and the
  module is byte-identical to a local build's;
- a worker killed while it runs an action: the action runs again on the other worker and the
  build succeeds;
- what the farm executed is a cache hit for a local build, and what a local build uploaded is a
  cache hit for a remote-exec build;
- a worker advertising another build root is refused and runs nothing; with no worker for the
  root the build fails with the server's queue timeout, or runs here with --remote_local_fallback;
- an action asking for another build root is refused at once.
"""

from __future__ import annotations

import hashlib
import subprocess
import time

import pytest

from buildgrid_farm import Farm
from execution_log import read_execution_log
from nested_bazel import NO_CACHES, TMP, Workspace, executed

_TARGET = "//tests/build:ops_remote_cache"
_MODULE = "bazel-bin/tests/build/remote_cache_ops/_ops_sm80.abi3.so"
_COMPILE_AND_LINK = ("CudaCompile", "CppCompile", "CppArchive", "CppLink")


def _remote(farm: Farm, *, accept_cached: bool = False) -> tuple[str, ...]:
    """--config=remote-exec against `farm`; by default every action executes."""
    flags = ("--disk_cache=", "--config=remote-exec", f"--remote_executor={farm.url}")
    return flags if accept_cached else (*flags, "--noremote_accept_cached")


def _runners(spawns: list[dict]) -> dict[str, set[str]]:
    """Mnemonic -> the runners that ran its spawns (compile, archive and link only)."""
    runners: dict[str, set[str]] = {}
    for spawn in spawns:
        if spawn.get("mnemonic") in _COMPILE_AND_LINK:
            runners.setdefault(spawn["mnemonic"], set()).add(spawn["runner"])
    return runners


def _module_sha256(ws: Workspace) -> str:
    return hashlib.sha256((ws.path / _MODULE).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def farm() -> Farm:
    f = Farm(TMP / "farm")
    f.start(workers=2)
    yield f
    f.stop()


@pytest.fixture(scope="module")
def remote(farm: Farm) -> tuple[Workspace, list[dict]]:
    ws = Workspace("remote")
    spawns = ws.build(_TARGET, caches=_remote(farm))
    yield ws, spawns
    ws.shutdown()


def test_every_compile_and_link_runs_on_a_worker(farm: Farm, remote) -> None:
    _, spawns = remote
    assert _runners(spawns) == {m: {"remote"} for m in _COMPILE_AND_LINK}
    assert all(worker.actions_run() > 0 for worker in farm.workers), "a worker ran nothing"


def test_remote_module_is_byte_identical_to_a_local_build(remote) -> None:
    remote_ws, _ = remote
    local = Workspace("local")
    try:
        spawns = local.build(_TARGET, caches=NO_CACHES)
        assert "remote" not in set().union(*_runners(spawns).values())
        assert _module_sha256(local) == _module_sha256(remote_ws)
    finally:
        local.shutdown()


def test_a_killed_worker_s_action_runs_again_elsewhere(farm: Farm) -> None:
    ws = Workspace("killed")
    command, log = ws.build_command(_TARGET, caches=_remote(farm))
    victim = None
    try:
        build = subprocess.Popen(command, cwd=ws.path, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while victim is None and build.poll() is None and time.monotonic() < deadline:
            victim = next((w for w in farm.workers if w.running_action()), None)
            time.sleep(0.05)
        assert victim is not None, "no worker was seen running an action"
        victim.kill()
        _, stderr = build.communicate(timeout=600)
        assert build.returncode == 0, stderr[-4000:]
    finally:
        ws.shutdown()
    spawns = read_execution_log(log)
    assert _runners(spawns) == {m: {"remote"} for m in _COMPILE_AND_LINK}
    assert (ws.path / _MODULE).is_file()
    farm.workers.remove(victim)
    farm.add_worker()


def test_remote_results_are_local_cache_hits_and_back(farm: Farm, remote) -> None:
    # What the farm executed (the `remote` build) serves a local build through the cache.
    reader = Workspace("reader")
    try:
        spawns = reader.build(_TARGET, caches=("--disk_cache=", "--config=remote-cache",
                                               f"--remote_cache={farm.url}"))
        assert _runners(spawns) == {m: {"remote cache hit"} for m in _COMPILE_AND_LINK}
        # A local build uploads under a changed flag; a remote-exec build then executes nothing.
        flag = "--//cuda:nvcc_threads=2"
        reader.build(_TARGET, flag, caches=("--disk_cache=", "--config=remote-cache-upload",
                                            f"--remote_cache={farm.url}"))
        runs_before = sum(w.actions_run() for w in farm.workers)
        remote_ws, _ = remote
        spawns = remote_ws.build(_TARGET, flag, caches=_remote(farm, accept_cached=True))
        # The flag changes only the CUDA compiles; their objects, and so the rest, are unchanged.
        assert _runners(spawns) == {"CudaCompile": {"remote cache hit"}}
        assert sum(w.actions_run() for w in farm.workers) == runs_before
    finally:
        reader.shutdown()


@pytest.fixture(scope="module")
def foreign_farm() -> Farm:
    """A farm whose only worker advertises another build root; queued actions fail in 10 s."""
    f = Farm(TMP / "foreign-farm", queue_timeout_s=10)
    f.start(workers=0)
    f.add_worker(root_hash="0" * 16)
    yield f
    f.stop()


def test_a_worker_of_another_root_is_refused(foreign_farm: Farm) -> None:
    (worker,) = foreign_farm.workers
    deadline = time.monotonic() + 30
    while worker.exited() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker.exited() not in (None, 0)
    assert "Could not find property set" in worker.log_path.read_text()


def test_without_a_worker_the_build_fails_or_falls_back_when_asked(foreign_farm: Farm) -> None:
    ws = Workspace("no-worker")
    try:
        command, _ = ws.build_command(_TARGET, "--remote_retries=0",
                                      caches=_remote(foreign_farm))
        failed = subprocess.run(command, cwd=ws.path, capture_output=True, text=True)
        assert failed.returncode != 0
        assert "Operation has been queued for too long" in failed.stderr, failed.stderr[-4000:]

        spawns = ws.build(_TARGET, "--remote_retries=0", "--remote_local_fallback",
                          caches=_remote(foreign_farm))
        assert "remote" not in set().union(*_runners(spawns).values())
        assert [s for s in executed(spawns, "CudaCompile")], "nothing compiled locally"
    finally:
        ws.shutdown()
    (worker,) = foreign_farm.workers
    assert worker.actions_run() == 0


def test_an_action_for_another_root_is_refused(farm: Farm) -> None:
    ws = Workspace("foreign-action")
    try:
        command, _ = ws.build_command(
            _TARGET, "--remote_retries=0",
            "--extra_execution_platforms=//tests/build:foreign_buildroot", caches=_remote(farm))
        result = subprocess.run(command, cwd=ws.path, capture_output=True, text=True,
                                timeout=600)
    finally:
        ws.shutdown()
    assert result.returncode != 0
    assert "Could not find property set" in result.stderr, result.stderr[-4000:]
