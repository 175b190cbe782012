"""What every family's benchmark cases share: the ``Case`` they yield and the model shapes
that several families are measured at.

Each family's cases live in ``bench/<family>.py``, which maps its op names to case generators
in a module-level ``OPS`` dict; ``python -m fastdeploy_ops.bench`` finds those modules itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "END_IDS",
    "MAX_MODEL_LEN",
    "SAMPLING_BATCHES",
    "UNTIMED_OPS",
    "VOCABULARIES",
    "Case",
    "CaseGenerator",
]

# Vocabularies of real models, for penalties and sampling.
VOCABULARIES = {"Llama-3": 128256, "Qwen3": 151936}
# Batch 128 at V = 128256 is where sampling is compared with its one-pass floor; the extra
# batch adds a few seconds per sampling or penalty op to a run.
SAMPLING_BATCHES = (1, 16, 64, 128, 256)
# Columns of an engine's per-sequence buffers: token histories, padded input ids.
MAX_MODEL_LEN = 8192
# Qwen3's end ids (<|endoftext|>, <|im_end|>), for stop checks.
END_IDS = (151643, 151645)

# Ops of the package without cases, and why: nothing of theirs runs on the GPU. Every other op
# the package exports needs a case (tests/python/test_bench.py).
UNTIMED_OPS = {
    "paged_attention_plan": "host logic: how an attention launch would divide its work",
}


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
    flops: int = 0  # arithmetic the op must do, for compute-bound ops (0: not reported)
    note: str = ""  # a paragraph under the op's heading in results.md (the op's first note)


# An op's cases: called with the torch module, yields one Case per shape.
CaseGenerator = Callable[[Any], Iterator[Case]]
