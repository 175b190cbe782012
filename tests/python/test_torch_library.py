"""The torch operators against PyPI's torch 2.11.0 (the GPU machines' release), on the CPU.

The build root's main environment has no torch, so that everything else is tested without it;
``torch_library/torch_checks.py`` runs in its own environment (/opt/fastdeploy-ops/venv-torch,
tools/buildroot/torch-requirements.lock) against the wheel installed by conftest.py, with the
sm80 module forced, once with the operators' C++ implementation (the wheel's library for this
torch release) and once with the Python one (FASTDEPLOY_OPS_TORCH_NATIVE=0, what other releases
get). opcheck, inductor and CUDA graphs need a GPU: the shipped suite's test_torch_library.py
covers them there.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

TORCH_PYTHON = "/opt/fastdeploy-ops/venv-torch/bin/python"
CHECKS = pathlib.Path(__file__).resolve().parent / "torch_library" / "torch_checks.py"


@pytest.mark.parametrize("native", ["1", "0"], ids=["cpp_operators", "python_operators"])
def test_torch_checks_pass_with_real_torch(
    run_checks_with: Callable[..., None], native: str,
) -> None:
    run_checks_with(TORCH_PYTHON, CHECKS, {"FASTDEPLOY_OPS_TORCH_NATIVE": native})
