"""The Paddle adapter against the real PaddlePaddle CPU wheel (run by ../test_paddle_adapter.py
in the build root's Python 3.13 environment, with the sm80 module forced: FASTDEPLOY_OPS_SM=80).

What a CPU build of Paddle can show: how its tensors are recognised, named, allocated and given a
stream; that they reach the real bindings through DLPack, which check dtype, shape and device
before anything is launched; that the op wrappers allocate their outputs with Paddle on the
input's place (with the kernel replaced by a recorder, since no kernel can run); and that the
GPU suite's Paddle tensor library converts every dtype (with its place moved to the CPU).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import paddle
import pytest

from fastdeploy_ops import _tensors, activation, moe_routing, sampling
from fastdeploy_ops.testing import _Paddle

DTYPES = _tensors.DTYPES


def cpu(shape: list[int], dtype: str) -> paddle.Tensor:
    return paddle.zeros(shape, dtype=dtype)


def test_paddle_tensors_are_recognised() -> None:
    framework = _tensors.framework_of("op", "x", cpu([2], "float32"))
    assert framework.name == "paddle"
    assert framework.bfloat16 and not framework.synchronous


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_names(dtype: str) -> None:
    assert _tensors.dtype_name(cpu([2], dtype)) == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_outputs_are_allocated_on_the_input_place(dtype: str) -> None:
    like = cpu([3], "float32")
    out = _tensors.framework_of("op", "x", like).empty(like, (2, 5), dtype)
    assert isinstance(out, paddle.Tensor)
    assert list(out.shape) == [2, 5]
    assert _tensors.dtype_name(out) == dtype
    assert out.place.is_cpu_place() and str(out.place) == str(like.place)


def test_cpu_tensors_have_no_stream() -> None:
    framework = _tensors.framework_of("op", "x", cpu([2], "float32"))
    assert framework.stream([cpu([2], "float32")]) == 0


def test_float8_is_passed_as_its_bytes() -> None:
    x = paddle.to_tensor(np.array([1.0, -2.5, 448.0], np.float32)).astype("float8_e4m3fn")
    raw = _tensors.float8_bytes(x)
    assert _tensors.dtype_name(raw) == "uint8"
    assert list(raw.shape) == [3]
    # 1.0 = 0 0111 000, -2.5 = 1 1000 010, 448 = 0 1111 110 in e4m3fn.
    assert raw.numpy().tolist() == [0x38, 0xC2, 0x7E]


# Through the real bindings (DLPack import of Paddle tensors): the checks that come before the
# device name the op and the argument.
BINDING_CASES = {
    "cpu tensor": (ValueError, "gelu_tanh: argument 'input' must be a CUDA tensor",
                   lambda: activation.gelu_tanh(cpu([4, 64], "bfloat16"))),
    "cpu out": (ValueError, "grouped_topk: argument 'gating_output' must be a CUDA tensor",
                lambda: moe_routing.grouped_topk(cpu([4, 64], "float32"), cpu([64], "float32"),
                                                 8, 4, 8)),
    "dtype": (TypeError, "grouped_topk: argument 'gating_output' must have dtype float32, "
              "float16 or bfloat16, got float64",
              lambda: moe_routing.grouped_topk(cpu([4, 64], "float64"), cpu([64], "float32"),
                                               8, 4, 8)),
    "shape": (ValueError, "grouped_topk: argument 'e_score_correction_bias' must have shape",
              lambda: moe_routing.grouped_topk(cpu([4, 64], "float32"), cpu([2, 64], "float32"),
                                               8, 4, 8)),
}


@pytest.mark.parametrize("case", BINDING_CASES)
def test_bindings_check_paddle_tensors(case: str) -> None:
    error, message, call = BINDING_CASES[case]
    with pytest.raises(error, match=message):
        call()


class Recorder:
    """Stands in for a kernel: remembers its arguments (the stream last)."""

    def __init__(self) -> None:
        self.args: tuple[Any, ...] = ()

    def __call__(self, *args: Any) -> None:
        self.args = args


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    kernel = Recorder()
    monkeypatch.setattr(_tensors, "get_op", lambda family, op, group=None: kernel)
    return kernel


def assert_cpu(tensor: Any, shape: list[int], dtype: str) -> None:
    assert isinstance(tensor, paddle.Tensor)
    assert list(tensor.shape) == shape and _tensors.dtype_name(tensor) == dtype
    assert tensor.place.is_cpu_place()


def test_wrappers_allocate_outputs_with_paddle(recorder: Recorder) -> None:
    x = cpu([4, 64], "bfloat16")
    out = activation.gelu_tanh(x)
    assert_cpu(out, [4, 64], "bfloat16")
    assert recorder.args[0] is x and recorder.args[1] is out and recorder.args[-1] == 0

    scores, values, indices = moe_routing.grouped_topk(x, cpu([64], "float32"), 8, 4, 8)
    assert_cpu(scores, [4, 64], "float32")
    assert_cpu(values, [4, 8], "float32")
    assert_cpu(indices, [4, 8], "int64")

    probs = cpu([3, 100], "float32")
    samples = sampling.top_k_top_p_sampling_from_probs(probs, 5, 0.9, seed=0)
    assert_cpu(samples, [3], "int64")


class CpuPaddle(_Paddle):
    """The GPU suite's Paddle library with its tensors on the CPU."""

    def place(self) -> Any:
        return paddle.CPUPlace()


def test_suite_library_reports_no_gpu() -> None:
    assert _Paddle().device_problem() == "paddle is built without CUDA"


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64", "int32", "int8",
                                   "uint8"])
def test_suite_library_round_trips(dtype: str) -> None:
    lib = CpuPaddle()
    values = np.array([[0.0, 1.0, -2.0], [3.0, 100.0, -7.0]], np.float32)
    want = values.astype(dtype) if dtype != "bfloat16" else values
    got = lib.from_device(lib.to_device(values, dtype))
    assert got.dtype == (np.float32 if dtype == "bfloat16" else np.dtype(dtype))
    np.testing.assert_array_equal(got, want)
    empty = lib.empty((2, 3), dtype)
    assert list(empty.shape) == [2, 3] and _tensors.dtype_name(empty) == dtype


def test_suite_library_rounds_to_nearest_even() -> None:
    lib = CpuPaddle()
    # Halfway between bfloat16 neighbours: ties go to the even mantissa.
    got = lib.from_device(lib.to_device(np.array([1.00390625, 1.01171875], np.float32),
                                        "bfloat16"))
    np.testing.assert_array_equal(got, np.array([1.0, 1.015625], np.float32))
