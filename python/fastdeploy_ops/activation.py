"""Activation ops (family ``activation``, SM75+): ``gelu_tanh``.

The family needs SM75 because the kernel uses the PTX instruction ``tanh.approx.f32``; a module
built for an older SM lists it under "skipped" and :func:`gelu_tanh` raises
``OpUnavailableError`` there.
"""

from __future__ import annotations

from ._loader import get_op
from ._tensors import Tensor, dtype_name, framework_of, launch

__all__ = ["gelu_tanh"]

FAMILY = "activation"


def gelu_tanh(input: Tensor, out: Tensor | None = None) -> Tensor:
    """GELU, tanh approximation: ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))``.

    Computed in fp32 (with the hardware ``tanh.approx.f32``, relative error about 2**-10.7)
    and rounded once to the output dtype.

    Args:
        input: float32, float16 or bfloat16 tensor of any shape, contiguous, on the GPU.
        out: optional tensor of the same shape and dtype to write (may be ``input`` itself).

    Returns:
        ``out``, or a new tensor of ``input``'s shape and dtype.

    Differences from FastDeploy: any shape (FastDeploy documents ``[T, d]``); ``out=``; the
    stream is the caller's current stream.
    """
    op = "gelu_tanh"
    kernel = get_op(FAMILY, op)
    framework = framework_of(op, "input", input)
    if out is None:
        out = framework.empty(input, tuple(input.shape), dtype_name(input))
    launch(framework, kernel, input, out)
    return out
