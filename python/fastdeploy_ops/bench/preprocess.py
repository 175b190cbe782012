"""Benchmark cases of the preprocess family: the row gather of rebuild_padding at decode, the
token packing of get_padding_offset, and the per-step bookkeeping of set_value_by_flags_and_idx
and set_stop_value_multi_ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import END_IDS, MAX_MODEL_LEN, VOCABULARIES, Case, CaseGenerator

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
            copy_out = torch.empty_like(tmp_out)
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
                    # The same bytes as one contiguous copy: what this size allows at best.
                    "copy_": lambda tmp_out=tmp_out, copy_out=copy_out: copy_out.copy_(tmp_out),
                },
                bytes_moved=2 * tmp_out.numel() * 2 + 4 * 4 * batch,
            )


# get_padding_offset: (label, tokens of each sequence this step, batches). A decode step packs
# one token per sequence; a prefill step packs prompt chunks of 2048 tokens (chunked prefill).
PACKING_STEPS = (("decode", 1, (1, 16, 64, 256)), ("prefill 2048", 2048, (1, 4, 16)))


def _torch_pack(torch: Any, input_ids: Any, seq_len: Any, tokens: int) -> tuple[Any, ...]:
    """get_padding_offset with torch operations, graph-capturable (no host synchronisation).

    ``input_ids`` ``[bs, max_len]`` int64 and ``seq_len`` ``[bs]`` int32 in; the packed ids
    ``[tokens]`` int64, batch ids ``[tokens]`` int32 and ``cu_seqlens`` ``[bs + 1]`` int32 out.
    """
    ends = seq_len.long().cumsum(0)
    cu = torch.cat((ends.new_zeros(1), ends))
    position = torch.arange(tokens, device=input_ids.device)
    # A packed token's sequence: how many sequences end at or before it.
    batch_id = torch.searchsorted(ends, position, right=True)
    packed = input_ids[batch_id, position - cu[batch_id]]
    return packed, batch_id.int(), cu.int(), cu.int()


def get_padding_offset_cases(torch: Any) -> Iterator[Case]:
    from .. import preprocess

    for label, length, batches in PACKING_STEPS:
        for batch in batches:
            generator = torch.Generator(device="cuda").manual_seed(batch + length)
            # The engine's padded [max_num_seqs, max_model_len] buffer, this step's ids first.
            input_ids = torch.randint(0, VOCABULARIES["Llama-3"], (batch, MAX_MODEL_LEN),
                                      device="cuda", generator=generator)
            seq_len = torch.full((batch,), length, device="cuda", dtype=torch.int32)
            tokens = batch * length
            out = (torch.empty(tokens, device="cuda", dtype=torch.int64),
                   torch.empty(tokens, device="cuda", dtype=torch.int32),
                   torch.empty(batch + 1, device="cuda", dtype=torch.int32),
                   torch.empty(batch + 1, device="cuda", dtype=torch.int32))
            yield Case(
                op="get_padding_offset", label=label, tokens=batch, axis="batch",
                shape={"bs": batch, "max_len": MAX_MODEL_LEN, "token_num": tokens},
                implementations={
                    "fastdeploy_ops": lambda input_ids=input_ids, tokens=tokens,
                        seq_len=seq_len, out=out: preprocess.get_padding_offset(
                            input_ids, tokens, seq_len, out=out),
                    "torch": lambda input_ids=input_ids, seq_len=seq_len, tokens=tokens:
                        _torch_pack(torch, input_ids, seq_len, tokens),
                },
                # Lengths read; each packed id read and written, its batch id written; both
                # cu_seqlens written. The padding is never read.
                bytes_moved=4 * batch + tokens * (8 + 8 + 4) + 2 * 4 * (batch + 1),
            )


# Per-step bookkeeping at decode: one row per running sequence, max_num_seqs up to 256.
STEP_BATCHES = (1, 16, 64, 256)


def _decode_rows(torch: Any, batch: int, generator: Any) -> tuple[Any, Any, Any, Any]:
    """``(seq_lens_encoder, seq_lens_decoder, step_idx, stop_flags)`` of running decode rows:
    a 1024-token prompt and 1 to 4095 generated tokens each (steps stay inside the history)."""
    step_idx = torch.randint(1, MAX_MODEL_LEN // 2, (batch,), device="cuda", generator=generator)
    encoder = torch.zeros(batch, device="cuda", dtype=torch.int32)
    decoder = (step_idx + 1024).int()
    stop_flags = torch.zeros(batch, device="cuda", dtype=torch.bool)
    return encoder, decoder, step_idx, stop_flags


def _torch_set_value(torch: Any, pre_ids_all: Any, input_ids: Any, encoder: Any, decoder: Any,
                     step_idx: Any, stop_flags: Any) -> None:
    """set_value_by_flags_and_idx with torch operations, in place on ``pre_ids_all`` ``[bs, L]``
    int64 from ``input_ids`` ``[bs, L_in]`` int64 and the ``[bs]`` per-row tensors. Rows that
    must not change rewrite their own value: a masked scatter without a host synchronisation."""
    column = torch.where(encoder > 0, encoder - 1, 0).long()
    token = input_ids.gather(1, column.clamp(max=input_ids.shape[1] - 1)[:, None])
    write = (~stop_flags & ((encoder > 0) | (decoder > 0)) & (step_idx > 0)
             & (step_idx < pre_ids_all.shape[1]) & (column < input_ids.shape[1]))
    step = step_idx.clamp(0, pre_ids_all.shape[1] - 1)[:, None]
    pre_ids_all.scatter_(1, step, torch.where(write[:, None], token, pre_ids_all.gather(1, step)))


def set_value_by_flags_and_idx_cases(torch: Any) -> Iterator[Case]:
    from .. import preprocess

    for batch in STEP_BATCHES:
        generator = torch.Generator(device="cuda").manual_seed(batch)
        # FastDeploy's [max_num_seqs, max_model_len] buffers; a decode row's new token is
        # input_ids[b, 0], written at pre_ids_all[b, step_idx[b]] (the same slot every call).
        pre_ids_all = torch.full((batch, MAX_MODEL_LEN), -1, device="cuda", dtype=torch.int64)
        input_ids = torch.randint(0, VOCABULARIES["Llama-3"], (batch, MAX_MODEL_LEN),
                                  device="cuda", generator=generator)
        this_time = torch.ones(batch, device="cuda", dtype=torch.int32)
        encoder, decoder, step_idx, stop_flags = _decode_rows(torch, batch, generator)
        args = (pre_ids_all, input_ids, this_time, encoder, decoder, step_idx, stop_flags)
        yield Case(
            op="set_value_by_flags_and_idx", label="decode", tokens=batch, axis="batch",
            shape={"bs": batch, "L": MAX_MODEL_LEN},
            implementations={
                "fastdeploy_ops": lambda args=args: preprocess.set_value_by_flags_and_idx(*args),
                "torch": lambda args=args: _torch_set_value(
                    torch, args[0], args[1], args[3], args[4], args[5], args[6]),
            },
            # Per row: stop flag, encoder and decoder lengths, step read; one input id read and
            # one history id written.
            bytes_moved=batch * (1 + 4 + 4 + 8 + 8 + 8),
        )


# Stop conditions per request as FastDeploy sizes its buffers (5 stop sequences of up to 8
# tokens), a few stop token ids, and Qwen3's two end ids (END_IDS).
STOP_SEQS, STOP_SEQ_LEN, STOP_TOKEN_IDS = 5, 8, 4


def _torch_stop_value(torch: Any, topk_ids: Any, stop_flags: Any, seq_lens: Any, end_ids: Any,
                      next_tokens: Any, pre_ids: Any, step_idx: Any, stop_seqs: Any,
                      stop_seqs_len: Any, stop_token_ids: Any, stop_token_ids_len: Any,
                      min_tokens: Any, max_tokens: Any) -> None:
    """set_stop_value_multi_ends (no beam search) with torch operations; the op's arguments
    with its shapes and dtypes, ``topk_ids``, ``next_tokens`` and ``stop_flags`` updated in
    place. Every rule is evaluated for every row and the results selected, as vectorised code
    must."""
    rows = topk_ids.shape[0]
    token, stopped, step = topk_ids.view(rows), stop_flags.view(rows), step_idx.view(rows)
    end = end_ids.view(-1)
    width = stop_token_ids.shape[1]
    counted = torch.arange(width, device=token.device) < stop_token_ids_len.view(rows, 1)
    stop_token = ((token[:, None] == stop_token_ids) & counted).any(dim=1)
    # Stop sequence s of length n ends the history: pre_ids[b, step - n + j] == seqs[b, s, j].
    longest = stop_seqs.shape[2]
    n = stop_seqs_len.long().clamp(0, longest)[:, :, None]
    j = torch.arange(longest, device=token.device)
    at = step[:, None, None] - n + j
    inside = (at >= 0) & (at < pre_ids.shape[1])
    history = pre_ids.gather(1, at.clamp(0, pre_ids.shape[1] - 1).view(rows, -1))
    same = (history.view_as(stop_seqs) == stop_seqs) & inside
    stop_seq = (torch.where(j < n, same, True).all(dim=2) & (n[:, :, 0] > 0)).any(dim=1)
    checked = (token[:, None] == end).any(dim=1) | stop_token | stop_seq
    stop = ~stopped & ((step >= max_tokens.view(rows))
                       | ((step >= min_tokens.view(rows)) & checked))
    empty = stopped & (seq_lens.view(rows) == 0)
    topk_ids.copy_(torch.where(empty, -1, torch.where(stopped | stop, end[0], token)).view_as(
        topk_ids))
    next_tokens.copy_(torch.where(empty, next_tokens.view(rows),
                                  torch.where(stopped | stop, end[0], token)).view_as(next_tokens))
    stop_flags.copy_((stopped | stop).view_as(stop_flags))


def set_stop_value_multi_ends_cases(torch: Any) -> Iterator[Case]:
    from .. import preprocess

    for batch in STEP_BATCHES:
        generator = torch.Generator(device="cuda").manual_seed(batch)

        def ids(low: int, high: int, *shape: int) -> Any:
            return torch.randint(low, high, shape, device="cuda", generator=generator)

        # Sampled and past tokens below 100000, stop tokens and sequences above: no row stops,
        # so every call checks every rule (a stopped row would take the short path from the
        # second call on, and the repeated calls would time that).
        topk_ids = ids(0, 100000, batch, 1)
        pre_ids = ids(0, 100000, batch, MAX_MODEL_LEN)
        stop_seqs = ids(100000, 150000, batch, STOP_SEQS, STOP_SEQ_LEN)
        stop_seqs_len = ids(1, STOP_SEQ_LEN + 1, batch, STOP_SEQS).int()
        stop_token_ids = ids(100000, 150000, batch, STOP_TOKEN_IDS)
        stop_token_ids_len = torch.full((batch,), STOP_TOKEN_IDS, device="cuda",
                                        dtype=torch.int32)
        _, _, step_idx, stop_flags = _decode_rows(torch, batch, generator)
        seq_lens = torch.ones(batch, device="cuda", dtype=torch.int32)
        end_ids = torch.tensor(END_IDS, device="cuda")
        next_tokens = torch.zeros(batch, 1, device="cuda", dtype=torch.int64)
        min_tokens = torch.ones(batch, 1, device="cuda", dtype=torch.int64)
        max_tokens = torch.full((batch, 1), MAX_MODEL_LEN, device="cuda", dtype=torch.int64)
        args = (topk_ids, stop_flags.view(batch, 1), seq_lens, end_ids, next_tokens, pre_ids,
                step_idx, stop_seqs, stop_seqs_len, stop_token_ids, stop_token_ids_len,
                min_tokens, max_tokens)
        yield Case(
            op="set_stop_value_multi_ends", label="decode", tokens=batch, axis="batch",
            shape={"bs": batch, "L": MAX_MODEL_LEN, "stop_seqs": STOP_SEQS,
                   "stop_seq_len": STOP_SEQ_LEN, "stop_token_ids": STOP_TOKEN_IDS},
            implementations={
                "fastdeploy_ops": lambda args=args: preprocess.set_stop_value_multi_ends(*args),
                "torch": lambda args=args: _torch_stop_value(torch, *args),
            },
            # No row is stopped or stops. Per row: the stop flag, token, step, min and max
            # tokens and stop-token count read; every stop token (a non-member is compared
            # with all); each stop sequence's length and at least one of its tokens, and one
            # history id (one mismatch decides); next_tokens written. The end ids once.
            bytes_moved=batch * (1 + 8 + 8 + 8 + 8 + 4 + 8 * STOP_TOKEN_IDS
                                 + (4 + 8) * STOP_SEQS + 8 + 8) + 8 * len(END_IDS),
        )


OPS: dict[str, CaseGenerator] = {
    "get_padding_offset": get_padding_offset_cases,
    "rebuild_padding": rebuild_padding_cases,
    "set_stop_value_multi_ends": set_stop_value_multi_ends_cases,
    "set_value_by_flags_and_idx": set_value_by_flags_and_idx_cases,
}
