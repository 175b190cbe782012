"""The torch operators on the CPU (run by ../test_torch_library.py in the build root's torch
environment: PyPI's torch 2.11.0, the release of the GPU machines, with no GPU; the sm80 module
is forced, so the real bindings load).

What holds without a GPU: every kernel of the bindings is an operator whose schema has the
binding's arguments; fake tensors on a CUDA device give every op's output shapes and dtypes
without reaching a kernel; a decode step of the typed API compiles with ``fullgraph=True``
(no graph break) and runs its operators in order; CPU tensors get the bindings' own errors
through the operators; the operators are registered on import when torch is imported first.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import torch
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
    preprocess,
    quantization,
    rotary,
    sampling,
    speculative,
)

OPS = torch.ops.fastdeploy_ops
BF16, F32, I32, I64, BOOL = torch.bfloat16, torch.float32, torch.int32, torch.int64, torch.bool
FP8 = torch.float8_e4m3fn


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


def test_seeds_above_int64_are_refused_with_torch_tensors() -> None:
    probs = torch.zeros(2, 8)
    with pytest.raises(ValueError, match=r"'seed' must be in \[0, 2\*\*63\) with torch"):
        sampling.top_k_top_p_sampling_from_probs(probs, 2, 0.5, 2**63)
    with pytest.raises(ValueError, match=r"'offset' must be in \[0, 2\*\*63\) with torch"):
        sampling.top_k_top_p_sampling_from_probs(probs, 2, 0.5, 0, 2**63)


# Fake tensors: the ops under FakeTensorMode, inputs on a CUDA device, no kernel reachable.

def _tensor(shape: tuple[int, ...], dtype: torch.dtype = BF16) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="cuda")


T, BS, H, KV, D = 64, 64, 32, 8, 128  # Llama-3-8B decode at batch 64


def _paged(cache_dtype: torch.dtype) -> dict[str, torch.Tensor]:
    scales = {} if cache_dtype == BF16 else {"key_scale": _tensor((KV,), F32),
                                              "value_scale": _tensor((KV,), F32)}
    return dict(key_cache=_tensor((512, KV, 64, D), cache_dtype),
                value_cache=_tensor((512, KV, 64, D), cache_dtype),
                block_tables=_tensor((BS, 8), I32), **scales)


def _decode(cache_dtype: torch.dtype) -> Any:
    paged = _paged(cache_dtype)
    return attention.paged_decode_attention(
        _tensor((BS, H, D)), paged.pop("key_cache"), paged.pop("value_cache"),
        paged.pop("block_tables"), _tensor((BS,), I32), **paged)


def _prefill(cache_dtype: torch.dtype) -> Any:
    paged = _paged(cache_dtype)
    return attention.paged_prefill_attention(
        _tensor((1000, H, D)), _tensor((9,), I32), paged.pop("key_cache"),
        paged.pop("value_cache"), paged.pop("block_tables"), _tensor((8,), I32), **paged)


def _kv_append(cache_dtype: torch.dtype) -> Any:
    paged = _paged(cache_dtype)
    return attention.paged_kv_append(
        _tensor((T, KV, D)), _tensor((T, KV, D)), paged.pop("key_cache"),
        paged.pop("value_cache"), paged.pop("block_tables"), _tensor((BS,), I32),
        _tensor((BS + 1,), I32), query=_tensor((T, H, D)),
        cos_sin_cache=_tensor((8192, D)), **paged)


def _penalties() -> Any:
    rows, vocab = 256, 128256
    column = lambda dtype=F32: _tensor((rows, 1), dtype)  # noqa: E731
    return penalty.get_token_penalty_multi_scores(
        _tensor((rows, 4096), I64), _tensor((rows, vocab), F32), column(), column(), column(),
        column(), _tensor((rows, 4), I64), _tensor((rows,), I64), _tensor((rows,), I64),
        _tensor((rows,), I64), _tensor((rows,), I64), _tensor((2,), I64))


def _set_stop() -> Any:
    bs = 32
    return preprocess.set_stop_value_multi_ends(
        _tensor((bs, 1), I64), _tensor((bs, 1), BOOL), _tensor((bs,), I32), _tensor((2,), I64),
        _tensor((bs, 1), I64), _tensor((bs, 1024), I64), _tensor((bs,), I64),
        _tensor((bs, 4, 8), I64), _tensor((bs, 4), I32), _tensor((bs, 4), I64),
        _tensor((bs,), I32), _tensor((bs,), I64), _tensor((bs,), I64))


def _verify() -> Any:
    bs, draft, total = 16, 4, 64
    return speculative.speculate_verify(
        _tensor((total,), I64), _tensor((bs, draft), I64), _tensor((bs,), I32),
        _tensor((bs,), I64), _tensor((bs,), BOOL), _tensor((bs,), I32), _tensor((bs,), I32),
        _tensor((bs, draft), I64), _tensor((bs,), I32), _tensor((total, 4), I64),
        _tensor((total, 4), F32), _tensor((bs,), I64), _tensor((2,), I64),
        _tensor((bs,), BOOL), _tensor((bs,), I32), _tensor((total,), I32),
        _tensor((bs,), I32), _tensor((bs,), F32), 2048, 2, True, False)


def _update() -> Any:
    bs, draft = 16, 4
    return speculative.speculate_update(
        _tensor((bs,), I32), _tensor((bs,), I32), _tensor((1,), BOOL), _tensor((bs, draft), I64),
        _tensor((bs,), I32), _tensor((bs, draft), I64), _tensor((bs,), I32),
        _tensor((bs,), BOOL), _tensor((bs,), I32), _tensor((bs,), BOOL), _tensor((1,), I64))


Shape = tuple[tuple[int, ...], torch.dtype] | None
# op label -> (the call, the shape and dtype of each output, None where the op returns None)
FAKE_CASES: dict[str, tuple[Callable[[], Any], list[Shape]]] = {
    "gelu_tanh": (lambda: activation.gelu_tanh(_tensor((T, 14336))), [((T, 14336), BF16)]),
    "rotary": (lambda: rotary.fused_rotary_position_encoding(
        _tensor((T, H * D)), _tensor((T, KV * D)), _tensor((T,), I32), _tensor((8192, D)), D),
        [((T, H * D), BF16), ((T, KV * D), BF16)]),
    "kv_append_bf16": (lambda: _kv_append(BF16), [None]),
    "kv_append_fp8": (lambda: _kv_append(FP8), [None]),
    "decode_bf16": (lambda: _decode(BF16), [((BS, H, D), BF16)]),
    "decode_fp8": (lambda: _decode(FP8), [((BS, H, D), BF16)]),
    "decode_int8": (lambda: _decode(torch.int8), [((BS, H, D), BF16)]),
    "prefill_bf16": (lambda: _prefill(BF16), [((1000, H, D), BF16)]),
    "prefill_fp8": (lambda: _prefill(FP8), [((1000, H, D), BF16)]),
    "grouped_topk": (lambda: moe_routing.grouped_topk(
        _tensor((T, 256)), _tensor((256,), F32), 8, 4, 8),
        [((T, 256), F32), ((T, 8), F32), ((T, 8), I64)]),
    "noaux_tc": (lambda: moe_routing.noaux_tc(
        _tensor((T, 256), F32), _tensor((T, 256), F32), 8, 4, 8),
        [((T, 256), F32), ((T, 8), F32), ((T, 8), I64)]),
    "fused_cast_sigmoid_bias": (lambda: moe_routing.fused_cast_sigmoid_bias(
        _tensor((T, 256)), _tensor((256,), F32), "bfloat16"), [((T, 256), BF16)] * 2),
    "moe_topk_select_3d": (lambda: moe_routing.moe_topk_select(
        _tensor((2, 32, 128), F32), None, 8), [((T, 8), I64), ((T, 8), F32)]),
    "penalties": (_penalties, [((256, 128256), F32)]),
    "penalty_once": (lambda: penalty.get_token_penalty_once(
        _tensor((8, 512), I64), _tensor((8, 32000)), _tensor((8, 1), F32)),
        [((8, 32000), BF16)]),
    "get_padding_offset": (lambda: preprocess.get_padding_offset(
        _tensor((8, 2048), I64), 5000, _tensor((8,), I32)),
        [((5000,), I64), ((5000,), I32), ((9,), I32), ((9,), I32)]),
    "rebuild_padding": (lambda: preprocess.rebuild_padding(
        _tensor((5000, 4096)), _tensor((9,), I32), _tensor((8,), I32), _tensor((8,), I32),
        _tensor((8,), I32)), [((8, 4096), BF16)]),
    "rebuild_padding_speculative": (lambda: preprocess.rebuild_padding(
        _tensor((5000, 4096)), _tensor((9,), I32), _tensor((8,), I32), _tensor((8,), I32),
        _tensor((8,), I32), _tensor((20,), I32), None, 2048), [((20, 4096), BF16)]),
    "set_value_by_flags_and_idx": (lambda: preprocess.set_value_by_flags_and_idx(
        _tensor((32, 1024), I64), _tensor((32, 16), I64), _tensor((32,), I32),
        _tensor((32,), I32), _tensor((32,), I32), _tensor((32,), I64), _tensor((32,), BOOL)),
        [((32, 1024), I64)]),
    "set_stop_value_multi_ends": (_set_stop, [((32, 1), I64), ((32, 1), BOOL), ((32, 1), I64)]),
    "per_token_quant": (lambda: quantization.per_token_quant(_tensor((T, 7168)), 128),
                        [((T, 7168), FP8), ((T, 56), F32)]),
    "per_token_quant_ue8m0": (lambda: quantization.per_token_quant(_tensor((T, 7168)), 128, True),
                              [((T, 7168), FP8), ((T, 14), I32)]),
    # The padded scale has a row per token rounded up to a multiple of 4, column-major.
    "per_token_quant_padding": (lambda: quantization.per_token_quant_padding(
        _tensor((T - 1, 7168)), 128), [((T - 1, 7168), FP8), ((T, 56), F32)]),
    "top_k_renorm_probs": (lambda: sampling.top_k_renorm_probs(
        _tensor((128, 128256), F32), _tensor((128,), I32)), [((128, 128256), F32)]),
    "top_p_renorm_probs": (lambda: sampling.top_p_renorm_probs(_tensor((128, 128256), F32), 0.9),
                           [((128, 128256), F32)]),
    "top_k_top_p_sampling": (lambda: sampling.top_k_top_p_sampling_from_probs(
        _tensor((128, 128256), F32), 50, _tensor((128,), F32), 7, 3), [((128,), I64)]),
    "speculate_verify": (_verify, [None]),
    "speculate_update": (_update, [None]),
}


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
    launched: list[str] = []

    def recorder(family: str, op: str, group: str | None = None) -> Callable[..., None]:
        return lambda *args: launched.append(op)

    monkeypatch.setattr(_tensors, "get_op", recorder)
    torch._dynamo.reset()
    compiled = torch.compile(_decode_step, fullgraph=True, backend="aot_eager")
    inputs = _step_inputs()
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
