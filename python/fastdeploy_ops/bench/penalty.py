"""Benchmark cases of the penalty family: token penalties over the vocabularies of real
models (the multi-score penalties at sampling, and the repetition penalty applied once)."""

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
            # Not 1 (that leaves the dense pass out), and above 1: the few thousand calls of a
            # case shrink the logits by 1.01 each, far from fp32's denormals (1.01^-5000 ~ 2e-22).
            temperature = torch.full((batch, 1), 1.01, **column)
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


def _torch_penalty_once(torch: Any, ids: Any, logits: Any, alpha: Any) -> Any:
    """get_token_penalty_once with torch operations: ``ids`` ``[bs, L]`` int64, ``logits``
    ``[bs, V]`` float32, ``alpha`` ``[bs, 1]`` float32; returns new ``[bs, V]`` logits.

    Ids from a row's first negative one on, and ids outside the vocabulary, are scattered into
    a spare column that is cut off (graph-capturable: no host synchronisation). A repeated id
    writes the same value each time, so it is penalised once.
    """
    rows, vocab = logits.shape
    counted = ((ids < 0).cumsum(dim=1) == 0) & (ids < vocab)
    picked = logits.gather(1, ids.clamp(0, vocab - 1))
    penalised = torch.where(picked < 0, picked * alpha, picked / alpha)
    out = torch.cat((logits, logits.new_zeros(rows, 1)), dim=1)
    out.scatter_(1, torch.where(counted, ids, vocab), penalised)
    return out[:, :vocab]


def penalty_once_cases(torch: Any) -> Iterator[Case]:
    from .. import penalty

    for label, vocab in VOCABULARIES.items():
        for batch in SAMPLING_BATCHES:
            generator = torch.Generator(device="cuda").manual_seed(batch + 1)
            logits = torch.randn(batch, vocab, device="cuda", generator=generator)
            # The generated tokens of each row, then -1 to the end of the history.
            ids = torch.full((batch, PENALTY_HISTORY), -1, device="cuda", dtype=torch.int64)
            ids[:, :PENALTY_GENERATED] = torch.randint(0, vocab, (batch, PENALTY_GENERATED),
                                                       device="cuda", generator=generator)
            alpha = torch.full((batch, 1), 1.05, device="cuda")
            out = torch.empty_like(logits)
            yield Case(
                op="get_token_penalty_once", label=label, tokens=batch, axis="batch",
                shape={"bs": batch, "V": vocab, "history": PENALTY_HISTORY},
                implementations={
                    "fastdeploy_ops": lambda ids=ids, logits=logits, alpha=alpha, out=out:
                        penalty.get_token_penalty_once(ids, logits, alpha, out=out),
                    "torch": lambda ids=ids, logits=logits, alpha=alpha:
                        _torch_penalty_once(torch, ids, logits, alpha),
                },
                # fp32 logits read and written once (the penalised entries are among them),
                # each row's ids up to and including its first -1, the penalty read.
                bytes_moved=2 * 4 * logits.numel() + batch * (8 * (PENALTY_GENERATED + 1) + 4),
            )


OPS: dict[str, CaseGenerator] = {
    "get_token_penalty_multi_scores": penalty_cases,
    "get_token_penalty_once": penalty_once_cases,
}
