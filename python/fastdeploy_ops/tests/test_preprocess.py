"""preprocess ops on the GPU against ``fastdeploy_ops.reference.preprocess``.

Tolerances: none. Every output of this family is either integer bookkeeping or a bit-exact copy
of input rows (``rebuild_padding`` moves rows as raw bytes, and bfloat16 values are widened
exactly when read back), so all comparisons are exact equality, including the zero rows and the
values the kernels produce for out-of-range lengths, offsets and step indices (the reference
models those rules). Writes outside an output are caught with sentinels: outputs are given as
views of larger buffers whose extra elements must stay untouched.

Shapes follow serving: batches of 1 to 3000 rows (the 1024+ ones take get_padding_offset's
two-kernel path), prompts up to 32k tokens, hidden sizes 2048 to 8192 in every dtype.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import preprocess
from fastdeploy_ops import reference as ref
from fastdeploy_ops.testing import TensorLib, requires_op

pytestmark = requires_op("get_padding_offset")

SENTINEL = 0x5EED


def rng_for(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def host(lib: TensorLib, *tensors: Any) -> list[np.ndarray]:
    return [lib.from_device(t) for t in tensors]


def padded(lib: TensorLib, shape: tuple[int, ...], dtype: str, extra: int = 8,
           fill: float = SENTINEL) -> tuple[Any, Any]:
    """``(buffer, view)``: a view of ``shape`` over the start of a buffer with ``extra`` more
    leading rows (or elements), everything set to ``fill``."""
    buffer = lib.to_device(np.full((shape[0] + extra, *shape[1:]), fill), dtype)
    return buffer, buffer[: shape[0]]


# ----------------------------------------------------------------------------------------------
# get_padding_offset


def padding_inputs(batch: int, max_len: int, kind: str, *key: object) -> tuple[np.ndarray, ...]:
    rng = rng_for("padding", batch, max_len, kind, *key)
    ids = rng.integers(0, 152064, (batch, max_len), dtype=np.int64)
    if kind == "full":
        lens = np.full(batch, max_len)
    elif kind == "decode":
        lens = np.ones(batch)
    elif kind == "mixed":  # decode rows, a few prefill rows and idle rows
        lens = rng.choice([0, 1, 1, 1, 1, max_len // 2, max_len], batch)
    else:
        lens = rng.integers(0, max_len + 1, batch)
    return ids, lens.astype(np.int32)


PADDING_CASES = [
    (1, 32768, "full"),  # one long prompt: up to 1024 blocks share the row
    (3, 10, "random"),
    (7, 100, "random"),
    (64, 2048, "random"),
    (256, 1, "decode"),
    (256, 4096, "mixed"),
    (1024, 64, "random"),  # the largest fused batch
    (1500, 64, "random"),  # cumulative lengths in a separate scan kernel
    (3000, 1, "decode"),
]


@pytest.mark.parametrize("column", [False, True], ids=["seq_len[bs]", "seq_len[bs,1]"])
@pytest.mark.parametrize(("batch", "max_len", "kind"), PADDING_CASES)
def test_get_padding_offset_matches_reference(tensor_lib: TensorLib, batch: int, max_len: int,
                                              kind: str, column: bool) -> None:
    ids, lens = padding_inputs(batch, max_len, kind)
    seq_len = lens.reshape(-1, 1) if column else lens
    token_num = int(lens.sum())
    got = preprocess.get_padding_offset(tensor_lib.to_device(ids), token_num,
                                        tensor_lib.to_device(seq_len))
    want = ref.get_padding_offset(ids, token_num, seq_len)
    for g, w in zip(host(tensor_lib, *got), want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


def test_get_padding_offset_fastdeploy_case(tensor_lib: TensorLib) -> None:
    ids = np.array([[8, 7, 8, 2, 0, 0, 0, 0, 0, 0], [4, 5, 5, 0, 0, 0, 0, 0, 0, 0],
                    [7, 6, 1, 7, 2, 6, 0, 0, 0, 0]], dtype=np.int64)
    seq_len = np.array([[4], [3], [6]], dtype=np.int32)
    x, batch_ids, cu_q, cu_k = host(tensor_lib, *preprocess.get_padding_offset(
        tensor_lib.to_device(ids), 13, tensor_lib.to_device(seq_len)))
    assert x.tolist() == [8, 7, 8, 2, 4, 5, 5, 7, 6, 1, 7, 2, 6]
    assert batch_ids.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2]
    assert cu_q.tolist() == cu_k.tolist() == [0, 4, 7, 13]


def test_get_padding_offset_empty_batch_and_no_tokens(tensor_lib: TensorLib) -> None:
    out = preprocess.get_padding_offset(tensor_lib.to_device(np.zeros((0, 16), np.int64)), 0,
                                        tensor_lib.to_device(np.zeros(0, np.int32)))
    x, batch_ids, cu_q, cu_k = host(tensor_lib, *out)
    assert x.shape == batch_ids.shape == (0,)
    assert cu_q.tolist() == cu_k.tolist() == [0]
    out = preprocess.get_padding_offset(tensor_lib.to_device(np.ones((5, 16), np.int64)), 0,
                                        tensor_lib.to_device(np.zeros(5, np.int32)))
    x, _, cu_q, cu_k = host(tensor_lib, *out)
    assert x.shape == (0,) and cu_q.tolist() == cu_k.tolist() == [0] * 6


@pytest.mark.parametrize("batch", [5, 300, 1500])
@pytest.mark.parametrize("mismatch", ["fewer_tokens", "more_tokens", "bad_lengths"])
def test_get_padding_offset_never_writes_past_token_num(tensor_lib: TensorLib, batch: int,
                                                        mismatch: str) -> None:
    """Lengths the host cannot check: clamped, bounded by token_num, tail defined."""
    max_len = 40
    ids, lens = padding_inputs(batch, max_len, "random", mismatch)
    total = int(lens.sum())
    if mismatch == "fewer_tokens":
        token_num = total // 2
    elif mismatch == "more_tokens":
        token_num = min(total + 37, batch * max_len)
    else:  # negative and over-long lengths
        lens[::3] = -7
        lens[1::3] = max_len + 1000
        token_num = int(np.clip(lens, 0, max_len).sum()) - 3
    bufs, views = zip(padded(tensor_lib, (token_num,), "int64"),
                      padded(tensor_lib, (token_num,), "int32"),
                      padded(tensor_lib, (batch + 1,), "int32"),
                      padded(tensor_lib, (batch + 1,), "int32"), strict=True)
    returned = preprocess.get_padding_offset(tensor_lib.to_device(ids), token_num,
                                             tensor_lib.to_device(lens), out=views)
    assert all(a is b for a, b in zip(returned, views, strict=True))
    want = ref.get_padding_offset(ids, token_num, lens)
    for buffer, w in zip(host(tensor_lib, *bufs), want, strict=True):
        np.testing.assert_array_equal(buffer[: len(w)], w)
        assert (buffer[len(w):] == SENTINEL).all(), "write past the end of an output"


# ----------------------------------------------------------------------------------------------
# rebuild_padding


def serving_batch(batch: int, max_prompt: int, *key: object, speculative: bool = False
                  ) -> dict[str, np.ndarray]:
    """A batch of prefill, decode, idle and stopped rows, with FastDeploy's length tensors.

    Prefill rows: ``enc = this_time = n`` prompt tokens. Decode rows: ``enc = 0``, ``dec > 0``,
    one token (``1 + drafts`` with ``speculative``). Idle rows: all zero. Stopped rows: no
    tokens this time but ``dec > 0``.
    """
    rng = rng_for("batch", batch, max_prompt, speculative, *key)
    kind = rng.choice(["prefill", "decode", "decode", "idle", "stopped"], batch)
    this_time = np.zeros(batch, np.int32)
    enc = np.zeros(batch, np.int32)
    dec = np.zeros(batch, np.int32)
    prefill = kind == "prefill"
    enc[prefill] = this_time[prefill] = rng.integers(1, max_prompt + 1, prefill.sum())
    decode = kind == "decode"
    dec[decode] = rng.integers(1, 4096, decode.sum())
    this_time[decode] = rng.integers(1, 5, decode.sum()) if speculative else 1
    dec[kind == "stopped"] = rng.integers(1, 4096, (kind == "stopped").sum())
    cu = np.concatenate([[0], np.cumsum(this_time)]).astype(np.int32)
    return {"cu": cu, "this_time": this_time, "dec": dec, "enc": enc, "kind": kind}


def output_offsets(layout: dict[str, np.ndarray], max_input_length: int) -> np.ndarray:
    """FastDeploy's speculative output layout: every token of a decode row is an output, a
    prefill row outputs one token; output t of row b at position i sits at padded position
    ``b * max_input_length + i``, and the offset is that position minus t."""
    positions = []
    for b, kind in enumerate(layout["kind"]):
        outputs = 1 if kind == "prefill" else (layout["this_time"][b] if kind == "decode" else 0)
        positions.extend(b * max_input_length + i for i in range(outputs))
    return (np.asarray(positions, np.int64) - np.arange(len(positions))).astype(np.int32)


DTYPES = ["float32", "float16", "bfloat16"]
REBUILD_SHAPES = [(1, 4096), (33, 2048), (256, 8192)]


def hidden_on_device(lib: TensorLib, rows: int, dim: int, dtype: str, *key: object
                     ) -> tuple[Any, np.ndarray]:
    """Hidden states on the device and their exact values (bf16 widened to fp32)."""
    lib.require(dtype)
    values = rng_for("hidden", rows, dim, dtype, *key).standard_normal((rows, dim), np.float32)
    device = lib.to_device(values, dtype)
    return device, lib.from_device(device)


def length_tensors(lib: TensorLib, layout: dict[str, np.ndarray]) -> list[Any]:
    return [lib.to_device(layout[k]) for k in ("cu", "this_time", "dec", "enc")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("batch", "dim"), REBUILD_SHAPES)
def test_rebuild_padding_plain_matches_reference(tensor_lib: TensorLib, batch: int, dim: int,
                                                 dtype: str) -> None:
    layout = serving_batch(batch, 16, dim)
    token_num = int(layout["cu"][-1]) + 5  # FastDeploy's test also has unused trailing rows
    tmp, tmp_np = hidden_on_device(tensor_lib, token_num, dim, dtype, batch)
    got = preprocess.rebuild_padding(tmp, *length_tensors(tensor_lib, layout), None, None, 0,
                                     False)
    want, _ = ref.rebuild_padding(tmp_np, layout["cu"], layout["this_time"], layout["dec"],
                                  layout["enc"])
    assert str(got.dtype).endswith(dtype) and tuple(got.shape) == (batch, dim)
    np.testing.assert_array_equal(tensor_lib.from_device(got), want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("batch", "dim"), REBUILD_SHAPES)
def test_rebuild_padding_speculative_matches_reference(tensor_lib: TensorLib, batch: int,
                                                       dim: int, dtype: str) -> None:
    max_input_length = 64
    layout = serving_batch(batch, 16, dim, speculative=True)
    offsets = output_offsets(layout, max_input_length)
    token_num = int(layout["cu"][-1])
    tmp, tmp_np = hidden_on_device(tensor_lib, token_num, dim, dtype, batch, "spec")
    first, first_np = hidden_on_device(tensor_lib, batch, dim, dtype, batch, "first")
    got = preprocess.rebuild_padding(tmp, *length_tensors(tensor_lib, layout),
                                     tensor_lib.to_device(offsets), first, max_input_length, True)
    want, want_first = ref.rebuild_padding(tmp_np, layout["cu"], layout["this_time"],
                                           layout["dec"], layout["enc"], offsets, first_np,
                                           max_input_length, True)
    assert tuple(got.shape) == (len(offsets), dim)
    np.testing.assert_array_equal(tensor_lib.from_device(got), want)
    np.testing.assert_array_equal(tensor_lib.from_device(first), want_first)
    prefill = layout["kind"] == "prefill"
    if ((layout["cu"][:-1] + layout["enc"] - 1)[prefill] >= 1).any():  # first token written
        assert not np.array_equal(want_first, first_np)


@pytest.mark.parametrize(("dtype", "dim"), [("float16", 100), ("float32", 3), ("bfloat16", 1),
                                            ("bfloat16", 7), ("float32", 6)])
def test_rebuild_padding_narrow_rows(tensor_lib: TensorLib, dtype: str, dim: int) -> None:
    """Rows that are not a multiple of 16 bytes take 8-, 4- or 2-byte accesses."""
    layout = serving_batch(9, 5, dtype, dim)
    token_num = int(layout["cu"][-1])
    tmp, tmp_np = hidden_on_device(tensor_lib, token_num, dim, dtype, "narrow")
    got = preprocess.rebuild_padding(tmp, *length_tensors(tensor_lib, layout))
    want, _ = ref.rebuild_padding(tmp_np, layout["cu"], layout["this_time"], layout["dec"],
                                  layout["enc"])
    np.testing.assert_array_equal(tensor_lib.from_device(got), want)


def test_rebuild_padding_fastdeploy_cases(tensor_lib: TensorLib) -> None:
    cu = np.array([0, 1, 21, 22, 42, 43, 63, 64, 84], np.int32)
    this_time = np.array([1, 20] * 4, np.int32)
    enc = np.array([0, 20] * 4, np.int32)
    dec = np.array([21, 0] * 4, np.int32)
    tmp_np = rng_for("fastdeploy").standard_normal((100, 256)).astype(np.float32)
    lengths = [tensor_lib.to_device(a) for a in (cu, this_time, dec, enc)]
    tmp = tensor_lib.to_device(tmp_np)
    got = preprocess.rebuild_padding(tmp, *lengths, None, None, 512, False)
    want = tmp_np[[0, 20, 21, 41, 42, 62, 63, 83]]  # decode rows: cu[b]; prefill: cu[b] + 19
    np.testing.assert_array_equal(tensor_lib.from_device(got), want)
    offsets = rng_for("fastdeploy-offsets").integers(0, 10, 80).astype(np.int32)
    got = preprocess.rebuild_padding(tmp, *lengths, tensor_lib.to_device(offsets), None, 512,
                                     False)
    np.testing.assert_array_equal(tensor_lib.from_device(got), tmp_np[np.arange(80) + offsets])


def test_rebuild_padding_out_of_range_offsets_give_zero_rows(tensor_lib: TensorLib) -> None:
    batch, dim, max_input_length = 6, 2048, 32
    layout = serving_batch(batch, 8, "bounds", speculative=True)
    layout["enc"][0], layout["this_time"][0], layout["dec"][0] = 1, 1, 0  # first token: row -1
    layout["cu"] = np.concatenate([[0], np.cumsum(layout["this_time"])]).astype(np.int32)
    token_num = int(layout["cu"][-1])
    # Padded positions: batch row 0 (a one-token prefill, whose first token would be row -1),
    # before position 0, the row after the last, far past the batch, row 0 again with a source
    # that may lie past token_num, and far before 0.
    positions = np.array([0, -1, batch * max_input_length, 2**30, 5, -2**30], np.int64)
    offsets = (positions - np.arange(len(positions))).astype(np.int32)
    tmp, tmp_np = hidden_on_device(tensor_lib, token_num, dim, "bfloat16", "bounds")
    first_buf, first = padded(tensor_lib, (batch, dim), "bfloat16", extra=2, fill=3.0)
    out_buf, out = padded(tensor_lib, (len(offsets), dim), "bfloat16", extra=2, fill=3.0)
    preprocess.rebuild_padding(tmp, *length_tensors(tensor_lib, layout),
                               tensor_lib.to_device(offsets), first, max_input_length, True,
                               out=out)
    want, want_first = ref.rebuild_padding(tmp_np, layout["cu"], layout["this_time"],
                                           layout["dec"], layout["enc"], offsets,
                                           np.full((batch, dim), 3.0, np.float32),
                                           max_input_length, True)
    out_np, first_np = host(tensor_lib, out_buf, first_buf)
    np.testing.assert_array_equal(out_np[: len(offsets)], want)
    np.testing.assert_array_equal(first_np[:batch], want_first)
    assert (out_np[len(offsets):] == 3.0).all() and (first_np[batch:] == 3.0).all()
    assert not want[[1, 2, 3, 5]].any()


def test_rebuild_padding_empty(tensor_lib: TensorLib) -> None:
    zero = tensor_lib.to_device(np.zeros(0, np.int32))
    got = preprocess.rebuild_padding(tensor_lib.to_device(np.zeros((0, 256), np.float32)),
                                     tensor_lib.to_device(np.zeros(1, np.int32)), zero, zero,
                                     zero)
    assert tuple(got.shape) == (0, 256)
    # No tokens at all but a batch of 4 idle rows: four zero rows (the kernel writes them).
    four = tensor_lib.to_device(np.zeros(4, np.int32))
    got = preprocess.rebuild_padding(tensor_lib.to_device(np.zeros((0, 256), np.float32)),
                                     tensor_lib.to_device(np.zeros(5, np.int32)), four, four, four)
    np.testing.assert_array_equal(tensor_lib.from_device(got), np.zeros((4, 256), np.float32))
    got = preprocess.rebuild_padding(tensor_lib.to_device(np.zeros((3, 256), np.float32)),
                                     tensor_lib.to_device(np.zeros(5, np.int32)), four, four, four,
                                     zero, None, 16, False)
    assert tuple(got.shape) == (0, 256)


# ----------------------------------------------------------------------------------------------
# set_value_by_flags_and_idx


def set_value_inputs(batch: int, length: int, input_length: int, *key: object,
                     bounds: bool = False) -> list[np.ndarray]:
    """FastDeploy's random case; with ``bounds``, also steps and encoder lengths out of range."""
    rng = rng_for("set_value", batch, length, input_length, bounds, *key)
    pre = rng.integers(0, 1000, (batch, length), dtype=np.int64)
    ids = rng.integers(0, 1000, (batch, input_length), dtype=np.int64)
    this_time = rng.integers(0, input_length, batch, dtype=np.int32)
    enc = rng.integers(0, input_length, batch, dtype=np.int32)
    dec = rng.integers(0, input_length, batch, dtype=np.int32)
    step = rng.integers(0, length, batch, dtype=np.int64)
    stop = rng.random(batch) < 0.1
    if bounds:
        step[::4] = length + rng.integers(0, 3, step[::4].shape)  # at or past the row end
        step[1::7] = -rng.integers(1, 5, step[1::7].shape)
        enc[2::5] = input_length + rng.integers(1, 9, enc[2::5].shape)
    return [pre, ids, this_time, enc, dec, step, stop]


