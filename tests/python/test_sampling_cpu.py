"""The sampling references against hand-computed cases and FastDeploy's published cases, the
Philox reference against the Random123 known-answer vectors, and the sampling ops' argument
validation through the real sm70 module with numpy inputs (no GPU)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import _manifest, sampling
from fastdeploy_ops import reference as ref
from fastdeploy_ops.reference.sampling import fixed_mass

F32 = np.float32
ROW = np.array([[0.1, 0.3, 0.4, 0.2]], F32)  # the worked example of ops/sampling/README.md


# ---------------------------------------------------------------------------------------------
# top_k_renorm_probs


def test_top_k_renorm_published_cases() -> None:
    # FastDeploy: k 1 leaves one non-zero entry summing to 1; k = V returns the input.
    np.testing.assert_array_equal(ref.top_k_renorm_probs(ROW, 1), [[0, 0, 1, 0]])
    np.testing.assert_array_equal(ref.top_k_renorm_probs(ROW, 4), ROW)
    # V 5, k 2: entries outside the top 2 are zero and the row sums to 1.
    five = np.array([[0.05, 0.35, 0.1, 0.25, 0.25]], F32)
    out = ref.top_k_renorm_probs(five, np.array([2]))
    assert np.count_nonzero(out) == 3  # 0.25 ties at the 2nd value: both survive
    np.testing.assert_allclose(out, [[0, 0.35 / 0.85, 0, 0.25 / 0.85, 0.25 / 0.85]], rtol=1e-6)


def test_top_k_renorm_hand_cases() -> None:
    np.testing.assert_allclose(ref.top_k_renorm_probs(ROW, 2), [[0, 3 / 7, 4 / 7, 0]], rtol=1e-6)
    np.testing.assert_array_equal(ref.top_k_renorm_probs(ROW, 0), ROW)  # 0 means V
    np.testing.assert_array_equal(ref.top_k_renorm_probs(ROW, 9), ROW)  # k > V
    ties = np.array([[0.2, 0.3, 0.3, 0.2]], F32)
    np.testing.assert_allclose(ref.top_k_renorm_probs(ties, 1), [[0, 0.5, 0.5, 0]], rtol=1e-6)
    np.testing.assert_allclose(ref.top_k_renorm_probs(ties, 3), ties, rtol=1e-6)  # all 4 kept
    # Fewer than k positive entries: v_k = 0, copied unscaled (even though it is not normalised).
    sparse = np.array([[0.5, 0.0, 0.25, 0.0, 0.0]], F32)
    np.testing.assert_array_equal(ref.top_k_renorm_probs(sparse, 3), sparse)
    # Per-row values, [B] or [B, 1].
    rows = np.concatenate([ROW, ROW])
    out = ref.top_k_renorm_probs(rows, np.array([[1], [4]]))
    np.testing.assert_array_equal(out, [[0, 0, 1, 0], ROW[0]])


# ---------------------------------------------------------------------------------------------
# top_p_renorm_probs


def test_top_p_renorm_hand_cases() -> None:
    # Greater masses: 0.4 -> 0, 0.3 -> 0.4, 0.2 -> 0.7, 0.1 -> 0.9.
    np.testing.assert_allclose(ref.top_p_renorm_probs(ROW, 0.5), [[0, 3 / 7, 4 / 7, 0]], rtol=1e-6)
    np.testing.assert_allclose(ref.top_p_renorm_probs(ROW, 0.41), [[0, 3 / 7, 4 / 7, 0]], rtol=1e-6)
    np.testing.assert_allclose(ref.top_p_renorm_probs(ROW, 0.4), [[0, 0, 1, 0]], rtol=1e-6)
    np.testing.assert_allclose(ref.top_p_renorm_probs(ROW, 0.75), [[0, 3 / 9, 4 / 9, 2 / 9]],
                               rtol=1e-6)
    np.testing.assert_allclose(ref.top_p_renorm_probs(ROW, 1.0), ROW, rtol=1e-6)
    # The maximum is always kept, also for top_p <= 0.
    np.testing.assert_array_equal(ref.top_p_renorm_probs(np.concatenate([ROW, ROW]), [0.0, -1.0]),
                                  [[0, 0, 1, 0]] * 2)
    # Ties are kept together.
    ties = np.array([[0.3, 0.3, 0.2, 0.2]], F32)
    np.testing.assert_allclose(ref.top_p_renorm_probs(ties, 0.3), [[0.5, 0.5, 0, 0]], rtol=1e-6)
    np.testing.assert_allclose(ref.top_p_renorm_probs(ties, 0.61), ties, rtol=1e-6)


def test_top_p_renorm_compares_exact_fixed_point_masses() -> None:
    # Dyadic values: the mass above each 0.25 is exactly 0.5, which is not below top_p = 0.5.
    row = np.array([[0.5, 0.25, 0.25]], F32)
    np.testing.assert_array_equal(ref.top_p_renorm_probs(row, 0.5), [[1, 0, 0]])
    np.testing.assert_array_equal(ref.top_p_renorm_probs(row, np.nextafter(F32(0.5), F32(1))), row)
    # Masses are truncated to 2**-40: 2**-41 weighs nothing, 3 * 2**-41 weighs 2**-40.
    assert fixed_mass([2.0**-41, 3 * 2.0**-41, 1.0, 2.0, -1.0, np.nan]).tolist() == [
        0, 1, 2**40, 2**40, 0, 0]


# ---------------------------------------------------------------------------------------------
# The sampler's target set and distribution


def test_allowed_set_and_distribution() -> None:
    allowed = lambda k, p, **kw: ref.top_k_top_p_allowed_set(ROW, k, p, **kw)[0].tolist()
    assert allowed(2, 1.0) == [False, True, True, False]
    assert allowed(0, 0.5) == [False, True, True, False]
    assert allowed(3, 0.6) == [False, True, True, False]  # top-p binds
    assert allowed(2, 0.95) == [False, True, True, False]  # top-k binds
    assert allowed(0, 1.0) == [True] * 4
    assert allowed(1, 0.0) == [False, False, True, False]  # the maximum always
    assert allowed(0, 0.7) == [False, True, True, False]
    assert allowed(0, 0.7, top_p_slack=1e-6) == [False, True, True, True]  # 0.7 + slack
    flat = np.full((1, 8), 0.125, F32)
    assert ref.top_k_top_p_allowed_set(flat, 1, 0.1).all()  # everything ties the maximum
    dist = ref.top_k_top_p_distribution(ROW, 0, 0.5)
    np.testing.assert_allclose(dist, [[0, 3 / 7, 4 / 7, 0]], rtol=1e-6)
    zero = ref.top_k_top_p_distribution(np.zeros((1, 4), F32), 2, 0.5)
    np.testing.assert_array_equal(zero, np.zeros((1, 4)))


def test_philox_matches_random123_known_answers() -> None:
    # Random123 kat_vectors, philox4x32 with 10 rounds: (counter, key) -> output.
    cases = [
        ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
         [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
    ]
    for counter, key, want in cases:
        assert ref.philox4x32_10(counter, key).tolist() == want
    batch = ref.philox4x32_10([c for c, _, _ in cases], [k for _, k, _ in cases])
    assert batch.tolist() == [w for _, _, w in cases]


def test_sampling_uniform_layout() -> None:
    seed, offset = (7 << 32) | 5, (3 << 32) | 9
    u = ref.sampling_uniform(seed, offset, [0, 1, 2], 4)
    words = ref.philox4x32_10([[4, r, 9, 3] for r in range(3)], [[5, 7]] * 3)[:, 0]
    np.testing.assert_array_equal(u, (words >> 8).astype(np.float64) / 2**24)
    assert u.dtype == np.float32 and ((u >= 0) & (u < 1)).all()
    many = ref.sampling_uniform(1, 0, np.arange(20000))
    assert abs(float(many.mean()) - 0.5) < 0.01 and len(np.unique(many)) > 19900


# ---------------------------------------------------------------------------------------------
# Validation through the sm70 module (numpy inputs reach the binding; no GPU)


B, V = 4, 64
TK, TP, S = "top_k_renorm_probs", "top_p_renorm_probs", "top_k_top_p_sampling_from_probs"


def f32(*shape: int) -> np.ndarray:
    return np.full(shape, 1 / V, dtype=np.float32)


def arr(dtype: str, *shape: int) -> np.ndarray:
    return np.ones(shape, dtype=dtype)


# name: (error, op, argument named, call); names ending in -cpu pass every check but the device.
CASES: dict[str, tuple[type[Exception], str, str, Callable[[], Any]]] = {
    "tk-probs-fp16": (TypeError, TK, "probs",
        lambda: sampling.top_k_renorm_probs(arr("float16", B, V), 5)),
    "tk-probs-1d": (ValueError, TK, "probs", lambda: sampling.top_k_renorm_probs(f32(V), 5)),
    "tk-probs-empty-vocab": (ValueError, TK, "probs",
        lambda: sampling.top_k_renorm_probs(f32(B, 0), 5)),
    "tk-top_k-negative": (ValueError, TK, "top_k",
        lambda: sampling.top_k_renorm_probs(f32(B, V), -1)),
    "tk-top_k-float": (TypeError, TK, "top_k", lambda: sampling.top_k_renorm_probs(f32(B, V), 1.5)),
    "tk-top_k-fp32": (TypeError, TK, "top_k",
        lambda: sampling.top_k_renorm_probs(f32(B, V), f32(B))),
    "tk-top_k-rows": (ValueError, TK, "top_k",
        lambda: sampling.top_k_renorm_probs(f32(B, V), arr("int64", B + 1))),
    "tk-top_k-columns": (ValueError, TK, "top_k",
        lambda: sampling.top_k_renorm_probs(f32(B, V), arr("int64", B, 2))),
    "tk-out-fp64": (TypeError, TK, "renorm_probs",
        lambda: sampling.top_k_renorm_probs(f32(B, V), 5, out=arr("float64", B, V))),
    "tk-out-shape": (ValueError, TK, "renorm_probs",
        lambda: sampling.top_k_renorm_probs(f32(B, V), 5, out=f32(B, V + 1))),
    "tk-cpu": (ValueError, TK, "probs", lambda: sampling.top_k_renorm_probs(f32(B, V), 5)),
    "tk-column-int32-cpu": (ValueError, TK, "probs",
        lambda: sampling.top_k_renorm_probs(f32(B, V), arr("int32", B, 1))),
    "tp-probs-int64": (TypeError, TP, "probs",
        lambda: sampling.top_p_renorm_probs(arr("int64", B, V), 0.5)),
    "tp-probs-3d": (ValueError, TP, "probs",
        lambda: sampling.top_p_renorm_probs(f32(1, B, V), 0.5)),
    "tp-top_p-zero": (ValueError, TP, "top_p", lambda: sampling.top_p_renorm_probs(f32(B, V), 0.0)),
    "tp-top_p-above-one": (ValueError, TP, "top_p",
        lambda: sampling.top_p_renorm_probs(f32(B, V), 1.01)),
    "tp-top_p-nan": (ValueError, TP, "top_p",
        lambda: sampling.top_p_renorm_probs(f32(B, V), float("nan"))),
    "tp-top_p-fp64": (TypeError, TP, "top_p",
        lambda: sampling.top_p_renorm_probs(f32(B, V), arr("float64", B))),
    "tp-top_p-rows": (ValueError, TP, "top_p",
        lambda: sampling.top_p_renorm_probs(f32(B, V), f32(B - 1))),
    "tp-out-int32": (TypeError, TP, "renorm_probs",
        lambda: sampling.top_p_renorm_probs(f32(B, V), 0.5, out=arr("int32", B, V))),
    "tp-cpu": (ValueError, TP, "probs", lambda: sampling.top_p_renorm_probs(f32(B, V), 1.0)),
    "tp-tensor-cpu": (ValueError, TP, "probs",
        lambda: sampling.top_p_renorm_probs(f32(B, V), f32(B, 1))),
    "s-probs-fp64": (TypeError, S, "probs",
        lambda: sampling.top_k_top_p_sampling_from_probs(arr("float64", B, V), 5, 0.5, 0)),
    "s-probs-1d": (ValueError, S, "probs",
        lambda: sampling.top_k_top_p_sampling_from_probs(f32(V), 5, 0.5, 0)),
    "s-top_k-negative": (ValueError, S, "top_k",
        lambda: sampling.top_k_top_p_sampling_from_probs(f32(B, V), -2, 0.5, 0)),
    "s-top_k-rows": (ValueError, S, "top_k",
        lambda: sampling.top_k_top_p_sampling_from_probs(f32(B, V), arr("int64", 2 * B), 0.5, 0)),
    "s-top_p-negative": (ValueError, S, "top_p",
        lambda: sampling.top_k_top_p_sampling_from_probs(f32(B, V), 5, -0.1, 0)),
    "s-top_p-fp16": (TypeError, S, "top_p",
        lambda: sampling.top_k_top_p_sampling_from_probs(f32(B, V), 5, arr("float16", B), 0)),
    "s-seed-negative": (ValueError, S, "seed",
        lambda: sampling.top_k_top_p_sampling_from_probs(f32(B, V), 5, 0.5, -1)),
    "s-seed-2**64": (ValueError, S, "seed",
        lambda: sampling.top_k_top_p_sampling_from_probs(f32(B, V), 5, 0.5, 2**64)),
    "s-seed-str": (TypeError, S, "seed",
        lambda: sampling.top_k_top_p_sampling_from_probs(f32(B, V), 5, 0.5, "1")),
    "s-offset-negative": (ValueError, S, "offset",
        lambda: sampling.top_k_top_p_sampling_from_probs(f32(B, V), 5, 0.5, 1, -1)),
    "s-out-int32": (TypeError, S, "samples",
        lambda: sampling.top_k_top_p_sampling_from_probs(f32(B, V), 5, 0.5, 1,
                                                         out=arr("int32", B))),
    "s-out-column": (ValueError, S, "samples",
        lambda: sampling.top_k_top_p_sampling_from_probs(f32(B, V), 5, 0.5, 1,
                                                         out=arr("int64", B, 1))),
    "s-cpu": (ValueError, S, "probs",
        lambda: sampling.top_k_top_p_sampling_from_probs(f32(B, V), 5, 0.5, 2**64 - 1, 2**63)),
    "s-tensors-cpu": (ValueError, S, "probs",
        lambda: sampling.top_k_top_p_sampling_from_probs(f32(B, V), arr("int32", B),
                                                         f32(B, 1), 3)),
}


@pytest.mark.usefixtures("sm70")
@pytest.mark.parametrize("name", CASES)
def test_sampling_rejects_through_the_sm70_module(name: str, rejects: Callable[..., str]) -> None:
    message = rejects(*CASES[name])
    assert ("CUDA" in message) == name.endswith("-cpu"), message


@pytest.mark.usefixtures("sm70")
def test_zero_rows_are_validated_then_skipped() -> None:
    # B = 0 numpy inputs still reach the device check (nothing is launched either way).
    with pytest.raises(ValueError, match=f"{S}: argument 'probs' must be a CUDA tensor"):
        sampling.top_k_top_p_sampling_from_probs(f32(0, V), 5, 0.5, 0)


def test_sm70_module_declares_the_sampling_ops(compiled_modules: object) -> None:
    manifests = _manifest.read_manifests(compiled_modules)
    for sm in (70, 80):
        family = manifests[sm].families["sampling"]
        assert family.min_sm == 70
        assert sorted(family.ops) == sorted([S, TK, TP])
