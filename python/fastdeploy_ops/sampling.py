"""Sampling ops (family ``sampling``, SM70+): top-k / top-p renormalisation and sorting-free
rejection sampling from the joint top-k / top-p set.

All functions take a ``[B, V]`` float32 tensor of **normalised** probabilities (rows summing to
1 is a precondition, not checked: checking would cost a pass) from any DLPack framework (torch,
paddle, cupy, jax), allocate their outputs with the caller's framework on the input's device,
and run on the caller's current stream without synchronising. Arguments are validated before
launch; a violation raises ``TypeError`` (dtype) or ``ValueError`` (shape, range, device,
layout) naming the op and the argument. With ``B == 0`` the outputs are correctly shaped empty
tensors and nothing is launched.

Per-row parameters are either a Python scalar (one value for every row) or a tensor of ``B``
values, shaped ``[B]`` or ``[B, 1]``: ``top_k`` int64 or int32, ``top_p`` float32. Scalars are
validated (``top_k >= 0``, ``0 < top_p <= 1``); tensor values live on the GPU and cannot be
checked without a synchronisation, so the kernels give every value a meaning: ``top_k <= 0``
(0 documented, negative tolerated) or ``>= V`` means no top-k limit, ``top_p >= 1`` no top-p
limit, and ``top_p <= 0`` or NaN keeps only the most probable entries (the maximum and its
ties; the kept set is never empty).

Ties are kept together: the top-k rule keeps ``p_i`` iff fewer than ``k`` entries are strictly
greater, the top-p rule iff the mass strictly greater is below ``top_p``.
"""

from __future__ import annotations

import numbers

from ._tensors import Kernel, Tensor, framework_of, kernels_by_op, launch, shape_of, unsigned64_bits

__all__ = ["top_k_renorm_probs", "top_k_top_p_sampling_from_probs", "top_p_renorm_probs"]

FAMILY = "sampling"

# The family's torch operators (fastdeploy_ops._torch_library): each binding's arguments but
# the stream; (a!) marks a tensor the kernel writes.
TORCH_SCHEMAS = {
    Kernel(FAMILY, "top_k_renorm_probs"): (
        "(Tensor probs, Tensor? top_k, int top_k_scalar, Tensor(a!) renorm_probs) -> ()"
    ),
    Kernel(FAMILY, "top_p_renorm_probs"): (
        "(Tensor probs, Tensor? top_p, float top_p_scalar, Tensor(a!) renorm_probs) -> ()"
    ),
    Kernel(FAMILY, "top_k_top_p_sampling_from_probs"): (
        "(Tensor probs, Tensor? top_k, int top_k_scalar, Tensor? top_p, float top_p_scalar, "
        "int seed, int offset, Tensor(a!) samples) -> ()"
    ),
}
_KERNELS = kernels_by_op(TORCH_SCHEMAS)


def _is_tensor(value: object) -> bool:
    return not isinstance(value, (numbers.Number, str, bytes)) and hasattr(value, "shape")


def _top_k(op: str, top_k: int | Tensor) -> tuple[Tensor | None, int]:
    """``(tensor, 0)`` or ``(None, scalar)``; the binding checks both."""
    if type(top_k) is int:  # the usual scalar, without the abstract-class check below
        return None, top_k
    if isinstance(top_k, numbers.Integral):
        return None, int(top_k)
    if _is_tensor(top_k):
        return top_k, 0
    raise TypeError(f"{op}: argument 'top_k' must be an int or an int64/int32 tensor, "
                    f"got {type(top_k).__name__}")


def _top_p(op: str, top_p: float | Tensor) -> tuple[Tensor | None, float]:
    if type(top_p) is float:  # the usual scalar, without the abstract-class check below
        return None, top_p
    if isinstance(top_p, numbers.Real):
        return None, float(top_p)
    if _is_tensor(top_p):
        return top_p, 1.0
    raise TypeError(f"{op}: argument 'top_p' must be a float or a float32 tensor, "
                    f"got {type(top_p).__name__}")


