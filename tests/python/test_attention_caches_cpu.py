"""Which kernel the attention ops pick for a pair of caches, without a GPU.

fp8 caches go to the kernels of their own instantiation group as uint8 views; every other dtype
goes to the family's kernels as is (the binding then checks that both caches share it). An fp8
cache beside a cache of another dtype is refused by name before anything is launched.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from fastdeploy_ops import attention

OP = "paged_decode_attention"


class _Dtype:
    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return f"fakefw.{self.name}"


_DTYPES = {name: _Dtype(name) for name in ("bfloat16", "float16", "int8", "float8_e4m3fn")}


class _Tensor:
    def __init__(self, dtype: str, view_of: _Tensor | None = None) -> None:
        self.dtype, self.view_of = _DTYPES[dtype], view_of

    def view(self, dtype: Any) -> _Tensor:
        assert dtype == "uint8-marker"
        return _Tensor("int8", view_of=self)


_Tensor.__module__ = "fakefw"


@pytest.fixture(autouse=True)
def framework(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fakefw", types.SimpleNamespace(uint8="uint8-marker"))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "int8"])
def test_caches_of_one_dtype_use_the_family_kernels_as_they_are(dtype: str) -> None:
    key, value = _Tensor(dtype), _Tensor(dtype)
    kernel, key_arg, value_arg = attention._cache_op(OP, key, value)
    assert (kernel.family, kernel.op, kernel.group) == ("attention", OP, None)
    assert key_arg is key and value_arg is value


def test_fp8_caches_use_their_group_as_bytes() -> None:
    key, value = _Tensor("float8_e4m3fn"), _Tensor("float8_e4m3fn")
    kernel, key_arg, value_arg = attention._cache_op(OP, key, value)
    assert (kernel.op, kernel.group) == (OP, "cache=fp8")
    assert key_arg.view_of is key and value_arg.view_of is value


@pytest.mark.parametrize(("key", "value"), [("float8_e4m3fn", "bfloat16"),
                                            ("bfloat16", "float8_e4m3fn"),
                                            ("int8", "float8_e4m3fn")])
def test_an_fp8_cache_beside_another_dtype_is_refused(key: str, value: str) -> None:
    with pytest.raises(TypeError, match=rf"{OP}: argument 'value_cache' must have the dtype of "
                                        rf"'key_cache' \({key}\), got {value}"):
        attention._cache_op(OP, _Tensor(key), _Tensor(value))


def test_every_op_and_group_has_a_torch_schema() -> None:
    for op in ("paged_kv_append", "paged_decode_attention", "paged_prefill_attention"):
        for group in (None, "cache=fp8"):
            assert any(k.op == op and k.group == group for k in attention.TORCH_SCHEMAS)
