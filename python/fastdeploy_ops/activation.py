"""Activation ops (family ``activation``, SM70+): ``gelu_tanh``.

Modules for SM75 and newer evaluate tanh with the PTX instruction ``tanh.approx.f32`` (as
FastDeploy does); the SM70 module, which has no such instruction, uses the accurate CUDA
``tanhf`` (within 2 ulp), so its results are closer to the exact formula.
"""

from __future__ import annotations

from ._tensors import Kernel, Tensor, framework_of, kernels_by_op, launch

__all__ = ["gelu_tanh"]

FAMILY = "activation"

# The family's torch operators (fastdeploy_ops._torch_library): each binding's arguments but
# the stream; (a!) marks a tensor the kernel writes.
TORCH_SCHEMAS = {
    Kernel(FAMILY, "gelu_tanh"): "(Tensor input, Tensor(a!) out) -> ()",
}
_KERNELS = kernels_by_op(TORCH_SCHEMAS)


def gelu_tanh(input: Tensor, out: Tensor | None = None) -> Tensor:
    """GELU, tanh approximation: ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))``.

    Computed in fp32 and rounded once to the output dtype. tanh is the hardware
    ``tanh.approx.f32`` (relative error about 2**-10.7) in modules for SM75+, and CUDA's
    ``tanhf`` (within 2 ulp) in the SM70 module.

    Args:
        input: float32, float16 or bfloat16 tensor of any shape, contiguous, on the GPU.
        out: optional tensor of the same shape and dtype to write (may be ``input`` itself).

    Returns:
        ``out``, or a new tensor of ``input``'s shape and dtype.

    Differences from FastDeploy: any shape (FastDeploy documents ``[T, d]``); ``out=``; the
    stream is the caller's current stream; available on SM70 with ``tanhf`` (FastDeploy
    mainline builds SM70 without this op; its V100 port also falls back to ``tanhf``).
    """
    op = "gelu_tanh"
    kernel = _KERNELS[op]
    framework = framework_of(op, "input", input)
    if out is None:
        out = framework.empty_like(input)
    launch(framework, kernel, input, out)
    return out
