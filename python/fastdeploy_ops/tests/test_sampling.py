"""sampling ops on the GPU: the renormalisations against ``fastdeploy_ops.reference``, the sampler
statistically, plus bad inputs.

Renormalisations. The kept set is exact in both kernels (counts are integers; top-p masses are
2**-40 fixed-point integers, which the reference reproduces), so the zero pattern must match
exactly. Kept values are ``p * (1 / sum kept)``: the kernel sums in fp32 in a block-tree order,
the reference in float64, so values agree to a few ulp of the sum's rounding; they are compared
at 1e-5 relative (the project's fp32 standard; the sum of up to 152k terms is tree-shaped, with
~150 sequential terms per thread, i.e. errors of order 1e-6).

Sampler. Membership in the allowed set is exact for top-k and up to fp32 rounding of the pivot
masses for top-p: draws are checked against the reference set widened by 1e-5 of mass (the
kernel's sums are within ~1e-6), and every distribution of the statistical tests keeps all
greater-masses at least 1e-5 away from top_p, where no fp32 rounding can matter. Frequencies are
checked with a chi-square goodness-of-fit test at p > 1e-4 over 40k draws (identical rows, one
launch: rows are independent Philox streams); the seeds are fixed, so the suite is
deterministic. Reproducibility is exact for a fixed seed and offset.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import reference as ref
from fastdeploy_ops import sampling
from fastdeploy_ops.testing import TensorLib, requires_op

pytestmark = requires_op("top_k_top_p_sampling_from_probs")

F32 = np.float32
RTOL = 1e-5
SAMPLE = "top_k_top_p_sampling_from_probs"


def rng_for(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def softmax_rows(rng: np.random.Generator, rows: int, vocab: int, scale: float) -> np.ndarray:
    """Normalised float32 rows: softmax of ``scale`` * standard normal logits (float64 math)."""
    logits = rng.standard_normal((rows, vocab)) * scale
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(F32)


def renormalised(row: np.ndarray) -> np.ndarray:
    """``row / sum(row)`` in float32; equal entries stay equal."""
    return (row / row.sum(dtype=np.float64)).astype(F32)


def tie_at_rank(row: np.ndarray, rank: int) -> np.ndarray:
    """The row with its (rank+1)-th largest value set equal to its rank-th largest, so that the
    top-``rank`` threshold has a tie (then renormalised)."""
    order = np.argsort(-row, kind="stable")
    row = row.copy()
    row[order[rank]] = row[order[rank - 1]]
    return renormalised(row)


def realistic_probs(rows: int, vocab: int, *key: object) -> np.ndarray:
    """Rows of varying sharpness, with a few special rows: flat, one-hot, ties at the top."""
    rng = rng_for(rows, vocab, *key)
    scales = np.array([1.0, 2.0, 3.0, 4.5, 6.0])
    probs = np.concatenate([softmax_rows(rng, 1, vocab, float(scales[b % len(scales)]))
                            for b in range(rows)])
    if rows > 3:
        probs[1] = F32(1.0 / vocab)                       # flat: every entry ties the maximum
        probs[2] = 0.0
        probs[2, vocab // 3] = 1.0                         # one-hot
        probs[3] = tie_at_rank(tie_at_rank(probs[3], 1), 2)  # three-way tie at the top
    return probs


def misaligned(lib: TensorLib, array: np.ndarray) -> Any:
    """A contiguous device copy of ``array`` that starts 4 bytes past a 16-byte boundary (the
    kernels' scalar path)."""
    flat = np.concatenate([np.zeros(1, array.dtype), array.reshape(-1)])
    return lib.to_device(flat)[1:].reshape(array.shape)


def assert_renorm_close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got != 0, want != 0, err_msg="kept sets differ")
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)


# ---------------------------------------------------------------------------------------------
# top_k_renorm_probs / top_p_renorm_probs against the reference

# Vocabularies of Llama-2 (32000), Llama-3 (128256), Qwen2 (151936); 32001 takes the scalar path.
SHAPES = [(1, 151936), (7, 32000), (33, 128256), (256, 32000), (5, 32001)]


def top_k_values(rows: int, vocab: int, rng: np.random.Generator) -> np.ndarray:
    ks = rng.integers(1, 101, size=rows)
    special = [0, vocab, vocab - 1, 1, 2, 3, 50, 1000]
    if rows >= len(special):
        ks[: len(special)] = special
    return ks.astype(np.int64)


