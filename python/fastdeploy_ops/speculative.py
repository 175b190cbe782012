"""Speculative-decoding bookkeeping (family ``speculative``, SM70+): draft verification and
the length / draft updates after it.

Both ops work in place on the serving loop's buffers (torch, paddle or cupy tensors on one
GPU; a JAX array cannot be written in place) and return ``None``. Every argument is validated
before launch: a wrong dtype raises ``TypeError``, a wrong shape, layout, device or scalar
``ValueError``, naming the op and the argument. In-place tensors must already have the exact
dtype and shape and be contiguous on the GPU (they are never converted). Per-row tensors are
``[bs]`` or ``[bs, 1]``; bool tensors hold one byte per element.

Values stored in the tensors (lengths, offsets, counts) are checked on the device, never by a
host synchronisation: an index that would leave its tensor is not followed (see each op).

Differences from FastDeploy common to both ops: the batch is limited to 512 rows (upstream
silently mishandles larger batches in its single 512-thread block) and checked; every shape
and dtype is checked; nothing is allocated and nothing synchronises.
"""

from __future__ import annotations

import operator

from ._tensors import Kernel, Tensor, framework_of, kernels_by_op, launch, unsigned64_bits

__all__ = ["MODES", "speculate_update", "speculate_verify"]

FAMILY = "speculative"
MODES = ("candidates", "top1", "target_sampling")

# The family's torch operators (fastdeploy_ops._torch_library): each binding's arguments but
# the stream; (a!) marks a tensor the kernel writes.
TORCH_SCHEMAS = {
    Kernel(FAMILY, "speculate_verify"): (
        "(Tensor sampled_token_ids, Tensor(a!) accept_tokens, Tensor(b!) accept_num, "
        "Tensor(c!) step_idx, Tensor(d!) stop_flags, Tensor seq_lens_encoder, "
        "Tensor seq_lens_decoder, Tensor draft_tokens, Tensor seq_lens_this_time, "
        "Tensor verify_tokens, Tensor verify_scores, Tensor max_dec_len, Tensor end_tokens, "
        "Tensor is_block_step, Tensor output_cum_offsets, Tensor actual_candidate_len, "
        "Tensor actual_draft_token_nums, Tensor topp, int max_seq_len, int verify_window, "
        "bool enable_topp, bool benchmark_mode, bool accept_all_drafts, int verify_mode, "
        "bool prefill_one_step_stop, int seed) -> ()"
    ),
    Kernel(FAMILY, "speculate_update"): (
        "(Tensor(a!) seq_lens_encoder, Tensor(b!) seq_lens_decoder, Tensor(c!) not_need_stop, "
        "Tensor(d!) draft_tokens, Tensor(e!) actual_draft_token_nums, Tensor accept_tokens, "
        "Tensor accept_num, Tensor stop_flags, Tensor seq_lens_this_time, Tensor is_block_step, "
        "Tensor stop_nums) -> ()"
    ),
}
_KERNELS = kernels_by_op(TORCH_SCHEMAS)


def _mode(op: str, mode: str) -> int:
    if mode not in MODES:
        raise ValueError(f"{op}: argument 'mode' must be one of {MODES}, got {mode!r}")
    return MODES.index(mode)


def _int(op: str, arg: str, value: int) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: argument '{arg}' must be an int, got {type(value).__name__}") from None


