"""Preprocess ops (family ``preprocess``, SM70+): the integer bookkeeping around a forward step.

- :func:`get_padding_offset`: pack padded ``input_ids`` into one token stream.
- :func:`rebuild_padding`: gather the hidden state each sequence (or output token) samples from.
- :func:`set_value_by_flags_and_idx`: append this step's token to each sequence's history.
- :func:`set_stop_value_multi_ends`: stop flags for EOS, stop tokens, stop sequences and
  min/max length.

All functions take tensors of any DLPack framework (torch, paddle, cupy, jax), allocate outputs
with the caller's framework on the input's device and run on the caller's current stream; none
synchronises with the device. Arguments are validated before launch; a violation raises
``TypeError`` (dtype) or ``ValueError`` (shape, batch size, range, device, layout) naming the op
and the argument. In-place tensors are never converted: they must already have the exact dtype
and shape, be contiguous and be on the GPU. With a batch (or token count) of 0 nothing is
launched and outputs are correctly shaped.

Values inside tensors (lengths, offsets, step indices) cannot be seen by the host without a
device-to-host copy, so they are not validated there. Instead every kernel bounds-checks each
access made with them and skips the write (or writes zeros) when an index is out of range: bad
values give defined results, never out-of-bounds memory accesses. The references in
:mod:`fastdeploy_ops.reference.preprocess` model exactly this behaviour.

Per-row tensors (lengths, flags, step indices...) may be ``[bs]`` or ``[bs, 1]``, and every one
of them must have exactly ``bs`` rows.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from ._tensors import Kernel, Tensor, dtype_name, framework_of, kernels_by_op, launch, shape_of

__all__ = [
    "get_padding_offset",
    "rebuild_padding",
    "set_stop_value_multi_ends",
    "set_value_by_flags_and_idx",
]

FAMILY = "preprocess"
INT32_MAX = 2**31 - 1

# The family's torch operators (fastdeploy_ops._torch_library): each binding's arguments but
# the stream; (a!) marks a tensor the kernel writes.
TORCH_SCHEMAS = {
    Kernel(FAMILY, "get_padding_offset"): (
        "(Tensor input_ids, int token_num, Tensor seq_len, Tensor(a!) x_remove_padding, "
        "Tensor(b!) batch_id_per_token, Tensor(c!) cu_seqlens_q, Tensor(d!) cu_seqlens_k) -> ()"
    ),
    Kernel(FAMILY, "rebuild_padding"): (
        "(Tensor tmp_out, Tensor cu_seqlens_q, Tensor seq_len_this_time, Tensor seq_lens_decoder, "
        "Tensor seq_lens_encoder, Tensor? output_padding_offset, Tensor(a!)? first_token_out, "
        "Tensor(b!) out, int max_input_length, bool enable_logprob) -> ()"
    ),
    Kernel(FAMILY, "set_value_by_flags_and_idx"): (
        "(Tensor(a!) pre_ids_all, Tensor input_ids, Tensor seq_lens_this_time, "
        "Tensor seq_lens_encoder, Tensor seq_lens_decoder, Tensor step_idx, "
        "Tensor stop_flags) -> ()"
    ),
    Kernel(FAMILY, "set_stop_value_multi_ends"): (
        "(Tensor(a!) topk_ids, Tensor(b!) stop_flags, Tensor seq_lens, Tensor end_ids, "
        "Tensor(c!) next_tokens, Tensor pre_ids, Tensor step_idx, Tensor stop_seqs, "
        "Tensor stop_seqs_len, Tensor stop_token_ids, Tensor stop_token_ids_len, "
        "Tensor min_tokens, Tensor max_tokens, bool beam_search, bool prefill_one_step_stop) -> ()"
    ),
}
_KERNELS = kernels_by_op(TORCH_SCHEMAS)


def _host_int(op: str, arg: str, value: Any) -> int:
    """A host integer (Python or numpy int); device tensors are refused (reading one syncs)."""
    is_numpy = type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0
    if isinstance(value, bool) or not (isinstance(value, int) or is_numpy):
        raise TypeError(
            f"{op}: argument '{arg}' must be a Python int, got {type(value).__module__}."
            f"{type(value).__qualname__}"
        )
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{op}: argument '{arg}' must be a Python int, got {type(value).__qualname__}"
        ) from None


def _unpack_out(op: str, out: Sequence[Tensor], names: Sequence[str]) -> tuple[Tensor, ...]:
    if len(out) != len(names):
        raise ValueError(
            f"{op}: argument 'out' must be a tuple ({', '.join(names)}), got {len(out)} tensors"
        )
    return tuple(out)


def _leading_dim(op: str, arg: str, tensor: Tensor, minimum: int = 0) -> int:
    """Length of a ``[n]`` or ``[n, 1]`` tensor, checked before it becomes an output shape."""
    shape = shape_of(op, arg, tensor, (1, 2))
    if shape[0] < minimum:
        raise ValueError(
            f"{op}: argument '{arg}' must have at least {minimum} element(s), got shape "
            f"{list(shape)}"
        )
    return shape[0]


def get_padding_offset(
    input_ids: Tensor,
    token_num: int,
    seq_len: Tensor,
    *,
    out: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pack the padded ``input_ids`` into one token stream (prefill / mixed batches).

    With ``len[b] = seq_len[b]``: ``x_remove_padding`` is ``input_ids[b, :len[b]]`` concatenated
    over ``b``, ``batch_id_per_token`` is ``b`` repeated ``len[b]`` times, and ``cu_seqlens_q``
    = ``cu_seqlens_k`` = ``[0, cumsum(len)]``. Zero-length rows are allowed. FastDeploy's
    published case: ``seq_len = [4, 3, 6]`` gives ``cu_seqlens = [0, 4, 7, 13]`` and batch ids
    ``[0]*4 + [1]*3 + [2]*6``.

    Args:
        input_ids: ``[bs, max_len]`` int64.
        token_num: the number of tokens, ``sum(seq_len)``, as a Python int (``0 <= token_num <=
            min(bs * max_len, 2**31 - 1)``). It sizes the outputs.
        seq_len: ``[bs]`` or ``[bs, 1]`` int32, each in ``[0, max_len]``.
        out: optional ``(x_remove_padding, batch_id_per_token, cu_seqlens_q, cu_seqlens_k)`` to
            write instead of allocating.

    Returns:
        ``x_remove_padding`` ``[token_num]`` int64, ``batch_id_per_token`` ``[token_num]`` int32,
        ``cu_seqlens_q`` and ``cu_seqlens_k`` ``[bs + 1]`` int32.

    Invalid lengths (checked on the device, since the host cannot see them): each length is
    clamped to ``[0, max_len]``; ``cu_seqlens[b] = min(sum(len[:b]), token_num)``; tokens at
    positions ``>= token_num`` are dropped; if the lengths sum to less than ``token_num`` the
    remaining positions get ``x_remove_padding = 0`` and ``batch_id_per_token = -1``.

    Differences from FastDeploy: ``token_num`` is a host int (FastDeploy takes an int64 tensor
    and copies it to the host, a synchronisation); the invalid-length behaviour above
    (FastDeploy writes out of bounds or leaves outputs unset); ``bs = 0`` is allowed
    (``cu_seqlens = [0]``); ``out=``. This is the 3-input form (no ``cum_offsets``).
    """
    op = "get_padding_offset"
    kernel = _KERNELS[op]
    framework = framework_of(op, "input_ids", input_ids)
    rows, cols = shape_of(op, "input_ids", input_ids, (2,))
    tokens = _host_int(op, "token_num", token_num)
    if not 0 <= tokens <= min(rows * cols, INT32_MAX):
        raise ValueError(
            f"{op}: argument 'token_num' must be between 0 and min(bs * max_len, 2^31 - 1) = "
            f"{min(rows * cols, INT32_MAX)}, got {tokens}"
        )
    if out is None:
        out = framework.empties(input_ids, ((tokens,), "int64"), ((tokens,), "int32"),
                                ((rows + 1,), "int32"), ((rows + 1,), "int32"))
    x, batch_ids, cu_q, cu_k = _unpack_out(
        op, out, ("x_remove_padding", "batch_id_per_token", "cu_seqlens_q", "cu_seqlens_k"))
    launch(framework, kernel, input_ids, tokens, seq_len, x, batch_ids, cu_q, cu_k)
    return x, batch_ids, cu_q, cu_k