@pytest.mark.parametrize("column", [False, True], ids=["[bs]", "[bs,1]"])
@pytest.mark.parametrize(("batch", "length", "input_length", "bounds"),
                         [(10, 10, 15, False), (256, 2048, 512, False), (1024, 8192, 64, True),
                          (3000, 128, 16, True)])
def test_set_value_by_flags_and_idx_matches_reference(tensor_lib: TensorLib, batch: int,
                                                      length: int, input_length: int,
                                                      bounds: bool, column: bool) -> None:
    inputs = set_value_inputs(batch, length, input_length, bounds=bounds)
    if column:
        inputs[2:] = [a.reshape(-1, 1) for a in inputs[2:]]
    pre_buf, pre = padded(tensor_lib, (batch, length), "int64", extra=1)
    pre[:] = tensor_lib.to_device(inputs[0])
    returned = preprocess.set_value_by_flags_and_idx(
        pre, *(tensor_lib.to_device(a) for a in inputs[1:]))
    assert returned is pre
    got = tensor_lib.from_device(pre_buf)
    np.testing.assert_array_equal(got[:batch], ref.set_value_by_flags_and_idx(*inputs))
    assert (got[batch:] == SENTINEL).all(), "write past the last row"


def test_set_value_by_flags_and_idx_empty_batch(tensor_lib: TensorLib) -> None:
    empty = [np.zeros((0, 4), np.int64), np.zeros((0, 4), np.int64), np.zeros(0, np.int32),
             np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64),
             np.zeros(0, bool)]
    pre = preprocess.set_value_by_flags_and_idx(*(tensor_lib.to_device(a) for a in empty))
    assert tuple(pre.shape) == (0, 4)


