"""Benchmark cases of the preprocess family: the row gather of rebuild_padding at decode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import Case, CaseGenerator

# Hidden sizes of real models, for the row copy of rebuild_padding.
HIDDEN_SIZES = {"Llama-3-8B": 4096, "DeepSeek-V3": 7168, "Llama-3-70B": 8192}
DECODE_BATCHES = (1, 16, 128, 1024, 4096)


def rebuild_padding_cases(torch: Any) -> Iterator[Case]:
    from .. import preprocess

    for label, hidden in HIDDEN_SIZES.items():
        for batch in DECODE_BATCHES:
            # Decode step: one token per sequence, every sequence active.
            tmp_out = torch.randn(batch, hidden, device="cuda", dtype=torch.bfloat16)
            cu_seqlens = torch.arange(batch + 1, device="cuda", dtype=torch.int32)
            this_time = torch.ones(batch, device="cuda", dtype=torch.int32)
            decoder = torch.full((batch,), 100, device="cuda", dtype=torch.int32)
            encoder = torch.zeros(batch, device="cuda", dtype=torch.int32)
            out = torch.empty_like(tmp_out)
            lengths = (cu_seqlens, this_time, decoder, encoder)

            def torch_gather(tmp_out=tmp_out, lengths=lengths):
                cu, this_time, decoder, encoder = lengths
                rows = cu[:-1] + torch.where(encoder > 0, encoder - 1, 0)
                skip = (this_time == 0) | ((decoder == 0) & (encoder == 0))
                return tmp_out.index_select(0, rows).masked_fill_(skip[:, None], 0)

            yield Case(
                op="rebuild_padding", label=label, tokens=batch, axis="batch",
                shape={"bs": batch, "dim": hidden},
                implementations={
                    "fastdeploy_ops": lambda tmp_out=tmp_out, lengths=lengths, out=out:
                        preprocess.rebuild_padding(tmp_out, *lengths, out=out),
                    "torch": torch_gather,
                },
                bytes_moved=2 * tmp_out.numel() * 2 + 4 * 4 * batch,
            )



OPS: dict[str, CaseGenerator] = {"rebuild_padding": rebuild_padding_cases}
