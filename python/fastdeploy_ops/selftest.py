"""Run the shipped GPU test suite here: ``python -m fastdeploy_ops.selftest [pytest args]``.

Prints ``fastdeploy_ops.info()``, runs ``fastdeploy_ops.tests`` with pytest, then the counts of
passed, skipped (grouped by reason) and failed tests. Exits non-zero if anything failed or
errored, if pytest itself reported a problem, or if a machine with a usable GPU collected no
test. Writes nothing into the package (no cache, no bytecode), so it works from a read-only
install.

Every test runs under a watchdog (:mod:`fastdeploy_ops.testing.watchdog`, ``--hang-timeout``,
default 300 s): a test that hangs is reported as a failure naming it. Alone, the run then stops
with the summary; with pytest-xdist (``-n 8``) the hung worker is replaced and the run goes on,
and each worker's numpy uses one BLAS thread unless ``OMP_NUM_THREADS`` and friends say otherwise.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Sequence

import pytest

from . import info
from .testing import gpu_skip_reason

__all__ = ["DEFAULT_HANG_TIMEOUT", "main"]

# Seconds a test may run before it counts as hung; the slowest tests (long-context attention
# with float64 references) take about a minute.
DEFAULT_HANG_TIMEOUT = 300
_BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class _Outcomes:
    """pytest plugin: the outcome of every test, and the reason of every skip."""

    def __init__(self) -> None:
        self.passed = 0
        self.skipped: Counter[str] = Counter()
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.passed and report.when == "call":
            self.passed += 1
        elif report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            self.skipped[reason.removeprefix("Skipped: ")] += 1
        elif report.failed:
            where = "" if report.when == "call" else f" ({report.when})"
            self.failed.append(report.nodeid + where)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.failed.append(f"{report.nodeid} (collection)")

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Imported only now, after pytest loaded it as a plugin (-p): importing it first would
        # keep pytest from rewriting its asserts, and pytest warns about that.
        from .testing.watchdog import PLUGIN_NAME, Watchdog

        watchdog = session.config.pluginmanager.get_plugin(PLUGIN_NAME)
        if isinstance(watchdog, Watchdog):
            watchdog.on_hang = self.hung

    def hung(self, nodeid: str, seconds: float) -> None:
        """The watchdog's last call before it stops the process: print the summary."""
        self.failed.append(f"{nodeid} (hung: no result within {seconds:g} s; run stopped)")
        print("\n" + self.summary(), flush=True)

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        lines = [f"{self.passed} passed, {skipped} skipped, {len(self.failed)} failed"]
        if skipped:
            lines.append("skipped, by reason:")
            lines += [f"  {count:5d}  {reason}" for reason, count in self.skipped.most_common()]
        if self.failed:
            lines.append("failed:")
            lines += [f"  {nodeid}" for nodeid in self.failed]
        return "\n".join(lines)


def main(argv: Sequence[str] = ()) -> int:
    """Run the suite, passing ``argv`` on to pytest (``-x``, ``-k gelu``); return the exit code."""
    sys.dont_write_bytecode = True  # also stops pytest from writing rewritten test modules
    if any(arg.startswith(("-n", "--numprocesses")) for arg in argv):
        # pytest-xdist workers each run numpy references: one BLAS thread apiece, or N workers
        # times all cores' threads starve each other (tests then run past their timeouts).
        for variable in _BLAS_THREADS:
            os.environ.setdefault(variable, "1")
    print(info(), end="\n\n", flush=True)
    outcomes = _Outcomes()
    watchdog = ["-p", "fastdeploy_ops.testing.watchdog"]
    if not any(arg.startswith("--hang-timeout") for arg in argv):
        watchdog += ["--hang-timeout", str(DEFAULT_HANG_TIMEOUT)]
    args = ["-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", os.path.dirname(__file__),
            *watchdog, "-q", "--pyargs", "fastdeploy_ops.tests", *argv]
    status = pytest.main(args, plugins=[outcomes])
    print("\n" + outcomes.summary())
    if status == pytest.ExitCode.NO_TESTS_COLLECTED and gpu_skip_reason() is None:
        print("no test was collected on a machine with a usable GPU: nothing was checked")
        return 1
    clean = status in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    return 0 if clean and not outcomes.failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
