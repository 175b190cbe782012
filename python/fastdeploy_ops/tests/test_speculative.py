"""speculate_verify and speculate_update on the GPU against ``fastdeploy_ops.reference``.

Both ops are integer bookkeeping (plus, for top-p draws, fp32 sums done in the same order on
both sides and a hash RNG that the reference reproduces), so every output is compared
exactly, including the entries the op must leave alone. Inputs are realistic serving states:
packed per-token rows with FastDeploy's ``output_cum_offsets`` layout, drafts that agree with
the target most of the time, stop tokens, length limits, block-step / stopped / prefill rows.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import reference as ref
from fastdeploy_ops import speculative
from fastdeploy_ops.testing import TensorLib, requires_op

pytestmark = requires_op("speculate_verify")

VERIFY_ORDER = (
    "sampled_token_ids", "accept_tokens", "accept_num", "step_idx", "stop_flags",
    "seq_lens_encoder", "seq_lens_decoder", "draft_tokens", "seq_lens_this_time",
    "verify_tokens", "verify_scores", "max_dec_len", "end_tokens", "is_block_step",
    "output_cum_offsets", "actual_candidate_len", "actual_draft_token_nums", "topp",
)
VERIFY_OUT = ("accept_tokens", "accept_num", "step_idx", "stop_flags")
UPDATE_ORDER = (
    "seq_lens_encoder", "seq_lens_decoder", "not_need_stop", "draft_tokens",
    "actual_draft_token_nums", "accept_tokens", "accept_num", "stop_flags",
    "seq_lens_this_time", "is_block_step", "stop_nums",
)
UPDATE_OUT = UPDATE_ORDER[:5]


def rng_for(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


@dataclass(frozen=True)
class VerifyShape:
    real_bs: int
    draft: int  # D: columns of draft_tokens / accept_tokens
    max_seq_len: int
    candidates: int  # C
    window: int
    end_length: int
    vocab: int = 32000
    bs: int | None = None  # rows of the per-row tensors, default real_bs
    agree: float = 0.7  # P(draft = the target's top-1)
    top2: float = 0.1  # P(draft = the target's second candidate)
    upstream_like: bool = False  # FastDeploy's generator: random tokens, long rows


# FastDeploy's five published configurations (tests/operators/test_speculate_verify.py), whose
# random rows are mostly rejected at once and are longer than D, plus serving-sized batches.
VERIFY_SHAPES = {
    "fd-1": VerifyShape(1, 9, 11, 4, 2, 5, vocab=1000, upstream_like=True),
    "fd-2": VerifyShape(33, 5, 10111, 5, 2, 6, vocab=1000, upstream_like=True),
    "fd-3": VerifyShape(6, 4, 10001, 6, 2, 7, vocab=1000, upstream_like=True),
    "fd-4": VerifyShape(7, 3, 777, 7, 2, 5, vocab=1000, upstream_like=True),
    "fd-5": VerifyShape(55, 5, 31, 9, 2, 3, vocab=1000, upstream_like=True),
    "bs1-mtp1": VerifyShape(1, 2, 4096, 5, 2, 2),
    "bs64-d6": VerifyShape(64, 6, 8192, 5, 2, 2, vocab=152064),
    "bs256-d4-c1": VerifyShape(256, 4, 8192, 1, 2, 1),
    "bs200-of-256-d8": VerifyShape(200, 8, 2048, 8, 3, 4, bs=256, vocab=152064),
    "bs512-d16-window": VerifyShape(512, 16, 1024, 5, 2, 2, agree=0.6, top2=0.3),
    "bs512-d16-c20": VerifyShape(512, 16, 4096, 20, 1, 3, vocab=152064),
}


def verify_inputs(shape: VerifyShape, *key: object, column: bool = False) -> dict[str, Any]:
    """Host arrays for speculate_verify (per-row tensors as [bs, 1] when ``column``)."""
    rng = rng_for(shape, *key)
    s = shape
    bs = s.bs or s.real_bs
    d, c = s.draft, s.candidates
    ends = rng.choice(s.vocab, size=s.end_length, replace=False).astype(np.int64)
    encoder = np.where(rng.random(s.real_bs) < 0.15, rng.integers(1, 64, s.real_bs), 0)
    if s.upstream_like:
        this_time = rng.integers(1, s.max_seq_len + 1, s.real_bs)
        encoder = rng.integers(0, 3, s.real_bs)
    else:
        # Decode rows verify 1 + drafts tokens; prefill rows hold their prompt (longer than D).
        this_time = np.where(encoder > 0, rng.integers(1, 3 * d + 1, s.real_bs),
                             rng.integers(1, d + 1, s.real_bs))
        this_time = np.minimum(this_time, s.max_seq_len)
    total = int(this_time.sum())
    starts = np.concatenate([[0], np.cumsum(this_time)[:-1]]).astype(np.int64)
    offsets = np.zeros(bs, np.int64)
    offsets[: s.real_bs] = np.arange(s.real_bs) * s.max_seq_len - starts

    verify = rng.integers(0, s.vocab, (total, c)).astype(np.int64)
    if not s.upstream_like:
        # Now and then the target's top-1 is a stop token.
        hit = rng.random(total) < 0.03
        verify[hit, 0] = rng.choice(ends, size=int(hit.sum()))
    scores = rng.random((total, c)).astype(np.float32)
    scores = -np.sort(-scores / scores.sum(axis=1, keepdims=True), axis=1).astype(np.float32)
    candidate_len = rng.integers(1, c + 1, total)
    sampled = np.where(rng.random(total) < 0.8, verify[:, 0], rng.integers(0, s.vocab, total))

    draft = rng.integers(0, s.vocab, (bs, d)).astype(np.int64)
    if not s.upstream_like:
        for b in range(s.real_bs):
            for i in range(min(int(this_time[b]), d) - 1):
                row = verify[starts[b] + i]
                u = rng.random()
                if u < s.agree:
                    draft[b, i + 1] = row[0]
                elif u < s.agree + s.top2 and c >= 2:
                    draft[b, i + 1] = row[1]
                elif u < s.agree + s.top2 + 0.1:
                    draft[b, i + 1] = row[rng.integers(0, c)]
    step = rng.integers(0, 1000, bs)
    per_row = (bs, 1) if column else (bs,)
    arrays = {
        "sampled_token_ids": sampled.astype(np.int64),
        "accept_tokens": rng.integers(-9, 0, (bs, d)).astype(np.int64),  # stale values
        "accept_num": rng.integers(-9, 0, per_row).astype(np.int32),
        "step_idx": step.reshape(per_row).astype(np.int64),
        "stop_flags": (rng.random(per_row) < 0.1),
        "seq_lens_encoder": np.resize(encoder, bs).reshape(per_row).astype(np.int32),
        "seq_lens_decoder": rng.integers(0, 4096, per_row).astype(np.int32),
        "draft_tokens": draft,
        "seq_lens_this_time": this_time.reshape((s.real_bs, 1) if column else (s.real_bs,))
                              .astype(np.int32),
        "verify_tokens": verify,
        "verify_scores": scores,
        "max_dec_len": (step + rng.integers(1, 3 * d + 2, bs)).reshape(per_row).astype(np.int64),
        "end_tokens": ends.reshape((-1, 1) if column else (-1,)),
        "is_block_step": (rng.random(per_row) < 0.1),
        "output_cum_offsets": offsets.reshape(per_row).astype(np.int32),
        "actual_candidate_len": candidate_len.astype(np.int32),
        "actual_draft_token_nums": rng.integers(1, d + 1, per_row).astype(np.int32),
        "topp": rng.uniform(0.5, 1.0, per_row).astype(np.float32),
    }
    if s.upstream_like:
        arrays["stop_flags"][:] = False
        arrays["max_dec_len"][:] = rng.integers(16, 64, per_row)
        arrays["step_idx"][:] = 0
    return {"arrays": arrays, "max_seq_len": s.max_seq_len, "verify_window": s.window}


@dataclass
class VerifyRun:
    arrays: dict[str, np.ndarray]
    max_seq_len: int
    verify_window: int
    flags: dict[str, bool] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def scalars(self) -> tuple:
        f = {"enable_topp": False, "benchmark_mode": False, "accept_all_drafts": False,
             **self.flags}
        return (self.max_seq_len, self.verify_window, f["enable_topp"], f["benchmark_mode"],
                f["accept_all_drafts"])

    def on_gpu(self, lib: TensorLib) -> dict[str, np.ndarray]:
        device = {name: lib.to_device(self.arrays[name]) for name in VERIFY_ORDER}
        speculative.speculate_verify(*(device[n] for n in VERIFY_ORDER), *self.scalars(),
                                     **self.options)
        return {name: lib.from_device(device[name]) for name in VERIFY_OUT}

    def expected(self) -> dict[str, np.ndarray]:
        out = ref.speculate_verify(*(self.arrays[n] for n in VERIFY_ORDER), *self.scalars(),
                                   **self.options)
        return dict(zip(VERIFY_OUT, out, strict=True))


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for name, value in want.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        mismatch = np.argwhere(got[name] != value)
        assert mismatch.size == 0, (name, mismatch[:5].tolist(), got[name][tuple(mismatch[0])],
                                    value[tuple(mismatch[0])])


MODES = {
    "candidates": ({}, {}),
    "candidates-topp": ({"enable_topp": True}, {"seed": 1234}),
    "top1": ({}, {"mode": "top1"}),
    "top1-topp": ({"enable_topp": True}, {"mode": "top1", "seed": 2**64 - 1}),
    "target_sampling": ({}, {"mode": "target_sampling"}),
    "accept_all": ({"accept_all_drafts": True}, {}),
    "benchmark": ({"benchmark_mode": True}, {}),
    "prefill_stop": ({}, {"prefill_one_step_stop": True}),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", VERIFY_SHAPES)
def test_speculate_verify_matches_reference(tensor_lib: TensorLib, name: str, mode: str) -> None:
    flags, options = MODES[mode]
    run = VerifyRun(**verify_inputs(VERIFY_SHAPES[name], mode), flags=flags, options=options)
    want = run.expected()
    assert_same(run.on_gpu(tensor_lib), want)
    if not VERIFY_SHAPES[name].upstream_like and mode == "candidates" and \
            VERIFY_SHAPES[name].real_bs >= 64:
        assert (want["accept_num"] >= 3).any(), "the data should accept several drafts"


@pytest.mark.parametrize("name", ["fd-2", "bs200-of-256-d8", "bs512-d16-window"])
def test_speculate_verify_column_tensors(tensor_lib: TensorLib, name: str) -> None:
    """FastDeploy's buffers are [bs, 1]: same results as [bs]."""
    run = VerifyRun(**verify_inputs(VERIFY_SHAPES[name], "column", column=True))
    assert_same(run.on_gpu(tensor_lib), run.expected())


