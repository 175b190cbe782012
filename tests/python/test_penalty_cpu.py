"""The penalty references against hand-computed cases and FastDeploy's published cases, and the
penalty ops' argument validation through the real sm70 module with numpy inputs (no GPU)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import penalty
from fastdeploy_ops import reference as ref
from fastdeploy_ops.reference.penalty import repeat_counts, round_to_dtype

F32 = np.float32


def col(values: list, dtype: str = "int64") -> np.ndarray:
    """A FastDeploy-style per-row tensor ``[bs, 1]``."""
    return np.asarray(values, dtype=dtype).reshape(-1, 1)


# ---------------------------------------------------------------------------------------------
# round_to_dtype


def test_round_to_dtype_is_nearest_even() -> None:
    one = 1.0
    # bfloat16 spacing at 1 is 2**-7: 1 + 2**-8 is a tie and goes to the even 1.0; 1 + 3 * 2**-8
    # is a tie between 1 + 2**-7 (odd) and 1 + 2**-6 (even).
    got = round_to_dtype([one + 2**-8, one + 3 * 2**-8, one + 2**-8 + 2**-20], "bfloat16")
    assert got.tolist() == [1.0, 1.0 + 2**-6, 1.0 + 2**-7]
    # float16 spacing at 1 is 2**-10; its largest finite value is 65504.
    got = round_to_dtype([one + 2**-11, one + 3 * 2**-11, 65520.0, -1e10], "float16")
    assert got.tolist() == [1.0, 1.0 + 2**-9, np.inf, -np.inf]
    # -1e10 in bfloat16: 1e10 = 1.00000 * 2**33 * 1.16415..., i.e. mantissa 0x15 after rounding.
    assert round_to_dtype(-1e10, "bfloat16") == -np.float32(2**33 * (1 + 21 / 128))
    assert np.isnan(round_to_dtype(np.nan, "bfloat16"))
    assert round_to_dtype(0.1, "float32") == F32(0.1)


# ---------------------------------------------------------------------------------------------
# get_token_penalty_multi_scores: hand-computed


def test_repeat_counts_marks_prompt_only_tokens() -> None:
    # prompt [3, 5, 1], generated [1, 1, 2, -1, 9 (>= V), 4]
    rep = repeat_counts(np.array([3, 5, 1, 1, 1, 2, -1, 9, 4]), 3, 8)
    assert rep.tolist() == [0, 2, 1, -1, 1, -1, 0, 0]
    # prompt_len beyond the row: everything is prompt; negative: everything is generated.
    assert repeat_counts(np.array([1, 1, 2]), 10, 4).tolist() == [0, -1, -1, 0]
    assert repeat_counts(np.array([1, 1, 2]), -5, 4).tolist() == [0, 2, 1, 0]


def multi_case() -> dict[str, np.ndarray]:
    """Three rows over V = 8 (hand-computed expectations in the tests below).

    Row 0: prompt [3, 5], generated [1, 1, 2], alpha 2, beta 0.5, gamma 0.25, T 0.5; decoded 3
    of at least 5 tokens (EOS id 7 banned); bad token 6.
    Row 1: no penalties, T 1 (untouched), except bad tokens [9 (>= V), 0] with a length of 5
    (clamped to the 3 columns); decoded length -1 (no EOS ban, no counting).
    Row 2: no penalties, T 2: every logit halved; token ids are ignored.
    """
    logits = np.array([[1.0, -2.0, 3.0, 0.5, -1.0, 2.0, 0.0, 4.0],
                       [1.0, -2.0, 3.0, 0.5, -1.0, 2.0, 0.0, 4.0],
                       [1.0, -2.0, 3.0, 0.5, -1.0, 2.0, 0.0, 4.0]], dtype=F32)
    return {
        "token_ids_all": np.array([[3, 5, 1, 1, 2, -1, -1],
                                   [1, 1, 1, 1, 1, 1, 1],
                                   [0, 1, 2, 3, 4, 5, 6]], dtype=np.int64),
        "logits": logits,
        "penalty_scores": col([2.0, 1.0, 1.0], "float32"),
        "frequency_scores": col([0.5, 0.0, 0.0], "float32"),
        "presence_scores": col([0.25, 0.0, 0.0], "float32"),
        "temperatures": col([0.5, 1.0, 2.0], "float32"),
        "bad_tokens": np.array([[6, -1, -1], [9, 0, 0], [-1, -1, -1]], dtype=np.int64),
        "bad_tokens_lens": col([1, 5, 0]),
        "prompt_lens": col([2, 0, 0]),
        "cur_dec_lens": col([3, -1, 0]),
        "min_dec_lens": col([5, 5, 0]),
        "eos_token_id": np.array([[7]], dtype=np.int64),
    }


def run_multi(case: dict[str, np.ndarray], dtype: str = "float32") -> np.ndarray:
    return ref.get_token_penalty_multi_scores(**case, dtype=dtype)


def test_multi_scores_hand_computed() -> None:
    out = run_multi(multi_case())
    # Row 0, rep = [0, 2, 1, -1, 0, -1, 0, 0]:
    #   v0  1.0: no penalty, / 0.5                                  ->  2.0
    #   v1 -2.0: * 2 = -4; - 2 * 0.5 - 0.25 = -5.25; / 0.5          -> -10.5
    #   v2  3.0: / 2 = 1.5; - 1 * 0.5 - 0.25 = 0.75; / 0.5          ->  1.5
    #   v3  0.5: prompt only: / 2 = 0.25; / 0.5                     ->  0.5
    #   v4 -1.0: / 0.5                                              -> -2.0
    #   v5  2.0: prompt only: / 2 = 1.0; / 0.5                      ->  2.0
    #   v6  bad token                                               -> -1e10
    #   v7  EOS (3 < 5): -1e10, not repeated, / 0.5                 -> -2e10
    assert out[0].tolist() == [2.0, -10.5, 1.5, 0.5, -2.0, 2.0, F32(-1e10), F32(-2e10)]
    # Row 1: untouched but for bad token 0 (9 is outside the vocabulary).
    assert out[1].tolist() == [F32(-1e10), -2.0, 3.0, 0.5, -1.0, 2.0, 0.0, 4.0]
    # Row 2: halved.
    assert out[2].tolist() == [0.5, -1.0, 1.5, 0.25, -0.5, 1.0, 0.0, 2.0]


def test_multi_scores_float16_eos_ban_and_bad_tokens() -> None:
    # fp16: EOS gets -1e4 (then / 0.5 = -2e4, finite), bad tokens -1e10 = -inf.
    out = run_multi(multi_case(), "float16")
    assert out[0, 7] == -20000.0
    assert out[0, 6] == -np.inf and out[1, 0] == -np.inf
    assert out[0, 1] == -10.5
    # bf16: -1e10 rounded to bf16, then / 0.5 and rounded again (exact: a power of two).
    out = run_multi(multi_case(), "bfloat16")
    ban = round_to_dtype(-1e10, "bfloat16")
    assert out[0, 6] == ban and out[0, 7] == 2 * ban


def test_multi_scores_eos_ban_only_while_below_min_length() -> None:
    case = multi_case()
    case["cur_dec_lens"] = col([5, -1, 0])  # 5 >= 5: no ban
    assert run_multi(case)[0, 7] == 8.0  # 4.0 / 0.5
    # The EOS ban happens before the penalties: a repeated EOS is penalised from -1e10.
    case = multi_case()
    case["token_ids_all"][0, 5] = 7  # generated once more: rep[7] = 1
    expected = (F32(-1e10) * F32(2) - F32(0.5) - F32(0.25)) / F32(0.5)
    assert run_multi(case)[0, 7] == expected


def test_multi_scores_counting_skipped_for_negative_decoded_length() -> None:
    case = multi_case()
    case["cur_dec_lens"] = col([-1, -1, 0])
    out = run_multi(case)
    # No counting, no EOS ban: only the temperature and the bad token.
    assert out[0].tolist() == [2.0, -4.0, 6.0, 1.0, -2.0, 4.0, F32(-1e10), 8.0]


def test_multi_scores_presence_alone_penalises_generated_tokens() -> None:
    case = multi_case()
    case["penalty_scores"] = col([1.0, 1.0, 1.0], "float32")
    case["frequency_scores"] = col([0.0, 0.0, 0.0], "float32")
    case["temperatures"] = col([1.0, 1.0, 2.0], "float32")
    out = run_multi(case)
    # gamma 0.25 on generated tokens 1 and 2 only; prompt-only tokens 3 and 5 unchanged.
    assert out[0, :6].tolist() == [1.0, -2.25, 2.75, 0.5, -1.0, 2.0]


def fastdeploy_multi_scores_case(seed: int = 0) -> dict[str, np.ndarray]:
    """FastDeploy's published case (tests/operators/test_get_token_penalty_multi_scores.py):
    4 rows, max_model_len 32768, V 103424, prompts of 0-99 tokens then 0-99 generated tokens
    (ids >= 3), alpha 1.05, beta 0.5, gamma 0.3, T 0.8, min_dec_len 1, EOS id 2, no bad words."""
    rng = np.random.default_rng(seed)
    rows, max_model_len, vocab = 4, 32768, 103424
    prompt_lens = rng.integers(0, 100, (rows, 1))
    step_idx = rng.integers(0, 100, (rows, 1))
    token_ids_all = np.full((rows, max_model_len), -1, dtype=np.int64)
    for b in range(rows):
        p, s = int(prompt_lens[b, 0]), int(step_idx[b, 0])
        token_ids_all[b, : p + s] = rng.integers(3, vocab, p + s)
    return {
        "token_ids_all": token_ids_all,
        "logits": rng.standard_normal((rows, vocab)).astype(F32),
        "penalty_scores": np.full((rows, 1), 1.05, F32),
        "frequency_scores": np.full((rows, 1), 0.5, F32),
        "presence_scores": np.full((rows, 1), 0.3, F32),
        "temperatures": np.full((rows, 1), 0.8, F32),
        "bad_tokens": np.zeros((rows, 10), np.int64),
        "bad_tokens_lens": np.zeros((rows, 1), np.int64),
        "prompt_lens": prompt_lens.astype(np.int64),
        "cur_dec_lens": step_idx.astype(np.int64),
        "min_dec_lens": np.ones((rows, 1), np.int64),
        "eos_token_id": np.array([[2]], np.int64),
    }


def test_multi_scores_matches_fastdeploy_published_case() -> None:
    case = fastdeploy_multi_scores_case()
    # FastDeploy's baseline, written independently with dense masks: EOS ban where
    # step < min_dec_len; repetition penalty on prompt or generated tokens; minus
    # beta * count and gamma * presence of generated tokens; divided by the temperature.
    logits = case["logits"].copy()
    rows, vocab = logits.shape
    logits[(case["cur_dec_lens"] < case["min_dec_lens"])[:, 0], 2] = -1e10
    out_counts = np.zeros((rows, vocab), np.int64)
    prompt_mask = np.zeros((rows, vocab), bool)
    for b in range(rows):
        p, s = int(case["prompt_lens"][b, 0]), int(case["cur_dec_lens"][b, 0])
        prompt_mask[b, case["token_ids_all"][b, :p]] = True
        np.add.at(out_counts[b], case["token_ids_all"][b, p: p + s], 1)
    seen = prompt_mask | (out_counts > 0)
    alpha = case["penalty_scores"]
    penalised = np.where(logits > 0, logits / alpha, logits * alpha)
    logits = np.where(seen, penalised, logits).astype(F32)
    logits = logits - case["frequency_scores"] * out_counts.astype(F32)
    logits = logits - case["presence_scores"] * (out_counts > 0).astype(F32)
    expected = logits / case["temperatures"]
    got = run_multi(case)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)  # FastDeploy's tolerance
    assert (got[:, 2] <= -1e10).sum() == (case["cur_dec_lens"][:, 0] < 1).sum()


# ---------------------------------------------------------------------------------------------
# get_token_penalty_once


def test_penalty_once_hand_computed() -> None:
    logits = np.array([[1.0, -1.0, 2.0, 4.0, -3.0],
                       [1.0, -1.0, 2.0, 4.0, -3.0]], dtype=F32)
    pre_ids = np.array([[2, 2, 0, -1, 3],     # 2 (twice) and 0; 3 comes after the -1
                        [4, 7, 1, 4, 4]], dtype=np.int64)  # 7 >= V ignored; 4 once
    out = ref.get_token_penalty_once(pre_ids, logits, np.array([[2.0], [2.0]], F32))
    assert out[0].tolist() == [0.5, -1.0, 1.0, 4.0, -3.0]
    assert out[1].tolist() == [1.0, -2.0, 2.0, 4.0, -6.0]


def test_penalty_once_matches_fastdeploy_published_case() -> None:
    # tests/operators/test_token_penalty.py: fp16 logits [8, 10000] in [0, 1), pre_ids
    # randint(0, 10000) [8, 1000] with the last column repeating the one before, alpha 1.2
    # (fp16). Its naive version gathers, penalises in fp16 and scatters.
    rng = np.random.default_rng(2023)
    pre_ids = rng.integers(0, 10000, (8, 1000))
    pre_ids[:, -1] = pre_ids[:, -2]
    logits = round_to_dtype(rng.random((8, 10000), dtype=F32), "float16")
    alpha = np.full((8, 1), 1.2, np.float16)
    out = ref.get_token_penalty_once(pre_ids, logits, alpha.astype(F32), "float16")
    gathered = np.take_along_axis(logits, pre_ids, axis=1).astype(np.float16)
    penalised = np.where(gathered < 0, gathered * alpha, gathered / alpha)
    naive = logits.copy()
    np.put_along_axis(naive, pre_ids, penalised.astype(F32), axis=1)
    assert np.abs(out - naive).max() < 1e-5
    taken = np.take_along_axis(out, pre_ids, axis=1)
    assert (taken < np.take_along_axis(logits, pre_ids, axis=1)).all()  # all logits positive


# ---------------------------------------------------------------------------------------------
# Validation through the sm70 module (numpy arrays: every check but the device one passes first)




BS, V, L, N = 4, 64, 16, 3


def multi(**change: Any) -> Any:
    """get_token_penalty_multi_scores on valid numpy inputs, except those given by name."""
    args = {
        "token_ids_all": np.zeros((BS, L), np.int64),
        "logits": np.zeros((BS, V), F32),
        "penalty_scores": np.ones((BS, 1), F32),
        "frequency_scores": np.zeros((BS, 1), F32),
        "presence_scores": np.zeros((BS, 1), F32),
        "temperatures": np.ones((BS, 1), F32),
        "bad_tokens": np.zeros((BS, N), np.int64),
        "bad_tokens_lens": np.zeros((BS, 1), np.int64),
        "prompt_lens": np.zeros((BS, 1), np.int64),
        "cur_dec_lens": np.zeros((BS, 1), np.int64),
        "min_dec_lens": np.zeros((BS, 1), np.int64),
        "eos_token_id": np.zeros((1, 1), np.int64),
        **change,
    }
    return penalty.get_token_penalty_multi_scores(**args)


def once(**change: Any) -> Any:
    args = {"pre_ids": np.zeros((BS, L), np.int64), "logits": np.zeros((BS, V), F32),
            "penalty_scores": np.ones((BS, 1), F32), **change}
    return penalty.get_token_penalty_once(**args)


def i64(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.int64)


def f32(*shape: int) -> np.ndarray:
    return np.zeros(shape, F32)


CASES: dict[str, tuple[type[Exception], str, str, Callable[[], Any]]] = {
    "multi-logits-fp64": (TypeError, "get_token_penalty_multi_scores", "logits",
        lambda: multi(logits=np.zeros((BS, V), np.float64))),
    "multi-logits-int32": (TypeError, "get_token_penalty_multi_scores", "logits",
        lambda: multi(logits=np.zeros((BS, V), np.int32))),
    "multi-logits-1d": (ValueError, "get_token_penalty_multi_scores", "logits",
        lambda: multi(logits=f32(V))),
    "multi-ids-int32": (TypeError, "get_token_penalty_multi_scores", "token_ids_all",
        lambda: multi(token_ids_all=np.zeros((BS, L), np.int32))),
    "multi-ids-rows": (ValueError, "get_token_penalty_multi_scores", "token_ids_all",
        lambda: multi(token_ids_all=i64(BS + 1, L))),
    "multi-ids-1d": (ValueError, "get_token_penalty_multi_scores", "token_ids_all",
        lambda: multi(token_ids_all=i64(L))),
    "multi-penalty-fp16": (TypeError, "get_token_penalty_multi_scores", "penalty_scores",
        lambda: multi(penalty_scores=np.ones((BS, 1), np.float16))),
    "multi-penalty-rows": (ValueError, "get_token_penalty_multi_scores", "penalty_scores",
        lambda: multi(penalty_scores=f32(BS - 1, 1))),
    "multi-frequency-2cols": (ValueError, "get_token_penalty_multi_scores", "frequency_scores",
        lambda: multi(frequency_scores=f32(BS, 2))),
    "multi-presence-fp64": (TypeError, "get_token_penalty_multi_scores", "presence_scores",
        lambda: multi(presence_scores=np.zeros((BS, 1), np.float64))),
    "multi-temperature-rows": (ValueError, "get_token_penalty_multi_scores", "temperatures",
        lambda: multi(temperatures=f32(BS + 2))),
    "multi-bad-1d": (ValueError, "get_token_penalty_multi_scores", "bad_tokens",
        lambda: multi(bad_tokens=i64(N))),
    "multi-bad-int32": (TypeError, "get_token_penalty_multi_scores", "bad_tokens",
        lambda: multi(bad_tokens=np.zeros((BS, N), np.int32))),
    "multi-bad-lens-rows": (ValueError, "get_token_penalty_multi_scores", "bad_tokens_lens",
        lambda: multi(bad_tokens_lens=i64(1, 1))),
    "multi-prompt-lens-int32": (TypeError, "get_token_penalty_multi_scores", "prompt_lens",
        lambda: multi(prompt_lens=np.zeros((BS, 1), np.int32))),
    "multi-cur-rows": (ValueError, "get_token_penalty_multi_scores", "cur_dec_lens",
        lambda: multi(cur_dec_lens=i64(BS, 1, 1))),
    "multi-min-rows": (ValueError, "get_token_penalty_multi_scores", "min_dec_lens",
        lambda: multi(min_dec_lens=i64(BS * 2, 1))),
    "multi-eos-int32": (TypeError, "get_token_penalty_multi_scores", "eos_token_id",
        lambda: multi(eos_token_id=np.zeros((1, 1), np.int32))),
    "multi-eos-2cols": (ValueError, "get_token_penalty_multi_scores", "eos_token_id",
        lambda: multi(eos_token_id=i64(2, 2))),
    "multi-cpu": (ValueError, "get_token_penalty_multi_scores", "logits", lambda: multi()),
    "once-logits-fp64": (TypeError, "get_token_penalty_once", "logits",
        lambda: once(logits=np.zeros((BS, V), np.float64))),
    "once-logits-3d": (ValueError, "get_token_penalty_once", "logits",
        lambda: once(logits=f32(1, BS, V))),
    "once-pre-ids-int32": (TypeError, "get_token_penalty_once", "pre_ids",
        lambda: once(pre_ids=np.zeros((BS, L), np.int32))),
    "once-pre-ids-rows": (ValueError, "get_token_penalty_once", "pre_ids",
        lambda: once(pre_ids=i64(BS - 1, L))),
    "once-penalty-fp64": (TypeError, "get_token_penalty_once", "penalty_scores",
        lambda: once(penalty_scores=np.ones((BS, 1), np.float64))),
    "once-penalty-fp16-for-fp32": (TypeError, "get_token_penalty_once", "penalty_scores",
        lambda: once(penalty_scores=np.ones((BS, 1), np.float16))),
    "once-penalty-rows": (ValueError, "get_token_penalty_once", "penalty_scores",
        lambda: once(penalty_scores=f32(BS + 1, 1))),
    "once-out-dtype": (TypeError, "get_token_penalty_once", "out",
        lambda: once(out=np.zeros((BS, V), np.float16))),
    "once-out-shape": (ValueError, "get_token_penalty_once", "out",
        lambda: once(out=f32(BS, V + 1))),
    "once-cpu": (ValueError, "get_token_penalty_once", "logits", lambda: once()),
}


@pytest.mark.usefixtures("sm70")
@pytest.mark.parametrize("name", CASES)
def test_penalty_rejects_through_the_sm70_module(name: str, rejects: Callable[..., str]) -> None:
    message = rejects(*CASES[name])
    assert ("CUDA" in message) == name.endswith("-cpu"), message


@pytest.mark.usefixtures("sm70")
def test_penalty_once_rejects_out_aliasing_logits() -> None:
    logits = f32(BS, V)
    with pytest.raises(ValueError, match="get_token_penalty_once: argument 'out' must not overlap"):
        once(logits=logits, out=logits)


@pytest.mark.usefixtures("sm70")
def test_penalty_fp16_logits_accept_fp16_penalty_until_the_device_check() -> None:
    with pytest.raises(ValueError, match="argument 'logits' must be a CUDA tensor"):
        once(logits=np.zeros((BS, V), np.float16), penalty_scores=np.ones((BS,), np.float16))
