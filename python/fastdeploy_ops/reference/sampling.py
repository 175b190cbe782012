"""References for the ``sampling`` family (semantics: ``ops/sampling/README.md``).

Inputs are ``[B, V]`` float32 probabilities (normalised rows are a precondition of the ops, not
of these functions), ``top_k`` as an int or ``[B]`` / ``[B, 1]`` ints, ``top_p`` as a float or
``[B]`` / ``[B, 1]`` floats (rounded to float32 like the ops' fp32 attributes). Nothing is
modified in place.

Rules shared with the kernels:

- ``top_k <= 0`` or ``top_k >= V`` imposes no top-k limit; ``top_p >= 1`` no top-p limit.
- Ties are kept together: the top-k rule keeps ``p_i`` iff fewer than ``k`` entries are
  strictly greater, the top-p rule iff the mass strictly greater is below ``top_p``. The entries
  with nothing above them (the maximum and its ties) are always kept, also for ``top_p <= 0``.
- :func:`top_p_renorm_probs` measures mass as the kernel does: each probability truncated to a
  multiple of ``2**-40`` and summed exactly (integers), so its kept set is reproduced exactly.
  The sampler's reference (:func:`top_k_top_p_allowed_set`) uses float64 sums instead, with an
  optional slack, because the kernel decides membership with fp32 sums.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "fixed_mass",
    "philox4x32_10",
    "sampling_uniform",
    "top_k_renorm_probs",
    "top_k_top_p_allowed_set",
    "top_k_top_p_distribution",
    "top_p_renorm_probs",
]

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
_FIXED_SCALE = 2.0**40
_MIN_SUM = np.float32(1e-8)


def _probs(probs: ArrayLike) -> F32:
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim != 2:
        raise ValueError(f"probs must be [B, V], got shape {list(p.shape)}")
    return p


def _per_row(values: ArrayLike, rows: int, dtype: type) -> NDArray:
    """A scalar or ``[B]`` / ``[B, 1]`` array as ``[B]`` of ``dtype``."""
    v = np.asarray(values)
    if v.ndim == 0:
        return np.full(rows, v, dtype=dtype)
    v = v.reshape(-1)
    if v.shape[0] != rows:
        raise ValueError(f"expected {rows} per-row values, got {v.shape[0]}")
    return v.astype(dtype)


def _greater_stats(row: NDArray, masses: NDArray) -> tuple[I64, NDArray]:
    """Per entry of ``row``: how many entries are strictly greater, and the sum of their
    ``masses`` (exact for integer masses, float64 otherwise)."""
    order = np.argsort(-row, kind="stable")
    ranked = row[order]
    starts = np.ones(ranked.shape[0], dtype=bool)
    starts[1:] = ranked[1:] != ranked[:-1]
    run_start = np.maximum.accumulate(np.where(starts, np.arange(ranked.shape[0]), 0))
    before = np.concatenate([np.zeros(1, dtype=masses.dtype), np.cumsum(masses[order])[:-1]])
    count = np.empty(row.shape[0], dtype=np.int64)
    mass = np.empty(row.shape[0], dtype=masses.dtype)
    count[order] = run_start
    mass[order] = before[run_start]
    return count, mass


def fixed_mass(p: ArrayLike) -> NDArray[np.uint64]:
    """The kernels' 2**-40 fixed-point mass of each probability (truncated, clamped to [0, 1])."""
    p = np.asarray(p, dtype=np.float32).astype(np.float64)
    scaled = np.floor(np.clip(np.nan_to_num(p, nan=0.0), 0.0, 1.0) * _FIXED_SCALE)
    return scaled.astype(np.uint64)


def top_k_renorm_probs(probs: ArrayLike, top_k: ArrayLike) -> F32:
    """Keep every ``p >= v_k`` (``v_k`` the k-th largest, ties kept), zero the rest, and scale
    the kept entries by ``1 / max(sum kept, 1e-8)`` (fp32). Rows with ``k <= 0``, ``k >= V`` or
    a non-positive ``v_k`` (fewer than k positive entries) are returned unchanged."""
    p = _probs(probs)
    rows, vocab = p.shape
    ks = _per_row(top_k, rows, np.int64)
    out = p.copy()
    for b in range(rows):
        k = int(ks[b])
        if k <= 0 or k >= vocab:
            continue
        v_k = np.partition(p[b], vocab - k)[vocab - k]
        if not v_k > 0:
            continue
        kept = p[b] >= v_k
        total = np.float32(p[b][kept].sum(dtype=np.float64))
        inv = np.float32(1.0) / max(total, _MIN_SUM)
        out[b] = np.where(kept, p[b] * inv, np.float32(0.0))
    return out


