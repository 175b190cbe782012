"""CuPy arrays on the GPU: how the bindings read them, and how outputs are made for them.

The bindings read a ``cupy.ndarray`` through its attributes (pointer, device, dtype, and the
extents of a C-contiguous array or else its shape and strides) instead of its ``__dlpack__``
export, which allocates a capsule per array and, on a non-default current stream, orders the
legacy stream after it. These tests pin what that reading must get right: the offset of a view,
strides (a strided view is refused by name), unit dimensions of any stride, the dtype of every
kind, zero-size and high-rank arrays, managed memory, and the caller's current stream; that
DLPack is neither called for a plain array nor needed for anything else (a subclass still works
through it); and that the outputs of one call, views of one allocation, do not overlap.
``gelu_tanh`` serves as the kernel: an elementwise op of any shape.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastdeploy_ops import activation, moe_routing
from fastdeploy_ops._loader import get_op
from fastdeploy_ops.testing import requires_op

cupy = pytest.importorskip("cupy")

pytestmark = [
    requires_op("gelu_tanh"),
    pytest.mark.skipif(not cupy.cuda.is_available(), reason="cupy sees no CUDA device"),
]


def gelu_reference(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


def random_array(shape: tuple[int, ...], dtype: str = "float32", seed: int = 0) -> object:
    rng = np.random.default_rng(seed)
    return cupy.asarray(rng.standard_normal(shape).astype(dtype))


def assert_gelu_of(got: object, x: object) -> None:
    """``got`` is gelu of ``x``: equal to the kernel's result on a fresh contiguous copy of ``x``
    (same kernel, same values) and close to the formula (so neither read garbage)."""
    want = activation.gelu_tanh(cupy.ascontiguousarray(x).copy())
    np.testing.assert_array_equal(cupy.asnumpy(got), cupy.asnumpy(want))
    np.testing.assert_allclose(cupy.asnumpy(got).astype(np.float64),
                               gelu_reference(cupy.asnumpy(x)), rtol=1e-2, atol=1e-3)


def test_a_view_with_an_offset_reads_its_own_elements() -> None:
    base = random_array((10, 64))
    view = base[3:7]  # contiguous, 3 rows into the allocation
    assert view.data.ptr != base.data.ptr
    assert_gelu_of(activation.gelu_tanh(view), view)
    out = cupy.zeros((10, 64), dtype="float32")
    activation.gelu_tanh(view, out[5:9])  # an output view with an offset too
    assert_gelu_of(out[5:9], view)
    assert not cupy.asnumpy(out[:5]).any() and not cupy.asnumpy(out[9:]).any()


@pytest.mark.parametrize("make", [lambda a: a[:, ::2], lambda a: a.T, lambda a: a[::2]],
                         ids=["every-other-column", "transposed", "every-other-row"])
def test_a_strided_view_is_refused_by_name(make: object) -> None:
    base = random_array((8, 64))
    with pytest.raises(ValueError, match=r"gelu_tanh: argument 'input' must be contiguous"):
        activation.gelu_tanh(make(base), cupy.empty(make(base).shape, "float32"))


@pytest.mark.parametrize(("dtype", "named"), [
    ("int8", "int8"), ("uint8", "uint8"), ("int16", "int16"), ("uint16", "uint16"),
    ("int32", "int32"), ("int64", "int64"), ("bool", "bool"), ("float64", "float64"),
    ("complex64", "complex64"),
])
def test_every_dtype_reaches_the_binding_as_it_is(dtype: str, named: str) -> None:
    """gelu_tanh takes float16/bfloat16/float32 only: the binding's refusal names the dtype it
    was given, for each kind of dtype CuPy has."""
    x = cupy.zeros((4, 8), dtype=dtype)
    with pytest.raises(TypeError, match=rf"gelu_tanh: argument 'input' .*got {named}\b"):
        activation.gelu_tanh(x, cupy.empty((4, 8), dtype="float32"))


def _bfloat16() -> object:
    """CuPy's bfloat16 (ml_dtypes'), or a skip where it has none."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    try:
        cupy.zeros(1, dtype=ml_dtypes.bfloat16)
    except (TypeError, ValueError) as exc:
        pytest.skip(f"this cupy has no bfloat16 arrays: {exc}")
    return ml_dtypes.bfloat16


@pytest.mark.parametrize("dtype", ["float16", "float32", "bfloat16"])
def test_float_dtypes_compute(dtype: str) -> None:
    if dtype == "bfloat16":
        x = random_array((3, 5, 7)).astype(_bfloat16())
    else:
        x = random_array((3, 5, 7), dtype)
    got = activation.gelu_tanh(x)
    assert got.dtype == x.dtype and got.shape == x.shape
    assert_gelu_of(got, x)


