"""pytest helpers for GPU tests of fastdeploy_ops: skips by GPU, SM and op, and tensor I/O.

Skip marks (evaluated when applied, i.e. at collection; each skip says why)::

    pytestmark = [requires_gpu(), requires_op("gelu_tanh")]

    @requires_sm(80)
    def test_something(tensor_lib): ...

``tensor_lib`` is a fixture giving a :class:`TensorLib` for moving numpy arrays to the GPU and
back: torch if it is importable with CUDA, else cupy, else paddle; ``FASTDEPLOY_OPS_TEST_LIB=cupy``
(or ``torch``, ``paddle``) insists on one. Register it in a ``conftest.py`` with
``from fastdeploy_ops.testing import tensor_lib``.
"""

from __future__ import annotations

import abc
import importlib
import os
from typing import Any

import numpy as np
import pytest
from numpy.typing import ArrayLike, NDArray

from .. import _loader, _selection
from .._info import available_ops
from ..errors import DeviceUnavailableError

__all__ = [
    "TensorLib",
    "gpu_skip_reason",
    "requires_gpu",
    "requires_op",
    "requires_sm",
    "tensor_lib",
    "ulp",
]

ENV_TEST_LIB = "FASTDEPLOY_OPS_TEST_LIB"


def gpu_skip_reason() -> str | None:
    """Why GPU tests cannot run here (no GPU, no usable module, import failure), or ``None``."""
    chosen = _selection.selection()
    if chosen.device.sm is None:
        return f"no GPU: {chosen.device.problem}"
    if chosen.manifest is None:
        return f"no usable fastdeploy_ops module: {chosen.reason}"
    try:
        _loader.load_module()
    except DeviceUnavailableError as exc:
        return exc.reason
    return None


def requires_gpu() -> pytest.MarkDecorator:
    """Skip unless there is a GPU and a usable ``_ops_smNN`` module for it."""
    reason = gpu_skip_reason()
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def requires_sm(sm: int) -> pytest.MarkDecorator:
    """Skip unless the GPU's SM is at least ``sm`` (and GPU tests can run at all)."""
    reason = gpu_skip_reason()
    device_sm = _selection.selection().device.sm
    if reason is None and device_sm < sm:
        reason = f"needs SM{sm}+, the device is SM{device_sm}"
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def requires_op(op: str, group: str | None = None) -> pytest.MarkDecorator:
    """Skip unless the loaded module provides ``op`` (with ``group``, e.g. ``"cache=fp8"``: the
    kernels of that instantiation group of the op's family too); the reason quotes the
    manifest."""
    reason = gpu_skip_reason()
    manifest = _selection.selection().manifest
    if reason is None and manifest is not None:
        families = [name for name, f in {**manifest.families, **manifest.skipped}.items()
                    if op in f.ops]
        lacking = manifest.lacks(families[0], group) if families else f"no family has {op}"
        if lacking is not None or op not in available_ops():
            what = op if group is None else f"{op} with {group}"
            reason = f"{what} is not in {manifest.module} ({lacking})"
    return pytest.mark.skipif(reason is not None, reason=reason or "")


_MANTISSA_BITS = {"float32": 23, "float16": 10, "bfloat16": 7}
_MIN_NORMAL = {"float32": 2.0**-126, "float16": 2.0**-14, "bfloat16": 2.0**-126}


def ulp(x: ArrayLike, dtype: str) -> NDArray[np.float64]:
    """The spacing of ``dtype`` values at ``|x|`` (one unit in the last place), elementwise."""
    magnitude = np.maximum(np.abs(np.asarray(x, dtype=np.float64)), _MIN_NORMAL[dtype])
    return np.exp2(np.floor(np.log2(magnitude)) - _MANTISSA_BITS[dtype])


class TensorLib(abc.ABC):
    """Move numpy arrays to the GPU and back with one framework; dtypes by name."""

    name: str

    @abc.abstractmethod
    def to_device(self, array: ArrayLike, dtype: str | None = None) -> Any:
        """``array`` on GPU 0, rounded to ``dtype`` (nearest-even) if given."""

    @abc.abstractmethod
    def from_device(self, tensor: Any) -> np.ndarray:
        """``tensor`` as a numpy array; bfloat16 is widened (exactly) to float32."""

    @abc.abstractmethod
    def empty(self, shape: tuple[int, ...], dtype: str) -> Any:
        """An uninitialised tensor on GPU 0."""

    @abc.abstractmethod
    def device_problem(self) -> str | None:
        """Why this library cannot reach a GPU, or ``None``."""

    def require(self, dtype: str) -> None:
        """Skip the test if this library has no ``dtype``."""


