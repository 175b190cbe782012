"""How the outputs of one call are allocated for CuPy callers, without a GPU or CuPy.

Ops with several outputs ask CuPy's allocator once and hand out views of that allocation
(``_tensors._cupy_empty_group``). A stand-in ``cupy`` module records the requests: one per call,
each view aligned to 256 bytes, none overlapping another, the allocation exactly as large as
the aligned views, made on the device of the caller's array. Every test runs against a stand-in
with CuPy's private cdef base class (whose ``_init`` the adapter calls directly, skipping the
public constructor's Python layers) and against one without it (the public constructor).
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from fastdeploy_ops import _tensors, moe_routing

ITEMSIZE = {"float32": 4, "int64": 8, "int32": 4, "bfloat16": 2, "uint8": 1}


class _Memory:
    def __init__(self, ptr: int, size: int, device: int) -> None:
        self.ptr, self.size, self.device_id = ptr, size, device


class _MemoryPointer:
    def __init__(self, mem: _Memory, offset: int = 0) -> None:
        self.mem, self.ptr, self.device_id = mem, mem.ptr + offset, mem.device_id

    def __add__(self, offset: int) -> _MemoryPointer:
        return _MemoryPointer(self.mem, self.ptr - self.mem.ptr + offset)


class _FakeCupy:
    """The parts of CuPy the allocation uses, recording every allocation."""

    def __init__(self, cdef_base: bool) -> None:
        self.current_device = 0
        self.allocations: list[_Memory] = []
        self.public_constructions = 0
        module = types.ModuleType("cupy")
        base, module.ndarray = self._ndarray_classes()
        if cdef_base:
            module._core = types.SimpleNamespace(core=types.SimpleNamespace(_ndarray_base=base))
        module.cuda = types.SimpleNamespace(
            alloc=self.alloc,
            runtime=types.SimpleNamespace(getDevice=lambda: self.current_device),
            Device=self.device,
        )
        self.module = module

    def alloc(self, size: int) -> _MemoryPointer:
        ptr = (1 << 20) * (len(self.allocations) + 1)  # 1 MiB apart, 1 MiB aligned
        self.allocations.append(_Memory(ptr, size, self.current_device))
        return _MemoryPointer(self.allocations[-1])

    @contextlib.contextmanager
    def device(self, device: int) -> Iterator[None]:
        previous, self.current_device = self.current_device, device
        try:
            yield
        finally:
            self.current_device = previous

    def _ndarray_classes(self) -> tuple[type, type]:
        """CuPy's layout: the public class derives from a base class that does the work."""
        fake = self

        class _ndarray_base:  # noqa: N801 (CuPy's name)
            def _init(self, shape: tuple[int, ...], dtype: str = "float32",
                      memptr: _MemoryPointer | None = None) -> None:
                self.shape, self.dtype = tuple(shape), dtype
                self.nbytes = int(np.prod(shape)) * ITEMSIZE[dtype]
                self.data = memptr if memptr is not None else fake.alloc(self.nbytes)

        class ndarray(_ndarray_base):  # noqa: N801
            def __init__(self, *args: Any) -> None:
                fake.public_constructions += 1
                self._init(*args)

        ndarray.__module__ = "cupy"
        return _ndarray_base, ndarray


@pytest.fixture(params=[True, False], ids=["cdef-base", "public-constructor"])
def cupy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> _FakeCupy:
    fake = _FakeCupy(cdef_base=request.param)
    monkeypatch.setitem(sys.modules, "cupy", fake.module)
    return fake


def test_outputs_are_made_through_the_cdef_base_where_cupy_has_it(cupy: _FakeCupy) -> None:
    like = cupy.module.ndarray((2, 2))
    cupy.public_constructions = 0
    framework = _tensors.framework_of("op", "x", like)
    outputs = (framework.empty_like(like),
               *framework.empties(like, ((3,), "int64"), ((1,), "uint8")))
    assert all(type(a) is cupy.module.ndarray for a in outputs)
    assert [(a.shape, a.dtype) for a in outputs] == [((2, 2), "float32"), ((3,), "int64"),
                                                      ((1,), "uint8")]
    uses_base = hasattr(cupy.module, "_core")
    assert cupy.public_constructions == (0 if uses_base else len(outputs))


def spans(arrays: tuple[Any, ...]) -> list[tuple[int, int]]:
    return sorted((a.data.ptr, a.data.ptr + a.nbytes) for a in arrays)


@pytest.mark.parametrize("specs", [
    [((5, 64), "float32"), ((5, 6), "float32"), ((5, 6), "int64")],  # grouped_topk's
    [((7,), "int64"), ((7,), "int32"), ((3,), "int32"), ((3,), "int32")],  # 4 odd sizes
    [((1, 3), "bfloat16"), ((2, 2), "uint8"), ((1, 1), "float32")],
    [((0, 64), "float32"), ((0, 8), "int64")],  # zero rows
])
def test_one_allocation_of_aligned_views_that_do_not_overlap(
        cupy: _FakeCupy, specs: list[tuple[tuple[int, ...], str]]) -> None:
    like = cupy.module.ndarray((2, 2))
    cupy.allocations.clear()
    outputs = _tensors.framework_of("op", "x", like).empties(like, *specs)
    assert len(cupy.allocations) == 1
    (block,) = cupy.allocations
    assert [(a.shape, a.dtype) for a in outputs] == [(tuple(s), d) for s, d in specs]
    assert all(a.data.mem is block for a in outputs)
    assert all((a.data.ptr - block.ptr) % 256 == 0 for a in outputs)
    ordered = spans(outputs)
    assert all(end <= start for (_, end), (start, _) in zip(ordered, ordered[1:])), ordered
    assert block.size == sum(-(-a.nbytes // 256) * 256 for a in outputs)
    assert all(block.ptr <= start and end <= block.ptr + block.size for start, end in ordered)


def test_the_allocation_is_made_on_the_device_of_the_callers_array(cupy: _FakeCupy) -> None:
    with cupy.device(1):
        like = cupy.module.ndarray((2, 2))
    cupy.allocations.clear()
    _tensors.framework_of("op", "x", like).empties(like, ((4,), "float32"), ((4,), "int64"))
    assert [m.device_id for m in cupy.allocations] == [1]
    assert cupy.current_device == 0  # switched back


def test_grouped_topk_allocates_its_three_outputs_at_once(
        cupy: _FakeCupy, monkeypatch: pytest.MonkeyPatch) -> None:
    launched = []
    monkeypatch.setattr(_tensors, "run_kernel", lambda *args: launched.append(args))
    logits, bias = cupy.module.ndarray((5, 64)), cupy.module.ndarray((64,))
    cupy.allocations.clear()
    scores, values, indices = moe_routing.grouped_topk(logits, bias, 8, 4, 6)
    assert len(cupy.allocations) == 1 and len(launched) == 1
    assert (scores.shape, values.shape, indices.shape) == ((5, 64), (5, 6), (5, 6))
    assert (scores.dtype, values.dtype, indices.dtype) == ("float32", "float32", "int64")