@requires_op("top_k_renorm_probs")
@pytest.mark.parametrize(("rows", "vocab"), SHAPES, ids=[f"{b}x{v}" for b, v in SHAPES])
def test_top_k_renorm_matches_reference(tensor_lib: TensorLib, rows: int, vocab: int) -> None:
    probs = realistic_probs(rows, vocab, "top_k")
    rng = rng_for("ks", rows, vocab)
    ks = top_k_values(rows, vocab, rng)
    if rows > 5:  # a tie exactly at the k-th value: k + 1 entries survive
        probs[5] = tie_at_rank(probs[5], int(ks[5]))
    got = tensor_lib.from_device(
        sampling.top_k_renorm_probs(tensor_lib.to_device(probs), tensor_lib.to_device(ks)))
    want = ref.top_k_renorm_probs(probs, ks)
    assert_renorm_close(got, want)
    if rows > 5:
        assert np.count_nonzero(got[5]) == ks[5] + 1


@requires_op("top_p_renorm_probs")
@pytest.mark.parametrize(("rows", "vocab"), SHAPES, ids=[f"{b}x{v}" for b, v in SHAPES])
def test_top_p_renorm_matches_reference(tensor_lib: TensorLib, rows: int, vocab: int) -> None:
    probs = realistic_probs(rows, vocab, "top_p")
    rng = rng_for("ps", rows, vocab)
    ps = rng.uniform(0.05, 0.99, size=rows).astype(F32)
    special = [1.0, 0.9, 0.5, 0.7, 0.999, 1e-6, 0.3]
    if rows >= len(special):
        ps[: len(special)] = special
    got = tensor_lib.from_device(
        sampling.top_p_renorm_probs(tensor_lib.to_device(probs), tensor_lib.to_device(ps)))
    want = ref.top_p_renorm_probs(probs, ps)
    assert_renorm_close(got, want)


@requires_op("top_k_renorm_probs")
def test_renorm_scalars_columns_int32_and_scalar_path(tensor_lib: TensorLib) -> None:
    probs = realistic_probs(9, 4096, "scalars")
    dev = tensor_lib.to_device(probs)
    ks = top_k_values(9, 4096, rng_for("k32"))
    for top_k in (20, ks.reshape(-1, 1), ks.astype(np.int32)):
        arg = top_k if isinstance(top_k, int) else tensor_lib.to_device(top_k)
        got = tensor_lib.from_device(sampling.top_k_renorm_probs(dev, arg))
        assert_renorm_close(got, ref.top_k_renorm_probs(probs, top_k))
        # The scalar path (rows not 16-byte aligned): the same kept set, sums in another order.
        unaligned = sampling.top_k_renorm_probs(misaligned(tensor_lib, probs), arg)
        assert_renorm_close(tensor_lib.from_device(unaligned), got)
    ps = np.linspace(0.1, 1.0, 9).astype(F32)
    for top_p in (0.85, ps.reshape(-1, 1)):
        arg = top_p if isinstance(top_p, float) else tensor_lib.to_device(top_p)
        got = tensor_lib.from_device(sampling.top_p_renorm_probs(dev, arg))
        assert_renorm_close(got, ref.top_p_renorm_probs(probs, top_p))
        unaligned = sampling.top_p_renorm_probs(misaligned(tensor_lib, probs), arg)
        assert_renorm_close(tensor_lib.from_device(unaligned), got)


