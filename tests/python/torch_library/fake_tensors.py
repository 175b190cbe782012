"""What the per-family fake cases (``fake_cases_<family>.py``) share.

Each of those files defines ``CASES``: label -> (a call of the typed API on tensors made by
:func:`cuda`, the ``(shape, dtype)`` of each output it returns, ``None`` for a ``None``).
torch_checks.py runs them under ``FakeTensorMode``, where the tensors are fake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

BF16, F32, I32, I64, BOOL = torch.bfloat16, torch.float32, torch.int32, torch.int64, torch.bool
FP8 = torch.float8_e4m3fn
T, BS, H, KV, D = 64, 64, 32, 8, 128  # Llama-3-8B decode at batch 64

Output = tuple[tuple[int, ...], torch.dtype] | None
Cases = dict[str, tuple[Callable[[], Any], list[Output]]]


def cuda(shape: tuple[int, ...], dtype: torch.dtype = BF16) -> torch.Tensor:
    """An uninitialised tensor on the GPU (a fake one under ``FakeTensorMode``)."""
    return torch.empty(shape, dtype=dtype, device="cuda")