def speculate_verify(
    sampled_token_ids: Tensor,
    accept_tokens: Tensor,
    accept_num: Tensor,
    step_idx: Tensor,
    stop_flags: Tensor,
    seq_lens_encoder: Tensor,
    seq_lens_decoder: Tensor,
    draft_tokens: Tensor,
    seq_lens_this_time: Tensor,
    verify_tokens: Tensor,
    verify_scores: Tensor,
    max_dec_len: Tensor,
    end_tokens: Tensor,
    is_block_step: Tensor,
    output_cum_offsets: Tensor,
    actual_candidate_len: Tensor,
    actual_draft_token_nums: Tensor,
    topp: Tensor,
    max_seq_len: int,
    verify_window: int,
    enable_topp: bool,
    benchmark_mode: bool,
    accept_all_drafts: bool = False,
    *,
    mode: str = "candidates",
    prefill_one_step_stop: bool = False,
    seed: int = 0,
) -> None:
    """Verify each row's draft tokens against the target model; write the accepted tokens.

    For each row ``b < real_bs`` that is not block-step and not already stopped (other rows,
    and stopped rows' ``accept_num``, are left as they are), with
    ``start = b * max_seq_len - output_cum_offsets[b]`` (the row's first packed token) and
    ``n = 1``: for ``i = 0 .. seq_lens_this_time[b] - 2`` (none in ``benchmark_mode`` or when
    ``seq_lens_encoder[b] != 0``) the draft ``d = draft_tokens[b, i + 1]`` is accepted if

    - ``accept_all_drafts``: always;
    - ``mode="target_sampling"``: ``d == sampled_token_ids[start + i]``;
    - ``mode="top1"``: ``d == verify_tokens[start + i, 0]``;
    - ``mode="candidates"`` (upstream's default): ``d`` is among
      ``verify_tokens[start + i, :L]``, ``L = min(actual_candidate_len[start + i], C)``;
      otherwise the top-2 window rule: if ``C >= 2``, ``d == verify_tokens[start + i, 1]``
      and the next ``verify_window`` positions ``ii`` (while ``ii < seq_lens_this_time - 1``)
      all have ``draft_tokens[b, ii + 1] == verify_tokens[start + ii, 0]``, the
      ``verify_window + 1`` drafts at positions ``i .. i + verify_window`` are accepted at
      once (``n`` and ``step_idx`` advance by ``verify_window + 1`` first; a stop inside the
      window takes one back from each, wherever it happened: upstream's rule, ported as is).

    The walk ends at the first rejection. Accepting token ``t`` at position ``i``:
    ``step_idx[b] += 1``, ``accept_tokens[b, i] = t``; if ``t`` is in ``end_tokens`` or
    ``step_idx >= max_dec_len[b]`` the row stops (``stop_flags[b] = True``; the length limit
    writes ``end_tokens[0]`` instead of ``t``), else ``n += 1``. If the row did not stop, the
    target's token for the final position ``i`` is accepted the same way (without ``n += 1``):
    ``sampled_token_ids[start + i]`` in target sampling, else with ``enable_topp`` a top-p draw
    over that position's ``L`` candidates (target ``min(sum of their verify_scores, topp[b])``,
    ``r = u * target`` with ``u`` in (0, 1], the first candidate whose running score sum
    reaches ``r``, else candidate 0), else ``verify_tokens[start + i, 0]``;
    ``prefill_one_step_stop`` then stops the row too. Finally ``accept_num[b] = n``.

    Args:
        sampled_token_ids: ``[total]`` int64, the target's sampled token per packed position.
        accept_tokens: ``[bs, D]`` int64, written in place.
        accept_num: ``[bs]`` int32, written in place.
        step_idx: ``[bs]`` int64, written in place.
        stop_flags: ``[bs]`` bool, written in place.
        seq_lens_encoder: ``[bs]`` int32. seq_lens_decoder: ``[bs]`` int32 (unused, as upstream).
        draft_tokens: ``[bs, D]`` int64 (``draft_tokens[b, 0]`` is the last accepted token).
        seq_lens_this_time: ``[real_bs]`` int32, ``real_bs <= bs``.
        verify_tokens: ``[total, C]`` int64 candidates per packed position; verify_scores:
            ``[total, C]`` float32 their probabilities.
        max_dec_len: ``[bs]`` int64. end_tokens: ``[n]`` int64, ``n >= 1``.
        is_block_step: ``[bs]`` bool. output_cum_offsets: ``[bs]`` int32.
        actual_candidate_len: ``[total]`` int32. actual_draft_token_nums: ``[bs]`` int32 (unused,
            as upstream). topp: ``[bs]`` float32.
        max_seq_len: ``1 <= max_seq_len < 2**31``. verify_window: ``0 <= verify_window < 2**31 - 1``.
        enable_topp, benchmark_mode, accept_all_drafts: as described above.
        mode: ``"candidates"``, ``"top1"`` or ``"target_sampling"``.
        prefill_one_step_stop: stop every row after its final token.
        seed: ``[0, 2**64)``, the seed of the top-p draws: row ``b`` draws
            ``fastdeploy_ops.reference.speculative.uniform(seed, b)``.

    Bounds (project rule; the host cannot see these values without a synchronisation): a row
    uses at most ``min(seq_lens_this_time[b], D, total - start)`` positions, and a row whose
    ``start`` is outside ``[0, total)`` is left untouched. Where upstream stays inside its
    tensors this is exactly upstream's result; upstream reads and writes past the row otherwise.

    Differences from FastDeploy: ``mode`` replaces the environment variables
    ``SPECULATE_VERIFY_USE_TOPK`` (``"top1"``) and ``SPECULATE_VERIFY_USE_TARGET_SAMPLING``
    (``"target_sampling"``), and ``prefill_one_step_stop`` replaces
    ``PREFILL_NODE_ONE_STEP_STOP=1``; top-p draws come from a counter-based hash of
    ``(seed, row)``, reproducible and matching the numpy reference, instead of curand states
    seeded from a process-wide counter (upstream's draws are not reproducible);
    ``accept_all_drafts`` defaults to ``False``; the bounds rule above; ``bs <= 512``; no
    per-call device allocation.
    """
    op = "speculate_verify"
    kernel = _KERNELS[op]
    framework = framework_of(op, "sampled_token_ids", sampled_token_ids)
    launch(framework, kernel, sampled_token_ids, accept_tokens, accept_num, step_idx,
           stop_flags, seq_lens_encoder, seq_lens_decoder, draft_tokens, seq_lens_this_time,
           verify_tokens, verify_scores, max_dec_len, end_tokens, is_block_step,
           output_cum_offsets, actual_candidate_len, actual_draft_token_nums, topp,
           _int(op, "max_seq_len", max_seq_len), _int(op, "verify_window", verify_window),
           bool(enable_topp), bool(benchmark_mode), bool(accept_all_drafts), _mode(op, mode),
           bool(prefill_one_step_stop), unsigned64_bits(op, "seed", seed))