def top_k_renorm_probs(probs: Tensor, top_k: int | Tensor, *, out: Tensor | None = None) -> Tensor:
    """Keep each row's top-k probabilities (ties included) and renormalise them.

    Per row with ``k = top_k[b]``: ``v_k`` is the k-th largest probability; every ``p >= v_k``
    is kept (so more than ``k`` survive on a tie at ``v_k``), the rest become 0, and the kept
    entries are multiplied by ``1 / max(sum kept, 1e-8)`` (fp32). Rows with ``k == 0`` or
    ``k >= V`` are copied unchanged (not renormalised), and so are rows with fewer than ``k``
    positive entries (FastDeploy's pivot never rises there).

    Args:
        probs: ``[B, V]`` float32 normalised probabilities, contiguous, on the GPU.
        top_k: an int ``>= 0`` for every row, or an int64/int32 tensor ``[B]`` or ``[B, 1]``.
        out: optional ``[B, V]`` float32 tensor to write (may be ``probs`` itself).

    Returns:
        ``out``, or a new ``[B, V]`` float32 tensor.

    Kernel: one block per row; an exact radix select of the threshold (three histogram passes
    over the row's 32-bit keys, no sort), then one pass writing the output. Bitwise
    deterministic for a given build.

    Differences from FastDeploy: ``top_k`` may be a scalar or int32; negative tensor values
    mean "no limit" instead of being rejected (they cannot be seen without a sync); ``out=``;
    ``B == 0`` is allowed.
    """
    op = "top_k_renorm_probs"
    kernel = _KERNELS[op]
    framework = framework_of(op, "probs", probs)
    rows, vocab = shape_of(op, "probs", probs, (2,))
    tensor, scalar = _top_k(op, top_k)
    if out is None:
        out = framework.empty(probs, (rows, vocab), "float32")
    launch(framework, kernel, probs, tensor, scalar, out)
    return out


def top_p_renorm_probs(probs: Tensor, top_p: float | Tensor, *,
                       out: Tensor | None = None) -> Tensor:
    """Keep each row's top-p nucleus (ties included) and renormalise it.

    Per row: ``p_i`` is kept iff the mass of the entries strictly greater than ``p_i`` is below
    ``top_p`` (the maximum and its ties always are), the rest become 0, and the kept entries
    are multiplied by ``1 / max(sum kept, 1e-8)``. Example: ``[0.1, 0.3, 0.4, 0.2]`` with
    ``top_p = 0.5`` gives ``[0, 3/7, 4/7, 0]``. Rows with ``top_p >= 1`` keep everything
    (``p / sum(p)``).

    The mass compared with ``top_p`` is the exact sum of the probabilities truncated to
    multiples of ``2**-40`` (within ``V * 2**-40``, 1.4e-7 at V = 152k, of the real sum), so
    the kept set is deterministic and independent of summation order;
    :func:`fastdeploy_ops.reference.top_p_renorm_probs` reproduces it exactly.

    Args:
        probs: ``[B, V]`` float32 normalised probabilities, contiguous, on the GPU.
        top_p: a float in ``(0, 1]`` for every row, or a float32 tensor ``[B]`` or ``[B, 1]``.
        out: optional ``[B, V]`` float32 tensor to write (may be ``probs`` itself).

    Returns:
        ``out``, or a new ``[B, V]`` float32 tensor.

    Kernel: as :func:`top_k_renorm_probs`, with the histogram bins also summing mass.

    Differences: FastDeploy has no such op; this follows FlashInfer's ``top_p_renorm_probs``
    (semantics: ``ops/sampling/README.md``), plus ``out=`` and the per-row value rules of the
    module docstring.
    """
    op = "top_p_renorm_probs"
    kernel = _KERNELS[op]
    framework = framework_of(op, "probs", probs)
    rows, vocab = shape_of(op, "probs", probs, (2,))
    tensor, scalar = _top_p(op, top_p)
    if out is None:
        out = framework.empty(probs, (rows, vocab), "float32")
    launch(framework, kernel, probs, tensor, scalar, out)
    return out


