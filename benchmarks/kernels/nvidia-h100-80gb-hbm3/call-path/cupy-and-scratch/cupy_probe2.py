"""The CuPy call path's parts, second look (host µs per call, tiny inputs)."""
import torch, cupy, ml_dtypes
import fastdeploy_ops
from fastdeploy_ops import _tensors, activation, penalty, moe_routing
from fastdeploy_ops._loader import get_op
from fastdeploy_ops.bench.overhead import host_us_per_call as t
import time

rows = []
def row(name, fn):
    rows.append((name, t(torch, fn)))
x16 = cupy.random.randn(8, 64).astype(cupy.float16)
xbf = cupy.random.randn(8, 64).astype(ml_dtypes.bfloat16)
outbf = cupy.empty_like(xbf)
gelu = get_op("activation", "gelu_tanh")
row("gelu typed fp16", lambda: activation.gelu_tanh(x16))
row("gelu typed bf16", lambda: activation.gelu_tanh(xbf))
row("gelu binding bf16", lambda: gelu(xbf, outbf, 0))
row("gelu binding zero-size (no launch)", lambda: gelu(x16[:0], x16[:0], 0))
lg = cupy.random.randn(1, 256).astype(cupy.float32); bias = cupy.random.randn(256).astype(cupy.float32)
outs = (cupy.empty((1, 256), cupy.float32), cupy.empty((1, 8), cupy.float32), cupy.empty((1, 8), cupy.int64))
gt = get_op("moe_routing", "grouped_topk")
row("grouped_topk typed", lambda: moe_routing.grouped_topk(lg, bias, 8, 4, 8))
row("grouped_topk typed out=", lambda: moe_routing.grouped_topk(lg, bias, 8, 4, 8, out=outs))
row("grouped_topk binding", lambda: gt(lg, bias, *outs, 8, 4, 8, True, 1.0, 0))
row("3 x cupy.ndarray", lambda: (cupy.ndarray((1, 256), "float32"), cupy.ndarray((1, 8), "float32"), cupy.ndarray((1, 8), "int64")))
# penalties: cupy-made arrays vs arrays from torch, host time and time with a sync per call
def pen_args(make):
    ids = make(torch.zeros(1, 16, dtype=torch.int64, device="cuda"))
    one = make(torch.ones(1, 1, device="cuda")); lens = make(torch.ones(1, 1, dtype=torch.int64, device="cuda"))
    return (ids, make(torch.randn(1, 1000, device="cuda")), one, one, one, one, make(torch.zeros(1, 2, dtype=torch.int64, device="cuda")), lens, lens, lens, lens, make(torch.tensor([2], device="cuda")))
pen = get_op("penalty", "get_token_penalty_multi_scores")
for label, make in [("from torch", cupy.from_dlpack), ("cupy copies", lambda a: cupy.from_dlpack(a).copy())]:
    args = pen_args(make)
    row(f"penalty binding, {label}", lambda: pen(*args, 0))
    row(f"penalty typed, {label}", lambda: penalty.get_token_penalty_multi_scores(*args))
    def synced():
        pen(*args, 0); cupy.cuda.runtime.deviceSynchronize()
    row(f"penalty binding + sync, {label}", synced)
for name, us in rows:
    print(f"| {name} | {us:.2f} |")
