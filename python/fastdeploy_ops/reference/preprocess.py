"""References for the ``preprocess`` family (semantics: ``ops/preprocess/README.md``).

Plain loops over the batch, written for clarity. They model the kernels exactly, including what
the kernels do with values the host cannot validate (lengths, offsets and step indices out of
range): the GPU tests compare integer outputs for equality. Inputs are numpy arrays; per-row
tensors may be ``[bs]`` or ``[bs, 1]``. Nothing is modified in place: the in-place ops return
new arrays.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "get_padding_offset",
    "rebuild_padding",
    "set_stop_value_multi_ends",
    "set_value_by_flags_and_idx",
]

I32 = NDArray[np.int32]
I64 = NDArray[np.int64]


def _flat(x: ArrayLike, dtype: type) -> NDArray:
    return np.asarray(x).astype(dtype, copy=False).reshape(-1)


def get_padding_offset(
    input_ids: ArrayLike, token_num: int, seq_len: ArrayLike
) -> tuple[I64, I32, I32, I32]:
    """``(x_remove_padding, batch_id_per_token, cu_seqlens_q, cu_seqlens_k)``.

    Lengths are clamped to ``[0, max_len]``; ``cu_seqlens[b] = min(sum(len[:b]), token_num)``;
    tokens at positions ``>= token_num`` are dropped and positions no row fills get
    ``x = 0``, batch id ``-1``.
    """
    ids = np.asarray(input_ids, dtype=np.int64)
    batch, max_len = ids.shape
    lens = np.clip(_flat(seq_len, np.int64), 0, max_len)
    if lens.shape != (batch,):
        raise ValueError(f"seq_len must have {batch} elements, got shape {np.shape(seq_len)}")
    starts = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    x = np.zeros(token_num, dtype=np.int64)
    batch_ids = np.full(token_num, -1, dtype=np.int32)
    for b in range(batch):
        start = starts[b]
        stop = min(start + lens[b], token_num)
        if start < stop:
            x[start:stop] = ids[b, : stop - start]
            batch_ids[start:stop] = b
    cu = np.minimum(starts, token_num).astype(np.int32)
    return x, batch_ids, cu, cu.copy()


def rebuild_padding(
    tmp_out: ArrayLike,
    cu_seqlens_q: ArrayLike,
    seq_len_this_time: ArrayLike,
    seq_lens_decoder: ArrayLike,
    seq_lens_encoder: ArrayLike,
    output_padding_offset: ArrayLike | None = None,
    first_token_out: ArrayLike | None = None,
    max_input_length: int = 0,
    enable_logprob: bool = False,
) -> tuple[NDArray, NDArray | None]:
    """``(out, first_token_out)``: the gathered rows and the updated copy of ``first_token_out``
    (``None`` if not given). Rows whose batch row is skipped or whose source index is out of
    range are zero; an out-of-range first-token row is not written."""
    hidden = np.asarray(tmp_out)
    token_num = hidden.shape[0]
    cu = _flat(cu_seqlens_q, np.int64)
    this_time = _flat(seq_len_this_time, np.int64)
    dec = _flat(seq_lens_decoder, np.int64)
    enc = _flat(seq_lens_encoder, np.int64)
    batch = cu.shape[0] - 1
    first = None if first_token_out is None else np.array(first_token_out, copy=True)

    def source(b: int, base: int) -> int | None:
        """The source token of batch row b (base: its first token), or None."""
        if this_time[b] == 0 or (dec[b] == 0 and enc[b] == 0):
            return None
        token = base + (enc[b] - 1 if enc[b] > 0 else 0)
        return int(token) if 0 <= token < token_num else None

    if output_padding_offset is None:
        out = np.zeros((batch, hidden.shape[1]), dtype=hidden.dtype)
        for b in range(batch):
            src = source(b, int(cu[b]))
            if src is not None:
                out[b] = hidden[src]
        return out, first

    offsets = _flat(output_padding_offset, np.int64)
    out = np.zeros((offsets.shape[0], hidden.shape[1]), dtype=hidden.dtype)
    for t, offset in enumerate(offsets):
        ori = t + int(offset)
        if ori < 0:
            continue
        b = ori // max_input_length
        if b >= batch:
            continue
        src = source(b, ori - (b * max_input_length - int(cu[b])))
        if src is None:
            continue
        out[t] = hidden[src]
        if enable_logprob and first is not None and enc[b] > 0 and src >= 1:
            first[b] = hidden[src - 1]
    return out, first


def set_value_by_flags_and_idx(
    pre_ids_all: ArrayLike,
    input_ids: ArrayLike,
    seq_lens_this_time: ArrayLike,
    seq_lens_encoder: ArrayLike,
    seq_lens_decoder: ArrayLike,
    step_idx: ArrayLike,
    stop_flags: ArrayLike,
) -> I64:
    """The updated copy of ``pre_ids_all`` (rows with ``step_idx <= 0`` or out-of-range
    columns are left unchanged)."""
    result = np.array(pre_ids_all, dtype=np.int64, copy=True)
    ids = np.asarray(input_ids, dtype=np.int64)
    batch = _flat(seq_lens_this_time, np.int64).shape[0]
    enc = _flat(seq_lens_encoder, np.int64)
    dec = _flat(seq_lens_decoder, np.int64)
    steps = _flat(step_idx, np.int64)
    stopped = _flat(stop_flags, bool)
    for b in range(batch):
        if stopped[b] or (enc[b] == 0 and dec[b] == 0):
            continue
        step = steps[b]
        if step <= 0 or step >= result.shape[1]:
            continue
        column = enc[b] - 1 if enc[b] > 0 else 0
        if column >= ids.shape[1]:
            continue
        result[b, step] = ids[b, column]
    return result


def _matches(history: NDArray, step: int, sequence: NDArray, length: int) -> bool:
    for j in range(length):
        idx = step - 1 - j
        if idx < 0 or idx >= history.shape[0] or history[idx] != sequence[length - 1 - j]:
            return False
    return True


def set_stop_value_multi_ends(
    topk_ids: ArrayLike,
    stop_flags: ArrayLike,
    seq_lens: ArrayLike,
    end_ids: ArrayLike,
    next_tokens: ArrayLike,
    pre_ids: ArrayLike,
    step_idx: ArrayLike,
    stop_seqs: ArrayLike,
    stop_seqs_len: ArrayLike,
    stop_token_ids: ArrayLike,
    stop_token_ids_len: ArrayLike,
    min_tokens: ArrayLike,
    max_tokens: ArrayLike,
    beam_search: bool = False,
    prefill_one_step_stop: bool = False,
) -> tuple[I64, NDArray[np.bool_], I64]:
    """Updated copies ``(topk_ids, stop_flags, next_tokens)``, shaped like the inputs."""
    topk_shape, flags_shape, next_shape = (np.shape(a) for a in (topk_ids, stop_flags, next_tokens))
    topk = _flat(topk_ids, np.int64).copy()
    flags = _flat(stop_flags, bool).copy()
    nxt = _flat(next_tokens, np.int64).copy()
    lens = _flat(seq_lens, np.int64)
    ends = _flat(end_ids, np.int64)
    history = np.asarray(pre_ids, dtype=np.int64)
    steps = _flat(step_idx, np.int64)
    seqs = np.asarray(stop_seqs, dtype=np.int64)
    seq_lens_ = np.asarray(stop_seqs_len, dtype=np.int64)
    tokens = np.asarray(stop_token_ids, dtype=np.int64)
    token_counts = _flat(stop_token_ids_len, np.int64)
    mins = _flat(min_tokens, np.int64)
    maxs = _flat(max_tokens, np.int64)
    end = ends[0]
    max_seq_len = seqs.shape[2]
    for b in range(topk.shape[0]):
        if prefill_one_step_stop:
            flags[b] = True
            if lens[b] == 0:
                topk[b] = -1
            nxt[b] = topk[b]
            continue
        if flags[b]:
            if lens[b] == 0:
                topk[b] = -1
            else:
                topk[b] = nxt[b] = end
            continue
        nxt[b] = topk[b]
        step = steps[b]
        if step >= maxs[b]:
            stop = True
        elif step < mins[b]:
            stop = False
        else:
            count = min(max(token_counts[b], 0), tokens.shape[1])
            stop = (
                (not beam_search and topk[b] in ends)
                or topk[b] in tokens[b, :count]
                or any(
                    _matches(history[b], step, seqs[b, s], n)
                    for s in range(seqs.shape[1])
                    if (n := min(int(seq_lens_[b, s]), max_seq_len)) > 0
                )
            )
        if stop:
            flags[b] = True
            topk[b] = nxt[b] = end
    return topk.reshape(topk_shape), flags.reshape(flags_shape), nxt.reshape(next_shape)
