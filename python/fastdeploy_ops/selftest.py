"""Run the shipped GPU test suite here: ``python -m fastdeploy_ops.selftest [pytest args]``.

Prints ``fastdeploy_ops.info()``, runs ``fastdeploy_ops.tests`` with pytest, then the counts of
passed, skipped (grouped by reason) and failed tests. Exits non-zero if anything failed or
errored, or if pytest itself reported a problem. Writes nothing into the package (no cache, no
bytecode), so it works from a read-only install.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Sequence

import pytest

from . import info

__all__ = ["main"]


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
    print(info(), end="\n\n", flush=True)
    outcomes = _Outcomes()
    args = ["-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", os.path.dirname(__file__),
            "-q", "--pyargs", "fastdeploy_ops.tests", *argv]
    status = pytest.main(args, plugins=[outcomes])
    print("\n" + outcomes.summary())
    clean = status in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    return 0 if clean and not outcomes.failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