# ----------------------------------------------------------------------------------------------
# set_stop_value_multi_ends

STOP_KEYS = ("topk_ids", "stop_flags", "seq_lens", "end_ids", "next_tokens", "pre_ids",
             "step_idx", "stop_seqs", "stop_seqs_len", "stop_token_ids", "stop_token_ids_len",
             "min_tokens", "max_tokens")


def stop_inputs(batch: int, *key: object, num_end: int = 3, num_seqs: int = 5,
                seq_width: int = 8, num_stop_tokens: int = 10, length: int = 256
                ) -> dict[str, np.ndarray]:
    """A decode step where every rule fires on some rows: EOS, stop tokens, planted stop
    sequences (and near misses), min/max lengths, rows stopped earlier, empty rows."""
    rng = rng_for("stop", batch, num_end, num_seqs, seq_width, num_stop_tokens, length, *key)
    vocab = 64  # small, so sampled tokens hit end ids and stop tokens often
    step = rng.integers(0, length + 4, batch).astype(np.int64)  # a few past the history
    history = rng.integers(0, vocab, (batch, length), dtype=np.int64)
    seqs = rng.integers(0, vocab, (batch, num_seqs, seq_width), dtype=np.int64)
    seq_lens = rng.integers(-1, seq_width + 3, (batch, num_seqs)).astype(np.int32)
    for b in np.flatnonzero(rng.random(batch) < 0.3):  # plant a stop sequence at the tail
        s = rng.integers(num_seqs) if num_seqs else None
        n = min(int(seq_lens[b, s]), seq_width) if s is not None else 0
        if n > 0 and n <= step[b] <= length:
            history[b, step[b] - n: step[b]] = seqs[b, s, :n]
    return {
        "topk_ids": rng.integers(0, vocab, (batch, 1), dtype=np.int64),
        "stop_flags": (rng.random((batch, 1)) < 0.15),
        "seq_lens": rng.choice([0, 1, 1, 1], (batch, 1)).astype(np.int32),
        "end_ids": rng.choice(vocab, num_end, replace=False).astype(np.int64),
        "next_tokens": rng.integers(0, vocab, (batch, 1), dtype=np.int64),
        "pre_ids": history,
        "step_idx": step.reshape(batch, 1),
        "stop_seqs": seqs,
        "stop_seqs_len": seq_lens,
        "stop_token_ids": rng.integers(0, vocab, (batch, num_stop_tokens), dtype=np.int64),
        "stop_token_ids_len": rng.integers(-1, num_stop_tokens + 3, batch).astype(np.int32),
        "min_tokens": rng.integers(0, 8, (batch, 1), dtype=np.int64),
        "max_tokens": rng.integers(length // 2, length + 8, (batch, 1), dtype=np.int64),
    }


def run_stop(lib: TensorLib, inputs: dict[str, np.ndarray], **flags: bool
             ) -> tuple[np.ndarray, ...]:
    device = {k: lib.to_device(v) for k, v in inputs.items()}
    returned = preprocess.set_stop_value_multi_ends(*(device[k] for k in STOP_KEYS), **flags)
    assert returned[0] is device["topk_ids"] and returned[2] is device["next_tokens"]
    return tuple(host(lib, *returned))


STOP_CASES = {
    "bs1": dict(batch=1),
    "bs256": dict(batch=256),
    "bs1500": dict(batch=1500),
    "many_seqs_and_ends": dict(batch=64, num_end=40, num_seqs=70, num_stop_tokens=50),
    "no_seqs_no_stop_tokens": dict(batch=64, num_seqs=0, num_stop_tokens=0, seq_width=0),
    "short_history": dict(batch=128, length=4),
}


@pytest.mark.parametrize("mode", ["default", "beam_search", "prefill_one_step_stop"])
@pytest.mark.parametrize("case", STOP_CASES)
def test_set_stop_value_multi_ends_matches_reference(tensor_lib: TensorLib, case: str,
                                                     mode: str) -> None:
    inputs = stop_inputs(**STOP_CASES[case])
    flags = {"beam_search": mode == "beam_search",
             "prefill_one_step_stop": mode == "prefill_one_step_stop"}
    got = run_stop(tensor_lib, inputs, **flags)
    want = ref.set_stop_value_multi_ends(*(inputs[k] for k in STOP_KEYS), **flags)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)
    if mode == "default" and case in ("bs256", "bs1500"):  # the data exercises the rules
        newly = want[1] & ~inputs["stop_flags"]
        assert newly.sum() >= 3 and (~want[1]).sum() >= 3


