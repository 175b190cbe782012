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


def _run_plugin(tmp_path: Path, tests: str, hang_timeout: str) -> subprocess.CompletedProcess:
    """pytest with the watchdog on ``tests`` (a module's source); it must stop with exit code 1."""
    (tmp_path / "test_sleepy.py").write_text(tests)
    result = _run(["-m", "pytest", "-p", "no:cacheprovider", "-p",
                   "fastdeploy_ops.testing.watchdog", "--hang-timeout", hang_timeout,
                   "test_sleepy.py"], tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    return result


def test_plugin_names_the_hung_test_and_stops(tmp_path: Path) -> None:
    result = _run_plugin(tmp_path, HANGING_TESTS, "2")
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


def test_a_timeout_mark_brings_the_deadline_forward(tmp_path: Path) -> None:
    """Under pytest-timeout's limit (here its mark) the watchdog stops the test 2 s earlier, so
    the test is named instead of lost with its process."""
    marked = HANGING_TESTS.replace("import time\n", "import time\nimport pytest\n").replace(
        "def test_hangs", "@pytest.mark.timeout(4)\ndef test_hangs")
    result = _run_plugin(tmp_path, marked, "60")
    assert "HANG: test_sleepy.py::test_hangs did not finish within 2 s" in result.stderr


def test_the_limit_is_the_shorter_of_both() -> None:
    from fastdeploy_ops.testing.watchdog import Watchdog  # noqa: PLC0415

    class Config:
        def __init__(self, timeout: float | None) -> None:
            self.timeout = timeout

        def getoption(self, name: str, default: object = None) -> object:
            return self.timeout if name == "timeout" else default

    class Item:
        def __init__(self, mark: float | None) -> None:
            self.mark = mark

        def get_closest_marker(self, name: str) -> object:
            if self.mark is None or name != "timeout":
                return None
            return type("Mark", (), {"args": (self.mark,), "kwargs": {}})()

    def limit(hang: float, option: float | None, mark: float | None) -> float:
        return Watchdog(hang, Config(option)).limit(Item(mark))

    assert limit(300, None, None) == 300  # no pytest-timeout
    assert limit(300, 60, None) == 58  # --timeout 60
    assert limit(300, 60, 300) == 298  # a mark overrides --timeout
    assert limit(30, 60, None) == 30  # --hang-timeout shorter
    assert limit(300, 0, None) == 300  # --timeout 0: none
    assert limit(300, 3, None) == 1.5  # never less than half of it