def test_speculate_verify_window_fires_and_stops_inside(tensor_lib: TensorLib) -> None:
    """One row where the top-2 window accepts 3 drafts, one where a stop token sits inside the
    window (the literal rule: accept_num and step_idx lose exactly one), one where the length
    limit is reached inside it."""
    d, c = 6, 3
    verify = np.array([[10, 90, 91], [20, 21, 92], [30, 93, 94], [40, 95, 96], [50, 97, 98],
                       [60, 99, 89]] * 3, dtype=np.int64)
    draft = np.array([[0, 10, 21, 30, 40, 50]] * 3, dtype=np.int64)
    draft[1, 3] = 7  # stop token inside the window ...
    verify[6 + 2, 0] = 7  # ... which is also the target's top-1 there
    arrays = {
        "sampled_token_ids": verify[:, 0].copy(),
        "accept_tokens": np.full((3, d), -1, np.int64),
        "accept_num": np.zeros(3, np.int32),
        "step_idx": np.array([0, 0, 0], np.int64),
        "stop_flags": np.zeros(3, bool),
        "seq_lens_encoder": np.zeros(3, np.int32),
        "seq_lens_decoder": np.zeros(3, np.int32),
        "draft_tokens": draft,
        "seq_lens_this_time": np.full(3, 6, np.int32),
        "verify_tokens": verify,
        "verify_scores": np.full((18, c), 1 / 3, np.float32),
        "max_dec_len": np.array([100, 100, 3], np.int64),
        "end_tokens": np.array([7], np.int64),
        "is_block_step": np.zeros(3, bool),
        "output_cum_offsets": np.array([0, 2, 4], np.int32),  # max_seq_len 8, rows of 6
        "actual_candidate_len": np.ones(18, np.int32),  # only top-1 counts as a candidate
        "actual_draft_token_nums": np.full(3, 5, np.int32),
        "topp": np.ones(3, np.float32),
    }
    run = VerifyRun(arrays, max_seq_len=8, verify_window=2)
    got = run.on_gpu(tensor_lib)
    assert_same(got, run.expected())
    # Row 0: 10 accepted; 21 is the second candidate and 30, 40 are top-1 -> a window of 3.
    # The walk ends after a window: the final token is the top-1 of position 4 (50).
    assert got["accept_tokens"][0].tolist() == [10, 21, 30, 40, 50, -1]
    assert got["accept_num"][0] == 5 and got["step_idx"][0] == 5 and not got["stop_flags"][0]
    # Row 1: the window takes 21 and stops at 7: 2 tokens after the first, but accept_num is
    # 1 + 1 + (2 + 1) - 1 = 4 and step_idx 1 + 3 - 1 = 3.
    assert got["accept_tokens"][1].tolist()[:3] == [10, 21, 7]
    assert got["accept_num"][1] == 4 and got["step_idx"][1] == 3 and got["stop_flags"][1]
    # Row 2: max_dec_len 3: the window starts at step 1 + 3 = 4 >= 3, so its first token is
    # replaced by end_tokens[0].
    assert got["accept_tokens"][2].tolist()[:2] == [10, 7]
    assert got["accept_num"][2] == 4 and got["step_idx"][2] == 3 and got["stop_flags"][2]


