"""The torch operators on the CPU (run by ../test_torch_library.py in the build root's torch
environment: PyPI's torch 2.11.0, the release of the GPU machines, with no GPU; the sm80 module
is forced, so the real bindings load). FASTDEPLOY_OPS_TORCH_NATIVE says which implementation the
operators have: the wheel's C++ library (unset or 1) or the Python one (0); both runs must pass.

What holds without a GPU: every kernel of the bindings is an operator whose schema has the
binding's arguments; fake tensors on a CUDA device give every op's output shapes and dtypes
without reaching a kernel; a decode step of the typed API compiles with ``fullgraph=True``
(no graph break) and reaches its operators; every kind of argument (tensors of each dtype and
shape, optional tensors, ints, floats, bools) reaches the bindings' checks intact, and CPU
tensors get the bindings' own errors through the operators; the operators are registered on
import when torch is imported first.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import torch
from fake_tensors import BF16, D, H, I32, I64, KV
from torch._subclasses.fake_tensor import FakeTensorMode

import fastdeploy_ops
from fastdeploy_ops import (
    _loader,
    _tensors,
    _torch_library,
    activation,
    attention,
    moe_routing,
    penalty,
    rotary,
    sampling,
)

OPS = torch.ops.fastdeploy_ops
NATIVE = os.environ.get(_torch_library.ENV_NATIVE, "1") != "0"
F64 = torch.float64


def declared() -> dict[Any, str]:
    """Every family module's TORCH_SCHEMAS, merged."""
    schemas = {}
    for name in fastdeploy_ops._family_modules():
        schemas.update(importlib.import_module(f"fastdeploy_ops.{name}").TORCH_SCHEMAS)
    return schemas


def binding_parameters(op: str) -> list[tuple[str, str]]:
    """``(name, type)`` of the compiled function's parameters, from nanobind's signature."""
    signature = getattr(_loader.load_module(), op).__nb_signature__[0][0]
    params = re.fullmatch(r"def \w+\((.*)\) -> \w+", signature).group(1)
    return [tuple(p.split(": ")) for p in params.split(", ")]


def kernel_functions() -> set[str]:
    """The compiled functions that launch kernels: those taking a stream."""
    module = _loader.load_module()
    return {name for name in dir(module)
            if hasattr(getattr(module, name), "__nb_signature__")
            and ("stream", "int") in binding_parameters(name)}


def test_every_kernel_function_has_an_operator() -> None:
    schemas = declared()
    assert {kernel.op for kernel in schemas} == kernel_functions()
    for kernel in schemas:
        assert isinstance(getattr(OPS, kernel.torch_name), torch._ops.OpOverloadPacket)
    # fp8 caches: the attention kernels of the "cache=fp8" group have operators of their own.
    fp8 = sorted(k.torch_name for k in schemas if k.group is not None)
    assert fp8 == ["paged_decode_attention_cache_fp8", "paged_kv_append_cache_fp8",
                   "paged_prefill_attention_cache_fp8"]


TYPES = {"ndarray[]": "Tensor", "ndarray[] | None": "Tensor?", "int": "int", "float": "float",
         "bool": "bool"}


def schema_arguments(schema: Any) -> list[tuple[str, str]]:
    return [(a.name, str(a.type).replace("Optional[Tensor]", "Tensor?")) for a in schema.arguments]


def binding_arguments(op: str) -> list[tuple[str, str]]:
    return [(name, TYPES[kind]) for name, kind in binding_parameters(op) if name != "stream"]


@pytest.mark.parametrize("kernel", sorted(declared(), key=lambda k: k.torch_name),
                         ids=lambda k: k.torch_name)
def test_schema_has_the_binding_arguments(kernel: Any) -> None:
    schema = getattr(OPS, kernel.torch_name).default._schema
    assert schema_arguments(schema) == binding_arguments(kernel.op)
    assert not schema.returns
    # Only tensors are written, and each written tensor has an alias set of its own.
    written = [a for a in schema.arguments if a.alias_info is not None]
    assert written and all(a.alias_info.is_write for a in written)
    assert len({frozenset(a.alias_info.before_set) for a in written}) == len(written)


def test_the_comparison_sees_swapped_arguments() -> None:
    swapped = torch._C.parse_schema("fastdeploy_ops::x(Tensor(a!) out, Tensor input) -> ()")
    assert schema_arguments(swapped) != binding_arguments("gelu_tanh")


