"""Benchmark cases of the penalty family: token penalties over the vocabularies of real
models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import SAMPLING_BATCHES, VOCABULARIES, Case, CaseGenerator

# Penalty rows: 2048 prompt tokens and 512 generated ones in an 8192-slot history.
PENALTY_HISTORY, PENALTY_PROMPT, PENALTY_GENERATED = 8192, 2048, 512


def _torch_penalties(torch: Any, ids: Any, logits: Any, alpha: Any, beta: Any, gamma: Any,
                     temperature: Any, prompt_lens: Any) -> None:
    """Penalties as an engine without custom kernels applies them (dense count pass)."""
    rows, vocab = logits.shape
    valid = ids >= 0
    position = torch.arange(ids.shape[1], device=ids.device)
    generated = valid & (position[None, :] >= prompt_lens)
    safe = ids.clamp(min=0)
    counts = torch.zeros(rows, vocab, device=ids.device, dtype=torch.int32)
    counts.scatter_add_(1, safe, generated.int())
    seen = torch.zeros(rows, vocab, device=ids.device, dtype=torch.int32)
    seen.scatter_add_(1, safe, valid.int())
    penalised = torch.where(logits < 0, logits * alpha, logits / alpha)
    out = torch.where(seen > 0, penalised, logits)
    out = out - counts * beta - (counts > 0).float() * gamma
    logits.copy_(out / temperature)


def penalty_cases(torch: Any) -> Iterator[Case]:
    from .. import penalty

    for label, vocab in VOCABULARIES.items():
        for batch in SAMPLING_BATCHES:
            generator = torch.Generator(device="cuda").manual_seed(batch)
            logits = torch.randn(batch, vocab, device="cuda", generator=generator)
            ids = torch.full((batch, PENALTY_HISTORY), -1, device="cuda", dtype=torch.int64)
            used = PENALTY_PROMPT + PENALTY_GENERATED
            ids[:, :used] = torch.randint(0, vocab, (batch, used), device="cuda",
                                          generator=generator)
            column = {"device": "cuda"}
            alpha = torch.full((batch, 1), 1.05, **column)
            beta = torch.full((batch, 1), 0.1, **column)
            gamma = torch.full((batch, 1), 0.1, **column)
            # Temperature 1 keeps repeated calls from driving the logits to infinity.
            temperature = torch.ones((batch, 1), **column)
            bad = torch.randint(0, vocab, (batch, 8), device="cuda", generator=generator)
            bad_lens = torch.full((batch, 1), 8, device="cuda", dtype=torch.int64)
            prompt_lens = torch.full((batch, 1), PENALTY_PROMPT, device="cuda", dtype=torch.int64)
            cur = torch.full((batch, 1), PENALTY_GENERATED, device="cuda", dtype=torch.int64)
            min_lens = torch.ones((batch, 1), device="cuda", dtype=torch.int64)
            eos = torch.tensor([2], device="cuda", dtype=torch.int64)
            args = (ids, logits, alpha, beta, gamma, temperature, bad, bad_lens, prompt_lens,
                    cur, min_lens, eos)
            yield Case(
                op="get_token_penalty_multi_scores", label=label, tokens=batch, axis="batch",
                shape={"bs": batch, "V": vocab, "history": PENALTY_HISTORY},
                implementations={
                    "fastdeploy_ops": lambda args=args:
                        penalty.get_token_penalty_multi_scores(*args),
                    "torch": lambda args=args: _torch_penalties(
                        torch, args[0], args[1], args[2], args[3], args[4], args[5], args[8]),
                },
                # fp32 logits read and written, the history read once.
                bytes_moved=2 * 4 * logits.numel() + 8 * ids.numel(),
            )


OPS: dict[str, CaseGenerator] = {"get_token_penalty_multi_scores": penalty_cases}
