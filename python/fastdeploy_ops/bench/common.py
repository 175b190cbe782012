"""What every family's benchmark cases share: the ``Case`` they yield and the model shapes
that several families are measured at.

Each family's cases live in ``bench/<family>.py``, which maps its op names to case generators
in a module-level ``OPS`` dict; ``python -m fastdeploy_ops.bench`` finds those modules itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["SAMPLING_BATCHES", "VOCABULARIES", "Case", "CaseGenerator"]

# Vocabularies of real models, for penalties and sampling.
VOCABULARIES = {"Llama-3": 128256, "Qwen3": 151936}
SAMPLING_BATCHES = (1, 16, 64, 256)


@dataclass(frozen=True)
class Case:
    """One shape of one op: the implementations to time and the bytes the op must move."""

    op: str
    label: str
    tokens: int
    shape: dict[str, int]
    implementations: dict[str, Callable[[], object]]  # ours first
    bytes_moved: int
    axis: str = "tokens"  # what `tokens` counts ("batch" for per-sequence ops)


# An op's cases: called with the torch module, yields one Case per shape.
CaseGenerator = Callable[[Any], Iterator[Case]]