def speculate_update(
    seq_lens_encoder: Tensor,
    seq_lens_decoder: Tensor,
    not_need_stop: Tensor,
    draft_tokens: Tensor,
    actual_draft_token_nums: Tensor,
    accept_tokens: Tensor,
    accept_num: Tensor,
    stop_flags: Tensor,
    seq_lens_this_time: Tensor,
    is_block_step: Tensor,
    stop_nums: Tensor,
) -> None:
    """Advance the sequence lengths, adapt the draft lengths, seed the next drafts, and decide
    whether the batch keeps running.

    With ``max_bs = stop_flags.shape[0]`` and ``D = draft_tokens.shape[1]``, for each active row
    (``b < real_bs`` and not block-step): if ``seq_lens_encoder[b] == 0``,
    ``seq_lens_decoder[b] += accept_num[b]`` and, when also ``seq_lens_this_time[b] > 1``, the
    draft length ``n = actual_draft_token_nums[b]`` becomes ``n + 2``, else ``n + 1``, else
    ``D - 1`` (the first that is ``<= D - 1``) when every draft was accepted
    (``accept_num - 1 == n``), otherwise ``max(1, n - 1)``; if ``seq_lens_encoder[b] != 0``, it
    is added to ``seq_lens_decoder[b]`` and reset to 0. Then
    ``draft_tokens[b, 0] = accept_tokens[b, accept_num[b] - 1]``. Counting active rows whose
    ``stop_flags`` is set and every padding row (``b >= real_bs``; block-step rows never count),
    ``not_need_stop[0] = count < stop_nums[0]``.

    Args:
        seq_lens_encoder, seq_lens_decoder: ``[max_bs]`` int32, written in place.
        not_need_stop: one-element bool tensor **on the GPU**, written in place.
        draft_tokens: ``[max_bs, D]`` int64, written in place (column 0 of active rows).
        actual_draft_token_nums: ``[max_bs]`` int32, written in place.
        accept_tokens: ``[max_bs, D]`` int64. accept_num: ``[max_bs]`` int32.
        stop_flags: ``[max_bs]`` bool, ``max_bs <= 512``.
        seq_lens_this_time: ``[real_bs]`` int32, ``real_bs <= max_bs``.
        is_block_step: ``[max_bs]`` bool. stop_nums: one-element int64 tensor.

    Bounds (project rule): ``accept_num[b]`` outside ``[1, D]`` names no token of the row, so
    ``draft_tokens[b, 0]`` is then left as it is (upstream reads outside the row); the other
    updates of the row still happen. int32 sums wrap.

    Differences from FastDeploy: ``not_need_stop`` lives on the GPU and is written there;
    upstream takes a host tensor and copies it to the device and back, synchronising the
    stream. Copy it to the host when the flag is needed. With ``max_bs == 0`` nothing is
    written (project convention for empty batches); the bounds rule above; ``max_bs <= 512``.
    """
    op = "speculate_update"
    kernel = _KERNELS[op]
    framework = framework_of(op, "seq_lens_encoder", seq_lens_encoder)
    launch(framework, kernel, seq_lens_encoder, seq_lens_decoder, not_need_stop, draft_tokens,
           actual_draft_token_nums, accept_tokens, accept_num, stop_flags, seq_lens_this_time,
           is_block_step, stop_nums)