def rebuild_padding(
    tmp_out: Tensor,
    cu_seqlens_q: Tensor,
    seq_len_this_time: Tensor,
    seq_lens_decoder: Tensor,
    seq_lens_encoder: Tensor,
    output_padding_offset: Tensor | None = None,
    first_token_out: Tensor | None = None,
    max_input_length: int = 0,
    enable_logprob: bool = False,
    *,
    out: Tensor | None = None,
) -> Tensor:
    """Gather, for each sequence (or each speculative output token), its hidden-state row.

    A batch row ``b`` is *skipped* if ``seq_len_this_time[b] == 0`` or
    ``seq_lens_decoder[b] == seq_lens_encoder[b] == 0``; otherwise its ``seq_id`` is
    ``seq_lens_encoder[b] - 1`` (the last prompt token) if ``seq_lens_encoder[b] > 0``, else 0.

    - Plain form (``output_padding_offset is None``): ``out[b] = tmp_out[cu_seqlens_q[b] +
      seq_id]``, zero for skipped rows. ``out`` is ``[bs, dim]``.
    - Speculative form: ``out`` has one row per entry of ``output_padding_offset``; for row
      ``t``, ``ori = t + output_padding_offset[t]`` is a position in the padded
      ``[bs, max_input_length]`` layout, ``b = ori // max_input_length`` and ``out[t] =
      tmp_out[ori - (b * max_input_length - cu_seqlens_q[b]) + seq_id]`` (zero if ``b`` is
      skipped). With ``enable_logprob``, every encoder row (``seq_lens_encoder[b] > 0``) also
      writes the row just before that source row into ``first_token_out[b]`` (in place).

    Rows are copied bit-exactly, 16 bytes per access when the row width and the pointers allow
    it (any hidden size works; 8-, 4- or 2-byte accesses otherwise).

    Args:
        tmp_out: ``[token_num, dim]`` float32, float16 or bfloat16 hidden states.
        cu_seqlens_q: ``[bs + 1]`` (or ``[bs + 1, 1]``) int32 token offsets of the sequences.
        seq_len_this_time, seq_lens_decoder, seq_lens_encoder: ``[bs]`` or ``[bs, 1]`` int32.
        output_padding_offset: ``[rows]`` (or ``[rows, 1]``) int32, or ``None``.
        first_token_out: ``[bs, dim]`` of ``tmp_out``'s dtype, written in place; required when
            ``enable_logprob`` is set with ``output_padding_offset``, unused otherwise.
        max_input_length: the padded sequence length, ``>= 1`` with ``output_padding_offset``.
        enable_logprob: write ``first_token_out`` (speculative form only).
        out: optional output tensor to write instead of allocating.

    Returns:
        ``out``: ``[bs, dim]``, or ``[len(output_padding_offset), dim]``, of ``tmp_out``'s dtype.

    Invalid values (checked on the device): an output row whose ``b`` or source row lies
    outside ``[0, bs)`` / ``[0, token_num)`` is zero; a first-token row outside
    ``[0, token_num)`` is not written.

    Differences from FastDeploy:

    - The speculative output has ``len(output_padding_offset)`` rows. FastDeploy computes
      ``token_num - sum(max(seq_lens_encoder - 1, 0))`` with a device-to-host copy (a
      synchronisation) and asserts that it equals the offset's length; here that relation is
      the caller's to keep and is not checked.
    - Any ``dim`` (FastDeploy requires ``dim * itemsize % 16 == 0``).
    - The bounds checks above (FastDeploy reads out of bounds, e.g. row -1 for the first
      token of batch row 0 when ``seq_lens_encoder[0] == 1``).
    - ``first_token_out`` is required when it would be written (FastDeploy passes a null
      pointer); in the plain form it is validated but unused, as upstream.
    - ``out=``; ``bs = 0`` / zero output rows are allowed.
    """
    op = "rebuild_padding"
    kernel = _KERNELS[op]
    framework = framework_of(op, "tmp_out", tmp_out)
    _, hidden = shape_of(op, "tmp_out", tmp_out, (2,))
    if output_padding_offset is None:
        rows = _leading_dim(op, "cu_seqlens_q", cu_seqlens_q, minimum=1) - 1
    else:
        rows = _leading_dim(op, "output_padding_offset", output_padding_offset)
    max_len = _host_int(op, "max_input_length", max_input_length)
    if out is None:
        out = framework.empty(tmp_out, (rows, hidden), dtype_name(tmp_out))
    launch(framework, kernel, tmp_out, cu_seqlens_q, seq_len_this_time, seq_lens_decoder,
           seq_lens_encoder, output_padding_offset, first_token_out, out, max_len,
           bool(enable_logprob))
    return out


