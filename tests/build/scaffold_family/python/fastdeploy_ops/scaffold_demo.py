"""Scaled copy (family ``scaffold_demo``, SM70+): ``scaled_copy``.

Takes tensors of any DLPack framework (torch, paddle, cupy, jax) and runs on the caller's current
stream. Arguments are validated before launch; a violation raises ``TypeError`` (dtype) or
``ValueError`` (shape, device, layout) naming the op and the argument.
"""

from __future__ import annotations

from ._tensors import Kernel, Tensor, dtype_name, framework_of, launch

__all__ = ["scaled_copy"]

FAMILY = "scaffold_demo"

# The family's torch operators: each binding's arguments but the stream; (a!): written.
TORCH_SCHEMAS = {
    Kernel(FAMILY, "scaled_copy"): "(Tensor input, Tensor(a!) out, float factor) -> ()",
}


def scaled_copy(input: Tensor, factor: float, out: Tensor | None = None) -> Tensor:
    """``out = factor * input``, elementwise, one float32 multiplication per element.

    Args:
        input: float32 tensor of any shape, contiguous, on the GPU.
        factor: the scale, rounded to float32.
        out: optional float32 tensor of ``input``'s shape to write (may be ``input`` itself).

    Returns:
        ``out``, or a new tensor of ``input``'s shape and dtype.
    """
    op = "scaled_copy"
    kernel = Kernel(FAMILY, op)
    framework = framework_of(op, "input", input)
    if out is None:
        out = framework.empty(input, tuple(input.shape), dtype_name(input))
    launch(framework, kernel, input, out, float(factor))
    return out
