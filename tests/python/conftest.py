"""Installs the wheel built for these tests into a private site folder before any test runs.

The CPU tests exercise the package exactly as users get it: `pip install` of the wheel (with
its sm70 and sm80 modules), then `import fastdeploy_ops`, with no GPU on the machine.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile


def _wheel() -> pathlib.Path:
    wheel_dir = pathlib.Path(os.environ["FASTDEPLOY_OPS_WHEEL_DIR"])
    wheels = sorted(wheel_dir.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {wheel_dir}, found {wheels}")
    return wheels[0]


def pytest_configure(config) -> None:
    site = pathlib.Path(tempfile.mkdtemp(prefix="site-", dir=os.environ.get("TEST_TMPDIR")))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--disable-pip-version-check", "--target", str(site), str(_wheel())],
        check=True,
    )
    sys.path.insert(0, str(site))
    # Subprocesses started by tests (forced-SM imports) see the same installation.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    os.environ["FASTDEPLOY_OPS_WHEEL"] = str(_wheel())
    os.environ["FASTDEPLOY_OPS_REQUIRE_MODULES"] = "1"