def test_cpu_tensors_get_the_binding_error() -> None:
    with pytest.raises(ValueError, match=r"^gelu_tanh: argument 'input' must be a CUDA tensor"):
        activation.gelu_tanh(torch.zeros(4, 8))
    with pytest.raises(ValueError, match=r"^grouped_topk: argument 'gating_output' must be a CUDA"):
        OPS.grouped_topk(torch.zeros(2, 16), torch.zeros(16), torch.zeros(2, 16),
                         torch.zeros(2, 2), torch.zeros(2, 2, dtype=I64), 2, 1, 2, True, 1.0)


def test_the_operators_have_the_configured_implementation() -> None:
    fastdeploy_ops.register_torch_ops()
    release = "_".join(torch.__version__.split("+")[0].split(".")[:2])
    if NATIVE:
        assert re.fullmatch(rf"C\+\+ \(/.*/fastdeploy_ops/_torch_ops_{release}\.so\)",
                            _torch_library.implementation())
    else:
        assert _torch_library.implementation() == "Python (FASTDEPLOY_OPS_TORCH_NATIVE=0)"
    info = fastdeploy_ops.info()
    assert info["torch_operators"] == _torch_library.implementation()
    assert f"torch operators: {_torch_library.implementation()}" in str(info)


def test_every_kind_of_argument_reaches_the_binding_intact() -> None:
    """Each error below is the binding's, raised by a check that reads one argument: tensor
    dtypes (float64 and bfloat16 named as such), shapes, ints in their positions, floats."""
    with pytest.raises(TypeError, match=r"^gelu_tanh: argument 'input' must have dtype float32, "
                                        r"float16 or bfloat16, got int32$"):
        OPS.gelu_tanh(torch.zeros(3, dtype=I32), torch.zeros(3, dtype=I32))
    with pytest.raises(TypeError, match=r"^gelu_tanh: argument 'out' must have the dtype of "
                                        r"'input' \(bfloat16\), got float64$"):
        OPS.gelu_tanh(torch.zeros(3, dtype=BF16), torch.zeros(3, dtype=F64))
    with pytest.raises(ValueError, match=r"^gelu_tanh: argument 'out' must have shape "
                                         r"input.shape = \[2, 3\], got \[3, 2\]$"):
        OPS.gelu_tanh(torch.zeros(2, 3), torch.zeros(3, 2))
    logits, bias = torch.zeros(2, 16), torch.zeros(16)
    outputs = (torch.zeros(2, 16), torch.zeros(2, 2), torch.zeros(2, 2, dtype=I64))
    with pytest.raises(ValueError, match=r"^grouped_topk: argument 'n_group' must divide the "
                                         r"number of experts E = 16, got 3$"):
        OPS.grouped_topk(logits, bias, *outputs, 3, 1, 2, True, 1.0)
    with pytest.raises(ValueError, match=r"^grouped_topk: argument 'topk_group' must be between "
                                         r"1 and n_group = 4, got 5$"):
        OPS.grouped_topk(logits, bias, *outputs, 4, 5, 2, True, 1.0)
    with pytest.raises(ValueError, match=r"^grouped_topk: argument 'routed_scaling_factor' must "
                                         r"be finite, got inf$"):
        OPS.grouped_topk(logits, bias, *outputs, 4, 2, 2, False, float("inf"))


def test_optional_tensors_reach_the_binding_absent_or_given() -> None:
    query, positions = torch.zeros(2, 4, 64, dtype=BF16), torch.zeros(2, dtype=I32)
    cache = torch.zeros(16, 64, dtype=BF16)
    with pytest.raises(TypeError, match=r"^fused_rotary_position_encoding: argument "
                                        r"'cos_sin_cache' must have the dtype of 'query'"):
        OPS.fused_rotary_position_encoding(query, None, positions, cache.float(), 64, True)
    with pytest.raises(TypeError, match=r"^fused_rotary_position_encoding: argument 'key' must "
                                        r"have the dtype of 'query'"):
        OPS.fused_rotary_position_encoding(query, query.half(), positions, cache, 64, True)
    with pytest.raises(ValueError, match=r"^fused_rotary_position_encoding: argument 'query' "
                                         r"must be a CUDA tensor"):
        OPS.fused_rotary_position_encoding(query, None, positions, cache, 64, True)


def test_tensors_that_require_grad_are_refused() -> None:
    with pytest.raises(TypeError, match=r"^gelu_tanh: argument 'input' must not require grad"):
        OPS.gelu_tanh(torch.zeros(3, requires_grad=True), torch.zeros(3))


def test_seeds_reach_the_operator_as_their_64_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def recording(kernel: Any, args: Any) -> None:
        seen.update(operator=kernel.torch_name, args=tuple(args))

    monkeypatch.setattr(_torch_library, "call", recording)
    sampling.top_k_top_p_sampling_from_probs(torch.zeros(2, 8), 2, 0.5, 2**64 - 1, 2**63)
    assert seen["operator"] == "top_k_top_p_sampling_from_probs"
    assert seen["args"][5:7] == (-1, -(2**63))