def test_speculate_verify_topp_is_seeded(tensor_lib: TensorLib) -> None:
    shape = VERIFY_SHAPES["bs512-d16-c20"]
    runs = [VerifyRun(**verify_inputs(shape, "seeded"), flags={"enable_topp": True},
                      options={"seed": seed}) for seed in (5, 5, 6)]
    first, again, other = (run.on_gpu(tensor_lib) for run in runs)
    assert_same(again, first)
    assert (first["accept_tokens"] != other["accept_tokens"]).any()
    assert_same(other, runs[2].expected())


def test_speculate_verify_bounds(tensor_lib: TensorLib) -> None:
    """Lengths and offsets read from the tensors that point outside them: rows are clamped or
    skipped on the device, and nothing around accept_tokens is written."""
    d = 4
    run = VerifyRun(**verify_inputs(VERIFY_SHAPES["bs64-d6"], "bounds"))
    a = run.arrays
    bs = len(a["accept_num"])
    a["stop_flags"][:] = False
    a["is_block_step"][:] = False
    a["seq_lens_encoder"][:] = 0
    a["accept_tokens"] = a["accept_tokens"][:, :d].copy()
    a["draft_tokens"] = a["draft_tokens"][:, :d].copy()
    a["seq_lens_this_time"][:8] = [100, 2**31 - 1, 0, -5, 5, 6, 1, 3]
    total = len(a["verify_tokens"])
    a["output_cum_offsets"][8] = 8 * run.max_seq_len + 1  # start = -1
    a["output_cum_offsets"][9] = 9 * run.max_seq_len - total  # start = total
    a["output_cum_offsets"][10] = 10 * run.max_seq_len - (total - 2)  # 2 positions left
    a["seq_lens_this_time"][10] = 4
    a["actual_candidate_len"][:5] = [0, -3, 1000, 2**31 - 1, -(2**31)]
    want = run.expected()

    guard = np.full((bs + 2, d), 777, np.int64)
    guard[1:-1] = a["accept_tokens"]
    device = {name: tensor_lib.to_device(a[name]) for name in VERIFY_ORDER}
    big = tensor_lib.to_device(guard)
    device["accept_tokens"] = big[1:-1]  # contiguous rows of a larger buffer
    speculative.speculate_verify(*(device[n] for n in VERIFY_ORDER), *run.scalars())
    got = {name: tensor_lib.from_device(device[name]) for name in VERIFY_OUT}
    assert_same(got, want)
    around = tensor_lib.from_device(big)
    assert (around[0] == 777).all() and (around[-1] == 777).all()
    # Rows whose start is outside the packed tensors are untouched.
    for b in (8, 9):
        assert got["accept_num"][b] == a["accept_num"][b]
        assert got["step_idx"][b] == a["step_idx"][b]
    assert want["accept_num"][0] >= 1


