"""penalty ops on the GPU against ``fastdeploy_ops.reference``, plus bad inputs.

Tolerances. The kernels and the references perform the same float32 operations in the same
order (each product, quotient and difference rounded on its own, no FMA contraction) and round
once to the logits' dtype, so the results are expected to be identical. The checks still allow
the project's standard margins: 1e-5 relative for float32, one ulp of the dtype for
float16/bfloat16 (infinities, from the float16 ban value, must match exactly). Which logits are
modified is bookkeeping: a token wrongly penalised or missed moves its logit by far more than
that (every test row has penalties of at least a few percent, or a ban value).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import penalty
from fastdeploy_ops import reference as ref
from fastdeploy_ops.reference.penalty import round_to_dtype
from fastdeploy_ops.testing import TensorLib, requires_op, ulp

pytestmark = requires_op("get_token_penalty_multi_scores")

DTYPES = ["float32", "bfloat16", "float16"]
F32 = np.float32


def rng_for(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def assert_logits_close(got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    assert got.shape == want.shape
    differ = got != want  # expected to be empty; the tolerance applies to what is left
    got, want = got[differ].astype(np.float64), want[differ].astype(np.float64)
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf])
    got, want = got[~inf], want[~inf]
    tolerance = 1e-5 * np.abs(want) if dtype == "float32" else ulp(want, dtype)
    error = np.abs(got - want)
    if error.size and not (error <= tolerance).all():
        worst = int(np.argmax(error - tolerance))
        raise AssertionError(f"{np.count_nonzero(error > tolerance)} logits differ; worst: "
                             f"got {got[worst]!r}, want {want[worst]!r}")


@dataclass(frozen=True)
class Shape:
    rows: int
    vocab: int
    max_model_len: int


# Vocabularies of Llama-2 (32000), ERNIE-4.5 (103424), Llama-3 (128256), Qwen2 (151936, 152064).
SHAPES = {
    "bs1-qwen2": Shape(1, 151936, 4096),
    "bs7-llama2": Shape(7, 32000, 513),
    "bs64-llama3": Shape(64, 128256, 1024),
    # The largest sliced batches on an H100 (below 1.5 x 132 SMs), five slices per row.
    "bs192-llama3": Shape(192, 128256, 2048),
    "bs256-qwen2": Shape(256, 152064, 256),
    # Rows of up to 8192 ids: in a batch this large (the kernel's fused form) rows of more than
    # 4096 ids count in the workspace, shorter ones in shared memory.
    "bs256-llama2-long": Shape(256, 32000, 8192),
}
LARGE_SHAPES = ("bs192-llama3", "bs256-qwen2", "bs256-llama2-long")


def multi_inputs(shape: Shape, seed: object) -> dict[str, np.ndarray]:
    """A fresh dict of the (cached, shared: do not modify the arrays) inputs of
    :func:`make_multi_inputs`."""
    return dict(make_multi_inputs(shape, seed))


@functools.lru_cache(maxsize=4)
def make_multi_inputs(shape: Shape, seed: object) -> dict[str, np.ndarray]:
    """Realistic rows plus edge rows: ids repeat (drawn from a small pool), prompts and outputs
    of random length with -1 padding, a few ids outside the vocabulary, rows with penalties off,
    with temperature 1 (with penalties off, and on: the kernels skip the division), with a
    negative decoded length, below the minimum length; bad-token lengths beyond the column
    count."""
    rng = rng_for("multi", shape, seed)
    rows, vocab, length = shape.rows, shape.vocab, shape.max_model_len
    token_ids = np.full((rows, length), -1, dtype=np.int64)
    prompt_lens = rng.integers(0, length // 2 + 1, rows)
    generated = rng.integers(0, length // 2 + 1, rows)
    pool = rng.integers(0, vocab, 4096)  # repeats within and across prompt and output
    for b in range(rows):
        n = int(prompt_lens[b] + generated[b])
        token_ids[b, :n] = rng.choice(pool, n)
        if n > 4:  # out-of-vocabulary and negative ids inside the row are ignored
            token_ids[b, rng.integers(0, n, 2)] = [vocab + 7, -3]
    alpha = rng.uniform(1.05, 2.0, rows).astype(F32)
    beta = rng.uniform(0.05, 1.0, rows).astype(F32)
    gamma = rng.uniform(0.05, 1.0, rows).astype(F32)
    temperature = rng.uniform(0.5, 1.5, rows).astype(F32)
    kind = np.arange(rows) % 6
    alpha[kind == 1], beta[kind == 1], gamma[kind == 1] = 1, 0, 0  # penalties off, T != 1
    alpha[kind == 2], beta[kind == 2], gamma[kind == 2], temperature[kind == 2] = 1, 0, 0, 1
    temperature[kind == 5] = 1  # penalties on, temperature exactly 1
    cur = generated.astype(np.int64)
    cur[kind == 3] = -1  # no counting, no EOS ban
    min_len = np.where(kind == 4, cur + 1, rng.integers(0, 3, rows)).astype(np.int64)
    bad_tokens = rng.integers(-2, vocab + 2, (rows, 6)).astype(np.int64)
    bad_lens = rng.integers(0, 9, rows).astype(np.int64)
    logits = (rng.standard_normal((rows, vocab), dtype=F32) * 4).astype(F32)
    return {
        "token_ids_all": token_ids,
        "logits": logits,
        "penalty_scores": alpha.reshape(-1, 1),
        "frequency_scores": beta.reshape(-1, 1),
        "presence_scores": gamma.reshape(-1, 1),
        "temperatures": temperature.reshape(-1, 1),
        "bad_tokens": bad_tokens,
        "bad_tokens_lens": bad_lens.reshape(-1, 1),
        "prompt_lens": prompt_lens.astype(np.int64).reshape(-1, 1),
        "cur_dec_lens": cur.reshape(-1, 1),
        "min_dec_lens": min_len.reshape(-1, 1),
        "eos_token_id": np.array([[2], [vocab - 1]], dtype=np.int64),
    }


def run_multi(lib: TensorLib, case: dict[str, np.ndarray], dtype: str) -> tuple[np.ndarray, ...]:
    """Runs the op on the device copy of ``case``; returns (input logits as rounded to dtype,
    result)."""
    args = {name: lib.to_device(value) for name, value in case.items()}
    args["logits"] = lib.to_device(case["logits"], dtype)
    before = lib.from_device(args["logits"]).astype(F32)
    returned = penalty.get_token_penalty_multi_scores(**args)
    assert returned is args["logits"], "the op must return the tensor it wrote in place"
    return before, lib.from_device(args["logits"]).astype(F32)


# Every dtype on every shape but the largest, which run in float32 and bfloat16 (test time).
MULTI_CASES = [(name, dtype) for name in SHAPES for dtype in DTYPES
               if name not in LARGE_SHAPES or dtype != "float16"]


@pytest.mark.parametrize(("name", "dtype"), MULTI_CASES)
def test_multi_scores_matches_reference(tensor_lib: TensorLib, name: str, dtype: str) -> None:
    tensor_lib.require(dtype)
    case = multi_inputs(SHAPES[name], "matches")  # the same data for every dtype
    before, got = run_multi(tensor_lib, case, dtype)
    want = ref.get_token_penalty_multi_scores(**{**case, "logits": before}, dtype=dtype)
    assert_logits_close(got, want, dtype)
    # Rows with penalties off and temperature 1 change only at bans.
    untouched = np.flatnonzero(np.arange(SHAPES[name].rows) % 6 == 2)
    changed = got[untouched] != before[untouched]
    assert (got[untouched][changed] <= -1e4).all()


def test_multi_scores_fastdeploy_published_case(tensor_lib: TensorLib) -> None:
    # tests/operators/test_get_token_penalty_multi_scores.py: fp32, 4 rows, V 103424,
    # max_model_len 32768, prompts and outputs of 0-99 tokens, alpha 1.05, beta 0.5, gamma 0.3,
    # T 0.8, min_dec_len 1, EOS 2; FastDeploy compares at 1e-4.
    rng = rng_for("fastdeploy")
    rows, length, vocab = 4, 32768, 103424
    prompt_lens = rng.integers(0, 100, (rows, 1))
    steps = rng.integers(0, 100, (rows, 1))
    token_ids = np.full((rows, length), -1, dtype=np.int64)
    for b in range(rows):
        n = int(prompt_lens[b, 0] + steps[b, 0])
        token_ids[b, :n] = rng.integers(3, vocab, n)
    case = {
        "token_ids_all": token_ids,
        "logits": rng.standard_normal((rows, vocab)).astype(F32),
        "penalty_scores": np.full((rows, 1), 1.05, F32),
        "frequency_scores": np.full((rows, 1), 0.5, F32),
        "presence_scores": np.full((rows, 1), 0.3, F32),
        "temperatures": np.full((rows, 1), 0.8, F32),
        "bad_tokens": np.zeros((rows, 10), np.int64),
        "bad_tokens_lens": np.zeros((rows, 1), np.int64),
        "prompt_lens": prompt_lens.astype(np.int64),
        "cur_dec_lens": steps.astype(np.int64),
        "min_dec_lens": np.ones((rows, 1), np.int64),
        "eos_token_id": np.array([[2]], np.int64),
    }
    before, got = run_multi(tensor_lib, case, "float32")
    want = ref.get_token_penalty_multi_scores(**case)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_scores_hand_computed(tensor_lib: TensorLib, dtype: str) -> None:
    tensor_lib.require(dtype)
    # One row over V = 8: prompt [3, 5], generated [1, 1, 2]; alpha 2, beta 0.5, gamma 0.25,
    # T 0.5; EOS 7 banned (3 < 5); bad token 6. Exact in every dtype (see the CPU test).
    case = {
        "token_ids_all": np.array([[3, 5, 1, 1, 2, -1, -1]], np.int64),
        "logits": np.array([[1.0, -2.0, 3.0, 0.5, -1.0, 2.0, 0.0, 4.0]], F32),
        "penalty_scores": np.array([[2.0]], F32),
        "frequency_scores": np.array([[0.5]], F32),
        "presence_scores": np.array([[0.25]], F32),
        "temperatures": np.array([[0.5]], F32),
        "bad_tokens": np.array([[6, 0]], np.int64),
        "bad_tokens_lens": np.array([[1]], np.int64),
        "prompt_lens": np.array([[2]], np.int64),
        "cur_dec_lens": np.array([[3]], np.int64),
        "min_dec_lens": np.array([[5]], np.int64),
        "eos_token_id": np.array([7], np.int64),
    }
    _, got = run_multi(tensor_lib, case, dtype)
    ban = round_to_dtype(-1e10, dtype)
    eos = round_to_dtype(-1e4 if dtype == "float16" else -1e10, dtype) * 2
    np.testing.assert_array_equal(got[0], [2.0, -10.5, 1.5, 0.5, -2.0, 2.0, ban, eos])


def test_multi_scores_zero_rows(tensor_lib: TensorLib) -> None:
    case = multi_inputs(Shape(0, 32000, 16), "empty")
    _, got = run_multi(tensor_lib, case, "float32")
    assert got.shape == (0, 32000)


def test_multi_scores_odd_vocabulary_and_repeats_are_deterministic(tensor_lib: TensorLib) -> None:
    # V = 50257 (GPT-2) is not a multiple of the vector width: the scalar path. Every row
    # repeats a handful of ids thousands of times, so the count atomics collide heavily.
    tensor_lib.require("bfloat16")
    shape = Shape(5, 50257, 8192)
    case = multi_inputs(shape, "odd")
    ids = case["token_ids_all"]  # replaced by a new array: the cached inputs stay as they are
    case["token_ids_all"] = np.where(ids >= 0, ids % 11, ids)
    before, first = run_multi(tensor_lib, case, "bfloat16")
    _, second = run_multi(tensor_lib, {**case, "logits": before}, "bfloat16")
    assert first.tobytes() == second.tobytes()
    want = ref.get_token_penalty_multi_scores(**{**case, "logits": before}, dtype="bfloat16")
    assert_logits_close(first, want, "bfloat16")


def test_multi_scores_one_dimensional_per_row_tensors(tensor_lib: TensorLib) -> None:
    case = multi_inputs(Shape(3, 32000, 64), "1d")
    flat = {k: (v.reshape(-1) if k not in ("token_ids_all", "logits", "bad_tokens") else v)
            for k, v in case.items()}
    before, got = run_multi(tensor_lib, flat, "float32")
    assert_logits_close(got, ref.get_token_penalty_multi_scores(**case), "float32")


# ---------------------------------------------------------------------------------------------
# get_token_penalty_once

ONCE_SHAPES = {
    "fastdeploy": Shape(8, 10000, 1000),  # tests/operators/test_token_penalty.py
    "bs1-qwen2": Shape(1, 151936, 4096),
    "bs64-llama2": Shape(64, 32000, 513),
    "bs256-qwen2": Shape(256, 152064, 128),
}


# Every dtype on the smaller shapes; the largest in bfloat16 only (test time).
ONCE_CASES = [(name, dtype, "float32") for name in ONCE_SHAPES if name != "bs256-qwen2"
              for dtype in DTYPES] + [("bs256-qwen2", "bfloat16", "float32")] + [
    ("fastdeploy", dtype, "logits") for dtype in DTYPES  # FastDeploy passes the logits' dtype
]


@functools.lru_cache(maxsize=2)
def once_inputs(shape: Shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pre_ids, logits and alpha (cached, shared: do not modify). Rows end at a random -1 and
    hold an id after it that must be ignored; row 0 starts with an id outside the vocabulary."""
    rng = rng_for("once", shape)
    pre_ids = rng.integers(0, shape.vocab, (shape.rows, shape.max_model_len))
    pre_ids[:, -1] = pre_ids[:, -2]
    ends = rng.integers(0, shape.max_model_len + 1, shape.rows)  # -1 from here on
    for b in range(shape.rows):
        pre_ids[b, ends[b]:] = -1
        if ends[b] + 2 < shape.max_model_len:
            pre_ids[b, ends[b] + 2] = 5
    pre_ids[0, 0] = shape.vocab
    logits = rng.standard_normal((shape.rows, shape.vocab), dtype=F32) * 3
    alpha = rng.uniform(1.05, 2.0, (shape.rows, 1)).astype(F32)
    return pre_ids, logits, alpha


