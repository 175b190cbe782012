"""References for the ``speculative`` family (semantics: ``ops/speculative/README.md``).

Each function takes numpy arrays shaped like the op's arguments and returns new arrays (the
in-place arguments, updated, in their original shapes); nothing is modified in place. Rows are
walked one at a time exactly as the kernels do, including the project's bounds rule for indices
read from the tensors, so kernel and reference agree bit for bit on any input.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["MODES", "speculate_update", "speculate_verify", "uniform"]

MODES = ("candidates", "top1", "target_sampling")
Mode = Literal["candidates", "top1", "target_sampling"]

_MASK64 = (1 << 64) - 1


def uniform(seed: int, row: int) -> np.float32:
    """The top-p draw of ``row`` for ``seed``: a float32 in (0, 1], as the kernel computes it.

    splitmix64's finaliser applied to ``seed + (row + 1) * 0x9E3779B97F4A7C15`` (mod 2**64);
    the top 24 bits ``h`` give ``(h + 1) * 2**-24``, which is exact in float32.
    """
    z = (int(seed) + (int(row) + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return np.float32((z >> 40) + 1) * np.float32(2.0**-24)


def _topp_draw(ids: NDArray[np.int64], scores: NDArray[np.float32], length: int,
               topp: np.float32, u: np.float32) -> int:
    """The first candidate whose running score reaches ``u * min(sum(scores[:length]), topp)``
    (float32 sums, left to right), else candidate 0."""
    total = np.float32(0)
    for k in range(length):
        total = np.float32(total + scores[k])
    target = total if total < topp else topp
    r = np.float32(u * target)
    running = np.float32(0)
    for k in range(length):
        running = np.float32(running + scores[k])
        if r <= running:
            return int(ids[k])
    return int(ids[0])


def _flat(x: ArrayLike, dtype: type) -> np.ndarray:
    return np.array(x, dtype=dtype).reshape(-1)


def speculate_verify(
    sampled_token_ids: ArrayLike,
    accept_tokens: ArrayLike,
    accept_num: ArrayLike,
    step_idx: ArrayLike,
    stop_flags: ArrayLike,
    seq_lens_encoder: ArrayLike,
    seq_lens_decoder: ArrayLike,
    draft_tokens: ArrayLike,
    seq_lens_this_time: ArrayLike,
    verify_tokens: ArrayLike,
    verify_scores: ArrayLike,
    max_dec_len: ArrayLike,
    end_tokens: ArrayLike,
    is_block_step: ArrayLike,
    output_cum_offsets: ArrayLike,
    actual_candidate_len: ArrayLike,
    actual_draft_token_nums: ArrayLike,
    topp: ArrayLike,
    max_seq_len: int,
    verify_window: int,
    enable_topp: bool,
    benchmark_mode: bool,
    accept_all_drafts: bool,
    *,
    mode: Mode = "candidates",
    prefill_one_step_stop: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns the updated ``(accept_tokens, accept_num, step_idx, stop_flags)``.

    Per row ``b < real_bs`` that is neither block-step nor already stopped, with
    ``start = b * max_seq_len - output_cum_offsets[b]``: positions ``i = 0, 1, ...`` accept
    draft ``draft_tokens[b, i + 1]`` while it passes the mode's check (``candidates``: it is
    among the first ``min(actual_candidate_len, C)`` candidates of packed row ``start + i``,
    else the top-2 window rule; ``top1``: candidate 0; ``target_sampling``: equal to
    ``sampled_token_ids[start + i]``; ``accept_all_drafts``: always), then the target's token
    at the stopping position (sampled, a top-p draw, or candidate 0). Every accepted token
    advances ``step_idx``; an end token or ``step_idx >= max_dec_len`` stops the row (the
    limit writes ``end_tokens[0]``). ``actual_draft_token_nums`` and ``seq_lens_decoder`` are
    unused, as upstream.

    Bounds (project rule): a row uses at most ``min(seq_lens_this_time[b], D, total - start)``
    positions; a row with ``start`` outside ``[0, total)`` is left untouched.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    accept_tokens = np.array(accept_tokens, dtype=np.int64)
    acc = accept_tokens.reshape(-1)  # a view: writes land in accept_tokens
    accept_num = np.array(accept_num, dtype=np.int32)
    step_idx = np.array(step_idx, dtype=np.int64)
    stop_flags = np.array(stop_flags, dtype=bool)
    n_out, step_out, stop_out = accept_num.reshape(-1), step_idx.reshape(-1), stop_flags.reshape(-1)

    draft = np.asarray(draft_tokens, dtype=np.int64)
    width = accept_tokens.shape[1]
    verify = np.asarray(verify_tokens, dtype=np.int64)
    scores = np.asarray(verify_scores, dtype=np.float32)
    total, c = verify.shape
    sampled = _flat(sampled_token_ids, np.int64)
    candidates = _flat(actual_candidate_len, np.int32)
    this_time_all = _flat(seq_lens_this_time, np.int32)
    encoder = _flat(seq_lens_encoder, np.int32)
    limit = _flat(max_dec_len, np.int64)
    ends = _flat(end_tokens, np.int64)
    end_set = {int(t) for t in ends}
    block = _flat(is_block_step, bool)
    offsets = _flat(output_cum_offsets, np.int32)
    topp_all = _flat(topp, np.float32)

    for b in range(len(this_time_all)):
        if block[b] or stop_out[b]:
            continue
        start = b * int(max_seq_len) - int(offsets[b])
        if start < 0 or start >= total:
            continue
        this_time = min(int(this_time_all[b]), width, total - start)
        row = b * width
        step = int(step_out[b])
        n = 1
        stopped = False
        mdl = int(limit[b])

        def accept_draft(i: int, token: int) -> bool:
            nonlocal step, n, stopped
            step += 1
            at_limit = step >= mdl
            acc[row + i] = ends[0] if at_limit else token
            if at_limit or token in end_set:
                stopped = True
                return True
            n += 1
            return False

        i = 0
        while i < this_time - 1:
            if benchmark_mode or encoder[b] != 0:
                break
            d = int(draft[b, i + 1])
            if accept_all_drafts:
                if accept_draft(i, d):
                    break
                i += 1
                continue
            if mode == "target_sampling":
                if int(sampled[start + i]) != d or accept_draft(i, d):
                    break
                i += 1
                continue
            if mode == "top1":
                if int(verify[start + i, 0]) != d or accept_draft(i, d):
                    break
                i += 1
                continue
            length = min(int(candidates[start + i]), c)
            if d in verify[start + i, : max(length, 0)].tolist():
                if accept_draft(i, d):
                    break
                i += 1
                continue
            # Top-2 window rule, literally: the counters take the whole window first and give
            # one back on a stop inside it.
            if c >= 2 and int(verify[start + i, 1]) == d:
                j, ii = 0, i + 1
                while j < verify_window and ii < this_time - 1:
                    if int(verify[start + ii, 0]) != int(draft[b, ii + 1]):
                        break
                    j, ii = j + 1, ii + 1
                if j >= verify_window:
                    n += verify_window + 1
                    step += verify_window + 1
                    while i < ii:
                        token = int(draft[b, i + 1])
                        at_limit = step >= mdl
                        acc[row + i] = ends[0] if at_limit else token
                        if at_limit or token in end_set:
                            stopped = True
                            n -= 1
                            step -= 1
                            break
                        i += 1
            break

        stop = stopped
        if not stopped:
            step += 1
            if mode == "target_sampling":
                token = int(sampled[start + i])
            elif enable_topp:
                length = min(int(candidates[start + i]), c)
                token = _topp_draw(verify[start + i], scores[start + i], length,
                                   topp_all[b], uniform(seed, b))
            else:
                token = int(verify[start + i, 0])
            at_limit = step >= mdl
            acc[row + i] = ends[0] if at_limit else token
            stop = prefill_one_step_stop or at_limit or token in end_set
        if stop:
            stop_out[b] = True
        step_out[b] = step
        n_out[b] = n
    return accept_tokens, accept_num, step_idx, stop_flags


def _next_draft_count(accepted: int, drafts: int, width: int) -> int:
    cap = width - 1
    if accepted - 1 == drafts:
        if drafts + 2 <= cap:
            return drafts + 2
        if drafts + 1 <= cap:
            return drafts + 1
        return cap
    return drafts - 1 if drafts - 1 >= 1 else 1


def _wrap_i32(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


def speculate_update(
    seq_lens_encoder: ArrayLike,
    seq_lens_decoder: ArrayLike,
    not_need_stop: ArrayLike,
    draft_tokens: ArrayLike,
    actual_draft_token_nums: ArrayLike,
    accept_tokens: ArrayLike,
    accept_num: ArrayLike,
    stop_flags: ArrayLike,
    seq_lens_this_time: ArrayLike,
    is_block_step: ArrayLike,
    stop_nums: ArrayLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns the updated ``(seq_lens_encoder, seq_lens_decoder, not_need_stop, draft_tokens,
    actual_draft_token_nums)``.

    Active rows (``b < real_bs``, not block-step): ``dec += accept_num`` if ``enc == 0`` (and,
    when also ``seq_lens_this_time > 1``, the draft length ``n`` becomes ``n + 2``, ``n + 1``
    or ``D - 1`` (the first that is ``<= D - 1``) if every draft was accepted
    (``accept_num - 1 == n``), else ``max(1, n - 1)``); else ``dec += enc, enc = 0``. Then
    ``draft_tokens[b, 0] = accept_tokens[b, accept_num - 1]``, skipped when ``accept_num`` is
    outside ``[1, D]`` (project rule). Stopped rows are counted: active rows by ``stop_flags``,
    padding rows (``b >= real_bs``) always, block-step rows never;
    ``not_need_stop = count < stop_nums[0]``. int32 sums wrap. With ``max_bs == 0`` nothing
    changes.
    """
    encoder = np.array(seq_lens_encoder, dtype=np.int32)
    decoder = np.array(seq_lens_decoder, dtype=np.int32)
    not_need_stop = np.array(not_need_stop, dtype=bool)
    draft_tokens = np.array(draft_tokens, dtype=np.int64)
    drafts = np.array(actual_draft_token_nums, dtype=np.int32)
    enc, dec, n_drafts = encoder.reshape(-1), decoder.reshape(-1), drafts.reshape(-1)
    accept = np.asarray(accept_tokens, dtype=np.int64)
    accepted_all = _flat(accept_num, np.int32)
    stops = _flat(stop_flags, bool)
    this_time = _flat(seq_lens_this_time, np.int32)
    block = _flat(is_block_step, bool)
    batch, width = draft_tokens.shape
    if batch == 0:
        return encoder, decoder, not_need_stop, draft_tokens, drafts
    real = len(this_time)
    stopped = 0
    for b in range(batch):
        if b >= real:
            stopped += 1
            continue
        if block[b]:
            continue
        stopped += int(stops[b])
        accepted = int(accepted_all[b])
        if enc[b] == 0:
            dec[b] = _wrap_i32(int(dec[b]) + accepted)
            if this_time[b] > 1:
                n_drafts[b] = _next_draft_count(accepted, int(n_drafts[b]), width)
        else:
            dec[b] = _wrap_i32(int(dec[b]) + int(enc[b]))
            enc[b] = 0
        if 1 <= accepted <= width:
            draft_tokens[b, 0] = accept[b, accepted - 1]
    not_need_stop.reshape(-1)[0] = stopped < int(np.asarray(stop_nums).reshape(-1)[0])
    return encoder, decoder, not_need_stop, draft_tokens, drafts