def test_speculate_verify_empty(tensor_lib: TensorLib) -> None:
    run = VerifyRun(**verify_inputs(VERIFY_SHAPES["bs64-d6"], "empty"))
    run.arrays["seq_lens_this_time"] = run.arrays["seq_lens_this_time"][:0]  # real_bs = 0
    got = run.on_gpu(tensor_lib)
    for name in VERIFY_OUT:
        np.testing.assert_array_equal(got[name], run.arrays[name])
    empty = VerifyRun(**verify_inputs(VerifyShape(1, 3, 16, 2, 2, 1), "bs0"))
    for name, value in empty.arrays.items():
        if name not in ("end_tokens", "verify_tokens", "verify_scores", "sampled_token_ids",
                        "actual_candidate_len"):
            empty.arrays[name] = value[:0]
    got = empty.on_gpu(tensor_lib)
    assert got["accept_tokens"].shape == (0, 3)


@dataclass(frozen=True)
class UpdateShape:
    max_bs: int
    real_bs: int
    draft: int


UPDATE_SHAPES = {
    "fd-512-201-d32": UpdateShape(512, 201, 32),  # FastDeploy's published configuration
    "bs1-d2": UpdateShape(1, 1, 2),
    "bs64-d6": UpdateShape(64, 64, 6),
    "bs256-200-d4": UpdateShape(256, 200, 4),
    "bs512-d1": UpdateShape(512, 512, 1),
    "bs33-0": UpdateShape(33, 0, 3),
}


