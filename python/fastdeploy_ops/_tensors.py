"""Framework adapters: allocate outputs like the caller's tensor, find its current stream, launch.

The framework is recognised from the tensor's type (``type(x).__module__``), so nothing is
imported that the caller has not imported already. One table maps each framework to two
functions: ``empty(like, shape, dtype)`` (same framework, same device) and ``stream(inputs)``
(the caller's current CUDA stream for the device of the first of ``inputs`` that is the
framework's, as an int ``cudaStream_t``).
numpy arrays are CPU arrays: their outputs are numpy arrays and the bindings reject them with
their "must be a CUDA tensor" error.

:func:`launch` is where every op ends: torch tensors go through the op's registered
``torch.ops.fastdeploy_ops`` operator (:mod:`._torch_library`: C++ that calls the kernel
function without Python, or :func:`torch_operator_implementation` under other torch releases);
every other framework calls the binding through :func:`run_kernel`.
"""

from __future__ import annotations

import functools
import math
import numbers
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import _device, _torch_library
from ._loader import get_op

__all__ = [
    "DTYPES",
    "Framework",
    "Kernel",
    "dtype_name",
    "float8_bytes",
    "framework_of",
    "kernels_by_op",
    "launch",
    "run_kernel",
    "shape_of",
    "unsigned64_bits",
]

Tensor = Any
OutputSpec = tuple[tuple[int, ...], str]  # an output's shape and dtype name
DTYPES = ("float32", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "float8_e4m3fn")


@dataclass(frozen=True)
class Framework:
    """How to allocate and find the stream for one tensor framework.

    ``bfloat16``: whether its arrays can hold bfloat16 (numpy and cupy cannot).
    ``synchronous``: the framework has no stream to order work with, so launches go to the
    legacy default stream after its inputs are ready and are waited for before returning.
    ``export``: turns one argument into what the bindings import fastest (``None``: as is).
    ``like``: allocates a tensor of the given one's shape, dtype and device, where the
    framework does that faster than ``empty`` (``None``: through ``empty``).
    """

    name: str
    empty: Callable[[Tensor, tuple[int, ...], str], Tensor]
    stream: Callable[[Sequence[Tensor]], int]
    bfloat16: bool = True
    synchronous: bool = False
    export: Callable[[Any], Any] | None = None
    like: Callable[[Tensor], Tensor] | None = None
    group: Callable[[Tensor, tuple[OutputSpec, ...]], tuple[Tensor, ...]] | None = None

    def empty_like(self, tensor: Tensor) -> Tensor:
        """A new tensor of ``tensor``'s framework, shape, dtype and device."""
        if self.like is not None:
            return self.like(tensor)
        return self.empty(tensor, tuple(tensor.shape), dtype_name(tensor))

    def empties(self, like: Tensor, *specs: OutputSpec) -> tuple[Tensor, ...]:
        """The outputs of one call, one per ``(shape, dtype)``, on ``like``'s device."""
        if self.group is not None:
            return self.group(like, specs)
        return tuple([self.empty(like, shape, dtype) for shape, dtype in specs])


def _torch_empty(like: Tensor, shape: tuple[int, ...], dtype: str) -> Tensor:
    return like.new_empty(shape, dtype=getattr(sys.modules["torch"], dtype))


def _own(inputs: Sequence[Tensor], root: str) -> Tensor | None:
    """The first of ``inputs`` that is a tensor of the framework ``root``: the caller's tensors
    give the stream; any other (a numpy array by mistake) is refused by the binding."""
    for x in inputs:  # a loop, not next() over a generator: this runs on every call
        if type(x).__module__.partition(".")[0] == root:
            return x
    return None


def _torch_like(like: Tensor) -> Tensor:
    # A third cheaper than new_empty(shape, dtype=...) on the eager path; a dense `like` keeps
    # its strides, and the bindings refuse a strided input before its output matters.
    return sys.modules["torch"].empty_like(like)


def _torch_stream(inputs: Sequence[Tensor]) -> int:
    like = _own(inputs, "torch")
    if like is None or not like.is_cuda:
        return 0
    return _torch_raw_stream(sys.modules["torch"], like.get_device())


def _torch_raw_stream(torch: Any, device: int) -> int:
    """The current stream of CUDA device ``device`` as an int ``cudaStream_t``."""
    # The raw-stream getter is what torch's own generated code calls: a tenth of the cost of
    # torch.cuda.current_stream(device).cuda_stream, which builds a Stream object.
    raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw_stream is not None:
        return int(raw_stream(device))
    return int(torch.cuda.current_stream(device).cuda_stream)