@requires_op("top_k_renorm_probs")
def test_renorm_published_and_hand_cases(tensor_lib: TensorLib) -> None:
    lib = tensor_lib
    # FastDeploy's test: V 5, k 2: entries outside the top 2 are 0 and rows sum to 1.
    probs = renormalised(np.array([0.05, 0.3, 0.15, 0.2, 0.3], F32))[None]
    top_k = lib.to_device(np.array([2]))
    got = lib.from_device(sampling.top_k_renorm_probs(lib.to_device(probs), top_k))
    np.testing.assert_allclose(got, [[0, 0.5, 0, 0, 0.5]], rtol=RTOL)
    # [0.1, 0.3, 0.4, 0.2]: k 1 keeps one entry (sum 1); k = V returns the input unchanged.
    probs = np.array([[0.1, 0.3, 0.4, 0.2]] * 2, F32)
    top_k = lib.to_device(np.array([1, 4]))
    got = lib.from_device(sampling.top_k_renorm_probs(lib.to_device(probs), top_k))
    np.testing.assert_array_equal(got[0], [0, 0, 1, 0])
    np.testing.assert_array_equal(got[1], probs[1])
    # top-p 0.5 -> [0, 3/7, 4/7, 0]; 0.8 keeps 0.4 + 0.3 + 0.2 (0.7 above 0.2): the worked
    # example of ops/sampling/README.md.
    top_p = lib.to_device(np.array([0.5, 0.8], F32))
    got = lib.from_device(sampling.top_p_renorm_probs(lib.to_device(probs), top_p))
    np.testing.assert_allclose(got[0], [0, 3 / 7, 4 / 7, 0], rtol=RTOL)
    np.testing.assert_allclose(got[1], [0, 3 / 9, 4 / 9, 2 / 9], rtol=RTOL)
    # Fewer than k positive entries: copied unscaled (upstream rule), also when not normalised.
    sparse = np.array([[0.5, 0.0, 0.25, 0.0, 0.0, 0.0]], F32)
    got = lib.from_device(sampling.top_k_renorm_probs(lib.to_device(sparse), 3))
    np.testing.assert_array_equal(got, sparse)
    # Flat row: everything ties the maximum, so top-p keeps everything (renormalised).
    flat = np.full((1, 64), 1 / 64, F32)
    got = lib.from_device(sampling.top_p_renorm_probs(lib.to_device(flat), 0.1))
    np.testing.assert_allclose(got, flat, rtol=RTOL)


@requires_op("top_k_renorm_probs")
def test_renorm_out_in_place_zero_rows_and_determinism(tensor_lib: TensorLib) -> None:
    lib = tensor_lib
    probs = realistic_probs(6, 32000, "inplace")
    want_k = ref.top_k_renorm_probs(probs, 40)
    want_p = ref.top_p_renorm_probs(probs, 0.9)
    dev = lib.to_device(probs)
    first = sampling.top_k_renorm_probs(dev, 40)
    again = sampling.top_k_renorm_probs(dev, 40)
    np.testing.assert_array_equal(lib.from_device(first), lib.from_device(again))  # bitwise
    out = lib.empty((6, 32000), "float32")
    assert sampling.top_p_renorm_probs(dev, 0.9, out=out) is out
    assert_renorm_close(lib.from_device(out), want_p)
    assert sampling.top_k_renorm_probs(dev, 40, out=dev) is dev  # in place
    np.testing.assert_array_equal(lib.from_device(dev), lib.from_device(first))
    assert_renorm_close(lib.from_device(dev), want_k)
    dev = lib.to_device(probs)
    sampling.top_p_renorm_probs(dev, 0.9, out=dev)
    assert_renorm_close(lib.from_device(dev), want_p)
    for op, arg in ((sampling.top_k_renorm_probs, 5), (sampling.top_p_renorm_probs, 0.5)):
        empty = op(lib.to_device(np.zeros((0, 128), F32)), arg)
        assert lib.from_device(empty).shape == (0, 128)


# ---------------------------------------------------------------------------------------------
# top_k_top_p_sampling_from_probs


def draw(lib: TensorLib, probs: Any, top_k: Any, top_p: Any, seed: int,
         offset: int = 0) -> np.ndarray:
    samples = sampling.top_k_top_p_sampling_from_probs(probs, top_k, top_p, seed, offset)
    samples = lib.from_device(samples)
    assert samples.dtype == np.int64
    return samples


def test_sampling_uniforms_are_philox_of_seed_offset_row(tensor_lib: TensorLib) -> None:
    # Uniform rows of V = 1024 with no limit: the fp32 prefix sums are exact multiples of 2**-10
    # in any order, so the drawn token is floor(u * 1024) = (first Philox word) >> 22 exactly.
    rows, vocab = 256, 1024
    probs = tensor_lib.to_device(np.full((rows, vocab), 1 / vocab, F32))
    for seed, offset in [(0, 0), (2024, 7), (2**40 + 3, 2**33 + 1), (2**64 - 1, 2**64 - 1)]:
        got = draw(tensor_lib, probs, 0, 1.0, seed, offset)
        counter = np.stack([np.zeros(rows), np.arange(rows), np.full(rows, offset & 0xFFFFFFFF),
                            np.full(rows, offset >> 32)], axis=-1).astype(np.uint64)
        key = np.tile([seed & 0xFFFFFFFF, seed >> 32], (rows, 1)).astype(np.uint64)
        want = (ref.philox4x32_10(counter, key)[:, 0] >> 22).astype(np.int64)
        np.testing.assert_array_equal(got, want)
        u = ref.sampling_uniform(seed, offset, np.arange(rows))
        np.testing.assert_array_equal(np.floor(u.astype(np.float64) * vocab).astype(np.int64), want)


