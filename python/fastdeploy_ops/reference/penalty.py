"""References for the ``penalty`` family (semantics: ``ops/penalty/README.md``).

The kernels compute in float32 and round once to the logits' dtype; so do these references,
given the logits' ``dtype`` by name: inputs are float32 arrays holding values of that dtype
(e.g. bfloat16 logits widened exactly), outputs are float32 arrays holding values of that dtype.
Every float32 operation is the same, in the same order, as in the kernels, so the results match
them bit for bit. Nothing is modified in place.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["get_token_penalty_multi_scores", "get_token_penalty_once", "round_to_dtype"]

F32 = NDArray[np.float32]
_BAN = np.float32(-1e10)
_EOS_BAN_FP16 = np.float32(-1e4)
_DTYPES = ("float32", "float16", "bfloat16")


def round_to_dtype(x: ArrayLike, dtype: str) -> F32:
    """``x`` rounded (to nearest even) to ``dtype`` and widened back to float32, exactly as
    ``__float2half_rn`` / ``__float2bfloat16_rn`` do; overflow gives infinity."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "float32":
        return x.copy()
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(np.float32)
    if dtype == "bfloat16":
        # Round to nearest even on the bit pattern; uint32 arithmetic wraps only for NaNs,
        # which are restored after.
        bits = np.ascontiguousarray(x).reshape(x.shape).view(np.uint32)
        rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
        out = (rounded & np.uint32(0xFFFF0000)).view(np.float32)
        return np.where(np.isnan(x), np.float32(np.nan), out).astype(np.float32)
    raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")


def _per_row(x: ArrayLike, rows: int, dtype: type) -> NDArray:
    return np.asarray(x, dtype=dtype).reshape(rows)


def _repetition(logits: F32, alpha: np.float32) -> F32:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(logits < 0, logits * alpha, logits / alpha).astype(np.float32)


def repeat_counts(token_ids: NDArray[np.int64], prompt_len: int, vocab: int) -> NDArray[np.int64]:
    """``rep`` of one row: occurrences in the generated part ``token_ids[prompt_len:]``; ``-1``
    for ids only in the prompt ``token_ids[:prompt_len]``; 0 otherwise (ids outside
    ``[0, vocab)`` ignored, ``prompt_len`` clamped to the row)."""
    token_ids = np.asarray(token_ids, dtype=np.int64)
    prompt_len = min(max(int(prompt_len), 0), token_ids.shape[0])
    prompt, generated = token_ids[:prompt_len], token_ids[prompt_len:]
    prompt = prompt[(prompt >= 0) & (prompt < vocab)]
    generated = generated[(generated >= 0) & (generated < vocab)]
    counts = np.bincount(generated, minlength=vocab).astype(np.int64)
    in_prompt = np.zeros(vocab, dtype=bool)
    in_prompt[prompt] = True
    return np.where(counts > 0, counts, np.where(in_prompt, -1, 0))


def get_token_penalty_multi_scores(
    token_ids_all: ArrayLike,
    logits: ArrayLike,
    penalty_scores: ArrayLike,
    frequency_scores: ArrayLike,
    presence_scores: ArrayLike,
    temperatures: ArrayLike,
    bad_tokens: ArrayLike,
    bad_tokens_lens: ArrayLike,
    prompt_lens: ArrayLike,
    cur_dec_lens: ArrayLike,
    min_dec_lens: ArrayLike,
    eos_token_id: ArrayLike,
    dtype: str = "float32",
) -> F32:
    """Reference ``get_token_penalty_multi_scores``: returns the new ``[bs, V]`` logits.

    Steps (per row): min-length EOS ban (``-1e10``, ``-1e4`` for float16, stored in ``dtype``);
    repetition penalty where ``rep != 0``; ``(l - rep * beta) - gamma`` where ``rep > 0``;
    division by the temperature, rounded to ``dtype``; bad tokens set to ``-1e10`` in ``dtype``.
    See :func:`fastdeploy_ops.penalty.get_token_penalty_multi_scores` for the skip rules.
    """
    out = np.array(logits, dtype=np.float32, copy=True)
    rows, vocab = out.shape
    token_ids_all = np.asarray(token_ids_all, dtype=np.int64)
    bad_tokens = np.asarray(bad_tokens, dtype=np.int64)
    alphas = _per_row(penalty_scores, rows, np.float32)
    betas = _per_row(frequency_scores, rows, np.float32)
    gammas = _per_row(presence_scores, rows, np.float32)
    temps = _per_row(temperatures, rows, np.float32)
    bad_lens = _per_row(bad_tokens_lens, rows, np.int64)
    prompts = _per_row(prompt_lens, rows, np.int64)
    curs = _per_row(cur_dec_lens, rows, np.int64)
    mins = _per_row(min_dec_lens, rows, np.int64)
    eos = np.asarray(eos_token_id, dtype=np.int64).reshape(-1)
    eos = eos[(eos >= 0) & (eos < vocab)]
    eos_ban = round_to_dtype(_EOS_BAN_FP16 if dtype == "float16" else _BAN, dtype)
    ban = round_to_dtype(_BAN, dtype)

    for b in range(rows):
        row = out[b]
        alpha, beta, gamma, temp = alphas[b], betas[b], gammas[b], temps[b]
        if 0 <= curs[b] < mins[b]:
            row[eos] = eos_ban
        off = alpha == 1 and beta == 0 and gamma == 0
        if not (off and temp == 1):
            if not off and curs[b] >= 0:
                rep = repeat_counts(token_ids_all[b], prompts[b], vocab)
                penalised = _repetition(row, alpha)
                row = np.where(rep != 0, penalised, row)
                with np.errstate(over="ignore", invalid="ignore"):
                    shifted = (row - rep.astype(np.float32) * beta) - gamma
                row = np.where(rep > 0, shifted, row).astype(np.float32)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                out[b] = round_to_dtype(row / temp, dtype)
        count = min(max(int(bad_lens[b]), 0), bad_tokens.shape[1])
        bad = bad_tokens[b, :count]
        out[b, bad[(bad >= 0) & (bad < vocab)]] = ban
    return out


def get_token_penalty_once(
    pre_ids: ArrayLike, logits: ArrayLike, penalty_scores: ArrayLike, dtype: str = "float32"
) -> F32:
    """Reference ``get_token_penalty_once``: returns the new ``[bs, V]`` logits.

    Each distinct id of ``pre_ids[b]`` before its first negative entry, if in ``[0, V)``, gets
    ``l * alpha if l < 0 else l / alpha`` once, rounded to ``dtype``.
    """
    out = np.array(logits, dtype=np.float32, copy=True)
    rows, vocab = out.shape
    pre_ids = np.asarray(pre_ids, dtype=np.int64)
    alphas = _per_row(penalty_scores, rows, np.float32)
    for b in range(rows):
        ids = pre_ids[b]
        negative = np.flatnonzero(ids < 0)
        ids = ids[: negative[0] if negative.size else ids.size]
        ids = np.unique(ids[ids < vocab])
        out[b, ids] = round_to_dtype(_repetition(out[b, ids], alphas[b]), dtype)
    return out