def fastdeploy_stop_inputs(tokens: list[int], steps: list[int], *,
                           stopped: list[bool] | None = None, seq_lens: list[int] | None = None,
                           length: int = 100, mins: list[int] | None = None,
                           maxs: list[int] | None = None) -> dict[str, np.ndarray]:
    bs = len(tokens)
    column = lambda v, d, t: np.array(v if v is not None else [d] * bs, t).reshape(bs, 1)
    return {
        "topk_ids": column(tokens, 0, np.int64), "stop_flags": column(stopped, False, bool),
        "seq_lens": column(seq_lens, 1, np.int32), "end_ids": np.array([2], np.int64),
        "next_tokens": column(tokens, 0, np.int64), "pre_ids": np.full((bs, length), -1, np.int64),
        "step_idx": column(steps, 0, np.int64), "stop_seqs": np.full((bs, 5, 8), -1, np.int64),
        "stop_seqs_len": np.zeros((bs, 5), np.int32),
        "stop_token_ids": np.full((bs, 10), -1, np.int64),
        "stop_token_ids_len": np.zeros(bs, np.int32), "min_tokens": column(mins, 0, np.int64),
        "max_tokens": column(maxs, 100, np.int64),
    }


def test_set_stop_value_multi_ends_fastdeploy_cases(tensor_lib: TensorLib) -> None:
    # Stop sequence [8038, 61502] ends the history at step 10; unused slots claim length 10.
    inputs = fastdeploy_stop_inputs([61502, 2], [10, 0], stopped=[False, True], seq_lens=[1, 0],
                                    length=32768)
    inputs["pre_ids"][0, :10] = [21, 22, 23, 24, 25, 26, 27, 28, 8038, 61502]
    inputs["stop_seqs"][0, 0, :2] = [8038, 61502]
    inputs["stop_seqs_len"][:] = 10
    inputs["stop_seqs_len"][0, 0] = 2
    topk, stop, _ = run_stop(tensor_lib, inputs)
    assert stop.ravel().tolist() == [True, True] and topk[0, 0] == 2
    # Stop token 999 -> token = next = 2.
    inputs = fastdeploy_stop_inputs([999, 2], [5, 3])
    inputs["stop_token_ids"][0, :3] = [999, 888, 777]
    inputs["stop_token_ids_len"][:] = [3, 0]
    topk, stop, nxt = run_stop(tensor_lib, inputs)
    assert stop[0, 0] and topk[0, 0] == 2 and nxt[0, 0] == 2
    # EOS below min_tokens runs on; step == max_tokens stops; a normal row runs on.
    inputs = fastdeploy_stop_inputs([2, 100, 200], [5, 50, 10], mins=[10, 0, 5],
                                    maxs=[100, 50, 100])
    topk, stop, _ = run_stop(tensor_lib, inputs)
    assert stop.ravel().tolist() == [False, True, False] and topk[1, 0] == 2


