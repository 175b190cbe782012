"""The shipped suite's watchdog: a test that hangs fails by name and the run stops cleanly.

A hang is simulated by a test that sleeps: like a kernel that never finishes, it blocks the
main thread where pytest cannot interrupt it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

HANGING_TESTS = textwrap.dedent("""
    import time

    def test_before():
        pass

    def test_hangs():
        time.sleep(120)

    def test_after():
        pass
""")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("FASTDEPLOY_OPS_SM", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=100, check=False)


def test_plugin_names_the_hung_test_and_stops(tmp_path: Path) -> None:
    (tmp_path / "test_sleepy.py").write_text(HANGING_TESTS)
    result = _run(["-m", "pytest", "-p", "no:cacheprovider", "-p",
                   "fastdeploy_ops.testing.watchdog", "--hang-timeout", "2", "test_sleepy.py"],
                  tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "HANG: test_sleepy.py::test_hangs did not finish within 2 s" in result.stderr
    assert 'test_sleepy.py", line 8 in test_hangs' in result.stderr  # the hung thread's stack


def test_selftest_counts_a_hang_as_a_failure(tmp_path: Path) -> None:
    tests = tmp_path / "test_sleepy.py"
    tests.write_text(HANGING_TESTS)
    result = _run(["-m", "fastdeploy_ops.selftest", "--hang-timeout", "2", "-k", "sleepy",
                   str(tests)], tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 passed, 0 skipped, 1 failed" in result.stdout, output
    assert "test_hangs (hung: no result within 2 s; run stopped)" in result.stdout, output


def test_selftest_without_hangs_needs_no_timeout_argument(tmp_path: Path) -> None:
    tests = tmp_path / "test_quick.py"
    tests.write_text("def test_quick():\n    pass\n")
    result = _run(["-m", "fastdeploy_ops.selftest", "-k", "quick", str(tests)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 0 skipped, 0 failed" in result.stdout