def chi2_sf(x: float, df: int) -> float:
    """Survival function of the chi-square distribution (scipy if present, else the
    Wilson-Hilferty normal approximation, accurate to a few percent of p in this range)."""
    try:
        from scipy.stats import chi2
    except ImportError:
        z = ((x / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
        return 0.5 * math.erfc(z / math.sqrt(2))
    return float(chi2.sf(x, df))


def chi_square_p(samples: np.ndarray, dist: np.ndarray) -> float:
    """Goodness of fit of ``samples`` to ``dist`` (cells with expectation < 5 pooled)."""
    counts = np.bincount(samples, minlength=dist.shape[0]).astype(np.float64)
    expected = dist * samples.shape[0]
    support = expected > 0
    c, e = counts[support], expected[support]
    small = e < 5
    if small.any():
        c = np.append(c[~small], c[small].sum())
        e = np.append(e[~small], e[small].sum())
    if e.shape[0] < 2:
        return 1.0
    return chi2_sf(float(((c - e) ** 2 / e).sum()), e.shape[0] - 1)


def top_p_margin(row: np.ndarray, top_p: float) -> float:
    """Distance of the row's strictly-greater masses from top_p (inf without a top-p limit)."""
    if top_p >= 1.0:
        return math.inf
    order = np.sort(row.astype(np.float64))[::-1]
    values, starts = np.unique(-order, return_index=True)
    greater = np.concatenate([[0.0], np.cumsum(order)])[starts]
    return float(np.min(np.abs(greater - float(F32(top_p)))))


def stats_distribution(vocab: int) -> np.ndarray:
    row = softmax_rows(rng_for("stats", vocab), 1, vocab, 2.0)[0]
    order = np.argsort(-row, kind="stable")
    row[order[4:7]] = row[order[4]]  # a three-way tie at ranks 4-6
    return renormalised(row)


# (vocab, top_k, top_p, per-row tensors?)
STAT_CASES = [
    (100, 0, 1.0, False),    # no limit: the row itself
    (100, 10, 1.0, True),    # top-k only
    (100, 6, 1.0, False),    # k inside the tie: all three tied entries stay (7 allowed)
    (100, 0, 0.6, True),     # top-p only
    (1000, 20, 0.8, False),  # both; top-k binds
    (1000, 50, 0.35, True),  # both; top-p binds
    (1000, 1, 1.0, False),   # greedy
    (257, 40, 0.9, True),    # odd vocabulary: the scalar path
]


@pytest.mark.parametrize(("vocab", "top_k", "top_p", "tensors"), STAT_CASES,
                         ids=[f"V{v}-k{k}-p{p}{'-tensor' if t else ''}"
                              for v, k, p, t in STAT_CASES])
def test_sampling_frequencies_match_the_renormalised_set(tensor_lib: TensorLib, vocab: int,
                                                         top_k: int, top_p: float,
                                                         tensors: bool) -> None:
    draws = 40000
    row = stats_distribution(vocab)
    assert top_p_margin(row, top_p) > 1e-5, "test data too close to the top-p boundary"
    dist = ref.top_k_top_p_distribution(row[None], top_k, top_p)[0]
    probs = tensor_lib.to_device(np.tile(row, (draws, 1)))
    if tensors:
        k_arg = tensor_lib.to_device(np.full(draws, top_k, np.int64))
        p_arg = tensor_lib.to_device(np.full(draws, top_p, F32))
    else:
        k_arg, p_arg = top_k, top_p
    samples = draw(tensor_lib, probs, k_arg, p_arg, seed=1234 + vocab + top_k)
    assert ((samples >= 0) & (samples < vocab)).all()
    outside = np.unique(samples[dist[samples] == 0])
    assert outside.size == 0, f"drew tokens outside the allowed set: {outside.tolist()}"
    p_value = chi_square_p(samples, dist)
    assert p_value > 1e-4, f"chi-square p = {p_value:.3g} over {draws} draws"


@pytest.mark.parametrize("vocab", [151936, 128256])
def test_sampling_never_leaves_the_allowed_set(tensor_lib: TensorLib, vocab: int) -> None:
    rows = 64
    probs = realistic_probs(rows, vocab, "membership")
    rng = rng_for("membership-params", vocab)
    ks = rng.choice([0, 1, 5, 20, 50, 1000], size=rows).astype(np.int64)
    ps = rng.choice([0.3, 0.6, 0.8, 0.95, 1.0], size=rows).astype(F32)
    allowed = ref.top_k_top_p_allowed_set(probs, ks, ps, top_p_slack=1e-5)
    dev = tensor_lib.to_device(probs)
    k_arg, p_arg = tensor_lib.to_device(ks), tensor_lib.to_device(ps)
    seen = []
    for offset in range(16):
        samples = draw(tensor_lib, dev, k_arg, p_arg, seed=99, offset=offset)
        assert ((samples >= 0) & (samples < vocab)).all()
        assert allowed[np.arange(rows), samples].all(), "token outside the allowed set"
        assert (probs[np.arange(rows), samples] > 0).all(), "token of probability 0"
        seen.append(samples)
    seen = np.stack(seen)
    assert (seen[:, 2] == vocab // 3).all()  # the one-hot row
    greedy = ks == 1
    greedy[[1, 3]] = False  # the flat row and the tie at the top allow more than the argmax
    argmax = np.argmax(probs, axis=1)
    assert (seen[:, greedy] == argmax[greedy]).all()


def test_sampling_is_reproducible_and_row_local(tensor_lib: TensorLib) -> None:
    lib = tensor_lib
    rows, vocab = 48, 4096
    probs = realistic_probs(rows, vocab, "reproducible")
    ks = np.tile(np.array([0, 5, 50, 1], np.int64), rows // 4)
    ps = np.tile(np.array([0.9, 1.0, 0.7, 0.5], F32), rows // 4)
    dev, k_arg, p_arg = lib.to_device(probs), lib.to_device(ks), lib.to_device(ps)
    first = draw(lib, dev, k_arg, p_arg, seed=7, offset=3)
    np.testing.assert_array_equal(draw(lib, dev, k_arg, p_arg, seed=7, offset=3), first)
    assert (draw(lib, dev, k_arg, p_arg, seed=8, offset=3) != first).any()
    assert (draw(lib, dev, k_arg, p_arg, seed=7, offset=4) != first).any()
    # A row's token depends on (seed, offset, row index, its own probabilities) only.
    others = probs.copy()
    others[1::2] = realistic_probs(rows, vocab, "other rows")[1::2]
    mixed = draw(lib, lib.to_device(others), k_arg, p_arg, seed=7, offset=3)
    np.testing.assert_array_equal(mixed[0::2], first[0::2])
    # Block-size and alignment independence: the scalar path visits the row in the same index
    # order; only fp32 rounding of prefix sums differs (a draw within ~1e-7 of a cumulative
    # boundary could flip; at V = 4096 that is ~0.1 % of draws).
    unaligned = draw(lib, misaligned(lib, probs), k_arg, p_arg, seed=7, offset=3)
    assert np.count_nonzero(unaligned != first) <= 2


def test_sampling_special_rows(tensor_lib: TensorLib) -> None:
    lib = tensor_lib
    vocab = 1000
    rng = rng_for("special")
    probs = softmax_rows(rng, 6, vocab, 3.0)
    probs[1] = 0.0
    probs[1, 777] = 1.0                 # one-hot
    probs[2] = 0.0                      # no positive entry: token 0
    probs[3] = F32(1.0 / vocab)         # flat: everything ties, every token is allowed
    dev = lib.to_device(probs)
    argmax = np.argmax(probs, axis=1)
    for seed in range(8):
        greedy = draw(lib, dev, 1, 1.0, seed)          # top_k 1 without a tie: the argmax
        np.testing.assert_array_equal(greedy[[0, 1, 2, 4, 5]],
                                      [argmax[0], 777, 0, argmax[4], argmax[5]])
        nucleus = draw(lib, dev, 0, 1e-6, seed)        # tiny top_p: the argmax too
        np.testing.assert_array_equal(nucleus[[0, 1, 4, 5]], [argmax[0], 777, argmax[4], argmax[5]])
    flat_draws = {int(draw(lib, dev, 1, 0.1, seed)[3]) for seed in range(16)}
    assert len(flat_draws) > 1


def test_sampling_fastdeploy_published_case(tensor_lib: TensorLib) -> None:
    # FastDeploy's test: B 10, V 103424, uniform probabilities, top_p 0.8, top_k 20 (uniform rows
    # tie everywhere, so nothing is excluded); range, int64 and more than one distinct token.
    lib = tensor_lib
    rows, vocab = 10, 103424
    probs = lib.to_device(np.full((rows, vocab), 1 / vocab, F32))
    top_p = lib.to_device(np.full((rows, 1), 0.8, F32))
    top_k = lib.to_device(np.full((rows, 1), 20, np.int64))
    for seed in (1024, 2033, 2033):
        samples = draw(lib, probs, top_k, top_p, seed)
        assert samples.shape == (rows,)
        assert ((samples >= 0) & (samples < vocab)).all()
        assert np.unique(samples).size > 1
    # Per-row top_p in [0.1, 1) as in the upstream test.
    per_row = lib.to_device(rng_for("fd").uniform(0.1, 1.0, (rows, 1)).astype(F32))
    samples = draw(lib, probs, 0, per_row, 5)
    assert ((samples >= 0) & (samples < vocab)).all()


def test_sampling_out_argument_int32_top_k_and_zero_rows(tensor_lib: TensorLib) -> None:
    lib = tensor_lib
    probs = realistic_probs(8, 2048, "out")
    dev = lib.to_device(probs)
    ks = np.array([3, 0, 7, 1, 2, 9, 4, 5])
    want = draw(lib, dev, lib.to_device(ks.astype(np.int64)), 0.9, 11)
    got32 = draw(lib, dev, lib.to_device(ks.astype(np.int32)), 0.9, 11)
    np.testing.assert_array_equal(got32, want)
    out = lib.empty((8,), "int64")
    assert sampling.top_k_top_p_sampling_from_probs(dev, lib.to_device(ks), 0.9, 11, out=out) is out
    np.testing.assert_array_equal(lib.from_device(out), want)
    no_rows = lib.to_device(np.zeros((0, 64), F32))
    empty = sampling.top_k_top_p_sampling_from_probs(no_rows, 5, 0.5, 1)
    assert lib.from_device(empty).shape == (0,)


# ---------------------------------------------------------------------------------------------
# Bad inputs: each raises before any launch, naming the op and the argument.

B, V = 4, 256
TK, TP = "top_k_renorm_probs", "top_p_renorm_probs"


@dataclass(frozen=True)
class Case:
    error: type[Exception]
    op: str
    arg: str
    call: Callable[[TensorLib], Any]


def dev(lib: TensorLib, shape: tuple[int, ...], dtype: str = "float32", value: float = 0.25) -> Any:
    return lib.to_device(np.full(shape, value, dtype=np.float64).astype(dtype))


def transposed(lib: TensorLib, shape: tuple[int, int], dtype: str = "float32") -> Any:
    return dev(lib, shape[::-1], dtype).T


def strided(lib: TensorLib, rows: int, dtype: str) -> Any:
    """A non-contiguous ``[rows]`` view."""
    return dev(lib, (2 * rows,), dtype, 1)[::2]


def topk(lib: TensorLib, *, probs: Any = None, top_k: Any = 5, out: Any = None) -> Any:
    probs = dev(lib, (B, V)) if probs is None else probs
    top_k = top_k(lib) if callable(top_k) else top_k
    return sampling.top_k_renorm_probs(probs, top_k, out=out(lib) if callable(out) else out)


def topp(lib: TensorLib, *, probs: Any = None, top_p: Any = 0.5, out: Any = None) -> Any:
    probs = dev(lib, (B, V)) if probs is None else probs
    top_p = top_p(lib) if callable(top_p) else top_p
    return sampling.top_p_renorm_probs(probs, top_p, out=out(lib) if callable(out) else out)


def sample(lib: TensorLib, *, probs: Any = None, top_k: Any = 5, top_p: Any = 0.5,
           seed: Any = 0, offset: Any = 0, out: Any = None) -> Any:
    probs = dev(lib, (B, V)) if probs is None else probs
    top_k = top_k(lib) if callable(top_k) else top_k
    top_p = top_p(lib) if callable(top_p) else top_p
    return sampling.top_k_top_p_sampling_from_probs(probs, top_k, top_p, seed, offset,
                                                    out=out(lib) if callable(out) else out)


CASES = {
    # top_k_renorm_probs
    "tk-probs-fp16": Case(TypeError, TK, "probs",
        lambda l: topk(l, probs=dev(l, (B, V), "float16"))),
    "tk-probs-fp64": Case(TypeError, TK, "probs",
        lambda l: topk(l, probs=dev(l, (B, V), "float64"))),
    "tk-probs-1d": Case(ValueError, TK, "probs", lambda l: topk(l, probs=dev(l, (V,)))),
    "tk-probs-3d": Case(ValueError, TK, "probs", lambda l: topk(l, probs=dev(l, (1, B, V)))),
    "tk-probs-no-columns": Case(ValueError, TK, "probs", lambda l: topk(l, probs=dev(l, (B, 0)))),
    "tk-probs-noncontiguous": Case(ValueError, TK, "probs",
        lambda l: topk(l, probs=transposed(l, (B, V)))),
    "tk-probs-cpu": Case(ValueError, TK, "probs", lambda l: topk(l, probs=np.zeros((B, V), F32))),
    "tk-top_k-negative": Case(ValueError, TK, "top_k", lambda l: topk(l, top_k=-1)),
    "tk-top_k-float": Case(TypeError, TK, "top_k", lambda l: topk(l, top_k=2.5)),
    "tk-top_k-fp32-tensor": Case(TypeError, TK, "top_k",
        lambda l: topk(l, top_k=lambda l: dev(l, (B,)))),
    "tk-top_k-rows": Case(ValueError, TK, "top_k",
        lambda l: topk(l, top_k=lambda l: dev(l, (B + 1,), "int64"))),
    "tk-top_k-2-columns": Case(ValueError, TK, "top_k",
        lambda l: topk(l, top_k=lambda l: dev(l, (B, 2), "int64"))),
    "tk-top_k-noncontiguous": Case(ValueError, TK, "top_k",
        lambda l: topk(l, top_k=lambda l: strided(l, B, "int64"))),
    "tk-top_k-cpu": Case(ValueError, TK, "top_k", lambda l: topk(l, top_k=np.ones(B, np.int64))),
    "tk-out-fp16": Case(TypeError, TK, "renorm_probs",
        lambda l: topk(l, out=lambda l: dev(l, (B, V), "float16"))),
    "tk-out-shape": Case(ValueError, TK, "renorm_probs",
        lambda l: topk(l, out=lambda l: dev(l, (B, V + 1)))),
    "tk-out-rows": Case(ValueError, TK, "renorm_probs",
        lambda l: topk(l, out=lambda l: dev(l, (B + 1, V)))),
    "tk-out-noncontiguous": Case(ValueError, TK, "renorm_probs",
        lambda l: topk(l, out=lambda l: transposed(l, (B, V)))),
    "tk-out-cpu": Case(ValueError, TK, "renorm_probs",
        lambda l: topk(l, out=np.zeros((B, V), F32))),
    # top_p_renorm_probs
    "tp-probs-fp16": Case(TypeError, TP, "probs",
        lambda l: topp(l, probs=dev(l, (B, V), "float16"))),
    "tp-probs-1d": Case(ValueError, TP, "probs", lambda l: topp(l, probs=dev(l, (V,)))),
    "tp-probs-noncontiguous": Case(ValueError, TP, "probs",
        lambda l: topp(l, probs=transposed(l, (B, V)))),
    "tp-probs-cpu": Case(ValueError, TP, "probs", lambda l: topp(l, probs=np.zeros((B, V), F32))),
    "tp-top_p-zero": Case(ValueError, TP, "top_p", lambda l: topp(l, top_p=0.0)),
    "tp-top_p-above-1": Case(ValueError, TP, "top_p", lambda l: topp(l, top_p=1.5)),
    "tp-top_p-nan": Case(ValueError, TP, "top_p", lambda l: topp(l, top_p=float("nan"))),
    "tp-top_p-str": Case(TypeError, TP, "top_p", lambda l: topp(l, top_p="0.5")),
    "tp-top_p-fp64-tensor": Case(TypeError, TP, "top_p",
        lambda l: topp(l, top_p=lambda l: dev(l, (B,), "float64"))),
    "tp-top_p-int-tensor": Case(TypeError, TP, "top_p",
        lambda l: topp(l, top_p=lambda l: dev(l, (B,), "int64"))),
    "tp-top_p-rows": Case(ValueError, TP, "top_p",
        lambda l: topp(l, top_p=lambda l: dev(l, (B - 1,)))),
    "tp-top_p-cpu": Case(ValueError, TP, "top_p", lambda l: topp(l, top_p=np.ones(B, F32))),
    "tp-out-int64": Case(TypeError, TP, "renorm_probs",
        lambda l: topp(l, out=lambda l: dev(l, (B, V), "int64"))),
    "tp-out-shape": Case(ValueError, TP, "renorm_probs",
        lambda l: topp(l, out=lambda l: dev(l, (B, V - 1)))),
    # top_k_top_p_sampling_from_probs
    "s-probs-fp16": Case(TypeError, SAMPLE, "probs",
        lambda l: sample(l, probs=dev(l, (B, V), "float16"))),
    "s-probs-3d": Case(ValueError, SAMPLE, "probs", lambda l: sample(l, probs=dev(l, (1, B, V)))),
    "s-probs-no-columns": Case(ValueError, SAMPLE, "probs",
        lambda l: sample(l, probs=dev(l, (B, 0)))),
    "s-probs-noncontiguous": Case(ValueError, SAMPLE, "probs",
        lambda l: sample(l, probs=transposed(l, (B, V)))),
    "s-probs-cpu": Case(ValueError, SAMPLE, "probs",
        lambda l: sample(l, probs=np.zeros((B, V), F32))),
    "s-top_k-negative": Case(ValueError, SAMPLE, "top_k", lambda l: sample(l, top_k=-3)),
    "s-top_k-fp32-tensor": Case(TypeError, SAMPLE, "top_k",
        lambda l: sample(l, top_k=lambda l: dev(l, (B,)))),
    "s-top_k-rows": Case(ValueError, SAMPLE, "top_k",
        lambda l: sample(l, top_k=lambda l: dev(l, (B - 1, 1), "int64"))),
    "s-top_k-cpu": Case(ValueError, SAMPLE, "top_k",
        lambda l: sample(l, top_k=np.ones((B, 1), np.int64))),
    "s-top_p-zero": Case(ValueError, SAMPLE, "top_p", lambda l: sample(l, top_p=0.0)),
    "s-top_p-negative": Case(ValueError, SAMPLE, "top_p", lambda l: sample(l, top_p=-0.5)),
    "s-top_p-fp16-tensor": Case(TypeError, SAMPLE, "top_p",
        lambda l: sample(l, top_p=lambda l: dev(l, (B,), "float16"))),
    "s-top_p-rows": Case(ValueError, SAMPLE, "top_p",
        lambda l: sample(l, top_p=lambda l: dev(l, (B + 2,)))),
    "s-top_p-noncontiguous": Case(ValueError, SAMPLE, "top_p",
        lambda l: sample(l, top_p=lambda l: strided(l, B, "float32"))),
    "s-seed-negative": Case(ValueError, SAMPLE, "seed", lambda l: sample(l, seed=-1)),
    "s-seed-too-large": Case(ValueError, SAMPLE, "seed", lambda l: sample(l, seed=2**64)),
    "s-seed-float": Case(TypeError, SAMPLE, "seed", lambda l: sample(l, seed=1.0)),
    "s-offset-negative": Case(ValueError, SAMPLE, "offset", lambda l: sample(l, offset=-5)),
    "s-out-int32": Case(TypeError, SAMPLE, "samples",
        lambda l: sample(l, out=lambda l: dev(l, (B,), "int32"))),
    "s-out-column": Case(ValueError, SAMPLE, "samples",
        lambda l: sample(l, out=lambda l: dev(l, (B, 1), "int64"))),
    "s-out-rows": Case(ValueError, SAMPLE, "samples",
        lambda l: sample(l, out=lambda l: dev(l, (B + 1,), "int64"))),
    "s-out-noncontiguous": Case(ValueError, SAMPLE, "samples",
        lambda l: sample(l, out=lambda l: strided(l, B, "int64"))),
    "s-out-cpu": Case(ValueError, SAMPLE, "samples",
        lambda l: sample(l, out=np.zeros(B, np.int64))),
}


@pytest.mark.parametrize("name", CASES)
def test_sampling_rejects(tensor_lib: TensorLib, name: str) -> None:
    case = CASES[name]
    with pytest.raises(case.error) as raised:
        case.call(tensor_lib)
    message = str(raised.value)
    # Not just any mention: nanobind's own "incompatible function arguments" lists every name.
    assert message.startswith(f"{case.op}: argument '{case.arg}' "), message


def test_renorm_never_converts_the_output(tensor_lib: TensorLib) -> None:
    out = dev(tensor_lib, (B, V), "float64", 3.0)
    with pytest.raises(TypeError, match=f"{TK}: argument 'renorm_probs'"):
        topk(tensor_lib, out=out)
    np.testing.assert_array_equal(tensor_lib.from_device(out), np.full((B, V), 3.0))
