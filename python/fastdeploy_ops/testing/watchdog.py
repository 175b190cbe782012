"""pytest plugin: a test still running after ``--hang-timeout`` seconds is a hang.

A kernel that never finishes blocks its process inside a CUDA call, where neither Python
signals nor pytest can interrupt it. A watchdog thread therefore watches the running test;
past the deadline it prints which test hung and every thread's stack to stderr, calls the
registered ``on_hang(nodeid, seconds)`` (``fastdeploy_ops.selftest`` prints its summary there,
the hung test counted as failed) and ends the process with exit code 1. The GPU context of a
hung kernel cannot be recovered in-process, so this is the clean stop. Under pytest-xdist
(``-n``) each worker loads the plugin: a hung worker ends, xdist reports its test as failed
and starts a new worker for the rest of the run.

A test that pytest-timeout would end sooner (``--timeout`` or a ``timeout`` mark) is stopped
by the watchdog two seconds before that: pytest-timeout's thread method also ends the process,
but its stack dump goes into the test's output capture and is lost, and under xdist the test is
then reported only as a lost worker, without its name.

Enable it with ``-p fastdeploy_ops.testing.watchdog --hang-timeout 300``.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
from collections.abc import Callable, Generator

import pytest

__all__ = ["Watchdog"]

PLUGIN_NAME = "fastdeploy_ops_watchdog"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hang-timeout", type=float, default=None, metavar="SECONDS",
                     help="fail (and stop) a test still running after SECONDS: a hang")


def pytest_configure(config: pytest.Config) -> None:
    seconds = config.getoption("hang_timeout")
    if seconds is not None:
        if seconds <= 0:
            raise pytest.UsageError(f"--hang-timeout must be > 0, got {seconds}")
        config.pluginmanager.register(Watchdog(seconds, config), PLUGIN_NAME)


class Watchdog:
    """Watches one test at a time from a daemon thread (see the module docstring)."""

    def __init__(self, seconds: float, config: pytest.Config) -> None:
        self.seconds = seconds
        self.config = config
        self.on_hang: Callable[[str, float], None] | None = None
        self._lock = threading.Lock()
        self._running: tuple[str, float, float] | None = None  # (nodeid, deadline, seconds)
        threading.Thread(target=self._watch, name="fastdeploy_ops-watchdog", daemon=True).start()

    def limit(self, item: pytest.Item) -> float:
        """Seconds ``item`` may run: ``--hang-timeout``, or 2 s less than pytest-timeout's limit
        for it (its ``timeout`` mark, else ``--timeout``) when that comes first."""
        marker = item.get_closest_marker("timeout")
        timeout = None
        if marker is not None:
            timeout = marker.args[0] if marker.args else marker.kwargs.get("timeout")
        if timeout is None:
            timeout = self.config.getoption("timeout", default=None)  # None: no pytest-timeout
        if not timeout or float(timeout) <= 0:
            return self.seconds
        return min(self.seconds, max(float(timeout) - 2.0, float(timeout) / 2))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        seconds = self.limit(item)
        with self._lock:
            self._running = (item.nodeid, time.monotonic() + seconds, seconds)
        try:
            yield
        finally:
            with self._lock:
                self._running = None

    def _watch(self) -> None:
        while True:
            time.sleep(0.25)
            with self._lock:
                running = self._running
            if running is not None and time.monotonic() > running[1]:
                self._stop(running[0], running[2])

    def _stop(self, nodeid: str, seconds: float) -> None:
        # The test's output capture holds the process's stdout and stderr: give them back (the
        # test's thread is stuck, so nothing else touches them now).
        capture = self.config.pluginmanager.getplugin("capturemanager")
        if capture is not None:
            capture.suspend_global_capture(in_=True)
        stderr = sys.stderr
        print(f"\nHANG: {nodeid} did not finish within {seconds:g} s; its stacks follow, "
              "then this process stops (exit code 1)", file=stderr, flush=True)
        faulthandler.dump_traceback(file=stderr, all_threads=True)
        try:
            if self.on_hang is not None:
                self.on_hang(nodeid, seconds)
        finally:
            sys.stdout.flush()
            stderr.flush()
            os._exit(1)