def top_k_top_p_sampling_from_probs(
    probs: Tensor,
    top_k: int | Tensor,
    top_p: float | Tensor,
    seed: int,
    offset: int = 0,
    *,
    out: Tensor | None = None,
) -> Tensor:
    """Draw one token per row from the joint top-k / top-p set, without sorting.

    Token ``i`` of row ``b`` is allowed iff ``#{j: p_j > p_i} < k`` and
    ``sum{p_j > p_i} p_j < top_p`` (both on the original probabilities; ``k == 0`` or
    ``k >= V`` and ``top_p >= 1`` lift the respective limit; the maximum is always allowed),
    and is drawn with probability ``p_i / sum(allowed p)``. Tokens with ``p == 0`` are never
    drawn; a row without a positive entry returns 0.

    Algorithm: dual-pivot rejection sampling in the spirit of FlashInfer's sorting-free
    sampler, one block per row: draw from ``p`` restricted to ``{p > low}`` by inverse CDF
    (index order), accept if the drawn token is allowed (one counting pass), otherwise raise
    ``low`` to the drawn probability or to the midpoint towards the upper pivot and redraw.
    Accepted draws follow the target distribution exactly (up to fp32 rounding of the sums:
    tokens whose greater mass is within ~1e-6 of ``top_p`` may go either way).

    Randomness: the uniform of rejection round ``r`` of row ``b`` is Philox4x32-10 with key
    ``seed`` and counter ``(r, b, offset)`` (:func:`fastdeploy_ops.reference.sampling_uniform`),
    so the same ``(seed, offset)``, row index and probabilities give the same token, whatever the
    batch around the row, the launch configuration or the tensor's alignment (up to fp32 rounding
    of prefix sums, which differ between block sizes only at ~1e-7 of a boundary). Callers that
    need fresh numbers per step advance ``offset`` (or ``seed``).

    Args:
        probs: ``[B, V]`` float32 normalised probabilities, contiguous, on the GPU.
        top_k: an int ``>= 0`` for every row, or an int64/int32 tensor ``[B]`` or ``[B, 1]``.
        top_p: a float in ``(0, 1]`` for every row, or a float32 tensor ``[B]`` or ``[B, 1]``.
        seed: Philox key, an int in ``[0, 2**64)``.
        offset: Philox counter offset, an int in ``[0, 2**64)``.
        out: optional ``[B]`` int64 tensor to write.

    Returns:
        ``out``, or a new ``[B]`` int64 tensor of token ids.

    Differences from FastDeploy's ``rejection_top_p_sampling``: FlashInfer's name and argument
    order (``probs, top_k, top_p``) and its ``[B]`` output (FastDeploy returns ``[B, 1]``);
    ``seed`` is explicit and ``>= 0`` (no ``-1`` "framework generator" mode: no generator state
    is read or advanced) and ``offset`` is an argument; the Philox stream is our own counter
    layout, so tokens differ from curand-based samplers for equal seeds; pivot sums are fp32
    (FastDeploy uses double); scalars are accepted for ``top_k`` / ``top_p``; ``top_k`` may be
    int32; ``out=``; ``B == 0`` is allowed.
    """
    op = "top_k_top_p_sampling_from_probs"
    kernel = _KERNELS[op]
    framework = framework_of(op, "probs", probs)
    rows, _ = shape_of(op, "probs", probs, (2,))
    k_tensor, k_scalar = _top_k(op, top_k)
    p_tensor, p_scalar = _top_p(op, top_p)
    seed = unsigned64_bits(op, "seed", seed)
    offset = unsigned64_bits(op, "offset", offset)
    if out is None:
        out = framework.empty(probs, (rows,), "int64")
    launch(framework, kernel, probs, k_tensor, k_scalar, p_tensor, p_scalar, seed, offset, out)
    return out
