"""fp8 quantization (family ``quantization``, SM89+): ``per_token_quant`` and
``per_token_quant_padding``.

Per token (row) and 128-element block of an fp16/bf16 ``[T, H]`` tensor: the block's absolute
max gives the scale, and the values are rounded to float8 e4m3fn by the GPU's conversion
instruction (round to nearest even, saturating to +-448; SM89 and newer have it). Outputs are
allocated with the caller's framework on the input's device, and the op runs on the caller's
current stream. Arguments are validated before launch; a violation raises ``TypeError`` (dtype)
or ``ValueError`` (shape, range, device, layout) naming the op and the argument.

``q`` is a ``float8_e4m3fn`` tensor where the framework has that dtype (torch, jax, paddle);
frameworks without it (cupy, numpy) get its bytes as ``uint8``. The bindings take float8 data as
its bytes either way (:func:`fastdeploy_ops._tensors.float8_bytes`);
:func:`fastdeploy_ops.reference.quantization.per_token_dequant` reads them back.

Deliberate differences from FastDeploy:

- ``finegrained_range=True`` replaces the environment variable
  ``PER_TOKEN_QUANT_FP8_USE_FINEGRAINED_RANGE=1`` (the block max is multiplied by 7).
- ``block_size`` must be 128 (FastDeploy hard-codes 128 and ignores the argument) and
  ``H % 4 == 0`` is checked (FastDeploy reads out of bounds otherwise); ``H < 128`` works
  (FastDeploy launches nothing).
- The scale's dtype depends only on ``use_ue8m0`` (FastDeploy picks int32 on SM100+ too).
- UE8M0: ``2^ceil(log2(v))`` is the smallest power of two not below ``v`` exactly (read off
  ``v``'s bits; a float32 ``log2f`` can round the log of a ``v`` just above a power of two down
  and pick half the scale); unused bytes of the last int32 are 0.
- ``per_token_quant_padding``: the padding rows of the scale are 0.
- ``T == 0`` returns empty outputs.
"""

from __future__ import annotations

import operator

from ._tensors import (
    Framework,
    Kernel,
    Tensor,
    dtype_name,
    float8_bytes,
    framework_of,
    launch,
    shape_of,
)

__all__ = ["BLOCK_SIZE", "per_token_quant", "per_token_quant_padding"]

FAMILY = "quantization"
BLOCK_SIZE = 128
_BLOCKS_PER_WORD = 4  # UE8M0 exponent bytes per int32

# The family's torch operators (fastdeploy_ops._torch_library): each binding's arguments but
# the stream; (a!) marks a tensor the kernel writes.
TORCH_SCHEMAS = {
    Kernel(FAMILY, "per_token_quant"): (
        "(Tensor input, Tensor(a!) q, Tensor(b!) scale, int block_size, bool use_ue8m0, "
        "bool finegrained_range) -> ()"
    ),
    Kernel(FAMILY, "per_token_quant_padding"): (
        "(Tensor input, Tensor(a!) q, Tensor(b!) scale, int block_size, bool use_ue8m0, "
        "bool finegrained_range) -> ()"
    ),
}


def _hidden(op: str, input: Tensor, block_size: int, granule: int) -> tuple[int, int]:
    """``(T, H)`` of ``input [T, H]``, after checking ``block_size`` and ``H % granule``."""
    tokens, hidden = shape_of(op, "input", input, (2,))
    try:
        size = operator.index(block_size)
    except TypeError:
        given = type(block_size).__name__
        raise TypeError(f"{op}: argument 'block_size' must be an int, got {given}") from None
    if size != BLOCK_SIZE:
        raise ValueError(
            f"{op}: argument 'block_size' must be {BLOCK_SIZE} (the only block size the kernels "
            f"implement), got {size}"
        )
    if hidden % granule:
        raise ValueError(
            f"{op}: argument 'input' must have a hidden size (shape[1]) divisible by {granule}, "
            f"got shape {[tokens, hidden]}"
        )
    return tokens, hidden


