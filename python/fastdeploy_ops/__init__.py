"""fastdeploy_ops: LLM-serving CUDA kernels for the tensors you already have.

The wheel holds one compiled module per GPU generation (``_ops_sm70``, ``_ops_sm80``, ...).
The best one for the GPU is chosen and imported on first use (``FASTDEPLOY_OPS_SM=NN`` forces
one); importing this package touches neither the GPU nor any framework.

- :func:`info` and :func:`available_ops`: what is in the wheel and what can run here.
- :mod:`fastdeploy_ops.moe_routing`, :mod:`fastdeploy_ops.attention`, ...: the ops, one module per
  kernel family, taking torch / paddle / cupy / jax tensors.
- :mod:`fastdeploy_ops.reference`: numpy reference implementations.
- :mod:`fastdeploy_ops.testing` and ``python -m fastdeploy_ops.selftest``: the shipped tests.
"""

from . import (
    activation,
    attention,
    moe_routing,
    penalty,
    preprocess,
    quantization,
    rotary,
    sampling,
    speculative,
)
from ._info import Info, available_ops, info
from ._loader import package_version as _package_version
from .errors import DeviceUnavailableError, OpUnavailableError

__all__ = [
    "DeviceUnavailableError",
    "Info",
    "OpUnavailableError",
    "__version__",
    "activation",
    "attention",
    "available_ops",
    "info",
    "moe_routing",
    "penalty",
    "preprocess",
    "quantization",
    "rotary",
    "sampling",
    "speculative",
]

__version__: str = _package_version()