def set_value_by_flags_and_idx(
    pre_ids_all: Tensor,
    input_ids: Tensor,
    seq_lens_this_time: Tensor,
    seq_lens_encoder: Tensor,
    seq_lens_decoder: Tensor,
    step_idx: Tensor,
    stop_flags: Tensor,
) -> Tensor:
    """Append this step's token to each running sequence's history, in place.

    For each row ``b`` (``bs = len(seq_lens_this_time)``) that is not stopped and does not have
    ``seq_lens_encoder[b] == seq_lens_decoder[b] == 0``, and whose ``step_idx[b] > 0``:
    ``pre_ids_all[b, step_idx[b]] = input_ids[b, seq_lens_encoder[b] - 1]`` if
    ``seq_lens_encoder[b] > 0`` (the last prompt token), else ``input_ids[b, 0]``.

    Args:
        pre_ids_all: ``[bs, L]`` int64, written in place.
        input_ids: ``[bs, L_in]`` int64.
        seq_lens_this_time: ``[bs]`` or ``[bs, 1]`` int32 (only its length is used).
        seq_lens_encoder, seq_lens_decoder: ``[bs]`` or ``[bs, 1]`` int32.
        step_idx: ``[bs]`` or ``[bs, 1]`` int64.
        stop_flags: ``[bs]`` or ``[bs, 1]`` bool.

    Returns:
        ``pre_ids_all`` (the same tensor).

    Invalid values (checked on the device): a row with ``step_idx[b] >= L``, or an encoder row
    with ``seq_lens_encoder[b] > L_in`` (decoder rows with ``L_in == 0``), is left unchanged.

    Differences from FastDeploy: the 7-input form (the 8-input ``prompt_lens`` form is not
    implemented); ``step_idx > 0`` (one upstream version writes at ``step_idx == 0`` too); the
    bounds checks above (FastDeploy writes and reads out of bounds); any ``bs`` (FastDeploy
    uses one block, ``bs <= 1024``); every per-row tensor must have exactly ``bs`` rows.
    """
    op = "set_value_by_flags_and_idx"
    kernel = _KERNELS[op]
    framework = framework_of(op, "pre_ids_all", pre_ids_all)
    launch(framework, kernel, pre_ids_all, input_ids, seq_lens_this_time, seq_lens_encoder,
           seq_lens_decoder, step_idx, stop_flags)
    return pre_ids_all