def test_set_stop_value_multi_ends_empty_batch(tensor_lib: TensorLib) -> None:
    inputs = stop_inputs(0)
    inputs["end_ids"] = np.array([2], np.int64)
    got = run_stop(tensor_lib, inputs)
    assert [g.shape for g in got] == [(0, 1)] * 3


# ----------------------------------------------------------------------------------------------
# Bad arguments: each raises before any launch, naming the op and the argument.


def dev(lib: TensorLib, shape: tuple[int, ...], dtype: str) -> Any:
    return lib.to_device(np.zeros(shape, dtype=dtype))


def strided(lib: TensorLib, shape: tuple[int, ...], dtype: str) -> Any:
    """A non-contiguous view of the given shape (every other row of a taller tensor)."""
    return dev(lib, (2 * shape[0], *shape[1:]), dtype)[::2]


B, L, D = 4, 16, 64


def call_padding(lib: TensorLib, **change: Any) -> Any:
    args = {"input_ids": dev(lib, (B, L), "int64"), "token_num": 6,
            "seq_len": dev(lib, (B,), "int32"), "out": None, **change}
    return preprocess.get_padding_offset(args["input_ids"], args["token_num"], args["seq_len"],
                                         out=args["out"])


def call_rebuild(lib: TensorLib, **change: Any) -> Any:
    args = {"tmp_out": dev(lib, (10, D), "float32"), "cu_seqlens_q": dev(lib, (B + 1,), "int32"),
            "seq_len_this_time": dev(lib, (B,), "int32"),
            "seq_lens_decoder": dev(lib, (B,), "int32"),
            "seq_lens_encoder": dev(lib, (B,), "int32"), "output_padding_offset": None,
            "first_token_out": None, "max_input_length": 16, "enable_logprob": False,
            "out": None, **change}
    out = args.pop("out")
    return preprocess.rebuild_padding(**args, out=out)


