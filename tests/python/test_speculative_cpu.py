"""The speculative family without a GPU: the numpy references against cases worked out by hand
(and FastDeploy's published configurations), and argument validation through the real sm70
and sm80 modules (numpy arrays reach the bindings, which check everything before the device).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import speculative
from fastdeploy_ops import reference as ref

# One row, start = 0 (max_seq_len 8, offset 0), D = 5, C = 3: positions 0..4 of the packed
# tensors; draft_tokens[0, i + 1] is checked at position i. Candidate rows by default:
#   pos 0: [11, 90, 91]  pos 1: [12, 92, 93]  pos 2: [13, 94, 95]  pos 3: [14, 96, 97]
#   pos 4: [15, 98, 99]
END = 2
BASE_VERIFY = np.array([[11 + p, 90 + 2 * p, 91 + 2 * p] for p in range(5)], dtype=np.int64)
BASE_DRAFT = np.array([[0, 11, 12, 13, 14]], dtype=np.int64)


def verify_args(**change: Any) -> dict[str, Any]:
    """Arguments of a one-row speculate_verify, with `change` applied (arrays or scalars)."""
    args: dict[str, Any] = {
        "sampled_token_ids": BASE_VERIFY[:, 0].copy(),
        "accept_tokens": np.full((1, 5), -1, np.int64),
        "accept_num": np.array([-1], np.int32),
        "step_idx": np.array([0], np.int64),
        "stop_flags": np.array([False]),
        "seq_lens_encoder": np.array([0], np.int32),
        "seq_lens_decoder": np.array([7], np.int32),
        "draft_tokens": BASE_DRAFT.copy(),
        "seq_lens_this_time": np.array([5], np.int32),
        "verify_tokens": BASE_VERIFY.copy(),
        "verify_scores": np.full((5, 3), 1 / 3, np.float32),
        "max_dec_len": np.array([100], np.int64),
        "end_tokens": np.array([END], np.int64),
        "is_block_step": np.array([False]),
        "output_cum_offsets": np.array([0], np.int32),
        "actual_candidate_len": np.full(5, 3, np.int32),
        "actual_draft_token_nums": np.array([4], np.int32),
        "topp": np.array([1.0], np.float32),
        "max_seq_len": 8,
        "verify_window": 2,
        "enable_topp": False,
        "benchmark_mode": False,
        "accept_all_drafts": False,
    }
    args.update(change)
    return args


def verify(**change: Any) -> tuple[list[int], int, int, bool]:
    """(accept_tokens row 0, accept_num, step_idx, stop_flag) of the one-row case."""
    tokens, n, step, stop = ref.speculate_verify(**verify_args(**change))
    return tokens[0].tolist(), int(n[0]), int(step[0]), bool(stop[0])


def with_rows(base: np.ndarray, rows: dict[int, list[int]]) -> np.ndarray:
    out = base.copy()
    for p, row in rows.items():
        out[p] = row
    return out


def test_every_draft_in_the_candidates_is_accepted() -> None:
    # Drafts 11..14 are the top-1 of positions 0..3; the final token is position 4's top-1.
    assert verify() == ([11, 12, 13, 14, 15], 5, 5, False)


def test_first_rejection_ends_the_walk_with_the_targets_token() -> None:
    draft = BASE_DRAFT.copy()
    draft[0, 3] = 77  # position 2 has [13, 94, 95]: rejected, and 94 != 77: no window
    assert verify(draft_tokens=draft) == ([11, 12, 13, -1, -1], 3, 3, False)


def test_candidates_count_up_to_actual_candidate_len() -> None:
    # Draft 12 is position 1's third candidate: accepted with L = 3, rejected with L = 2.
    v = with_rows(BASE_VERIFY, {1: [40, 41, 12]})
    assert verify(verify_tokens=v) == ([11, 12, 13, 14, 15], 5, 5, False)
    lengths = np.array([3, 2, 3, 3, 3], np.int32)
    assert verify(verify_tokens=v, actual_candidate_len=lengths) == ([11, 40, -1, -1, -1], 2, 2,
                                                                       False)
    # Lengths above C are capped at C, zero or negative ones hold no candidate.
    lengths = np.array([99, 0, 3, 3, 3], np.int32)
    assert verify(verify_tokens=v, actual_candidate_len=lengths) == ([11, 40, -1, -1, -1], 2, 2,
                                                                       False)


def test_top2_window_accepts_verify_window_plus_one_drafts() -> None:
    # Position 1: draft 21 is only the second candidate (L = 1); positions 2, 3 agree on top-1.
    v = with_rows(BASE_VERIFY, {1: [20, 21, 92]})
    lengths = np.array([3, 1, 3, 3, 3], np.int32)
    draft = np.array([[0, 11, 21, 13, 14]], np.int64)
    got = verify(verify_tokens=v, actual_candidate_len=lengths, draft_tokens=draft)
    # 11 (n = 2, step 1); window 21, 13, 14 (n = 5, step 4); the walk ends: final top-1 of
    # position 4 is 15 (step 5).
    assert got == ([11, 21, 13, 14, 15], 5, 5, False)
    # verify_window = 0: only the top-2 draft itself is accepted, then the walk ends.
    got = verify(verify_tokens=v, actual_candidate_len=lengths, draft_tokens=draft,
                 verify_window=0)
    assert got == ([11, 21, 13, -1, -1], 3, 3, False)


def test_top2_window_needs_every_position_to_agree() -> None:
    v = with_rows(BASE_VERIFY, {1: [20, 21, 92]})
    lengths = np.array([3, 1, 3, 3, 3], np.int32)
    draft = np.array([[0, 11, 21, 13, 77]], np.int64)  # position 3's top-1 is 14, not 77
    got = verify(verify_tokens=v, actual_candidate_len=lengths, draft_tokens=draft)
    assert got == ([11, 20, -1, -1, -1], 2, 2, False)
    # The window must fit before the last position: with 4 tokens this time, position 1's
    # window would need positions 2 and 3 to be checked, but only position 2 is.
    draft = np.array([[0, 11, 21, 13, 14]], np.int64)
    got = verify(verify_tokens=v, actual_candidate_len=lengths, draft_tokens=draft,
                 seq_lens_this_time=np.array([4], np.int32))
    assert got == ([11, 20, -1, -1, -1], 2, 2, False)
    # No window with a single candidate column.
    got = verify(verify_tokens=v[:, :1].copy(), verify_scores=np.ones((5, 1), np.float32),
                 actual_candidate_len=lengths, draft_tokens=draft)
    assert got == ([11, 20, -1, -1, -1], 2, 2, False)


def test_stop_inside_the_window_takes_one_back_literally() -> None:
    # The window 21, END, 14: the counters first take all 3 (n = 5, step 4), then the stop at
    # END takes one back from each (n = 4, step 3), although only 2 window tokens were written.
    v = with_rows(BASE_VERIFY, {1: [20, 21, 92], 2: [END, 94, 95]})
    lengths = np.array([3, 1, 3, 3, 3], np.int32)
    draft = np.array([[0, 11, 21, END, 14]], np.int64)
    assert verify(verify_tokens=v, actual_candidate_len=lengths, draft_tokens=draft) == (
        [11, 21, END, -1, -1], 4, 3, True)
    # The length limit inside the window: step 1 + 3 = 4 >= max_dec_len 3 at once, so the
    # window's first slot gets end_tokens[0].
    draft = np.array([[0, 11, 21, 13, 14]], np.int64)
    v = with_rows(BASE_VERIFY, {1: [20, 21, 92]})
    assert verify(verify_tokens=v, actual_candidate_len=lengths, draft_tokens=draft,
                  max_dec_len=np.array([3], np.int64)) == ([11, END, -1, -1, -1], 4, 3, True)


def test_end_token_and_length_limit_stop_the_row() -> None:
    draft = np.array([[0, 11, END, 13, 14]], np.int64)
    v = with_rows(BASE_VERIFY, {1: [END, 92, 93]})
    assert verify(draft_tokens=draft, verify_tokens=v) == ([11, END, -1, -1, -1], 2, 2, True)
    # Steps 8 and 9 with max_dec_len 9: the second accepted token becomes end_tokens[0].
    got = verify(step_idx=np.array([7], np.int64), max_dec_len=np.array([9], np.int64),
                 end_tokens=np.array([5, 6], np.int64))
    assert got == ([11, 5, -1, -1, -1], 2, 9, True)
    # The final token can stop the row too, by an end token or by the limit.
    v = with_rows(BASE_VERIFY, {4: [END, 98, 99]})
    assert verify(verify_tokens=v) == ([11, 12, 13, 14, END], 5, 5, True)
    assert verify(max_dec_len=np.array([5], np.int64)) == ([11, 12, 13, 14, END], 5, 5, True)


def test_modes() -> None:
    v = with_rows(BASE_VERIFY, {1: [40, 12, 93]})  # draft 12 is position 1's second candidate
    assert verify(verify_tokens=v) == ([11, 12, 13, 14, 15], 5, 5, False)
    assert verify(verify_tokens=v, mode="top1") == ([11, 40, -1, -1, -1], 2, 2, False)
    sampled = np.array([11, 12, 55, 14, 15], np.int64)
    assert verify(sampled_token_ids=sampled, mode="target_sampling") == (
        [11, 12, 55, -1, -1], 3, 3, False)
    draft = np.array([[0, 1, 5, 3, 4]], np.int64)  # nothing the target would pick
    assert verify(draft_tokens=draft, accept_all_drafts=True) == ([1, 5, 3, 4, 15], 5, 5, False)
    assert verify(draft_tokens=draft, accept_all_drafts=True, mode="target_sampling",
                  sampled_token_ids=sampled) == ([1, 5, 3, 4, 15], 5, 5, False)
    assert verify(benchmark_mode=True) == ([11, -1, -1, -1, -1], 1, 1, False)
    assert verify(seq_lens_encoder=np.array([3], np.int32)) == ([11, -1, -1, -1, -1], 1, 1, False)
    assert verify(prefill_one_step_stop=True) == ([11, 12, 13, 14, 15], 5, 5, True)
    with pytest.raises(ValueError, match="mode"):
        verify(mode="topk")


def test_stopped_block_step_and_padding_rows_are_untouched() -> None:
    for change in ({"stop_flags": np.array([True])}, {"is_block_step": np.array([True])},
                   {"seq_lens_this_time": np.zeros(0, np.int32)}):
        tokens, n, step, stop = verify(**change)
        assert (tokens, n, step) == ([-1] * 5, -1, 0), change


def test_uniform_is_splitmix64() -> None:
    # splitmix64 seeded with 0 first returns 0xE220A8397B1DCDAF; its top 24 bits are 0xE220A8.
    assert ref.speculative.uniform(0, 0) == np.float32((0xE220A8 + 1) / 2**24)
    draws = np.array([ref.speculative.uniform(seed, row) for seed in range(50)
                      for row in range(20)])
    assert draws.dtype == np.float32 and (draws > 0).all() and (draws <= 1).all()
    assert abs(draws.mean() - 0.5) < 0.03


def test_topp_draw() -> None:
    # Drafts of zeros are rejected at position 0, whose candidates are 11, 90, 91 with scores
    # 0.5, 0.25, 0.25; topp 0.6: the target mass is min(1.0, 0.6) = 0.6 and r = u * 0.6 picks
    # 11 while r <= 0.5, else 90.
    scores = np.tile(np.array([0.5, 0.25, 0.25], np.float32), (5, 1))
    cases = {seed: ref.speculative.uniform(seed, 0) for seed in range(40)}
    low = next(s for s, u in cases.items() if u * np.float32(0.6) <= 0.5)
    high = next(s for s, u in cases.items() if u * np.float32(0.6) > 0.5)
    for seed, token in ((low, 11), (high, 90)):
        got = verify(verify_scores=scores, topp=np.array([0.6], np.float32), enable_topp=True,
                     seed=seed, draft_tokens=np.zeros((1, 5), np.int64))
        assert got == ([token, -1, -1, -1, -1], 1, 1, False), seed
    # No candidates (L = 0): candidate 0.
    got = verify(verify_scores=scores, enable_topp=True, draft_tokens=np.zeros((1, 5), np.int64),
                 actual_candidate_len=np.zeros(5, np.int32))
    assert got == ([11, -1, -1, -1, -1], 1, 1, False)


def test_bounds_rule() -> None:
    # seq_lens_this_time above D is clamped to D: same as 5.
    assert verify(seq_lens_this_time=np.array([1000], np.int32)) == verify()
    # Only 3 packed positions exist: the row walks positions 0..2.
    assert verify(verify_tokens=BASE_VERIFY[:3].copy(), verify_scores=np.ones((3, 3), np.float32),
                  sampled_token_ids=BASE_VERIFY[:3, 0].copy(),
                  actual_candidate_len=np.full(3, 3, np.int32)) == ([11, 12, 13, -1, -1], 3, 3,
                                                                     False)
    # start = -1 or start = total: untouched.
    for offset in (1, -5):
        assert verify(output_cum_offsets=np.array([offset], np.int32))[:3] == ([-1] * 5, -1, 0)
    # Zero or negative lengths: only the final token, at position 0.
    assert verify(seq_lens_this_time=np.array([0], np.int32)) == ([11, -1, -1, -1, -1], 1, 1,
                                                                   False)
    assert verify(seq_lens_this_time=np.array([-4], np.int32))[1] == 1


def test_rows_use_their_packed_offsets() -> None:
    # Two rows of 5 tokens with max_seq_len 8: offsets 0 and 8 - 5 = 3 -> starts 0 and 5.
    v = np.concatenate([BASE_VERIFY, BASE_VERIFY + 100])
    args = verify_args(
        sampled_token_ids=v[:, 0].copy(), accept_tokens=np.full((2, 5), -1, np.int64),
        accept_num=np.full(2, -1, np.int32), step_idx=np.zeros(2, np.int64),
        stop_flags=np.zeros(2, bool), seq_lens_encoder=np.zeros(2, np.int32),
        seq_lens_decoder=np.zeros(2, np.int32),
        draft_tokens=np.array([[0, 11, 12, 13, 14], [0, 111, 112, 7, 7]], np.int64),
        seq_lens_this_time=np.full(2, 5, np.int32), verify_tokens=v,
        verify_scores=np.ones((10, 3), np.float32), max_dec_len=np.full(2, 100, np.int64),
        is_block_step=np.zeros(2, bool), output_cum_offsets=np.array([0, 3], np.int32),
        actual_candidate_len=np.full(10, 3, np.int32),
        actual_draft_token_nums=np.full(2, 4, np.int32), topp=np.ones(2, np.float32))
    tokens, n, step, stop = ref.speculate_verify(**args)
    assert tokens.tolist() == [[11, 12, 13, 14, 15], [111, 112, 113, -1, -1]]
    assert n.tolist() == [5, 3] and step.tolist() == [5, 3] and not stop.any()


def test_column_shapes_are_kept() -> None:
    col = {name: np.asarray(value).reshape(-1, 1) for name, value in verify_args().items()
           if name in ("accept_num", "step_idx", "stop_flags", "max_dec_len")}
    tokens, n, step, stop = ref.speculate_verify(**verify_args(**col))
    assert n.shape == step.shape == stop.shape == (1, 1)
    assert (tokens[0].tolist(), int(n[0, 0])) == ([11, 12, 13, 14, 15], 5)


# FastDeploy's published configurations (tests/operators/test_speculate_verify.py): random
# rows with real_bsz, max_draft_tokens, max_seq_len, max_candidate_len, verify_window,
# end_length. Random tokens almost never agree, rows are longer than D, seq_lens_encoder is
# 0, 1 or 2: processed decode rows accept one token, the target's top-1 of position 0.
FD_VERIFY = [(1, 9, 11, 4, 2, 5), (33, 5, 10111, 5, 2, 6), (6, 4, 10001, 6, 2, 7),
             (7, 3, 777, 7, 2, 5), (55, 5, 31, 9, 2, 3)]


@pytest.mark.parametrize("config", FD_VERIFY)
def test_fastdeploy_verify_configurations(config: tuple[int, ...]) -> None:
    real_bs, d, max_seq_len, c, window, end_length = config
    rng = np.random.default_rng(42)
    this_time = rng.integers(1, max_seq_len + 1, real_bs).astype(np.int32)
    total = int(this_time.sum())
    starts = np.concatenate([[0], np.cumsum(this_time)[:-1]])
    verify_tokens = rng.integers(0, 1000, (total, c)).astype(np.int64)
    draft = rng.integers(0, 1000, (real_bs, d)).astype(np.int64)
    block = rng.integers(0, 2, real_bs).astype(bool)
    args = verify_args(
        sampled_token_ids=verify_tokens[:, 0].copy(),
        accept_tokens=np.zeros((real_bs, d), np.int64), accept_num=np.zeros(real_bs, np.int32),
        step_idx=np.zeros(real_bs, np.int64), stop_flags=np.zeros(real_bs, bool),
        seq_lens_encoder=rng.integers(0, 3, real_bs).astype(np.int32),
        seq_lens_decoder=np.zeros(real_bs, np.int32), draft_tokens=draft,
        seq_lens_this_time=this_time, verify_tokens=verify_tokens,
        verify_scores=rng.random((total, c)).astype(np.float32),
        max_dec_len=rng.integers(16, 64, real_bs).astype(np.int64),
        end_tokens=rng.integers(1000, 2000, end_length).astype(np.int64),  # never produced
        is_block_step=block,
        output_cum_offsets=(np.arange(real_bs) * max_seq_len - starts).astype(np.int32),
        actual_candidate_len=rng.integers(1, c + 1, total).astype(np.int32),
        actual_draft_token_nums=np.ones(real_bs, np.int32), topp=np.zeros(real_bs, np.float32),
        max_seq_len=max_seq_len, verify_window=window)
    tokens, n, step, stop = ref.speculate_verify(**args)
    assert not stop.any()
    for b in range(real_bs):
        if block[b]:
            assert n[b] == 0 and step[b] == 0 and not tokens[b].any()
            continue
        # Each processed row accepts its agreeing prefix and then the target's top-1.
        k = int(n[b]) - 1
        row = verify_tokens[starts[b]: starts[b] + d]
        assert step[b] == n[b] >= 1
        assert tokens[b, :k].tolist() == draft[b, 1: k + 1].tolist()
        assert tokens[b, k] == row[k, 0]


def update_args(**change: Any) -> dict[str, Any]:
    """Three rows, D = 4: row 0 decodes, row 1 prefills (encoder 6), row 2 is padding."""
    args: dict[str, Any] = {
        "seq_lens_encoder": np.array([0, 6, 0], np.int32),
        "seq_lens_decoder": np.array([10, 0, 3], np.int32),
        "not_need_stop": np.array([False]),
        "draft_tokens": np.arange(12, dtype=np.int64).reshape(3, 4),
        "actual_draft_token_nums": np.array([2, 2, 2], np.int32),
        "accept_tokens": np.arange(100, 112, dtype=np.int64).reshape(3, 4),
        "accept_num": np.array([3, 1, 2], np.int32),
        "stop_flags": np.array([False, False, False]),
        "seq_lens_this_time": np.array([3, 6], np.int32),
        "is_block_step": np.array([False, False, False]),
        "stop_nums": np.array([2], np.int64),
    }
    args.update(change)
    return args


def update(**change: Any) -> dict[str, list]:
    names = ("seq_lens_encoder", "seq_lens_decoder", "not_need_stop", "draft_tokens",
             "actual_draft_token_nums")
    return {n: v.tolist() for n, v in zip(names, ref.speculate_update(**update_args(**change)),
                                          strict=True)}


def test_update_decode_prefill_and_padding_rows() -> None:
    got = update()
    assert got["seq_lens_encoder"] == [0, 0, 0]
    assert got["seq_lens_decoder"] == [13, 6, 3]  # 10 + 3 accepted; 0 + 6 prefilled; padding
    # Row 0 accepted every draft (3 - 1 == 2): 2 + 2 = 4 > D - 1 = 3, 2 + 1 = 3 fits. Row 1
    # prefilled: unchanged. Padding row: unchanged.
    assert got["actual_draft_token_nums"] == [3, 2, 2]
    # Column 0 of the next draft = the last accepted token: accept_tokens[0, 2], [1, 0].
    assert got["draft_tokens"] == [[102, 1, 2, 3], [104, 5, 6, 7], [8, 9, 10, 11]]
    # Stopped: only the padding row, 1 < stop_nums 2.
    assert got["not_need_stop"] == [True]


@pytest.mark.parametrize(
    ("drafts", "accepted", "width", "expected"),
    [(1, 2, 8, 3), (5, 6, 8, 7), (6, 7, 8, 7), (7, 8, 8, 7), (3, 2, 8, 2), (1, 1, 8, 1),
     (4, 1, 8, 3), (3, 4, 2, 1), (0, 1, 1, 0)],
)
def test_update_draft_length(drafts: int, accepted: int, width: int, expected: int) -> None:
    accept = np.zeros((1, width), np.int64)
    got = update(seq_lens_encoder=np.array([0], np.int32), seq_lens_decoder=np.array([0], np.int32),
                 draft_tokens=np.zeros((1, width), np.int64), accept_tokens=accept,
                 actual_draft_token_nums=np.array([drafts], np.int32),
                 accept_num=np.array([accepted], np.int32), stop_flags=np.array([False]),
                 seq_lens_this_time=np.array([2], np.int32), is_block_step=np.array([False]))
    assert got["actual_draft_token_nums"] == [expected]


def test_update_draft_length_needs_more_than_one_token_this_time() -> None:
    got = update(seq_lens_this_time=np.array([1, 6], np.int32))
    assert got["actual_draft_token_nums"] == [2, 2, 2]
    assert got["seq_lens_decoder"][0] == 13


def test_update_global_stop_count() -> None:
    # Row 0 stopped and row 2 is padding: 2 stopped, not < 2.
    assert update(stop_flags=np.array([True, False, False]))["not_need_stop"] == [False]
    assert update(stop_flags=np.array([True, False, False]),
                  stop_nums=np.array([3], np.int64))["not_need_stop"] == [True]
    # A block-step row never counts, and is untouched.
    got = update(stop_flags=np.array([True, False, False]),
                 is_block_step=np.array([True, False, False]))
    assert got["not_need_stop"] == [True]
    assert got["seq_lens_decoder"][0] == 10 and got["draft_tokens"][0] == [0, 1, 2, 3]
    # Padding rows count even when stop_flags is false and even when marked block-step.
    got = update(is_block_step=np.array([False, False, True]), stop_nums=np.array([1], np.int64))
    assert got["not_need_stop"] == [False]


@pytest.mark.parametrize("accepted", [0, 5, -1, 2**31 - 1])
def test_update_skips_a_draft_write_outside_the_row(accepted: int) -> None:
    got = update(accept_num=np.array([accepted, 1, 2], np.int32))
    assert got["draft_tokens"][0] == [0, 1, 2, 3]
    assert got["seq_lens_decoder"][0] == np.int32(np.int64(10 + accepted).astype(np.int32))


def test_update_empty_batch_changes_nothing() -> None:
    got = update(**{k: v[:0] for k, v in update_args().items()
                    if k not in ("not_need_stop", "stop_nums")})
    assert got["not_need_stop"] == [False]


def test_fastdeploy_update_configuration() -> None:
    """FastDeploy's published case: max_bs 512, D 32, real_bs 201."""
    rng = np.random.default_rng(0)
    bs, d, real = 512, 32, 201
    args = update_args(
        seq_lens_encoder=rng.integers(0, 3, bs).astype(np.int32),
        seq_lens_decoder=rng.integers(0, 100, bs).astype(np.int32),
        draft_tokens=rng.integers(0, 1000, (bs, d)).astype(np.int64),
        actual_draft_token_nums=rng.integers(1, d, bs).astype(np.int32),
        accept_tokens=rng.integers(0, 1000, (bs, d)).astype(np.int64),
        accept_num=rng.integers(1, d + 1, bs).astype(np.int32),
        stop_flags=rng.integers(0, 2, bs).astype(bool),
        seq_lens_this_time=rng.integers(1, 3, real).astype(np.int32),
        is_block_step=rng.integers(0, 2, bs).astype(bool),
        stop_nums=np.array([bs], np.int64))
    enc, dec, stop, draft, drafts = ref.speculate_update(**args)
    active = np.zeros(bs, bool)
    active[:real] = ~args["is_block_step"][:real]
    assert (enc[active] == 0).all()
    np.testing.assert_array_equal(enc[~active], args["seq_lens_encoder"][~active])
    expected_dec = args["seq_lens_decoder"] + np.where(
        args["seq_lens_encoder"] == 0, args["accept_num"], args["seq_lens_encoder"])
    np.testing.assert_array_equal(dec[active], expected_dec[active])
    np.testing.assert_array_equal(dec[~active], args["seq_lens_decoder"][~active])
    rows = np.flatnonzero(active)
    np.testing.assert_array_equal(draft[rows, 0],
                                  args["accept_tokens"][rows, args["accept_num"][rows] - 1])
    np.testing.assert_array_equal(draft[:, 1:], args["draft_tokens"][:, 1:])
    assert (1 <= drafts).all() and (drafts <= d - 1).all()
    stopped = int(args["stop_flags"][active].sum()) + (bs - real)
    assert bool(stop[0]) == (stopped < bs)