@pytest.mark.parametrize(("name", "dtype", "penalty_dtype"), ONCE_CASES)
def test_penalty_once_matches_reference(tensor_lib: TensorLib, name: str, dtype: str,
                                        penalty_dtype: str) -> None:
    tensor_lib.require(dtype)
    shape = ONCE_SHAPES[name]
    pre_ids, logits, alpha = once_inputs(shape)
    device_logits = tensor_lib.to_device(logits, dtype)
    before = tensor_lib.from_device(device_logits).astype(F32)
    device_alpha = tensor_lib.to_device(alpha, dtype if penalty_dtype == "logits" else None)
    alpha_used = tensor_lib.from_device(device_alpha).astype(F32)
    out = penalty.get_token_penalty_once(tensor_lib.to_device(pre_ids), device_logits,
                                         device_alpha)
    assert out is not device_logits
    assert str(out.dtype).endswith(dtype) and tuple(out.shape) == (shape.rows, shape.vocab)
    assert tensor_lib.from_device(device_logits).astype(F32).tobytes() == before.tobytes()
    want = ref.get_token_penalty_once(pre_ids, before, alpha_used, dtype)
    assert_logits_close(tensor_lib.from_device(out).astype(F32), want, dtype)


def test_penalty_once_out_argument_and_zero_rows(tensor_lib: TensorLib) -> None:
    logits = tensor_lib.to_device(np.ones((2, 16), F32))
    out = tensor_lib.empty((2, 16), "float32")
    pre_ids = tensor_lib.to_device(np.array([[3, -1], [15, 15]], np.int64))
    returned = penalty.get_token_penalty_once(pre_ids, logits,
                                              tensor_lib.to_device(np.full(2, 2.0, F32)), out=out)
    assert returned is out
    expected = np.ones((2, 16), F32)
    expected[0, 3] = expected[1, 15] = 0.5
    np.testing.assert_array_equal(tensor_lib.from_device(out), expected)
    empty = penalty.get_token_penalty_once(tensor_lib.to_device(np.zeros((0, 4), np.int64)),
                                           tensor_lib.to_device(np.zeros((0, 16), F32)),
                                           tensor_lib.to_device(np.zeros((0, 1), F32)))
    assert tuple(empty.shape) == (0, 16)