class _Torch(TensorLib):
    name = "torch"

    def __init__(self) -> None:
        self.torch = importlib.import_module("torch")

    def to_device(self, array: ArrayLike, dtype: str | None = None) -> Any:
        host = self.torch.from_numpy(np.ascontiguousarray(array))
        target = getattr(self.torch, dtype) if dtype else None
        return host.to(device="cuda", dtype=target)

    def from_device(self, tensor: Any) -> np.ndarray:
        tensor = tensor.detach()
        if tensor.dtype in (self.torch.bfloat16, self.torch.float8_e4m3fn):
            tensor = tensor.float()
        return tensor.cpu().numpy()

    def empty(self, shape: tuple[int, ...], dtype: str) -> Any:
        return self.torch.empty(shape, dtype=getattr(self.torch, dtype), device="cuda")

    def device_problem(self) -> str | None:
        return None if self.torch.cuda.is_available() else "torch has no CUDA device"


class _Cupy(TensorLib):
    name = "cupy"

    def __init__(self) -> None:
        self.cupy = importlib.import_module("cupy")

    def require(self, dtype: str) -> None:
        if dtype in ("bfloat16", "float8_e4m3fn"):
            pytest.skip(f"cupy has no {dtype}")

    def to_device(self, array: ArrayLike, dtype: str | None = None) -> Any:
        host = np.asarray(array)
        if dtype:
            self.require(dtype)
            host = host.astype(dtype)
        return self.cupy.asarray(host)

    def from_device(self, tensor: Any) -> np.ndarray:
        return self.cupy.asnumpy(tensor)

    def empty(self, shape: tuple[int, ...], dtype: str) -> Any:
        self.require(dtype)
        return self.cupy.empty(shape, dtype=dtype)

    def device_problem(self) -> str | None:
        return None if self.cupy.cuda.is_available() else "cupy sees no CUDA device"


class _Paddle(TensorLib):
    name = "paddle"

    def __init__(self) -> None:
        self.paddle = importlib.import_module("paddle")

    def place(self) -> Any:
        """Where tensors go: GPU 0 (the CPU tests of the adapter substitute the CPU)."""
        return self.paddle.CUDAPlace(0)

    def to_device(self, array: ArrayLike, dtype: str | None = None) -> Any:
        tensor = self.paddle.to_tensor(np.ascontiguousarray(array), place=self.place())
        return tensor.astype(dtype) if dtype else tensor

    def from_device(self, tensor: Any) -> np.ndarray:
        if str(tensor.dtype).rpartition(".")[2] in ("bfloat16", "float8_e4m3fn"):
            tensor = tensor.astype("float32")
        return tensor.cpu().numpy()

    def empty(self, shape: tuple[int, ...], dtype: str) -> Any:
        return self.paddle.empty(list(shape), dtype=dtype, device=self.place())

    def device_problem(self) -> str | None:
        if not self.paddle.device.is_compiled_with_cuda():
            return "paddle is built without CUDA"
        if self.paddle.device.cuda.device_count() == 0:
            return "paddle has no CUDA device"
        return None


_LIBS: dict[str, type[TensorLib]] = {"torch": _Torch, "cupy": _Cupy, "paddle": _Paddle}


def _open(name: str) -> TensorLib | str:
    """The library ``name`` if it can reach a GPU, else why not."""
    try:
        lib = _LIBS[name]()
    except ImportError as exc:
        return f"{name} is not importable ({exc})"
    return lib.device_problem() or lib


@pytest.fixture(scope="session")
def tensor_lib() -> TensorLib:
    """A :class:`TensorLib` for GPU tests (skips when there is no GPU or no library)."""
    reason = gpu_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    wanted = os.environ.get(ENV_TEST_LIB)
    if wanted and wanted not in _LIBS:
        pytest.fail(f"{ENV_TEST_LIB}={wanted!r}: expected one of {sorted(_LIBS)}")
    problems = []
    for name in (wanted,) if wanted else tuple(_LIBS):
        lib = _open(name)
        if isinstance(lib, TensorLib):
            return lib
        problems.append(lib)
    pytest.skip("no tensor library for GPU tests: " + "; ".join(problems))