def update_inputs(shape: UpdateShape, *key: object, column: bool = False) -> dict[str, np.ndarray]:
    rng = rng_for(shape, *key)
    bs, d = shape.max_bs, shape.draft
    per_row = (bs, 1) if column else (bs,)
    drafts = rng.integers(1, max(d, 2), per_row)
    # Mostly consistent counts (1 .. drafts + 1), with every-draft-accepted rows and a few
    # values that name no token of the row (0, D + 1, negative).
    accept = np.minimum(rng.integers(1, drafts + 2), d)
    accept = np.where(rng.random(per_row) < 0.3, np.minimum(drafts + 1, d), accept)
    bad = rng.random(per_row) < 0.05
    accept = np.where(bad, rng.choice([0, d + 1, -3], size=per_row), accept)
    return {
        "seq_lens_encoder": np.where(rng.random(per_row) < 0.2, rng.integers(1, 4096, per_row),
                                     0).astype(np.int32),
        "seq_lens_decoder": rng.integers(0, 8192, per_row).astype(np.int32),
        "not_need_stop": np.array([rng.random() < 0.5]),
        "draft_tokens": rng.integers(0, 152064, (bs, d)).astype(np.int64),
        "actual_draft_token_nums": drafts.astype(np.int32),
        "accept_tokens": rng.integers(0, 152064, (bs, d)).astype(np.int64),
        "accept_num": accept.astype(np.int32),
        "stop_flags": rng.random(per_row) < 0.3,
        "seq_lens_this_time": rng.integers(0, d + 2, (shape.real_bs, 1) if column
                                           else (shape.real_bs,)).astype(np.int32),
        "is_block_step": rng.random(per_row) < 0.1,
        "stop_nums": np.array([rng.integers(0, bs + 2)], np.int64),
    }


