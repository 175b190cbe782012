"""Fixtures of the shipped suite.

``FASTDEPLOY_OPS_OPCHECK=<log file>``: after every torch operator call of the suite that
succeeds, ``torch.library.opcheck`` checks the operator on the same arguments (schema and
mutations, fake tensors, autograd registration, AOT dispatch with dynamic shapes; it copies
them), once per operator, input dtypes and ranks in each process, and appends ``<operator>
<dtypes and ranks>`` to the log file; a failed check fails the test. Calls that the tests
expect to be refused are not checked: they raise first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from fastdeploy_ops import _torch_library
from fastdeploy_ops.testing import tensor_lib

__all__ = ["opcheck_operators", "tensor_lib"]

ENV_OPCHECK = "FASTDEPLOY_OPS_OPCHECK"
_checked: set[tuple[Any, ...]] = set()


def _signature(name: str, args: Sequence[Any]) -> tuple[Any, ...]:
    return (name, *(f"{a.dtype}[{a.dim()}]" if hasattr(a, "dtype") else type(a).__name__
                    for a in args))


@pytest.fixture(autouse=True)
def opcheck_operators(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    log = os.environ.get(ENV_OPCHECK)
    if not log:
        yield
        return
    import torch  # noqa: PLC0415 (only when asked for: the suite may run without torch)

    forward = _torch_library.call

    def checked(kernel: Any, args: Sequence[Any]) -> None:
        forward(kernel, args)
        signature = _signature(kernel.torch_name, args)
        if signature not in _checked:
            operator = getattr(torch.ops.fastdeploy_ops, kernel.torch_name).default
            torch.library.opcheck(operator, tuple(args))
            _checked.add(signature)
            with open(log, "a", encoding="utf-8") as file:
                file.write(" ".join(signature) + "\n")

    monkeypatch.setattr(_torch_library, "call", checked)
    yield