def test_contiguous_arrays_with_unit_dimensions_of_any_stride() -> None:
    """CuPy calls an array C-contiguous whatever the strides of its size-1 dimensions (0 for a
    new axis); the binding reads such an array from its extents alone."""
    x = random_array((4, 64))[:, None, :]
    assert x.flags.c_contiguous and x.strides[1] == 0
    assert_gelu_of(activation.gelu_tanh(x), x)
    row = random_array((6, 64))[2:3]  # one row, offset into its allocation
    assert row.flags.c_contiguous and row.data.ptr != row.base.data.ptr
    assert_gelu_of(activation.gelu_tanh(row), row)


@requires_op("grouped_topk")
def test_outputs_of_one_call_are_views_of_one_allocation_that_do_not_overlap() -> None:
    logits, bias = random_array((5, 64)), random_array((64,), seed=1)
    outputs = moe_routing.grouped_topk(logits, bias, 8, 4, 6)
    assert len({a.data.mem.ptr for a in outputs}) == 1
    spans = sorted((a.data.ptr, a.data.ptr + a.nbytes) for a in outputs)
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:])), spans
    assert all(a.data.ptr % 256 == 0 for a in outputs)
    single = [cupy.asnumpy(a) for a in outputs]
    again = moe_routing.grouped_topk(logits, bias, 8, 4, 6,
                                     out=tuple(cupy.empty_like(a) for a in outputs))
    for got, want in zip(single, again):
        np.testing.assert_array_equal(got, cupy.asnumpy(want))


@requires_op("grouped_topk")
def test_outputs_are_plain_arrays_like_cupys_own() -> None:
    """Outputs are made through CuPy's cdef base rather than its public constructor: they must
    be indistinguishable from arrays ``cupy.ndarray`` makes (class, layout flags, base, device)
    and behave like them (CuPy ops, views, copies back)."""
    x = random_array((3, 64))
    logits, bias = random_array((5, 64)), random_array((64,), seed=1)
    for got in (activation.gelu_tanh(x), *moe_routing.grouped_topk(logits, bias, 8, 4, 6)):
        made = cupy.ndarray(got.shape, got.dtype)
        assert type(got) is cupy.ndarray and got.base is None
        assert (got.shape, got.strides, got.dtype, got.size, got.nbytes) == (
            made.shape, made.strides, made.dtype, made.size, made.nbytes)
        assert got.flags.c_contiguous and got.flags.f_contiguous == made.flags.f_contiguous
        assert got.data.device_id == x.data.device_id
        np.testing.assert_array_equal(cupy.asnumpy(got[1:] * 1), cupy.asnumpy(got)[1:])
        got.fill(0)
        assert not cupy.asnumpy(got).any()


def test_zero_size_and_high_rank_arrays() -> None:
    empty = cupy.empty((0, 64), dtype="float32")
    assert activation.gelu_tanh(empty).shape == (0, 64)
    # More dimensions than the attribute reading holds (8): imported through DLPack instead.
    for shape in [(2,) * 8, (2,) * 9, (1,) * 12 + (16,)]:
        x = random_array(shape)
        assert_gelu_of(activation.gelu_tanh(x), x)


def test_managed_memory_is_accepted() -> None:
    shape, nbytes = (16, 64), 16 * 64 * 4
    managed = cupy.ndarray(shape, "float32", memptr=cupy.cuda.malloc_managed(nbytes))
    managed[...] = random_array(shape)
    assert_gelu_of(activation.gelu_tanh(managed), managed)


def test_the_launch_is_ordered_on_the_current_stream() -> None:
    """An input written on a non-blocking stream is read after that write: the kernel runs on
    the current stream (a launch on another stream would race the fill)."""
    n = 1 << 24
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        x = cupy.empty(n, dtype="float32")
        for _ in range(4):  # keep the stream busy right up to the launch
            x.fill(1.0)
        got = activation.gelu_tanh(x)
    stream.synchronize()
    assert float(cupy.asnumpy(got).min()) == float(cupy.asnumpy(got).max())
    np.testing.assert_allclose(float(got[0]), gelu_reference(np.ones(1))[0], rtol=1e-3)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_plain_arrays_do_not_go_through_dlpack(dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("__dlpack__ called")

    x = random_array((8, 64))
    if dtype == "bfloat16":
        x = x.astype(_bfloat16())
    want = activation.gelu_tanh(x)
    try:
        monkeypatch.setattr(cupy.ndarray, "__dlpack__", refuse)
    except TypeError:
        pytest.skip("cupy.ndarray is not patchable here")
    np.testing.assert_array_equal(cupy.asnumpy(activation.gelu_tanh(x)), cupy.asnumpy(want))


def test_a_subclass_goes_through_dlpack() -> None:
    class Sub(cupy.ndarray):
        pass

    x = random_array((8, 64))
    out = cupy.empty_like(x)
    get_op("activation", "gelu_tanh")(x.view(Sub), out.view(Sub),
                                        cupy.cuda.get_current_stream().ptr)
    assert_gelu_of(out, x)