# ---------------------------------------------------------------------------------------------
# Bad inputs: each raises before any launch, naming the op and the argument.

BS, V, L, N = 4, 256, 32, 3


@dataclass(frozen=True)
class Case:
    error: type[Exception]
    op: str
    arg: str
    call: Callable[[TensorLib], Any]


def dev(lib: TensorLib, shape: tuple[int, ...], dtype: str = "float32") -> Any:
    if dtype.startswith("int"):
        return lib.to_device(np.zeros(shape, dtype=dtype))
    return lib.to_device(np.ones(shape, dtype=np.float32), dtype)


def transposed(lib: TensorLib, shape: tuple[int, int], dtype: str = "float32") -> Any:
    return dev(lib, shape[::-1], dtype).T


def multi(lib: TensorLib, **change: Any) -> Any:
    args = {
        "token_ids_all": dev(lib, (BS, L), "int64"),
        "logits": dev(lib, (BS, V)),
        "penalty_scores": dev(lib, (BS, 1)),
        "frequency_scores": dev(lib, (BS, 1)),
        "presence_scores": dev(lib, (BS, 1)),
        "temperatures": dev(lib, (BS, 1)),
        "bad_tokens": dev(lib, (BS, N), "int64"),
        "bad_tokens_lens": dev(lib, (BS, 1), "int64"),
        "prompt_lens": dev(lib, (BS, 1), "int64"),
        "cur_dec_lens": dev(lib, (BS, 1), "int64"),
        "min_dec_lens": dev(lib, (BS, 1), "int64"),
        "eos_token_id": dev(lib, (1,), "int64"),
    }
    args.update({k: (v(lib) if callable(v) else v) for k, v in change.items()})
    return penalty.get_token_penalty_multi_scores(**args)


