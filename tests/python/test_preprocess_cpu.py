"""preprocess family without a GPU: the numpy references against cases worked out by hand
(FastDeploy's published cases among them), and argument validation through the real sm70 module
(numpy arrays reach the binding, which checks dtypes, shapes and batch sizes before the device).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import preprocess
from fastdeploy_ops import reference as ref

# ----------------------------------------------------------------------------------------------
# get_padding_offset

FD_INPUT_IDS = np.array(
    [[8, 7, 8, 2, 0, 0, 0, 0, 0, 0],
     [4, 5, 5, 0, 0, 0, 0, 0, 0, 0],
     [7, 6, 1, 7, 2, 6, 0, 0, 0, 0]],
    dtype=np.int64,
)


@pytest.mark.parametrize("shape", [(3,), (3, 1)])
def test_get_padding_offset_fastdeploy_case(shape: tuple[int, ...]) -> None:
    seq_len = np.array([4, 3, 6], dtype=np.int32).reshape(shape)
    x, batch_ids, cu_q, cu_k = ref.get_padding_offset(FD_INPUT_IDS, 13, seq_len)
    assert x.tolist() == [8, 7, 8, 2, 4, 5, 5, 7, 6, 1, 7, 2, 6] and x.dtype == np.int64
    assert batch_ids.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2]
    assert batch_ids.dtype == np.int32
    assert cu_q.tolist() == cu_k.tolist() == [0, 4, 7, 13]
    assert cu_q.dtype == cu_k.dtype == np.int32


def test_get_padding_offset_zero_length_rows() -> None:
    ids = np.arange(12, dtype=np.int64).reshape(4, 3)
    x, batch_ids, cu, _ = ref.get_padding_offset(ids, 3, np.array([0, 2, 0, 1], dtype=np.int32))
    assert x.tolist() == [3, 4, 9]
    assert batch_ids.tolist() == [1, 1, 3]
    assert cu.tolist() == [0, 0, 2, 2, 3]


def test_get_padding_offset_empty_batch_and_no_tokens() -> None:
    x, batch_ids, cu, _ = ref.get_padding_offset(np.zeros((0, 5), np.int64), 0,
                                                 np.zeros(0, np.int32))
    assert x.shape == batch_ids.shape == (0,) and cu.tolist() == [0]
    x, batch_ids, cu, _ = ref.get_padding_offset(FD_INPUT_IDS, 0, np.zeros(3, np.int32))
    assert x.shape == (0,) and cu.tolist() == [0, 0, 0, 0]


def test_get_padding_offset_bad_lengths_are_clamped_and_bounded() -> None:
    # Lengths -3 -> 0 and 60 -> 10 (max_len); they sum to 14 while token_num is 15: the last
    # position is unfilled (x 0, batch id -1).
    x, batch_ids, cu, _ = ref.get_padding_offset(FD_INPUT_IDS, 15, np.array([4, -3, 60], np.int32))
    assert x.tolist() == [8, 7, 8, 2, 7, 6, 1, 7, 2, 6, 0, 0, 0, 0, 0]
    assert batch_ids.tolist() == [0] * 4 + [2] * 10 + [-1]
    assert cu.tolist() == [0, 4, 4, 14]
    # Lengths sum to 13 but token_num is 5: tokens past 5 are dropped, cu_seqlens saturate.
    x, batch_ids, cu, _ = ref.get_padding_offset(FD_INPUT_IDS, 5, np.array([4, 3, 6], np.int32))
    assert x.tolist() == [8, 7, 8, 2, 4]
    assert batch_ids.tolist() == [0, 0, 0, 0, 1]
    assert cu.tolist() == [0, 4, 5, 5]


# ----------------------------------------------------------------------------------------------
# rebuild_padding: FastDeploy's layout (bs 8, alternating decode rows of 1 token and prefill
# rows of 20 tokens, token_num 100 with 16 trailing unused rows).

FD_CU = np.array([0, 1, 21, 22, 42, 43, 63, 64, 84], dtype=np.int32)
FD_THIS_TIME = np.array([1, 20] * 4, dtype=np.int32)
FD_ENCODER = np.array([0, 20] * 4, dtype=np.int32)
FD_DECODER = np.array([21, 0] * 4, dtype=np.int32)


def hidden_states(rows: int, dim: int) -> np.ndarray:
    return np.random.default_rng(rows * 1000 + dim).standard_normal((rows, dim)).astype(np.float32)


def test_rebuild_padding_fastdeploy_plain_case() -> None:
    tmp = hidden_states(100, 256)
    out, first = ref.rebuild_padding(tmp, FD_CU, FD_THIS_TIME, FD_DECODER, FD_ENCODER)
    # Decode rows take their only token cu[b]; prefill rows their last prompt token cu[b] + 19.
    np.testing.assert_array_equal(out, tmp[[0, 20, 21, 41, 42, 62, 63, 83]])
    assert first is None and out.dtype == np.float32


def test_rebuild_padding_fastdeploy_offset_case() -> None:
    # FastDeploy's second case: 80 output rows with offsets in [0, 10). Every padded position
    # ori = t + offset < 512 lies in batch row 0, a decode row with cu 0, so out[t] = tmp[ori].
    tmp = hidden_states(100, 256)
    offsets = np.random.default_rng(42).integers(0, 10, 80).astype(np.int32)
    out, _ = ref.rebuild_padding(tmp, FD_CU, FD_THIS_TIME, FD_DECODER, FD_ENCODER, offsets,
                                 None, 512, False)
    np.testing.assert_array_equal(out, tmp[np.arange(80) + offsets])


def test_rebuild_padding_speculative_layout_with_first_token() -> None:
    # bs 3, max_input_length 8: row 0 decodes 3 tokens (draft tokens), row 1 prefills 4 prompt
    # tokens (one output row), row 2 decodes 2 tokens. cu_seqlens [0, 3, 7, 9], token_num 9.
    # Output rows 0-2 sit at padded positions 0-2, row 3 at 8 (offset 5), rows 4-5 at 16-17
    # (offset 12). Row 3's source is its last prompt token cu[1] + 3 = 6; the first-token
    # output of batch row 1 gets the token before it, 5.
    tmp = hidden_states(9, 16)
    cu = np.array([0, 3, 7, 9], np.int32)
    this_time, enc, dec = (np.array(v, np.int32) for v in ([3, 4, 2], [0, 4, 0], [10, 0, 5]))
    offsets = np.array([0, 0, 0, 5, 12, 12], np.int32)
    first_in = np.full((3, 16), 7.0, np.float32)
    out, first = ref.rebuild_padding(tmp, cu, this_time, dec, enc, offsets, first_in, 8, True)
    np.testing.assert_array_equal(out, tmp[[0, 1, 2, 6, 7, 8]])
    np.testing.assert_array_equal(first[1], tmp[5])
    np.testing.assert_array_equal(first[[0, 2]], first_in[[0, 2]])  # decode rows: untouched
    np.testing.assert_array_equal(first_in, 7.0)  # the reference does not write its input
    out, first = ref.rebuild_padding(tmp, cu, this_time, dec, enc, offsets, first_in, 8, False)
    np.testing.assert_array_equal(first, first_in)


def test_rebuild_padding_skips_and_out_of_range_rows_are_zero() -> None:
    tmp = hidden_states(6, 8)
    cu = np.array([0, 2, 4, 6], np.int32)
    # Row 0 has no tokens this time, row 1 has enc = dec = 0, row 2's encoder length points
    # past token_num (4 + 9 - 1 = 12).
    out, _ = ref.rebuild_padding(tmp, cu, np.array([0, 2, 2], np.int32),
                                 np.array([3, 0, 0], np.int32), np.array([0, 0, 9], np.int32))
    assert not out.any()
    # Offsets that lead before position 0 or past the last batch row give zero rows.
    out, _ = ref.rebuild_padding(tmp, cu, np.array([2, 2, 2], np.int32),
                                 np.array([1, 1, 1], np.int32), np.zeros(3, np.int32),
                                 np.array([-5, 100], np.int32), None, 4, False)
    assert not out.any()


def test_rebuild_padding_first_token_never_reads_before_row_zero() -> None:
    # Batch row 0 prefills a single token: its source is token 0, there is no token before it.
    tmp = hidden_states(3, 8)
    first_in = np.full((2, 8), 3.0, np.float32)
    out, first = ref.rebuild_padding(tmp, np.array([0, 1, 3], np.int32),
                                     np.array([1, 2], np.int32), np.array([0, 4], np.int32),
                                     np.array([1, 0], np.int32), np.array([0, 3], np.int32),
                                     first_in, 4, True)
    np.testing.assert_array_equal(out, tmp[[0, 1]])
    np.testing.assert_array_equal(first, first_in)


# ----------------------------------------------------------------------------------------------
# set_value_by_flags_and_idx: FastDeploy's corner cases.


def set_value(pre: list[int], ids: list[int], enc: int, dec: int, step: int,
              stop: bool = False) -> list[int]:
    out = ref.set_value_by_flags_and_idx(
        np.array([pre], np.int64), np.array([ids], np.int64), np.array([len(ids)], np.int32),
        np.array([enc], np.int32), np.array([dec], np.int32), np.array([step], np.int64),
        np.array([stop]))
    return out[0].tolist()


def test_set_value_by_flags_and_idx_fastdeploy_corners() -> None:
    assert set_value([0] * 5, [11, 12, 13], 3, 0, 0) == [0] * 5  # prefill at step 0: unchanged
    assert set_value([0] * 5, [11, 12, 13], 3, 0, 1) == [0, 13, 0, 0, 0]  # last prompt token
    assert set_value([0] * 4, [101, 102], 0, 2, 2) == [0, 0, 101, 0]  # decode: first token
    assert set_value([0] * 3, [5, 6, 7], 3, 0, 1, stop=True) == [0] * 3
    assert set_value([0] * 3, [8, 9, 10], 0, 0, 1) == [0] * 3  # enc = dec = 0
    assert set_value([0] * 3, [42, 43, 44], 2, 1, -1) == [0] * 3  # negative step


def test_set_value_by_flags_and_idx_out_of_range_is_skipped() -> None:
    assert set_value([0] * 3, [1, 2], 0, 5, 3) == [0] * 3  # step == L
    assert set_value([0] * 3, [1, 2], 3, 0, 1) == [0] * 3  # enc > L_in
    assert set_value([0] * 3, [1, 2], 2, 0, 2) == [0, 0, 2]  # enc == L_in is fine


# ----------------------------------------------------------------------------------------------
# set_stop_value_multi_ends: FastDeploy's three published cases and the rules around them.


def stop_inputs(tokens: list[int], *, stopped: list[bool] | None = None,
                seq_lens: list[int] | None = None, steps: list[int] | None = None,
                mins: list[int] | None = None, maxs: list[int] | None = None,
                end_ids: list[int] = (2,), history_len: int = 100, num_seqs: int = 5,
                seq_width: int = 8, num_stop_tokens: int = 10) -> dict[str, np.ndarray]:
    bs = len(tokens)
    col = lambda v, d, dtype: np.array(v if v is not None else [d] * bs, dtype).reshape(bs, 1)
    return {
        "topk_ids": np.array(tokens, np.int64).reshape(bs, 1),
        "stop_flags": np.array(stopped or [False] * bs).reshape(bs, 1),
        "seq_lens": col(seq_lens, 1, np.int32),
        "end_ids": np.array(end_ids, np.int64),
        "next_tokens": np.array(tokens, np.int64).reshape(bs, 1),
        "pre_ids": np.full((bs, history_len), -1, np.int64),
        "step_idx": col(steps, 1, np.int64),
        "stop_seqs": np.full((bs, num_seqs, seq_width), -1, np.int64),
        "stop_seqs_len": np.zeros((bs, num_seqs), np.int32),
        "stop_token_ids": np.full((bs, num_stop_tokens), -1, np.int64),
        "stop_token_ids_len": np.zeros(bs, np.int32),
        "min_tokens": col(mins, 0, np.int64),
        "max_tokens": col(maxs, 100, np.int64),
    }


def run_stop(inputs: dict[str, np.ndarray], **flags: bool) -> tuple[list, list, list]:
    topk, stop, nxt = ref.set_stop_value_multi_ends(*inputs.values(), **flags)
    assert topk.shape == stop.shape == nxt.shape == inputs["topk_ids"].shape
    return topk.ravel().tolist(), stop.ravel().tolist(), nxt.ravel().tolist()


def test_set_stop_fastdeploy_stop_sequence_case() -> None:
    inputs = stop_inputs([61502, 2], stopped=[False, True], seq_lens=[1, 0], steps=[10, 0],
                         history_len=32768)
    inputs["pre_ids"][0, :10] = [21, 22, 23, 24, 25, 26, 27, 28, 8038, 61502]
    inputs["stop_seqs"][0, 0, :2] = [8038, 61502]
    inputs["stop_seqs_len"][:] = 10  # unused slots claim 10 > Mx = 8 tokens: clamped to 8
    inputs["stop_seqs_len"][0, 0] = 2
    topk, stop, nxt = run_stop(inputs)
    assert stop == [True, True]
    assert topk == [2, -1]  # row 1 was stopped with no tokens this time: -1
    assert nxt == [2, 2]


def test_set_stop_fastdeploy_stop_token_case() -> None:
    inputs = stop_inputs([999, 2], steps=[5, 3])
    inputs["stop_token_ids"][0, :3] = [999, 888, 777]
    inputs["stop_token_ids_len"][:] = [3, 0]
    topk, stop, nxt = run_stop(inputs)
    assert stop == [True, True]  # row 1 samples EOS
    assert topk == nxt == [2, 2]


def test_set_stop_fastdeploy_min_max_case() -> None:
    inputs = stop_inputs([2, 100, 200], steps=[5, 50, 10], mins=[10, 0, 5], maxs=[100, 50, 100])
    topk, stop, nxt = run_stop(inputs)
    assert stop == [False, True, False]  # EOS below min_tokens; step == max_tokens stops
    assert topk == [2, 2, 200] and nxt == [2, 2, 200]


def test_set_stop_rules() -> None:
    # Row 0: stopped earlier with tokens: end id. Row 1: EOS (second end id) rewritten to the
    # first. Row 2: an ordinary token runs on. Row 3: a stop sequence longer than the history
    # (step 1) fails. Row 4: stop tokens beyond stop_token_ids_len are ignored.
    inputs = stop_inputs([5, 7, 3, 9, 4], stopped=[True, False, False, False, False],
                         steps=[3, 3, 3, 1, 3], end_ids=[2, 7])
    inputs["pre_ids"][3, 0] = 9
    inputs["stop_seqs"][3, 4, :2] = [8, 9]
    inputs["stop_seqs_len"][3, 4] = 2
    inputs["stop_token_ids"][4, :2] = [1, 4]
    inputs["stop_token_ids_len"][4] = 1
    topk, stop, nxt = run_stop(inputs)
    assert stop == [True, True, False, False, False]
    assert topk == [2, 2, 3, 9, 4] and nxt == [2, 2, 3, 9, 4]
    # Under beam search an end id does not stop the row; a stop token still does.
    beam = stop_inputs([7, 7], end_ids=[2, 7])
    beam["stop_token_ids"][1, 0] = 7
    beam["stop_token_ids_len"][1] = 1
    assert run_stop(beam, beam_search=True) == ([7, 2], [False, True], [7, 2])


def test_set_stop_sequence_matches_the_history_tail() -> None:
    inputs = stop_inputs([30], steps=[4], history_len=6)
    inputs["pre_ids"][0, :4] = [10, 20, 30, 40]  # step 4: the history is pre_ids[0, :4]
    inputs["stop_seqs"][0, 1, :3] = [20, 30, 40]
    inputs["stop_seqs_len"][0, 1] = 3
    assert run_stop(inputs)[1] == [True]
    inputs["stop_seqs"][0, 1, :3] = [10, 20, 30]  # not at the tail
    assert run_stop(inputs)[1] == [False]
    inputs["step_idx"][0] = 8  # the history would end past L = 6: no match
    inputs["stop_seqs_len"][0, 1] = 1
    inputs["stop_seqs"][0, 1, 0] = -1
    assert run_stop(inputs)[1] == [False]


def test_set_stop_prefill_one_step_stop() -> None:
    inputs = stop_inputs([5, 6], seq_lens=[3, 0])
    topk, stop, nxt = run_stop(inputs, prefill_one_step_stop=True)
    assert stop == [True, True] and topk == [5, -1] and nxt == [5, -1]


# ----------------------------------------------------------------------------------------------
# Validation through the sm70 module (no GPU: numpy arrays reach the binding).




def i32(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.int32)


def i64(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.int64)


def flags(*shape: int) -> np.ndarray:
    return np.zeros(shape, bool)


B = 4


def padding(input_ids: Any = None, token_num: Any = 6, seq_len: Any = None, out: Any = None) -> Any:
    return preprocess.get_padding_offset(i64(B, 8) if input_ids is None else input_ids, token_num,
                                         i32(B) if seq_len is None else seq_len, out=out)


def padding_out(**change: Any) -> tuple:
    out = {"x": i64(6), "ids": i32(6), "cu_q": i32(B + 1), "cu_k": i32(B + 1), **change}
    return out["x"], out["ids"], out["cu_q"], out["cu_k"]


def rebuild(tmp: Any = None, cu: Any = None, this_time: Any = None, offset: Any = None,
            first: Any = None, max_len: int = 16, logprob: bool = False, out: Any = None) -> Any:
    return preprocess.rebuild_padding(
        np.zeros((10, 64), np.float32) if tmp is None else tmp, i32(B + 1) if cu is None else cu,
        i32(B) if this_time is None else this_time, i32(B), i32(B), offset, first, max_len,
        logprob, out=out)


def set_value_call(pre: Any = None, ids: Any = None, this_time: Any = None, step: Any = None,
                   stop: Any = None) -> Any:
    return preprocess.set_value_by_flags_and_idx(
        i64(B, 16) if pre is None else pre, i64(B, 8) if ids is None else ids,
        i32(B) if this_time is None else this_time, i32(B), i32(B),
        i64(B, 1) if step is None else step, flags(B, 1) if stop is None else stop)


def stop_value(**change: Any) -> Any:
    args = stop_inputs([0] * B)
    args.update(change)
    return preprocess.set_stop_value_multi_ends(*args.values())


CASES: dict[str, tuple[type[Exception], str, str, Callable[[], Any]]] = {
    # get_padding_offset
    "gpo-input-int32": (TypeError, "get_padding_offset", "input_ids",
        lambda: padding(input_ids=i32(B, 8))),
    "gpo-input-1d": (ValueError, "get_padding_offset", "input_ids",
        lambda: padding(input_ids=i64(8))),
    "gpo-seq_len-int64": (TypeError, "get_padding_offset", "seq_len",
        lambda: padding(seq_len=i64(B))),
    "gpo-seq_len-batch": (ValueError, "get_padding_offset", "seq_len",
        lambda: padding(seq_len=i32(B + 1))),
    "gpo-seq_len-Bx2": (ValueError, "get_padding_offset", "seq_len",
        lambda: padding(seq_len=i32(B, 2))),
    "gpo-token_num-negative": (ValueError, "get_padding_offset", "token_num",
        lambda: padding(token_num=-1)),
    "gpo-token_num-over-capacity": (ValueError, "get_padding_offset", "token_num",
        lambda: padding(token_num=B * 8 + 1)),
    "gpo-token_num-float": (TypeError, "get_padding_offset", "token_num",
        lambda: padding(token_num=6.0)),
    "gpo-token_num-array": (TypeError, "get_padding_offset", "token_num",
        lambda: padding(token_num=np.array([6]))),
    "gpo-out-x-int32": (TypeError, "get_padding_offset", "x_remove_padding",
        lambda: padding(out=padding_out(x=i32(6)))),
    "gpo-out-ids-shape": (ValueError, "get_padding_offset", "batch_id_per_token",
        lambda: padding(out=padding_out(ids=i32(7)))),
    "gpo-out-cu-shape": (ValueError, "get_padding_offset", "cu_seqlens_k",
        lambda: padding(out=padding_out(cu_k=i32(B)))),
    "gpo-out-three": (ValueError, "get_padding_offset", "out",
        lambda: padding(out=padding_out()[:3])),
    "gpo-cpu": (ValueError, "get_padding_offset", "input_ids", lambda: padding()),
    # rebuild_padding
    "rp-tmp-int64": (TypeError, "rebuild_padding", "tmp_out", lambda: rebuild(tmp=i64(10, 64))),
    "rp-tmp-3d": (ValueError, "rebuild_padding", "tmp_out",
        lambda: rebuild(tmp=np.zeros((1, 10, 64), np.float32))),
    "rp-cu-int64": (TypeError, "rebuild_padding", "cu_seqlens_q", lambda: rebuild(cu=i64(B + 1))),
    "rp-cu-empty": (ValueError, "rebuild_padding", "cu_seqlens_q", lambda: rebuild(cu=i32(0))),
    "rp-this_time-batch": (ValueError, "rebuild_padding", "seq_len_this_time",
        lambda: rebuild(this_time=i32(B + 1))),
    "rp-offset-int64": (TypeError, "rebuild_padding", "output_padding_offset",
        lambda: rebuild(offset=i64(5))),
    "rp-max_input_length-0": (ValueError, "rebuild_padding", "max_input_length",
        lambda: rebuild(offset=i32(5), max_len=0)),
    "rp-first-missing": (ValueError, "rebuild_padding", "first_token_out",
        lambda: rebuild(offset=i32(5), logprob=True)),
    "rp-first-dtype": (TypeError, "rebuild_padding", "first_token_out",
        lambda: rebuild(offset=i32(5), first=np.zeros((B, 64), np.float16), logprob=True)),
    "rp-first-shape": (ValueError, "rebuild_padding", "first_token_out",
        lambda: rebuild(offset=i32(5), first=np.zeros((B + 1, 64), np.float32), logprob=True)),
    "rp-out-dtype": (TypeError, "rebuild_padding", "out",
        lambda: rebuild(out=np.zeros((B, 64), np.float16))),
    "rp-out-rows": (ValueError, "rebuild_padding", "out",
        lambda: rebuild(offset=i32(5), out=np.zeros((B, 64), np.float32))),
    "rp-cpu": (ValueError, "rebuild_padding", "tmp_out", lambda: rebuild()),
    # set_value_by_flags_and_idx
    "sv-pre-int32": (TypeError, "set_value_by_flags_and_idx", "pre_ids_all",
        lambda: set_value_call(pre=i32(B, 16))),
    "sv-pre-batch": (ValueError, "set_value_by_flags_and_idx", "pre_ids_all",
        lambda: set_value_call(pre=i64(B + 1, 16))),
    "sv-ids-batch": (ValueError, "set_value_by_flags_and_idx", "input_ids",
        lambda: set_value_call(ids=i64(B - 1, 8))),
    "sv-step-int32": (TypeError, "set_value_by_flags_and_idx", "step_idx",
        lambda: set_value_call(step=i32(B, 1))),
    "sv-stop-int32": (TypeError, "set_value_by_flags_and_idx", "stop_flags",
        lambda: set_value_call(stop=i32(B, 1))),
    "sv-stop-batch": (ValueError, "set_value_by_flags_and_idx", "stop_flags",
        lambda: set_value_call(stop=flags(B + 1))),
    "sv-cpu": (ValueError, "set_value_by_flags_and_idx", "pre_ids_all", lambda: set_value_call()),
    # set_stop_value_multi_ends
    "ss-topk-int32": (TypeError, "set_stop_value_multi_ends", "topk_ids",
        lambda: stop_value(topk_ids=i32(B, 1))),
    "ss-stop-uint8": (TypeError, "set_stop_value_multi_ends", "stop_flags",
        lambda: stop_value(stop_flags=np.zeros((B, 1), np.uint8))),
    "ss-end-empty": (ValueError, "set_stop_value_multi_ends", "end_ids",
        lambda: stop_value(end_ids=i64(0))),
    "ss-next-batch": (ValueError, "set_stop_value_multi_ends", "next_tokens",
        lambda: stop_value(next_tokens=i64(B + 1, 1))),
    "ss-pre-batch": (ValueError, "set_stop_value_multi_ends", "pre_ids",
        lambda: stop_value(pre_ids=i64(B + 1, 10))),
    "ss-seqs-2d": (ValueError, "set_stop_value_multi_ends", "stop_seqs",
        lambda: stop_value(stop_seqs=i64(B, 5))),
    "ss-seqs_len-shape": (ValueError, "set_stop_value_multi_ends", "stop_seqs_len",
        lambda: stop_value(stop_seqs_len=i32(B, 4))),
    "ss-stop_tokens_len-int64": (TypeError, "set_stop_value_multi_ends", "stop_token_ids_len",
        lambda: stop_value(stop_token_ids_len=i64(B))),
    "ss-max-batch": (ValueError, "set_stop_value_multi_ends", "max_tokens",
        lambda: stop_value(max_tokens=i64(B - 1, 1))),
    "ss-cpu": (ValueError, "set_stop_value_multi_ends", "topk_ids", lambda: stop_value()),
}


@pytest.mark.usefixtures("sm70")
@pytest.mark.parametrize("name", CASES)
def test_preprocess_rejects_through_the_sm70_module(name: str, rejects: Callable[..., str]) -> None:
    message = rejects(*CASES[name])
    assert ("CUDA" in message) == name.endswith("-cpu"), message