def test_the_python_implementation_hands_the_binding_capsules_and_the_stream(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The operators' Python implementation (torch releases without the C++ library) passes
    each tensor as a DLPack capsule and the plain arguments as they are, then the stream (0 for
    CPU tensors)."""
    seen: list[tuple[Any, ...]] = []
    monkeypatch.setattr(_tensors, "get_op", lambda *a, **k: lambda *args: seen.append(args))
    kernel = next(k for k in declared() if k.op == "grouped_topk")
    operator = OPS.grouped_topk.default
    run = _tensors.torch_operator_implementation(kernel, operator,
                                                 _torch_library._tensor_positions(operator))
    logits, bias = torch.zeros(2, 16), torch.zeros(16)
    outputs = (torch.zeros(2, 16), torch.zeros(2, 2), torch.zeros(2, 2, dtype=I64))
    run(logits, bias, *outputs, 2, 1, 2, True, 1.0)
    kinds = [type(a).__name__ for a in seen[0]]
    assert kinds == ["PyCapsule"] * 5 + ["int", "int", "int", "bool", "float", "int"]
    assert seen[0][5:] == (2, 1, 2, True, 1.0, 0)
    with pytest.raises(TypeError, match=r"^grouped_topk: argument 'e_score_correction_bias' must "
                                        r"not require grad"):
        run(logits, bias.requires_grad_(), *outputs, 2, 1, 2, True, 1.0)


def test_dtype_names_are_the_short_names_every_time() -> None:
    import numpy as np  # noqa: PLC0415

    for _ in range(2):  # the second time from the cache
        assert _tensors.dtype_name(torch.zeros(1, dtype=torch.bfloat16)) == "bfloat16"
        assert _tensors.dtype_name(torch.zeros(1, dtype=I64)) == "int64"
        assert _tensors.dtype_name(np.zeros(1, np.float16)) == "float16"
        assert _tensors.dtype_name(np.zeros(1, np.uint8)) == "uint8"


def test_numpy_among_torch_tensors_gets_the_binding_error() -> None:
    import numpy as np  # noqa: PLC0415

    with pytest.raises(ValueError, match=r"^gelu_tanh: argument '\w+' must be a CUDA tensor"):
        activation.gelu_tanh(torch.zeros(4, 8), out=np.zeros((4, 8), np.float32))


# Fake tensors: the ops under FakeTensorMode, inputs on a CUDA device, no kernel reachable. The
# cases are per family, in fake_cases_<family>.py next to this file (a new family adds its own).

def fake_cases() -> dict[str, Any]:
    cases = {}
    for path in sorted(pathlib.Path(__file__).parent.glob("fake_cases_*.py")):
        family = path.stem.removeprefix("fake_cases_")
        for label, case in importlib.import_module(path.stem).CASES.items():
            cases[f"{family}:{label}"] = case
    return cases


FAKE_CASES = fake_cases()


@pytest.fixture
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(family: str, op: str, group: str | None = None) -> None:
        raise AssertionError(f"a kernel was looked up under fake tensors: {family}.{op}")

    monkeypatch.setattr(_tensors, "get_op", unreachable)


@pytest.mark.usefixtures("no_kernel")
def test_fake_cases_cover_every_op(monkeypatch: pytest.MonkeyPatch) -> None:
    reached: set[str] = set()
    forward = _torch_library.call

    def recording(kernel: Any, args: Any) -> None:
        reached.add(kernel.torch_name)
        forward(kernel, args)

    monkeypatch.setattr(_torch_library, "call", recording)
    with FakeTensorMode():
        for call, _ in FAKE_CASES.values():
            call()
    assert reached == {kernel.torch_name for kernel in declared()}


@pytest.mark.usefixtures("no_kernel")
@pytest.mark.parametrize("label", sorted(FAKE_CASES))
def test_fake_tensors_give_output_shapes_and_dtypes(label: str) -> None:
    call, expected = FAKE_CASES[label]
    with FakeTensorMode():
        result = call()
    outputs = list(result) if isinstance(result, tuple) else [result]
    got = [None if t is None else (tuple(t.shape), t.dtype) for t in outputs]
    assert got == expected
    assert all(t is None or t.device.type == "cuda" for t in outputs)


# torch.compile: a decode step through the typed API, CPU tensors, kernels replaced by a recorder.

def _decode_step(q, k, v, positions, cos_sin, key_cache, value_cache, block_tables, cache_lens,
                 cu_seqlens, seq_lens, router_logits, bias, token_ids, logits, scores, lens,
                 eos, probs):
    attention.paged_kv_append(k, v, key_cache, value_cache, block_tables, cache_lens,
                              cu_seqlens, query=q, cos_sin_cache=cos_sin, check_metadata=False)
    out = attention.paged_decode_attention(q, key_cache, value_cache, block_tables, seq_lens,
                                           check_metadata=False)
    rotary.fused_rotary_position_encoding(q, None, positions, cos_sin, D)
    _, weights, experts = moe_routing.grouped_topk(router_logits, bias, 8, 4, 8)
    logits = penalty.get_token_penalty_multi_scores(
        token_ids, logits, scores, scores, scores, scores, token_ids[:, :2], lens, lens, lens,
        lens, eos)
    samples = sampling.top_k_top_p_sampling_from_probs(probs * 2, 20, 0.9, 123)
    return out.sum() + weights.sum(), experts, logits, samples


def _step_inputs() -> tuple[torch.Tensor, ...]:
    bs, vocab = 4, 1000
    return (torch.zeros(bs, H, D, dtype=BF16), torch.zeros(bs, KV, D, dtype=BF16),
            torch.zeros(bs, KV, D, dtype=BF16), torch.zeros(bs, dtype=I32),
            torch.zeros(64, D, dtype=BF16), torch.zeros(16, KV, 16, D, dtype=BF16),
            torch.zeros(16, KV, 16, D, dtype=BF16), torch.zeros(bs, 4, dtype=I32),
            torch.zeros(bs, dtype=I32), torch.arange(bs + 1, dtype=I32),
            torch.ones(bs, dtype=I32), torch.zeros(bs, 256), torch.zeros(256),
            torch.zeros(bs, 16, dtype=I64), torch.zeros(bs, vocab), torch.ones(bs, 1),
            torch.zeros(bs, dtype=I64), torch.zeros(1, dtype=I64), torch.rand(bs, vocab))


STEP_OPS = ["paged_kv_append", "paged_decode_attention", "fused_rotary_position_encoding",
            "grouped_topk", "get_token_penalty_multi_scores", "top_k_top_p_sampling_from_probs"]


def test_decode_step_compiles_without_graph_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    torch._dynamo.reset()
    compiled = torch.compile(_decode_step, fullgraph=True, backend="aot_eager")
    inputs = _step_inputs()
    if NATIVE:
        # The C++ operators run the real bindings: the compiled step reaches the first one,
        # which refuses the CPU tensors as it does eagerly.
        first_error = r"^paged_kv_append: argument '\w+' must be a CUDA tensor"
        with pytest.raises(ValueError, match=first_error):
            compiled(*inputs)
        with pytest.raises(ValueError, match=first_error):
            _decode_step(*inputs)
        return
    launched: list[str] = []

    def recorder(family: str, op: str, group: str | None = None) -> Callable[..., None]:
        return lambda *args: launched.append(op)

    monkeypatch.setattr(_tensors, "get_op", recorder)
    result = compiled(*inputs)
    assert launched == STEP_OPS
    eager = _decode_step(*inputs)
    assert launched == STEP_OPS * 2
    assert [(r.shape, r.dtype) for r in result] == [(e.shape, e.dtype) for e in eager]


def test_a_kernel_called_around_the_operator_breaks_the_graph(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: torch tensors handed to the binding directly (the path every
    other framework takes) are a call dynamo cannot trace, refused under ``fullgraph=True``."""
    monkeypatch.setattr(_tensors, "get_op", lambda *a, **k: (lambda *args: None))
    monkeypatch.setattr(_torch_library, "call",
                        lambda kernel, args: _tensors.run_kernel(_tensors.TORCH, kernel, args))
    torch._dynamo.reset()
    with pytest.raises(torch._dynamo.exc.Unsupported):
        torch.compile(_decode_step, fullgraph=True, backend="aot_eager")(*_step_inputs())


# Registration: on import when torch is imported first, otherwise on first use.

def _child(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    return done.stdout.strip()


def test_registered_on_import_after_torch() -> None:
    code = ("import torch, fastdeploy_ops; from fastdeploy_ops import _torch_library as t; "
            "print(t.registered(), torch.ops.fastdeploy_ops.gelu_tanh.default._schema.name)")
    assert _child(code) == "True fastdeploy_ops::gelu_tanh"


def test_without_torch_nothing_is_registered_until_a_torch_tensor_arrives() -> None:
    code = ("import sys, fastdeploy_ops; from fastdeploy_ops import _torch_library as t, "
            "activation; print('torch' in sys.modules, t.registered()); import torch\n"
            "try: activation.gelu_tanh(torch.zeros(2))\nexcept ValueError: pass\n"
            "print(t.registered())")
    assert _child(code).split() == ["False", "False", "True"]