def top_p_renorm_probs(probs: ArrayLike, top_p: ArrayLike) -> F32:
    """Keep ``p_i`` iff the mass strictly greater is below ``top_p`` (ties kept together; the
    maximum always), zero the rest, and scale the kept entries by ``1 / max(sum kept, 1e-8)``.
    Mass is compared in the kernel's fixed point (module docstring). ``top_p >= 1`` keeps all."""
    p = _probs(probs)
    rows, _ = p.shape
    tps = _per_row(top_p, rows, np.float32)
    out = np.empty_like(p)
    for b in range(rows):
        tp = float(tps[b])
        if tp >= 1.0:
            kept = np.ones(p.shape[1], dtype=bool)
        else:
            limit = np.uint64(np.ceil(tp * _FIXED_SCALE)) if tp > 0 else np.uint64(0)
            count, mass = _greater_stats(p[b], fixed_mass(p[b]))
            kept = (count == 0) | (mass < limit)
        total = np.float32(p[b][kept].sum(dtype=np.float64))
        inv = np.float32(1.0) / max(total, _MIN_SUM)
        out[b] = np.where(kept, p[b] * inv, np.float32(0.0))
    return out


def top_k_top_p_allowed_set(probs: ArrayLike, top_k: ArrayLike, top_p: ArrayLike, *,
                            top_p_slack: float = 0.0) -> NDArray[np.bool_]:
    """``[B, V]`` mask of the tokens the sampler may draw from: ``#{p_j > p_i} < k`` and
    ``sum{p_j > p_i} < top_p + top_p_slack`` (float64 sums), or nothing above ``p_i``.

    A positive slack gives a superset (every token the kernel may accept despite fp32 rounding),
    a negative one a subset (tokens it must accept)."""
    p = _probs(probs)
    rows, vocab = p.shape
    ks = _per_row(top_k, rows, np.int64)
    tps = _per_row(top_p, rows, np.float32)
    allowed = np.empty(p.shape, dtype=bool)
    for b in range(rows):
        count, mass = _greater_stats(p[b], p[b].astype(np.float64))
        ok = np.ones(vocab, dtype=bool)
        if 0 < ks[b] < vocab:
            ok &= count < ks[b]
        if not float(tps[b]) >= 1.0:
            ok &= mass < float(tps[b]) + top_p_slack
        allowed[b] = ok | (count == 0)
    return allowed


def top_k_top_p_distribution(probs: ArrayLike, top_k: ArrayLike, top_p: ArrayLike) -> F64:
    """The sampler's target distribution: ``p`` restricted to the allowed set, renormalised
    (float64). A row without a positive allowed entry is all zeros (the kernel returns 0)."""
    p = _probs(probs).astype(np.float64)
    allowed = top_k_top_p_allowed_set(probs, top_k, top_p)
    kept = np.where(allowed & (p > 0), p, 0.0)
    totals = kept.sum(axis=1, keepdims=True)
    return np.divide(kept, totals, out=np.zeros_like(kept), where=totals > 0)


_PHILOX_M0, _PHILOX_M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_PHILOX_W0, _PHILOX_W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(counter: ArrayLike, key: ArrayLike) -> NDArray[np.uint32]:
    """Philox4x32-10 of ``counter`` ``[..., 4]`` under ``key`` ``[..., 2]`` (uint32 words),
    as the kernels compute it; returns ``[..., 4]`` uint32."""
    c = np.asarray(counter, dtype=np.uint64) & _MASK32
    k = np.asarray(key, dtype=np.uint64) & _MASK32
    c0, c1, c2, c3 = (c[..., i] for i in range(4))
    k0, k1 = k[..., 0], k[..., 1]
    for r in range(10):
        if r:
            k0 = (k0 + _PHILOX_W0) & _MASK32
            k1 = (k1 + _PHILOX_W1) & _MASK32
        p0 = _PHILOX_M0 * c0
        p1 = _PHILOX_M1 * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & _MASK32,
                          (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & _MASK32)
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def sampling_uniform(seed: int, offset: int, row: ArrayLike, rnd: ArrayLike = 0) -> F32:
    """The uniform of rejection round ``rnd`` of ``row``: Philox4x32-10 with key ``seed`` and
    counter ``(rnd, row, offset)``, first word's top 24 bits over ``2**24``."""
    row = np.asarray(row, dtype=np.uint64)
    rnd = np.broadcast_to(np.asarray(rnd, dtype=np.uint64), row.shape)
    counter = np.stack([rnd, row, np.full(row.shape, offset & 0xFFFFFFFF, dtype=np.uint64),
                        np.full(row.shape, (offset >> 32) & 0xFFFFFFFF, dtype=np.uint64)], axis=-1)
    key = np.broadcast_to(np.array([seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF],
                                   dtype=np.uint64), counter.shape[:-1] + (2,))
    words = philox4x32_10(counter, key)[..., 0]
    return ((words >> np.uint32(8)).astype(np.float64) * 2.0**-24).astype(np.float32)
