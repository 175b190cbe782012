"""Benchmark cases of the speculative family: speculate_update over decode batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import Case, CaseGenerator

SPECULATIVE_BATCHES = (1, 64, 256, 512)
SPECULATIVE_DRAFT = 4


def speculate_update_cases(torch: Any) -> Iterator[Case]:
    from .. import speculative

    for batch in SPECULATIVE_BATCHES:
        draft = SPECULATIVE_DRAFT
        generator = torch.Generator(device="cuda").manual_seed(batch)

        def ints(high: int, shape: tuple[int, ...], dtype: Any = torch.int32) -> Any:
            return torch.randint(0, high, shape, device="cuda", generator=generator, dtype=dtype)

        encoder = torch.zeros(batch, device="cuda", dtype=torch.int32)
        decoder = ints(8192, (batch,))
        not_need_stop = torch.ones(1, device="cuda", dtype=torch.bool)
        draft_tokens, accept_tokens = ints(152064, (batch, draft), torch.int64), ints(
            152064, (batch, draft), torch.int64)
        draft_nums, accept_num = ints(draft, (batch,)) + 1, ints(draft, (batch,)) + 1
        stop_flags = torch.zeros(batch, device="cuda", dtype=torch.bool)
        this_time = torch.full((batch,), draft + 1, device="cuda", dtype=torch.int32)
        block_step = torch.zeros(batch, device="cuda", dtype=torch.bool)
        stop_nums = torch.tensor([batch], device="cuda", dtype=torch.int64)
        args = (encoder, decoder, not_need_stop, draft_tokens, draft_nums, accept_tokens,
                accept_num, stop_flags, this_time, block_step, stop_nums)
        yield Case(
            op="speculate_update", label=f"draft {draft}", tokens=batch, axis="batch",
            shape={"bs": batch, "draft": draft},
            implementations={
                "fastdeploy_ops": lambda args=args: speculative.speculate_update(*args)},
            bytes_moved=batch * (4 * 6 + 3 + 8 * 2 * draft),
        )


OPS: dict[str, CaseGenerator] = {"speculate_update": speculate_update_cases}
