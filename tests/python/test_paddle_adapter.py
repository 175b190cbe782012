"""The Paddle adapter against the real PaddlePaddle CPU wheel from PyPI.

Paddle has no wheel for the build root's Python 3.14, so ``paddle_adapter/adapter_checks.py``
runs under pytest in the root's Python 3.13 environment (/opt/fastdeploy-ops/venv-paddle,
tools/buildroot/paddle-requirements.lock), against the wheel installed by conftest.py, with the
sm80 module forced so that the bindings load without a GPU. The GPU path (Paddle tensors on a
CUDA place, its current stream) needs a CUDA build of Paddle and a GPU: README.md says how to
run the GPU suite with it.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

PADDLE_PYTHON = "/opt/fastdeploy-ops/venv-paddle/bin/python"
CHECKS = pathlib.Path(__file__).resolve().parent / "paddle_adapter" / "adapter_checks.py"


def test_adapter_checks_pass_with_real_paddle(
    run_checks_with: Callable[[str, pathlib.Path], None],
) -> None:
    run_checks_with(PADDLE_PYTHON, CHECKS)