def set_stop_value_multi_ends(
    topk_ids: Tensor,
    stop_flags: Tensor,
    seq_lens: Tensor,
    end_ids: Tensor,
    next_tokens: Tensor,
    pre_ids: Tensor,
    step_idx: Tensor,
    stop_seqs: Tensor,
    stop_seqs_len: Tensor,
    stop_token_ids: Tensor,
    stop_token_ids_len: Tensor,
    min_tokens: Tensor,
    max_tokens: Tensor,
    beam_search: bool = False,
    *,
    prefill_one_step_stop: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Stop flags and end-token rewrites for one decode step, in place.

    Per row ``b``, with ``token = topk_ids[b]``, ``step = step_idx[b]``, ``end = end_ids[0]``:

    1. A row already stopped gets ``topk_ids = -1`` if ``seq_lens[b] == 0``, else
       ``topk_ids = next_tokens = end``, and nothing else happens to it. A running row gets
       ``next_tokens = token``; then, in order, the first rule that applies decides:
    2. ``step >= max_tokens[b]``: stop.
    3. ``step < min_tokens[b]``: keep running (EOS, stop tokens and stop sequences ignored).
    4. ``token`` in ``end_ids`` and not ``beam_search``: stop.
    5. ``token`` in ``stop_token_ids[b, :stop_token_ids_len[b]]``: stop.
    6. A stop sequence ``s`` with ``n = min(stop_seqs_len[b, s], Mx) > 0`` ends the history:
       ``pre_ids[b, step - n : step] == stop_seqs[b, s, :n]`` (an index outside
       ``[0, L)`` fails the match): stop.

    Stopping sets ``stop_flags = True`` and ``topk_ids = next_tokens = end``.

    Args:
        topk_ids: ``[bs, 1]`` (or ``[bs]``) int64, this step's sampled tokens; in place.
        stop_flags: ``[bs, 1]`` (or ``[bs]``) bool; in place.
        seq_lens: ``[bs]`` or ``[bs, 1]`` int32 (this step's lengths).
        end_ids: ``[n_end]`` (or ``[n_end, 1]``) int64, ``n_end >= 1``.
        next_tokens: ``[bs, 1]`` (or ``[bs]``) int64; in place.
        pre_ids: ``[bs, L]`` int64 generated-token history (this step's token at
            ``step - 1``).
        step_idx: ``[bs]`` or ``[bs, 1]`` int64.
        stop_seqs: ``[bs, S, Mx]`` int64; ``stop_seqs_len``: ``[bs, S]`` int32.
        stop_token_ids: ``[bs, Ks]`` int64; ``stop_token_ids_len``: ``[bs]`` (or ``[bs, 1]``)
            int32, clamped to ``[0, Ks]``.
        min_tokens, max_tokens: ``[bs, 1]`` (or ``[bs]``) int64.
        beam_search: do not stop on ``end_ids``.
        prefill_one_step_stop: every row stops after this step (FastDeploy's environment
            variable ``PREFILL_NODE_ONE_STEP_STOP=1``): ``stop_flags = True``,
            ``topk_ids = -1`` where ``seq_lens == 0``, and ``next_tokens = topk_ids``.

    Returns:
        ``(topk_ids, stop_flags, next_tokens)``, the same tensors.

    Differences from FastDeploy:

    - ``prefill_one_step_stop`` is a keyword, not read from the environment.
    - Stop sequence ``s`` of row ``b`` starts at ``(b * S + s) * Mx`` (FastDeploy's CUDA
      kernel uses ``b * S + s * Mx``); lengths are clamped to ``Mx`` and history indices to
      ``[0, L)`` (FastDeploy reads past the row); matching runs only for running rows with
      ``step >= min_tokens``.
    - An EOS token is rewritten to ``end_ids[0]`` (as FastDeploy's XPU version; the GPU
      versions differ on this).
    - Any number of stop sequences and end ids (FastDeploy uses one thread per stop
      sequence, at most 1024).
    """
    op = "set_stop_value_multi_ends"
    kernel = _KERNELS[op]
    framework = framework_of(op, "topk_ids", topk_ids)
    launch(framework, kernel, topk_ids, stop_flags, seq_lens, end_ids, next_tokens, pre_ids,
           step_idx, stop_seqs, stop_seqs_len, stop_token_ids, stop_token_ids_len, min_tokens,
           max_tokens, bool(beam_search), bool(prefill_one_step_stop))
    return topk_ids, stop_flags, next_tokens