def _scale_columns(hidden: int, use_ue8m0: bool) -> int:
    blocks = -(-hidden // BLOCK_SIZE)
    return -(-blocks // _BLOCKS_PER_WORD) if use_ue8m0 else blocks


def _empty_float8(framework: Framework, like: Tensor, shape: tuple[int, ...]) -> Tensor:
    """A float8_e4m3fn tensor, or uint8 where the framework has no such dtype."""
    try:
        return framework.empty(like, shape, "float8_e4m3fn")
    except (TypeError, AttributeError, ValueError):
        return framework.empty(like, shape, "uint8")


def _quantize(op: str, input: Tensor, block_size: int, use_ue8m0: bool,
              finegrained_range: bool, padding: bool) -> tuple[Tensor, Tensor]:
    framework = framework_of(op, "input", input)
    tokens, hidden = _hidden(op, input, block_size, BLOCK_SIZE if padding else 4)
    kernel = Kernel(FAMILY, op)
    q = _empty_float8(framework, input, (tokens, hidden))
    q_bytes = q if dtype_name(q) == "uint8" else float8_bytes(q)
    columns = _scale_columns(hidden, bool(use_ue8m0))
    scale_dtype = "int32" if use_ue8m0 else "float32"
    if padding:
        scale = framework.empty(input, (columns, -(-tokens // 4) * 4), scale_dtype)
    else:
        scale = framework.empty(input, (tokens, columns), scale_dtype)
    launch(framework, kernel, input, q_bytes, scale, BLOCK_SIZE, bool(use_ue8m0),
           bool(finegrained_range))
    return q, (scale.T if padding else scale)


def per_token_quant(
    input: Tensor,
    block_size: int,
    use_ue8m0: bool = False,
    *,
    finegrained_range: bool = False,
) -> tuple[Tensor, Tensor]:
    """fp8 e4m3 quantization per token and 128-element block.

    Per row and block ``j`` (columns ``128 j .. 128 j + 127``; the tail block is zero-padded, so
    ``H`` need not be a multiple of 128): ``m = max(max |x|, 1e-10)`` in float32 (times 7 with
    ``finegrained_range``), ``scale = m / 448`` and ``q = e4m3(x * 448 / m)`` (multiply, then
    divide, each rounded to float32, then rounded to nearest even to e4m3fn; ``|q| <= 448``).

    With ``use_ue8m0`` the scale is a power of two,
    ``s = 2^ceil(log2(max(m / 448, 1e-10) + 5e-7))``, ``q = e4m3(x / s)``, and what is stored is
    ``s``'s biased exponent byte (float32 bits 23-30, ``e + 127``), four blocks per int32: block
    ``j`` in byte ``j % 4`` (little-endian) of column ``j // 4``; unused bytes are 0.

    Args:
        input: ``[T, H]`` float16 or bfloat16, contiguous, on the GPU; ``H % 4 == 0``.
        block_size: must be 128.
        use_ue8m0: power-of-two scales stored as exponent bytes.
        finegrained_range: multiply each block's max by 7 (FastDeploy's
            ``PER_TOKEN_QUANT_FP8_USE_FINEGRAINED_RANGE=1``).

    Returns:
        ``q`` ``[T, H]`` float8_e4m3fn (uint8 bytes in frameworks without float8) and ``scale``
        ``[T, ceil(H / 128)]`` float32, or ``[T, ceil(H / 512)]`` int32 with ``use_ue8m0``,
        row-major.

    Bitwise: ``q`` is the correctly rounded e4m3 of the float32 quotient (the kernel divides
    through a per-block reciprocal with two exact corrections, which gives the IEEE quotient).
    Differences from FastDeploy: see the module docstring.
    """
    return _quantize("per_token_quant", input, block_size, use_ue8m0, finegrained_range, False)


def per_token_quant_padding(
    input: Tensor,
    block_size: int,
    use_ue8m0: bool = False,
    *,
    finegrained_range: bool = False,
) -> tuple[Tensor, Tensor]:
    """:func:`per_token_quant` with column-major scales padded to a multiple of 4 tokens.

    Same math; ``H % 128 == 0`` is required. With ``pad_T = ceil(T / 4) * 4`` the scale is
    ``[pad_T, H / 128]`` float32 (``[pad_T, ceil(H / 512)]`` int32 with ``use_ue8m0``) with
    column-major strides ``(1, pad_T)``: the transpose of a row-major ``[columns, pad_T]``
    buffer, as FP8 GEMMs read it. Rows ``T .. pad_T - 1`` are 0.

    Where the framework's transpose is a view (torch, cupy, numpy, paddle with stride kernels)
    the returned scale has exactly those strides; JAX arrays have no strides (``.T`` is the
    same values, laid out as JAX chooses).

    Args:
        input: ``[T, H]`` float16 or bfloat16, contiguous, on the GPU; ``H % 128 == 0``.
        block_size: must be 128.
        use_ue8m0: power-of-two scales stored as exponent bytes (see :func:`per_token_quant`).
        finegrained_range: multiply each block's max by 7.

    Returns:
        ``q`` ``[T, H]`` float8_e4m3fn (uint8 bytes in frameworks without float8) and the
        column-major ``scale``.
    """
    return _quantize("per_token_quant_padding", input, block_size, use_ue8m0, finegrained_range,
                     True)