def call_set_value(lib: TensorLib, **change: Any) -> Any:
    args = {"pre_ids_all": dev(lib, (B, L), "int64"), "input_ids": dev(lib, (B, 8), "int64"),
            "seq_lens_this_time": dev(lib, (B,), "int32"),
            "seq_lens_encoder": dev(lib, (B,), "int32"),
            "seq_lens_decoder": dev(lib, (B,), "int32"), "step_idx": dev(lib, (B, 1), "int64"),
            "stop_flags": dev(lib, (B, 1), "bool"), **change}
    return preprocess.set_value_by_flags_and_idx(**args)


def call_stop(lib: TensorLib, **change: Any) -> Any:
    inputs = {k: lib.to_device(v) for k, v in fastdeploy_stop_inputs([0] * B, [0] * B).items()}
    inputs.update(change)
    return preprocess.set_stop_value_multi_ends(*(inputs[k] for k in STOP_KEYS))


BAD_CASES: dict[str, tuple[type[Exception], str, str, Any]] = {
    # get_padding_offset
    "gpo-input-int32": (TypeError, "get_padding_offset", "input_ids",
        lambda l: call_padding(l, input_ids=dev(l, (B, L), "int32"))),
    "gpo-input-noncontiguous": (ValueError, "get_padding_offset", "input_ids",
        lambda l: call_padding(l, input_ids=strided(l, (B, L), "int64"))),
    "gpo-input-cpu": (ValueError, "get_padding_offset", "input_ids",
        lambda l: call_padding(l, input_ids=np.zeros((B, L), np.int64))),
    "gpo-seq_len-int64": (TypeError, "get_padding_offset", "seq_len",
        lambda l: call_padding(l, seq_len=dev(l, (B,), "int64"))),
    "gpo-seq_len-batch": (ValueError, "get_padding_offset", "seq_len",
        lambda l: call_padding(l, seq_len=dev(l, (B - 1,), "int32"))),
    "gpo-seq_len-cpu": (ValueError, "get_padding_offset", "seq_len",
        lambda l: call_padding(l, seq_len=np.zeros(B, np.int32))),
    "gpo-seq_len-noncontiguous": (ValueError, "get_padding_offset", "seq_len",
        lambda l: call_padding(l, seq_len=strided(l, (B,), "int32"))),
    "gpo-token_num-negative": (ValueError, "get_padding_offset", "token_num",
        lambda l: call_padding(l, token_num=-1)),
    "gpo-token_num-over-capacity": (ValueError, "get_padding_offset", "token_num",
        lambda l: call_padding(l, token_num=B * L + 1)),
    "gpo-token_num-tensor": (TypeError, "get_padding_offset", "token_num",
        lambda l: call_padding(l, token_num=dev(l, (), "int64"))),
    "gpo-out-x-int32": (TypeError, "get_padding_offset", "x_remove_padding",
        lambda l: call_padding(l, out=(dev(l, (6,), "int32"), dev(l, (6,), "int32"),
                                       dev(l, (B + 1,), "int32"), dev(l, (B + 1,), "int32")))),
    "gpo-out-cu-shape": (ValueError, "get_padding_offset", "cu_seqlens_q",
        lambda l: call_padding(l, out=(dev(l, (6,), "int64"), dev(l, (6,), "int32"),
                                       dev(l, (B,), "int32"), dev(l, (B + 1,), "int32")))),
    # rebuild_padding
    "rp-tmp-fp64": (TypeError, "rebuild_padding", "tmp_out",
        lambda l: call_rebuild(l, tmp_out=dev(l, (10, D), "float64"))),
    "rp-tmp-noncontiguous": (ValueError, "rebuild_padding", "tmp_out",
        lambda l: call_rebuild(l, tmp_out=strided(l, (10, D), "float32"))),
    "rp-tmp-cpu": (ValueError, "rebuild_padding", "tmp_out",
        lambda l: call_rebuild(l, tmp_out=np.zeros((10, D), np.float32))),
    "rp-cu-int64": (TypeError, "rebuild_padding", "cu_seqlens_q",
        lambda l: call_rebuild(l, cu_seqlens_q=dev(l, (B + 1,), "int64"))),
    "rp-decoder-batch": (ValueError, "rebuild_padding", "seq_lens_decoder",
        lambda l: call_rebuild(l, seq_lens_decoder=dev(l, (B + 1,), "int32"))),
    "rp-encoder-cpu": (ValueError, "rebuild_padding", "seq_lens_encoder",
        lambda l: call_rebuild(l, seq_lens_encoder=np.zeros(B, np.int32))),
    "rp-offset-cpu": (ValueError, "rebuild_padding", "output_padding_offset",
        lambda l: call_rebuild(l, output_padding_offset=np.zeros(5, np.int32))),
    "rp-max_input_length-0": (ValueError, "rebuild_padding", "max_input_length",
        lambda l: call_rebuild(l, output_padding_offset=dev(l, (5,), "int32"),
                               max_input_length=0)),
    "rp-first-missing": (ValueError, "rebuild_padding", "first_token_out",
        lambda l: call_rebuild(l, output_padding_offset=dev(l, (5,), "int32"),
                               enable_logprob=True)),
    "rp-first-dtype": (TypeError, "rebuild_padding", "first_token_out",
        lambda l: call_rebuild(l, output_padding_offset=dev(l, (5,), "int32"),
                               enable_logprob=True, first_token_out=dev(l, (B, D), "float16"))),
    "rp-first-noncontiguous": (ValueError, "rebuild_padding", "first_token_out",
        lambda l: call_rebuild(l, output_padding_offset=dev(l, (5,), "int32"),
                               enable_logprob=True,
                               first_token_out=strided(l, (B, D), "float32"))),
    "rp-out-dtype": (TypeError, "rebuild_padding", "out",
        lambda l: call_rebuild(l, out=dev(l, (B, D), "float16"))),
    "rp-out-shape": (ValueError, "rebuild_padding", "out",
        lambda l: call_rebuild(l, out=dev(l, (B + 1, D), "float32"))),
    # set_value_by_flags_and_idx
    "sv-pre-int32": (TypeError, "set_value_by_flags_and_idx", "pre_ids_all",
        lambda l: call_set_value(l, pre_ids_all=dev(l, (B, L), "int32"))),
    "sv-pre-noncontiguous": (ValueError, "set_value_by_flags_and_idx", "pre_ids_all",
        lambda l: call_set_value(l, pre_ids_all=strided(l, (B, L), "int64"))),
    "sv-pre-cpu": (ValueError, "set_value_by_flags_and_idx", "pre_ids_all",
        lambda l: call_set_value(l, pre_ids_all=np.zeros((B, L), np.int64))),
    "sv-pre-batch": (ValueError, "set_value_by_flags_and_idx", "pre_ids_all",
        lambda l: call_set_value(l, pre_ids_all=dev(l, (B + 1, L), "int64"))),
    "sv-encoder-batch": (ValueError, "set_value_by_flags_and_idx", "seq_lens_encoder",
        lambda l: call_set_value(l, seq_lens_encoder=dev(l, (B, 2), "int32"))),
    "sv-step-int32": (TypeError, "set_value_by_flags_and_idx", "step_idx",
        lambda l: call_set_value(l, step_idx=dev(l, (B, 1), "int32"))),
    "sv-stop-int32": (TypeError, "set_value_by_flags_and_idx", "stop_flags",
        lambda l: call_set_value(l, stop_flags=dev(l, (B, 1), "int32"))),
    # set_stop_value_multi_ends
    "ss-topk-int32": (TypeError, "set_stop_value_multi_ends", "topk_ids",
        lambda l: call_stop(l, topk_ids=dev(l, (B, 1), "int32"))),
    "ss-topk-cpu": (ValueError, "set_stop_value_multi_ends", "topk_ids",
        lambda l: call_stop(l, topk_ids=np.zeros((B, 1), np.int64))),
    "ss-stop-int64": (TypeError, "set_stop_value_multi_ends", "stop_flags",
        lambda l: call_stop(l, stop_flags=dev(l, (B, 1), "int64"))),
    "ss-stop-noncontiguous": (ValueError, "set_stop_value_multi_ends", "stop_flags",
        lambda l: call_stop(l, stop_flags=strided(l, (B, 1), "bool"))),
    "ss-next-batch": (ValueError, "set_stop_value_multi_ends", "next_tokens",
        lambda l: call_stop(l, next_tokens=dev(l, (B + 1, 1), "int64"))),
    "ss-next-cpu": (ValueError, "set_stop_value_multi_ends", "next_tokens",
        lambda l: call_stop(l, next_tokens=np.zeros((B, 1), np.int64))),
    "ss-end-empty": (ValueError, "set_stop_value_multi_ends", "end_ids",
        lambda l: call_stop(l, end_ids=dev(l, (0,), "int64"))),
    "ss-seqs-len-shape": (ValueError, "set_stop_value_multi_ends", "stop_seqs_len",
        lambda l: call_stop(l, stop_seqs_len=dev(l, (B, 4), "int32"))),
    "ss-stop-token-ids-batch": (ValueError, "set_stop_value_multi_ends", "stop_token_ids",
        lambda l: call_stop(l, stop_token_ids=dev(l, (B - 1, 10), "int64"))),
    "ss-min-int32": (TypeError, "set_stop_value_multi_ends", "min_tokens",
        lambda l: call_stop(l, min_tokens=dev(l, (B, 1), "int32"))),
}


@pytest.mark.parametrize("name", BAD_CASES)
def test_preprocess_rejects(tensor_lib: TensorLib, name: str) -> None:
    error, op, arg, call = BAD_CASES[name]
    with pytest.raises(error) as raised:
        call(tensor_lib)
    message = str(raised.value)
    assert message.startswith(f"{op}: argument '{arg}' "), message


def test_in_place_tensors_are_never_converted(tensor_lib: TensorLib) -> None:
    pre = tensor_lib.to_device(np.arange(B * L, dtype=np.int32).reshape(B, L))
    step = tensor_lib.to_device(np.ones((B, 1), np.int64))
    with pytest.raises(TypeError, match="set_value_by_flags_and_idx.*pre_ids_all"):
        call_set_value(tensor_lib, pre_ids_all=pre, step_idx=step,
                       seq_lens_decoder=tensor_lib.to_device(np.ones(B, np.int32)))
    np.testing.assert_array_equal(tensor_lib.from_device(pre),
                                  np.arange(B * L, dtype=np.int32).reshape(B, L))