# Validation through the compiled modules, with numpy arrays (no GPU needed).


def resized(name: str, shape: tuple[int, ...], args_of: Callable[..., dict[str, Any]]
            ) -> dict[str, Any]:
    args = args_of()
    args[name] = np.resize(args[name], shape).astype(args[name].dtype)
    return args


def retyped(name: str, dtype: str, args_of: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    args = args_of()
    args[name] = args[name].astype(dtype)
    return args


V, U = verify_args, update_args
# name: (error, argument named, arguments)
VERIFY_CASES: dict[str, tuple[type[Exception], str, Callable[[], dict[str, Any]]]] = {
    "accept_tokens-int32": (TypeError, "accept_tokens", lambda: retyped("accept_tokens", "int32", V)),
    "accept_num-int64": (TypeError, "accept_num", lambda: retyped("accept_num", "int64", V)),
    "stop_flags-uint8": (TypeError, "stop_flags", lambda: retyped("stop_flags", "uint8", V)),
    "verify_scores-fp64": (TypeError, "verify_scores",
                           lambda: retyped("verify_scores", "float64", V)),
    "topp-fp16": (TypeError, "topp", lambda: retyped("topp", "float16", V)),
    "accept_tokens-1d": (ValueError, "accept_tokens", lambda: resized("accept_tokens", (5,), V)),
    "step_idx-2": (ValueError, "step_idx", lambda: resized("step_idx", (2,), V)),
    "stop_flags-1x2": (ValueError, "stop_flags", lambda: resized("stop_flags", (1, 2), V)),
    "draft-width": (ValueError, "draft_tokens", lambda: resized("draft_tokens", (1, 6), V)),
    "this_time-over-bs": (ValueError, "seq_lens_this_time",
                          lambda: resized("seq_lens_this_time", (2,), V)),
    "sampled-total": (ValueError, "sampled_token_ids",
                      lambda: resized("sampled_token_ids", (6,), V)),
    "end_tokens-empty": (ValueError, "end_tokens", lambda: resized("end_tokens", (0,), V)),
    "max_seq_len-0": (ValueError, "max_seq_len", lambda: V(max_seq_len=0)),
    "verify_window--1": (ValueError, "verify_window", lambda: V(verify_window=-1)),
    "mode": (ValueError, "mode", lambda: V(mode="top-1")),
    "seed": (ValueError, "seed", lambda: V(seed=-1)),
    "cpu": (ValueError, "sampled_token_ids", V),
}
UPDATE_CASES: dict[str, tuple[type[Exception], str, Callable[[], dict[str, Any]]]] = {
    "encoder-int64": (TypeError, "seq_lens_encoder", lambda: retyped("seq_lens_encoder", "int64", U)),
    "not_need_stop-int32": (TypeError, "not_need_stop", lambda: retyped("not_need_stop", "int32", U)),
    "draft-int32": (TypeError, "draft_tokens", lambda: retyped("draft_tokens", "int32", U)),
    "stop_nums-int32": (TypeError, "stop_nums", lambda: retyped("stop_nums", "int32", U)),
    "decoder-4": (ValueError, "seq_lens_decoder", lambda: resized("seq_lens_decoder", (4,), U)),
    "accept_tokens-width": (ValueError, "accept_tokens",
                            lambda: resized("accept_tokens", (3, 5), U)),
    "this_time-over-bs": (ValueError, "seq_lens_this_time",
                          lambda: resized("seq_lens_this_time", (4,), U)),
    "not_need_stop-2": (ValueError, "not_need_stop", lambda: resized("not_need_stop", (2,), U)),
    "batch-mismatch": (ValueError, "seq_lens_encoder", lambda: resized("stop_flags", (4,), U)),
    "cpu": (ValueError, "seq_lens_encoder", U),
}




@pytest.mark.usefixtures("sm70")
@pytest.mark.parametrize("case", VERIFY_CASES)
def test_speculate_verify_rejects_through_the_sm70_module(case: str, rejects: Callable[..., str]) -> None:
    error, arg, args = VERIFY_CASES[case]
    message = rejects(error, "speculate_verify", arg, lambda: speculative.speculate_verify(**args()))
    assert ("CUDA" in message) == (case == "cpu"), message


@pytest.mark.usefixtures("sm70")
@pytest.mark.parametrize("case", UPDATE_CASES)
def test_speculate_update_rejects_through_the_sm70_module(case: str, rejects: Callable[..., str]) -> None:
    error, arg, args = UPDATE_CASES[case]
    message = rejects(error, "speculate_update", arg, lambda: speculative.speculate_update(**args()))
    assert ("CUDA" in message) == (case == "cpu"), message


@pytest.mark.usefixtures("sm70")
def test_batches_over_512_are_rejected(rejects: Callable[..., str]) -> None:
    args = update_args()
    for name in ("seq_lens_encoder", "seq_lens_decoder", "actual_draft_token_nums", "accept_num",
                 "stop_flags", "is_block_step"):
        args[name] = np.resize(args[name], 513).astype(args[name].dtype)
    for name in ("draft_tokens", "accept_tokens"):
        args[name] = np.resize(args[name], (513, 4))
    message = rejects(ValueError, "speculate_update", "stop_flags",
                      lambda: speculative.speculate_update(**args))
    assert "512" in message


@pytest.mark.usefixtures("sm80")
def test_the_sm80_module_validates_too(rejects: Callable[..., str]) -> None:
    rejects(ValueError, "speculate_verify", "sampled_token_ids",
            lambda: speculative.speculate_verify(**V()))
    rejects(TypeError, "speculate_update", "draft_tokens",
            lambda: speculative.speculate_update(**retyped("draft_tokens", "float32", U)))