def _torch_export(value: Any) -> Any:
    """A DLPack capsule of a plain torch tensor; anything else unchanged.

    The bindings import tensors through DLPack. Handing them a capsule made by torch's C
    exporter skips ``Tensor.__dlpack__``'s Python-level checks (about 2 µs per tensor on the
    call path). Tensors that require grad stay tensors, so they are refused as before.
    """
    torch = sys.modules["torch"]
    if type(value) is torch.Tensor and not value.requires_grad:
        return torch._C._to_dlpack(value)
    return value


def _cupy_empty(like: Tensor, shape: Sequence[int], dtype: Any) -> Tensor:
    """A new C-contiguous CuPy array on ``like``'s GPU.

    The array is what ``cupy.empty`` and ``cupy.empty_like`` make, without their argument
    handling (1.7 µs less than ``cupy.empty_like`` on an H100 host) and built as
    :func:`_cupy_array_constructor` says; ``like.data.device_id`` is an int, where ``like.device`` builds a Device object, and the
    device is switched only when it is not current (entering ``with Device`` costs a
    microsecond even when nothing switches).
    """
    cupy = sys.modules["cupy"]
    new_array = _cupy_array_constructor(cupy)
    device = like.data.device_id
    if device == cupy.cuda.runtime.getDevice():
        return new_array(shape, dtype)
    with cupy.cuda.Device(device):
        return new_array(shape, dtype)


@functools.cache
def _cupy_array_constructor(cupy: Any) -> Callable[..., Tensor]:
    """``cupy.ndarray(shape, dtype, memptr)`` by the quickest route this CuPy release has.

    ``cupy.ndarray(...)`` runs a Python-level ``__new__`` that repacks ``*args, **kwargs``, the
    cdef base's ``_init`` and a no-op ``__init__``. Creating the object with the cdef base's
    allocator and calling ``_init`` directly is the same initialisation (the class is exactly
    ``cupy.ndarray``, for which ``__new__`` does nothing else) without the Python layers.
    Releases without those internals get the public constructor.
    """
    ndarray = cupy.ndarray
    base = getattr(getattr(getattr(cupy, "_core", None), "core", None), "_ndarray_base", None)
    if base is None or not hasattr(base, "_init") or not issubclass(ndarray, base):
        return ndarray
    allocate = base.__new__

    def new_array(shape: Sequence[int], dtype: Any, memptr: Any = None) -> Tensor:
        array = allocate(ndarray)
        array._init(shape, dtype, memptr)
        return array

    return new_array


_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "int8": 1,
             "uint8": 1, "float8_e4m3fn": 1}
_CUPY_OUTPUT_ALIGNMENT = 256  # bytes: what CuPy's own allocations are aligned to, at least


def _cupy_empty_group(like: Tensor, specs: tuple[OutputSpec, ...]) -> tuple[Tensor, ...]:
    """The outputs of one call as views of one CuPy allocation.

    Each ``cupy.ndarray(shape, dtype)`` asks CuPy's memory pool for its memory (1.4-1.8 µs of
    the 3.5 µs an output cost on an H100 host); views of one allocation ask once. The outputs
    share the allocation: it returns to CuPy's pool when the last of them is freed.
    """
    cupy = sys.modules["cupy"]
    total, layout = _cupy_group_layout(specs)
    device = like.data.device_id
    if device == cupy.cuda.runtime.getDevice():
        block = cupy.cuda.alloc(total)
    else:
        with cupy.cuda.Device(device):
            block = cupy.cuda.alloc(total)
    new_array = _cupy_array_constructor(cupy)
    # The first output starts the allocation: it takes `block` itself (`block + 0` would build
    # another pointer object).
    return tuple([new_array(shape, dtype, block + offset if offset else block)
                  for shape, dtype, offset in layout])


