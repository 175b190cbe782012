"""The Paddle adapter against the real PaddlePaddle CPU wheel from PyPI.

Paddle has no wheel for the build root's Python 3.14, so ``paddle_adapter/adapter_checks.py``
runs under pytest in the root's Python 3.13 environment (/opt/fastdeploy-ops/venv-paddle,
tools/buildroot/paddle-requirements.lock), against the wheel installed by conftest.py, with the
sm80 module forced so that the bindings load without a GPU. The GPU path (Paddle tensors on a
CUDA place, its current stream) needs a CUDA build of Paddle and a GPU: README.md says how to
run the GPU suite with it.
"""

from __future__ import annotations

import os
import pathlib
import subprocess

PADDLE_PYTHON = "/opt/fastdeploy-ops/venv-paddle/bin/python"
CHECKS_DIR = pathlib.Path(__file__).resolve().parent / "paddle_adapter"


def test_adapter_checks_pass_with_real_paddle() -> None:
    import fastdeploy_ops  # the installed wheel (conftest.py), not the sources

    # Only the package's folder on the path: this process's own (Python 3.14) packages must not
    # reach the 3.13 interpreter.
    site = pathlib.Path(fastdeploy_ops.__file__).resolve().parent.parent
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("TEST_TMPDIR", "/tmp"),
        "TMPDIR": os.environ.get("TEST_TMPDIR", "/tmp"),
        "PYTHONPATH": str(site),
        "PYTHONDONTWRITEBYTECODE": "1",
        "FASTDEPLOY_OPS_SM": "80",
    }
    result = subprocess.run(
        [PADDLE_PYTHON, "-W", "ignore::UserWarning", "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(CHECKS_DIR), "--confcutdir", str(CHECKS_DIR),
         str(CHECKS_DIR / "adapter_checks.py")],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    report = result.stdout[-12000:] + result.stderr[-4000:]
    assert result.returncode == 0, report
    assert " passed" in result.stdout and "skipped" not in result.stdout, report
