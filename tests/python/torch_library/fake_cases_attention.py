from typing import Any

import torch
from fake_tensors import BF16, BS, D, F32, FP8, H, I32, KV, T, Cases, cuda

from fastdeploy_ops import attention


def _paged(cache_dtype: torch.dtype) -> dict[str, torch.Tensor]:
    scales = {} if cache_dtype == BF16 else {"key_scale": cuda((KV,), F32),
                                              "value_scale": cuda((KV,), F32)}
    return dict(key_cache=cuda((512, KV, 64, D), cache_dtype),
                value_cache=cuda((512, KV, 64, D), cache_dtype),
                block_tables=cuda((BS, 8), I32), **scales)


def _decode(cache_dtype: torch.dtype) -> Any:
    paged = _paged(cache_dtype)
    return attention.paged_decode_attention(
        cuda((BS, H, D)), paged.pop("key_cache"), paged.pop("value_cache"),
        paged.pop("block_tables"), cuda((BS,), I32), **paged)


def _prefill(cache_dtype: torch.dtype) -> Any:
    paged = _paged(cache_dtype)
    return attention.paged_prefill_attention(
        cuda((1000, H, D)), cuda((9,), I32), paged.pop("key_cache"),
        paged.pop("value_cache"), paged.pop("block_tables"), cuda((8,), I32), **paged)


def _kv_append(cache_dtype: torch.dtype) -> Any:
    paged = _paged(cache_dtype)
    return attention.paged_kv_append(
        cuda((T, KV, D)), cuda((T, KV, D)), paged.pop("key_cache"),
        paged.pop("value_cache"), paged.pop("block_tables"), cuda((BS,), I32),
        cuda((BS + 1,), I32), query=cuda((T, H, D)), cos_sin_cache=cuda((8192, D)), **paged)


CASES: Cases = {
    "kv_append_bf16": (lambda: _kv_append(BF16), [None]),
    "kv_append_fp8": (lambda: _kv_append(FP8), [None]),
    "decode_bf16": (lambda: _decode(BF16), [((BS, H, D), BF16)]),
    "decode_fp8": (lambda: _decode(FP8), [((BS, H, D), BF16)]),
    "decode_int8": (lambda: _decode(torch.int8), [((BS, H, D), BF16)]),
    "prefill_bf16": (lambda: _prefill(BF16), [((1000, H, D), BF16)]),
    "prefill_fp8": (lambda: _prefill(FP8), [((1000, H, D), BF16)]),
}