def once(lib: TensorLib, **change: Any) -> Any:
    args = {"pre_ids": dev(lib, (BS, L), "int64"), "logits": dev(lib, (BS, V)),
            "penalty_scores": dev(lib, (BS, 1))}
    args.update({k: (v(lib) if callable(v) else v) for k, v in change.items()})
    return penalty.get_token_penalty_once(**args)


MS, PO = "get_token_penalty_multi_scores", "get_token_penalty_once"
CASES = {
    "ms-logits-fp64": Case(TypeError, MS, "logits",
        lambda l: multi(l, logits=lambda l: dev(l, (BS, V), "float64"))),
    "ms-logits-int32": Case(TypeError, MS, "logits",
        lambda l: multi(l, logits=lambda l: dev(l, (BS, V), "int32"))),
    "ms-logits-noncontiguous": Case(ValueError, MS, "logits",
        lambda l: multi(l, logits=lambda l: transposed(l, (BS, V)))),
    "ms-logits-cpu": Case(ValueError, MS, "logits",
        lambda l: multi(l, logits=np.ones((BS, V), F32))),
    "ms-logits-3d": Case(ValueError, MS, "logits",
        lambda l: multi(l, logits=lambda l: dev(l, (1, BS, V)))),
    "ms-ids-int32": Case(TypeError, MS, "token_ids_all",
        lambda l: multi(l, token_ids_all=lambda l: dev(l, (BS, L), "int32"))),
    "ms-ids-rows": Case(ValueError, MS, "token_ids_all",
        lambda l: multi(l, token_ids_all=lambda l: dev(l, (BS - 1, L), "int64"))),
    "ms-ids-noncontiguous": Case(ValueError, MS, "token_ids_all",
        lambda l: multi(l, token_ids_all=lambda l: transposed(l, (BS, L), "int64"))),
    "ms-ids-cpu": Case(ValueError, MS, "token_ids_all",
        lambda l: multi(l, token_ids_all=np.zeros((BS, L), np.int64))),
    "ms-penalty-fp16": Case(TypeError, MS, "penalty_scores",
        lambda l: multi(l, penalty_scores=lambda l: dev(l, (BS, 1), "float16"))),
    "ms-penalty-rows": Case(ValueError, MS, "penalty_scores",
        lambda l: multi(l, penalty_scores=lambda l: dev(l, (BS + 1, 1)))),
    "ms-frequency-cols": Case(ValueError, MS, "frequency_scores",
        lambda l: multi(l, frequency_scores=lambda l: dev(l, (BS, 2)))),
    "ms-presence-cpu": Case(ValueError, MS, "presence_scores",
        lambda l: multi(l, presence_scores=np.zeros((BS, 1), F32))),
    "ms-temperature-fp64": Case(TypeError, MS, "temperatures",
        lambda l: multi(l, temperatures=lambda l: dev(l, (BS, 1), "float64"))),
    "ms-bad-rows": Case(ValueError, MS, "bad_tokens",
        lambda l: multi(l, bad_tokens=lambda l: dev(l, (BS + 1, N), "int64"))),
    "ms-bad-lens-int32": Case(TypeError, MS, "bad_tokens_lens",
        lambda l: multi(l, bad_tokens_lens=lambda l: dev(l, (BS, 1), "int32"))),
    "ms-prompt-lens-rows": Case(ValueError, MS, "prompt_lens",
        lambda l: multi(l, prompt_lens=lambda l: dev(l, (BS - 1, 1), "int64"))),
    "ms-cur-cpu": Case(ValueError, MS, "cur_dec_lens",
        lambda l: multi(l, cur_dec_lens=np.zeros((BS, 1), np.int64))),
    "ms-min-int32": Case(TypeError, MS, "min_dec_lens",
        lambda l: multi(l, min_dec_lens=lambda l: dev(l, (BS, 1), "int32"))),
    "ms-eos-shape": Case(ValueError, MS, "eos_token_id",
        lambda l: multi(l, eos_token_id=lambda l: dev(l, (2, 2), "int64"))),
    "po-logits-fp64": Case(TypeError, PO, "logits",
        lambda l: once(l, logits=lambda l: dev(l, (BS, V), "float64"))),
    "po-logits-noncontiguous": Case(ValueError, PO, "logits",
        lambda l: once(l, logits=lambda l: transposed(l, (BS, V)))),
    "po-logits-cpu": Case(ValueError, PO, "logits",
        lambda l: once(l, logits=np.ones((BS, V), F32))),
    "po-pre-ids-int32": Case(TypeError, PO, "pre_ids",
        lambda l: once(l, pre_ids=lambda l: dev(l, (BS, L), "int32"))),
    "po-pre-ids-rows": Case(ValueError, PO, "pre_ids",
        lambda l: once(l, pre_ids=lambda l: dev(l, (BS + 1, L), "int64"))),
    "po-penalty-fp16": Case(TypeError, PO, "penalty_scores",
        lambda l: once(l, penalty_scores=lambda l: dev(l, (BS, 1), "float16"))),
    "po-penalty-rows": Case(ValueError, PO, "penalty_scores",
        lambda l: once(l, penalty_scores=lambda l: dev(l, (BS - 1,)))),
    "po-out-fp16": Case(TypeError, PO, "out",
        lambda l: once(l, out=dev(l, (BS, V), "float16"))),
    "po-out-shape": Case(ValueError, PO, "out",
        lambda l: once(l, out=dev(l, (BS, V + 1)))),
    "po-out-noncontiguous": Case(ValueError, PO, "out",
        lambda l: once(l, out=transposed(l, (BS, V)))),
}


@pytest.mark.parametrize("name", CASES)
def test_penalty_rejects(tensor_lib: TensorLib, name: str) -> None:
    case = CASES[name]
    with pytest.raises(case.error) as raised:
        case.call(tensor_lib)
    message = str(raised.value)
    assert message.startswith(f"{case.op}: argument '{case.arg}' "), message


def test_penalty_rejects_out_aliasing_logits(tensor_lib: TensorLib) -> None:
    logits = dev(tensor_lib, (BS, V))
    with pytest.raises(ValueError, match=f"{PO}: argument 'out' must not overlap"):
        once(tensor_lib, logits=logits, out=logits)


def test_multi_scores_never_converts_the_in_place_logits(tensor_lib: TensorLib) -> None:
    logits = dev(tensor_lib, (BS, V), "float64")
    before = tensor_lib.from_device(logits).copy()
    with pytest.raises(TypeError, match=f"{MS}: argument 'logits'"):
        multi(tensor_lib, logits=logits, temperatures=lambda l: dev(l, (BS, 1)) * 2)
    np.testing.assert_array_equal(tensor_lib.from_device(logits), before)
