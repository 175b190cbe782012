"""Benchmark cases of the speculative family: speculate_verify and speculate_update over
decode batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import END_IDS, MAX_MODEL_LEN, Case, CaseGenerator

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


# speculate_verify: one draft (DeepSeek-V3's MTP) and four; FastDeploy's defaults of 5
# candidates per position (max_candidate_len) and a top-2 window of 2 (verify_window); each
# draft matches the target with probability 0.7, position by position.
VERIFY_DRAFTS = (1, 4)
VERIFY_CANDIDATES, VERIFY_WINDOW, VERIFY_ACCEPT_RATE = 5, 2, 0.7


def _torch_verify_target_sampling(torch: Any, sampled: Any, accept_tokens: Any,
                                  accept_num: Any, step_idx: Any, stop_flags: Any,
                                  encoder: Any, draft_tokens: Any, this_time: Any,
                                  max_dec_len: Any, end_tokens: Any, is_block_step: Any,
                                  offsets: Any, max_seq_len: int) -> None:
    """speculate_verify in ``target_sampling`` mode with torch operations, in place on
    ``accept_tokens`` ``[bs, D]``, ``accept_num``, ``step_idx`` and ``stop_flags`` ``[bs]``;
    the op's other arguments with its shapes. Every row is walked over all D positions at
    once: position i is accepted while the drafts before it equal the target's tokens, the
    first end token or length limit ends the row there.

    Assumes what the case builds: ``real_bs = bs``, ``benchmark_mode`` off and every row's
    packed positions inside ``sampled`` (no bounds rule).
    """
    rows, width = accept_tokens.shape
    position = torch.arange(width, device=sampled.device)
    start = torch.arange(rows, device=sampled.device) * max_seq_len - offsets
    target = sampled[(start[:, None] + position).clamp(0, sampled.shape[0] - 1)]
    length = this_time.clamp(max=width)[:, None]
    drafts = position[None, :] < length - 1
    mismatch = (draft_tokens.roll(-1, dims=1) != target) | ~drafts
    # Leading drafts that match (none for an encoder row): the walk ends at that position.
    accepted = torch.where(encoder == 0, (mismatch.int().cumsum(dim=1) == 0).sum(dim=1), 0)
    step = step_idx[:, None] + 1 + position
    at_limit = step >= max_dec_len[:, None]
    stops = ((target[:, :, None] == end_tokens).any(dim=2) | at_limit) & (
        position <= accepted[:, None])
    stopped = stops.any(dim=1)
    last = torch.where(stopped, stops.int().argmax(dim=1), accepted)
    active = ~stop_flags & ~is_block_step
    written = active[:, None] & (position <= last[:, None])
    accept_tokens.copy_(torch.where(written, torch.where(at_limit, end_tokens[0], target),
                                    accept_tokens))
    accept_num.copy_(torch.where(active, last + 1, accept_num))
    step_idx.copy_(torch.where(active, step_idx + last + 1, step_idx))
    stop_flags.copy_(stop_flags | (active & stopped))


def speculate_verify_cases(torch: Any) -> Iterator[Case]:
    from .. import speculative

    for mode in ("candidates", "target_sampling"):
        for draft in VERIFY_DRAFTS:
            for batch in SPECULATIVE_BATCHES:
                yield _verify_case(torch, speculative, mode, draft, batch)


def _verify_case(torch: Any, speculative: Any, mode: str, draft: int, batch: int) -> Case:
    """One decode step of ``batch`` rows, each with ``draft`` drafts (``draft + 1`` packed
    positions, back to back), verified in ``mode``."""
    width = draft + 1
    total = batch * width
    candidates = VERIFY_CANDIDATES
    generator = torch.Generator(device="cuda").manual_seed(batch * 10 + draft)
    column = {"device": "cuda"}

    def ints(low: int, high: int, *shape: int, dtype: Any = torch.int64) -> Any:
        return torch.randint(low, high, shape, generator=generator, dtype=dtype, **column)

    # The target's tokens and candidates lie below 150000, rejected drafts in [150000, 151000)
    # and the end ids above: no row stops (a stopped row would be skipped from the next call
    # on), and a draft is accepted exactly while it matches.
    sampled = ints(0, 150000, total)
    verify_tokens = ints(0, 150000, total, candidates)
    verify_tokens[:, 0] = sampled  # the target's top candidate is its sample
    matches = torch.rand(batch, draft, generator=generator, **column) < VERIFY_ACCEPT_RATE
    draft_tokens = ints(0, 150000, batch, width)
    draft_tokens[:, 1:] = torch.where(matches, sampled.view(batch, width)[:, :draft],
                                      ints(150000, 151000, batch, draft))
    scores = torch.softmax(2 * torch.randn(total, candidates, generator=generator, **column), -1)
    step_idx = ints(1, MAX_MODEL_LEN // 2, batch)
    args = dict(
        sampled_token_ids=sampled,
        accept_tokens=torch.zeros(batch, width, dtype=torch.int64, **column),
        accept_num=torch.zeros(batch, dtype=torch.int32, **column),
        step_idx=step_idx,
        stop_flags=torch.zeros(batch, dtype=torch.bool, **column),
        seq_lens_encoder=torch.zeros(batch, dtype=torch.int32, **column),
        seq_lens_decoder=(step_idx + 1024).int(),
        draft_tokens=draft_tokens,
        seq_lens_this_time=torch.full((batch,), width, dtype=torch.int32, **column),
        verify_tokens=verify_tokens,
        verify_scores=scores.sort(dim=-1, descending=True).values,
        # step_idx grows by up to draft + 1 a call over thousands of calls: an engine's limit
        # would stop the rows part-way through the repetitions.
        max_dec_len=torch.full((batch,), 1 << 40, dtype=torch.int64, **column),
        end_tokens=torch.tensor(END_IDS, **column),
        is_block_step=torch.zeros(batch, dtype=torch.bool, **column),
        # Row b's packed positions start at b * max_seq_len - output_cum_offsets[b] = b * width.
        output_cum_offsets=(torch.arange(batch, **column) * (MAX_MODEL_LEN - width)).int(),
        actual_candidate_len=torch.full((total,), candidates, dtype=torch.int32, **column),
        actual_draft_token_nums=torch.full((batch,), draft, dtype=torch.int32, **column),
        topp=torch.full((batch,), 0.8, **column),
    )
    implementations = {
        "fastdeploy_ops": lambda args=args: speculative.speculate_verify(
            **args, max_seq_len=MAX_MODEL_LEN, verify_window=VERIFY_WINDOW, enable_topp=True,
            benchmark_mode=False, mode=mode, seed=1234),
    }
    accepted = ((~matches).int().cumsum(dim=1) == 0).sum(dim=1)  # leading matches per row
    rejected = int((accepted < draft).sum())
    if mode == "target_sampling":
        implementations["torch"] = lambda a=args: _torch_verify_target_sampling(
            torch, a["sampled_token_ids"], a["accept_tokens"], a["accept_num"], a["step_idx"],
            a["stop_flags"], a["seq_lens_encoder"], a["draft_tokens"],
            a["seq_lens_this_time"], a["max_dec_len"], a["end_tokens"], a["is_block_step"],
            a["output_cum_offsets"], MAX_MODEL_LEN)
        # An accepted position: its draft and the target's token; the end position: the same
        # if a draft was rejected there, else the target's token alone.
        walk = 16 * int(accepted.sum()) + 16 * rejected + 8 * (batch - rejected)
    else:
        # No torch reference: the candidate lists, the top-2 window rule and the per-row top-p
        # draw make a sequential walk that vectorised torch would only imitate loosely.
        # An accepted position: its draft, candidate count and top candidate (a match); the
        # end position: candidate count, the scores and top-p of the draw, and either the
        # rejected draft with all its candidates or (every draft accepted) the drawn id.
        walk = (20 * int(accepted.sum()) + batch * (4 + 4 * candidates + 4)
                + rejected * (8 + 8 * candidates) + 8 * (batch - rejected))
    return Case(
        op="speculate_verify", label=f"{mode}, draft {draft}", tokens=batch, axis="batch",
        shape={"bs": batch, "draft": draft, "candidates": candidates},
        implementations=implementations,
        # Per row: block-step and stop flags, this-time and encoder lengths, offset, step and
        # length limit read (30 bytes); step and accept_num written, one accepted token per
        # accepted draft plus the final one; each accepted token is compared with the end ids.
        bytes_moved=batch * (30 + 12) + 8 * (int(accepted.sum()) + batch) + walk
        + 8 * len(END_IDS),
    )


OPS: dict[str, CaseGenerator] = {
    "speculate_update": speculate_update_cases,
    "speculate_verify": speculate_verify_cases,
}