@functools.lru_cache(maxsize=1024)
def _cupy_group_layout(
        specs: tuple[OutputSpec, ...]) -> tuple[int, tuple[tuple[tuple[int, ...], str, int], ...]]:
    """The bytes of one allocation holding ``specs`` and each output's ``(shape, dtype, offset)``,
    every offset a multiple of the alignment. Cached: an op's output shapes recur across calls."""
    layout = []
    total = 0
    for shape, dtype in specs:
        layout.append((shape, dtype, total))
        nbytes = math.prod(shape) * _ITEMSIZE[dtype]
        total += -(-nbytes // _CUPY_OUTPUT_ALIGNMENT) * _CUPY_OUTPUT_ALIGNMENT
    return total, tuple(layout)


def _cupy_like(like: Tensor) -> Tensor:
    # Outputs shaped like an input: the bindings refuse a strided input, so C order is its order.
    return _cupy_empty(like, like.shape, like.dtype)


def _cupy_stream(inputs: Sequence[Tensor]) -> int:
    like = _own(inputs, "cupy")
    if like is None:
        return 0
    # CuPy keeps a current stream per device: that of the array's device, without switching.
    return int(sys.modules["cupy"].cuda.get_current_stream(like.data.device_id).ptr)


def _paddle_empty(like: Tensor, shape: tuple[int, ...], dtype: str) -> Tensor:
    return sys.modules["paddle"].empty(list(shape), dtype=dtype, device=like.place)


def _paddle_stream(inputs: Sequence[Tensor]) -> int:
    like = _own(inputs, "paddle")
    if like is None or not like.place.is_gpu_place():
        return 0
    stream = sys.modules["paddle"].device.current_stream(like.place)
    return int(getattr(stream, "cuda_stream", 0))


def _jax_empty(like: Tensor, shape: tuple[int, ...], dtype: str) -> Tensor:
    jnp = sys.modules["jax.numpy"]
    (device,) = like.devices()
    return jnp.empty(shape, dtype=getattr(jnp, dtype), device=device)


def _jax_stream(inputs: Sequence[Tensor]) -> int:
    # JAX exposes no current stream: wait for the inputs, use the legacy default stream.
    sys.modules["jax"].block_until_ready(list(inputs))
    return 0


def _numpy_empty(like: Tensor, shape: tuple[int, ...], dtype: str) -> Tensor:
    return sys.modules["numpy"].empty(shape, dtype=dtype)


_JAX = Framework("jax", _jax_empty, _jax_stream, synchronous=True)
_FRAMEWORKS = {
    "torch": Framework("torch", _torch_empty, _torch_stream, export=_torch_export,
                       like=_torch_like),
    "paddle": Framework("paddle", _paddle_empty, _paddle_stream),
    "cupy": Framework("cupy", _cupy_empty, _cupy_stream, bfloat16=False, like=_cupy_like,
                      group=_cupy_empty_group),
    "jax": _JAX,
    "jaxlib": _JAX,  # jax arrays are jaxlib types
    "numpy": Framework("numpy", _numpy_empty, lambda inputs: 0, bfloat16=False),
}


def framework_of(op: str, arg: str, tensor: Tensor) -> Framework:
    """The framework of ``tensor`` (argument ``arg`` of ``op``).

    Raises:
        TypeError: ``tensor`` is not a torch, paddle, cupy, jax or numpy array.
    """
    root = type(tensor).__module__.partition(".")[0]
    framework = _FRAMEWORKS.get(root)
    if root == "torch" and not _torch_library.registered():
        _torch_library.register()
    if framework is None:
        raise TypeError(
            f"{op}: argument '{arg}' must be a torch, paddle, cupy, jax or numpy tensor, "
            f"got {type(tensor).__module__}.{type(tensor).__qualname__}"
        )
    return framework


def dtype_name(tensor: Tensor) -> str:
    """The dtype's short name (``"bfloat16"`` for ``torch.bfloat16``, ``paddle.bfloat16``...)."""
    dtype = tensor.dtype
    if type(dtype).__module__.startswith("numpy"):  # CuPy's, JAX's and numpy's dtypes
        return _numpy_dtype_name(dtype)
    return str(dtype).rpartition(".")[2]


@functools.cache
def _numpy_dtype_name(dtype: Any) -> str:
    # str() of a numpy dtype costs microseconds, and ops ask for several arguments' dtypes per
    # call. (torch's dtypes stay out of the cache: torch.compile cannot trace a dict of numpy
    # dtypes.)
    return str(dtype)


def float8_bytes(tensor: Tensor) -> Tensor:
    """A uint8 view of a float8 tensor (same storage), which every framework can export.

    DLPack's float8 codes are recent and not exported by every framework; the bindings take
    float8 data as its bytes (DType::kUInt8) and the Python wrapper says which format they hold.
    """
    root = type(tensor).__module__.partition(".")[0]
    module = sys.modules["jax"].numpy if root in ("jax", "jaxlib") else sys.modules[root]
    return tensor.view(module.uint8)


def shape_of(op: str, arg: str, tensor: Tensor, ranks: Sequence[int]) -> tuple[int, ...]:
    """``tensor``'s shape, checked to have one of ``ranks`` dimensions.

    Raises:
        ValueError: the rank is not in ``ranks`` (the message names ``op`` and ``arg``).
    """
    shape = tensor.shape
    if type(shape) is not tuple:  # CuPy's, numpy's and JAX's shapes are tuples of ints already
        shape = tuple(int(n) for n in shape)
    if len(shape) not in ranks:
        expected = " or ".join(f"{r}-D" for r in ranks)
        raise ValueError(f"{op}: argument '{arg}' must be {expected}, got shape {list(shape)}")
    return shape


class Kernel(NamedTuple):
    """A compiled kernel function by name: ``op`` of ``family``, from instantiation ``group``
    (``"cache=fp8"``) when that group may be missing from a module that has the family."""

    family: str
    op: str
    group: str | None = None

    @property
    def torch_name(self) -> str:
        """The name of its operator in ``torch.ops.fastdeploy_ops``: ``op``, suffixed with the
        group (``paged_kv_append_cache_fp8``) when there is one."""
        if self.group is None:
            return self.op
        return f"{self.op}_{self.group.replace('=', '_')}"


def kernels_by_op(schemas: dict[Kernel, str]) -> dict[str, Kernel]:
    """A family's kernels (the keys of its ``TORCH_SCHEMAS``) by op name: built once, so that a
    call finds its kernel with a dictionary lookup instead of constructing it."""
    return {kernel.op: kernel for kernel in schemas}


def unsigned64_bits(op: str, arg: str, value: int) -> int:
    """``value`` (argument ``arg`` of ``op``), an int in ``[0, 2**64)``, as the int64 with its
    64 bits: how the bindings and torch operators (whose ints are int64) take it.

    Raises:
        TypeError: not an int. ValueError: out of range.
    """
    if type(value) is not int:  # plain ints skip the abstract-class check, the slow part here
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise TypeError(f"{op}: argument '{arg}' must be an int, got {type(value).__name__}")
        value = int(value)
    if not 0 <= value < 1 << 64:
        raise ValueError(f"{op}: argument '{arg}' must be in [0, 2**64), got {value}")
    return value - (1 << 64) if value >= 1 << 63 else value


# Argument types the torch operators take besides tensors (their schemas' bool, int, float, str).
_PLAIN_TYPES = frozenset((bool, int, float, str, type(None)))


def _torch_operands(args: Sequence[Any]) -> bool:
    """Whether every argument is a torch tensor or a plain value (the operator's schema)."""
    tensor = sys.modules["torch"].Tensor
    return all(type(a) in _PLAIN_TYPES or isinstance(a, tensor) for a in args)


def launch(framework: Framework, kernel: Kernel, *args: Any) -> None:
    """Run ``kernel`` on ``args`` (the binding's arguments but the stream) on the caller's stream.

    torch tensors are passed to the kernel's ``torch.ops.fastdeploy_ops`` operator, so that
    ``torch.compile`` sees an operator with a schema instead of a call it cannot trace.
    """
    if framework is not TORCH:
        run_kernel(framework, kernel, args)
        return
    try:
        _torch_library.call(kernel, args)
    except (RuntimeError, TypeError):
        if _torch_operands(args):
            raise
        # Another framework's tensor (or a numpy array) among torch tensors: the schema refused
        # it without naming the argument; the binding names it (checked here, not on every call).
        run_kernel(framework, kernel, args)


def run_kernel(framework: Framework, kernel: Kernel, args: Sequence[Any]) -> None:
    """Call ``kernel(*args, stream)`` on the caller's current stream (``framework.stream``)."""
    function = get_op(kernel.family, kernel.op, kernel.group)
    stream = framework.stream(args)
    if framework.export is not None:
        args = tuple(map(framework.export, args))
    function(*args, stream)
    if framework.synchronous:
        _device.synchronize()


# The ops have no backward; the C++ operators (ops/torch) say the same.
GRAD_REFUSAL = "must not require grad (these ops have no backward; pass .detach())"


def torch_operator_implementation(kernel: Kernel, operator: Any,
                                  tensor_positions: Sequence[int]) -> Callable[..., None]:
    """What ``kernel``'s torch operator runs when the C++ operators cannot be loaded (another
    torch release): :func:`run_kernel` for torch tensors, shortened.

    The operator's schema says where its tensors are (``tensor_positions``, the first one a
    required tensor, whose device gives the stream), so nothing else is inspected: this is the
    eager call path of every torch call, and each check skipped here is host time saved on it.
    """
    torch = sys.modules["torch"]
    to_dlpack = torch._C._to_dlpack
    first = tensor_positions[0]
    names = [argument.name for argument in operator._schema.arguments]

    def run(*args: Any) -> None:
        function = get_op(kernel.family, kernel.op, kernel.group)
        device = args[first].get_device()
        exported = list(args)
        for i in tensor_positions:
            value = exported[i]
            if value is not None:
                if value.requires_grad:
                    raise TypeError(f"{kernel.op}: argument '{names[i]}' {GRAD_REFUSAL}")
                exported[i] = to_dlpack(value)
        function(*exported, _torch_raw_stream(torch, device) if device >= 0 else 0)

    return run


TORCH = _FRAMEWORKS["torch"]
