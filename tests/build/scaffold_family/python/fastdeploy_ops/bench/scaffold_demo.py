"""Benchmark cases of the scaffold_demo family: scaled_copy of rows of a model's width."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import Case, CaseGenerator

WIDTH = 4096
TOKENS = (1, 128, 4096)


def scaled_copy_cases(torch: Any) -> Iterator[Case]:
    from .. import scaffold_demo

    for tokens in TOKENS:
        x = torch.randn(tokens, WIDTH, device="cuda")
        out = torch.empty_like(x)
        yield Case(
            op="scaled_copy", label=f"width {WIDTH}", tokens=tokens,
            shape={"T": tokens, "d": WIDTH},
            implementations={
                "fastdeploy_ops": lambda x=x, out=out: scaffold_demo.scaled_copy(x, 2.0, out=out),
                "torch": lambda x=x, out=out: torch.mul(x, 2.0, out=out),
            },
            bytes_moved=2 * x.numel() * x.element_size(),
        )


OPS: dict[str, CaseGenerator] = {"scaled_copy": scaled_copy_cases}