def run_update(lib: TensorLib, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    device = {name: lib.to_device(arrays[name]) for name in UPDATE_ORDER}
    speculative.speculate_update(*(device[n] for n in UPDATE_ORDER))
    return {name: lib.from_device(device[name]) for name in UPDATE_OUT}


def expected_update(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return dict(zip(UPDATE_OUT, ref.speculate_update(*(arrays[n] for n in UPDATE_ORDER)),
                    strict=True))


@pytest.mark.parametrize("column", [False, True], ids=["flat", "column"])
@pytest.mark.parametrize("name", UPDATE_SHAPES)
def test_speculate_update_matches_reference(tensor_lib: TensorLib, name: str,
                                            column: bool) -> None:
    arrays = update_inputs(UPDATE_SHAPES[name], column=column)
    assert_same(run_update(tensor_lib, arrays), expected_update(arrays))


@pytest.mark.parametrize("stop_nums", [0, 1, 100, 101, 512])
def test_speculate_update_global_stop(tensor_lib: TensorLib, stop_nums: int) -> None:
    """100 stopped active rows + 0 stopped block-step rows + 0 padding rows."""
    arrays = update_inputs(UpdateShape(200, 200, 4), "stop")
    arrays["stop_flags"][:] = np.arange(200) < 120
    arrays["is_block_step"][:] = (np.arange(200) >= 100) & (np.arange(200) < 150)
    arrays["stop_nums"][0] = stop_nums
    arrays["not_need_stop"][0] = stop_nums <= 100
    got = run_update(tensor_lib, arrays)
    assert bool(got["not_need_stop"][0]) == (100 < stop_nums)
    assert_same(got, expected_update(arrays))


def test_speculate_update_empty(tensor_lib: TensorLib) -> None:
    arrays = update_inputs(UpdateShape(0, 0, 4), "empty")
    got = run_update(tensor_lib, arrays)
    assert bool(got["not_need_stop"][0]) == bool(arrays["not_need_stop"][0])


def test_verify_then_update(tensor_lib: TensorLib) -> None:
    """One serving step: verify then update on the same device buffers, as the engine does."""
    shape = VERIFY_SHAPES["bs200-of-256-d8"]
    run = VerifyRun(**verify_inputs(shape, "step"))
    a = run.arrays
    verified = run.expected()
    bs = len(a["accept_num"])
    device = {name: tensor_lib.to_device(a[name]) for name in VERIFY_ORDER}
    speculative.speculate_verify(*(device[n] for n in VERIFY_ORDER), *run.scalars())
    update = {
        "seq_lens_encoder": a["seq_lens_encoder"], "seq_lens_decoder": a["seq_lens_decoder"],
        "not_need_stop": np.array([True]), "draft_tokens": a["draft_tokens"],
        "actual_draft_token_nums": a["actual_draft_token_nums"],
        "accept_tokens": verified["accept_tokens"], "accept_num": verified["accept_num"],
        "stop_flags": verified["stop_flags"], "seq_lens_this_time": a["seq_lens_this_time"],
        "is_block_step": a["is_block_step"], "stop_nums": np.array([bs], np.int64),
    }
    want = expected_update(update)
    dev_update = {name: device[name] if name in device else tensor_lib.to_device(update[name])
                  for name in UPDATE_ORDER}
    speculative.speculate_update(*(dev_update[n] for n in UPDATE_ORDER))
    assert_same({n: tensor_lib.from_device(dev_update[n]) for n in UPDATE_OUT}, want)


# Bad input: every case raises before any launch and names the op and the argument.
@dataclass(frozen=True)
class Case:
    error: type[Exception]
    arg: str
    change: Callable[[dict[str, Any], TensorLib], None]


def verify_arguments(lib: TensorLib) -> dict[str, Any]:
    run = VerifyRun(**verify_inputs(VerifyShape(4, 3, 16, 2, 2, 1), "bad"))
    args: dict[str, Any] = {n: lib.to_device(run.arrays[n]) for n in VERIFY_ORDER}
    args.update(max_seq_len=16, verify_window=2, enable_topp=False, benchmark_mode=False,
                accept_all_drafts=False)
    return args


def wrong_dtype(name: str, dtype: str) -> Callable[[dict[str, Any], TensorLib], None]:
    def change(args: dict[str, Any], lib: TensorLib) -> None:
        args[name] = lib.to_device(lib.from_device(args[name]).astype(dtype))
    return change


def reshaped(name: str, shape: Callable[[tuple[int, ...]], tuple[int, ...]]
             ) -> Callable[[dict[str, Any], TensorLib], None]:
    def change(args: dict[str, Any], lib: TensorLib) -> None:
        host = lib.from_device(args[name])
        new = shape(host.shape)
        args[name] = lib.to_device(np.resize(host, new).astype(host.dtype))
    return change


def strided(name: str) -> Callable[[dict[str, Any], TensorLib], None]:
    def change(args: dict[str, Any], lib: TensorLib) -> None:
        host = lib.from_device(args[name])
        doubled = np.repeat(host, 2, axis=0)
        args[name] = lib.to_device(doubled)[::2]
    return change


def on_cpu(name: str) -> Callable[[dict[str, Any], TensorLib], None]:
    def change(args: dict[str, Any], lib: TensorLib) -> None:
        args[name] = lib.from_device(args[name])
    return change


def setting(**values: Any) -> Callable[[dict[str, Any], TensorLib], None]:
    def change(args: dict[str, Any], lib: TensorLib) -> None:
        args.update(values)
    return change


VERIFY_CASES = {
    "accept_tokens-int32": Case(TypeError, "accept_tokens", wrong_dtype("accept_tokens", "int32")),
    "accept_num-int64": Case(TypeError, "accept_num", wrong_dtype("accept_num", "int64")),
    "step_idx-int32": Case(TypeError, "step_idx", wrong_dtype("step_idx", "int32")),
    "stop_flags-int32": Case(TypeError, "stop_flags", wrong_dtype("stop_flags", "int32")),
    "sampled-int32": Case(TypeError, "sampled_token_ids",
                          wrong_dtype("sampled_token_ids", "int32")),
    "verify_scores-fp16": Case(TypeError, "verify_scores", wrong_dtype("verify_scores", "float16")),
    "topp-fp64": Case(TypeError, "topp", wrong_dtype("topp", "float64")),
    "is_block_step-int32": Case(TypeError, "is_block_step", wrong_dtype("is_block_step", "int32")),
    "accept_tokens-1d": Case(ValueError, "accept_tokens",
                             reshaped("accept_tokens", lambda s: (s[0] * s[1],))),
    "accept_num-bs+1": Case(ValueError, "accept_num", reshaped("accept_num", lambda s: (s[0] + 1,))),
    "step_idx-bs-1": Case(ValueError, "step_idx", reshaped("step_idx", lambda s: (s[0] - 1,))),
    "stop_flags-bsx2": Case(ValueError, "stop_flags", reshaped("stop_flags", lambda s: (s[0], 2))),
    "draft-width": Case(ValueError, "draft_tokens",
                        reshaped("draft_tokens", lambda s: (s[0], s[1] + 1))),
    "this_time-over-bs": Case(ValueError, "seq_lens_this_time",
                              reshaped("seq_lens_this_time", lambda s: (s[0] + 1,))),
    "scores-shape": Case(ValueError, "verify_scores",
                         reshaped("verify_scores", lambda s: (s[0], s[1] + 1))),
    "sampled-total": Case(ValueError, "sampled_token_ids",
                          reshaped("sampled_token_ids", lambda s: (s[0] + 1,))),
    "candidate_len-total": Case(ValueError, "actual_candidate_len",
                                reshaped("actual_candidate_len", lambda s: (s[0] - 1,))),
    "end_tokens-empty": Case(ValueError, "end_tokens", reshaped("end_tokens", lambda s: (0,))),
    "verify-no-candidates": Case(ValueError, "verify_tokens",
                                 reshaped("verify_tokens", lambda s: (s[0], 0))),
    "accept_tokens-strided": Case(ValueError, "accept_tokens", strided("accept_tokens")),
    "step_idx-strided": Case(ValueError, "step_idx", strided("step_idx")),
    "stop_flags-cpu": Case(ValueError, "stop_flags", on_cpu("stop_flags")),
    "verify_tokens-cpu": Case(ValueError, "verify_tokens", on_cpu("verify_tokens")),
    "max_seq_len-0": Case(ValueError, "max_seq_len", setting(max_seq_len=0)),
    "max_seq_len-2^31": Case(ValueError, "max_seq_len", setting(max_seq_len=2**31)),
    "verify_window-neg": Case(ValueError, "verify_window", setting(verify_window=-1)),
    "mode": Case(ValueError, "mode", setting(mode="topk")),
    "seed-neg": Case(ValueError, "seed", setting(seed=-1)),
    "seed-2^64": Case(ValueError, "seed", setting(seed=2**64)),
    "seed-float": Case(TypeError, "seed", setting(seed=1.5)),
}


def test_speculate_verify_rejects_bs_over_512(tensor_lib: TensorLib) -> None:
    args = verify_arguments(tensor_lib)
    for name in ("accept_tokens", "draft_tokens"):
        host = tensor_lib.from_device(args[name])
        args[name] = tensor_lib.to_device(np.resize(host, (513, host.shape[1])))
    for name in ("accept_num", "step_idx", "stop_flags", "seq_lens_encoder", "seq_lens_decoder",
                 "max_dec_len", "is_block_step", "output_cum_offsets", "actual_draft_token_nums",
                 "topp"):
        host = tensor_lib.from_device(args[name])
        args[name] = tensor_lib.to_device(np.resize(host, (513,)).astype(host.dtype))
    with pytest.raises(ValueError, match=r"^speculate_verify: argument 'accept_tokens' .*512"):
        speculative.speculate_verify(**args)


@pytest.mark.parametrize("name", VERIFY_CASES)
def test_speculate_verify_rejects(tensor_lib: TensorLib, name: str) -> None:
    case = VERIFY_CASES[name]
    args = verify_arguments(tensor_lib)
    case.change(args, tensor_lib)
    before = {n: tensor_lib.from_device(args[n]).copy() for n in VERIFY_OUT
              if not isinstance(args[n], np.ndarray)}
    with pytest.raises(case.error) as raised:
        speculative.speculate_verify(**args)
    assert str(raised.value).startswith(f"speculate_verify: argument '{case.arg}' "), raised.value
    for n, value in before.items():  # nothing was launched
        if tensor_lib.from_device(args[n]).shape == value.shape:
            np.testing.assert_array_equal(tensor_lib.from_device(args[n]), value)


def update_arguments(lib: TensorLib) -> dict[str, Any]:
    arrays = update_inputs(UpdateShape(6, 4, 3), "bad")
    return {n: lib.to_device(arrays[n]) for n in UPDATE_ORDER}


UPDATE_CASES = {
    "encoder-int64": Case(TypeError, "seq_lens_encoder", wrong_dtype("seq_lens_encoder", "int64")),
    "decoder-fp32": Case(TypeError, "seq_lens_decoder", wrong_dtype("seq_lens_decoder", "float32")),
    "not_need_stop-int32": Case(TypeError, "not_need_stop", wrong_dtype("not_need_stop", "int32")),
    "draft-int32": Case(TypeError, "draft_tokens", wrong_dtype("draft_tokens", "int32")),
    "drafts-int64": Case(TypeError, "actual_draft_token_nums",
                         wrong_dtype("actual_draft_token_nums", "int64")),
    "stop_flags-uint8": Case(TypeError, "stop_flags", wrong_dtype("stop_flags", "uint8")),
    "stop_nums-int32": Case(TypeError, "stop_nums", wrong_dtype("stop_nums", "int32")),
    "encoder-bs+1": Case(ValueError, "seq_lens_encoder",
                         reshaped("seq_lens_encoder", lambda s: (s[0] + 1,))),
    "accept_num-bs-1": Case(ValueError, "accept_num", reshaped("accept_num", lambda s: (s[0] - 1,))),
    "accept_tokens-width": Case(ValueError, "accept_tokens",
                                reshaped("accept_tokens", lambda s: (s[0], s[1] + 1))),
    "draft-rows": Case(ValueError, "draft_tokens",
                       reshaped("draft_tokens", lambda s: (s[0] + 1, s[1]))),
    "draft-no-columns": Case(ValueError, "draft_tokens",
                             reshaped("draft_tokens", lambda s: (s[0], 0))),
    "this_time-over-bs": Case(ValueError, "seq_lens_this_time",
                              reshaped("seq_lens_this_time", lambda s: (7,))),
    "not_need_stop-two": Case(ValueError, "not_need_stop", reshaped("not_need_stop", lambda s: (2,))),
    "stop_nums-empty": Case(ValueError, "stop_nums", reshaped("stop_nums", lambda s: (0,))),
    "decoder-strided": Case(ValueError, "seq_lens_decoder", strided("seq_lens_decoder")),
    "not_need_stop-cpu": Case(ValueError, "not_need_stop", on_cpu("not_need_stop")),
    "is_block_step-cpu": Case(ValueError, "is_block_step", on_cpu("is_block_step")),
}


@pytest.mark.parametrize("name", UPDATE_CASES)
def test_speculate_update_rejects(tensor_lib: TensorLib, name: str) -> None:
    case = UPDATE_CASES[name]
    args = update_arguments(tensor_lib)
    case.change(args, tensor_lib)
    with pytest.raises(case.error) as raised:
        speculative.speculate_update(**args)
    assert str(raised.value).startswith(f"speculate_update: argument '{case.arg}' "), raised.value


def test_speculate_update_rejects_bs_over_512(tensor_lib: TensorLib) -> None:
    arrays = update_inputs(UpdateShape(513, 4, 3), "big")
    args = {n: tensor_lib.to_device(arrays[n]) for n in UPDATE_ORDER}
    with pytest.raises(ValueError, match=r"^speculate_update: argument 'stop_flags' .*512"):
        speculative.speculate_update(**args)


def test_in_place_tensors_are_never_converted(tensor_lib: TensorLib) -> None:
    args = verify_arguments(tensor_lib)
    args["accept_num"] = tensor_lib.to_device(np.full(4, 5, np.int64))
    with pytest.raises(TypeError, match="speculate_verify: argument 'accept_num'"):
        speculative.speculate_verify(**args)
    assert (tensor_lib.from_device(args["accept_num"]) == 5).all()
