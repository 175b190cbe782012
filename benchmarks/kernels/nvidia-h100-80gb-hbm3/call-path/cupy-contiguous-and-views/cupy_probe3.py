"""Where the CuPy call path's microseconds go, per op (host µs per call, tiny inputs)."""
import sys, time, statistics
import numpy, torch, cupy, ml_dtypes
import fastdeploy_ops
from fastdeploy_ops import _tensors, attention, moe_routing, penalty, sampling, activation
from fastdeploy_ops._loader import get_op
from fastdeploy_ops.bench.overhead import host_us_per_call as t

rows = []
def row(name, fn):
    try:
        rows.append((name, t(torch, fn)))
    except Exception as e:  # noqa
        rows.append((name, f"error {type(e).__name__}: {e}"))

C = cupy.from_dlpack
i64 = dict(device="cuda", dtype=torch.int64); i32 = dict(device="cuda", dtype=torch.int32)
bf16 = dict(device="cuda", dtype=torch.bfloat16)
# --- components
x = cupy.zeros((1, 8), cupy.float32)
q = C(torch.randn(1, 8, 128, **bf16))
row("framework_of", lambda: _tensors.framework_of("op", "x", x))
row("_cupy_stream([x])", lambda: _tensors._cupy_stream((x,)))
row("get_current_stream(0).ptr", lambda: cupy.cuda.get_current_stream(0).ptr)
row("x.data.device_id", lambda: x.data.device_id)
row("runtime.getDevice()", lambda: cupy.cuda.runtime.getDevice())
row("ndarray((1,8),'float32')", lambda: cupy.ndarray((1, 8), "float32"))
f32 = numpy.dtype("float32")
row("ndarray((1,8),dtype obj)", lambda: cupy.ndarray((1, 8), f32))
row("ndarray((1,8),numpy.float32)", lambda: cupy.ndarray((1, 8), numpy.float32))
bfd = numpy.dtype(ml_dtypes.bfloat16)
row("ndarray((1,8),bf16 dtype obj)", lambda: cupy.ndarray((1, 8), bfd))
row("ndarray((1,8),bf16.type)", lambda: cupy.ndarray((1, 8), ml_dtypes.bfloat16))
row("ndarray((1,8),'bfloat16')", lambda: cupy.ndarray((1, 8), "bfloat16"))
row("_cupy_like(bf16 [1,8,128])", lambda: _tensors._cupy_like(q))
row("memory.alloc(32)", lambda: cupy.cuda.memory.alloc(32))
m = cupy.cuda.memory.alloc(1024)
row("ndarray((1,8),f32,memptr=m)", lambda: cupy.ndarray((1, 8), f32, memptr=m))
row("m + 64", lambda: m + 64)
row("ndarray(memptr=m+64)", lambda: cupy.ndarray((1, 8), f32, memptr=m + 64))
pool = cupy.get_default_memory_pool()
i64d = numpy.dtype("int64")
row("3 x ndarray (grouped_topk outputs)", lambda: (cupy.ndarray((1, 256), f32), cupy.ndarray((1, 8), f32), cupy.ndarray((1, 8), i64d)))
def one_block():
    b = cupy.cuda.memory.alloc(1536)
    return (cupy.ndarray((1, 256), f32, memptr=b), cupy.ndarray((1, 8), f32, memptr=b + 1024), cupy.ndarray((1, 8), i64d, memptr=b + 1280))
row("1 alloc + 3 ndarray(memptr=)", one_block)
row("pool.malloc(32)", lambda: pool.malloc(32))
row("x._c_contiguous", lambda: x._c_contiguous)
row("x.shape", lambda: x.shape)
row("x.strides", lambda: x.strides)
row("x.dtype", lambda: x.dtype)
row("x.data.ptr", lambda: x.data.ptr)
row("x._shape", lambda: x._shape)
row("x.size", lambda: x.size)
row("x.shape+strides", lambda: (x.shape, x.strides))
row("x._shape+_c_contiguous", lambda: (x._shape, x._c_contiguous))
row("x data/ptr/dev/dtype/shape/strides", lambda: (x.dtype, x.data.ptr, x.data.device_id, x.shape, x.strides))
row("x data/ptr/dev/dtype/_shape/_c", lambda: (x.dtype, x.data.ptr, x.data.device_id, x._shape, x._c_contiguous))
row("nothing (lambda: None)", lambda: None)
# --- penalties: binding with cupy, with fresh torch capsules, torch operator; bs=1 and bs=0
pen = get_op("penalty", "get_token_penalty_multi_scores")
def pen_args(bs):
    ids = torch.zeros(bs, 16, **i64); one = torch.ones(bs, 1, device="cuda")
    lens = torch.ones(bs, 1, **i64)
    return [ids, torch.randn(bs, 1000, device="cuda"), one.clone(), one.clone(), one.clone(),
            one.clone(), torch.zeros(bs, 2, **i64), lens.clone(), lens.clone(), lens.clone(),
            lens.clone(), torch.tensor([2], **i64)]
fastdeploy_ops.register_torch_ops()
ops = torch.ops.fastdeploy_ops
dl = torch._C._to_dlpack
for bs in (1, 0):
    targs = pen_args(bs); cargs = [C(a) for a in targs]
    row(f"pen bs={bs} binding cupy", lambda: pen(*cargs, 0))
    row(f"pen bs={bs} binding fresh capsules", lambda: pen(*[dl(a) for a in targs], 0))
    row(f"pen bs={bs} 12 x to_dlpack alone", lambda: [dl(a) for a in targs])
    row(f"pen bs={bs} torch operator", lambda: ops.get_token_penalty_multi_scores(*targs))
    row(f"pen bs={bs} typed cupy", lambda: penalty.get_token_penalty_multi_scores(*cargs))
# gelu binding (2 arrays) cupy vs capsules, and one converted argument less
gelu = get_op("activation", "gelu_tanh")
xg = torch.randn(8, 64, **bf16); og = torch.empty_like(xg)
xgc, ogc = C(xg), C(og)
row("gelu binding cupy", lambda: gelu(xgc, ogc, 0))
row("gelu binding capsules", lambda: gelu(dl(xg), dl(og), 0))
row("gelu torch operator", lambda: ops.gelu_tanh(xg, og))
# --- the four ops: typed, typed out=, the typed API's own time (run_kernel replaced by a no-op
# for the call, so neither the binding nor the launch runs), the binding called directly
real_run = _tensors.run_kernel
def without_kernel_call(fn):
    def g():
        _tensors.run_kernel = lambda *a: None
        try:
            return fn()
        finally:
            _tensors.run_kernel = real_run
    return g
def swap_cost():  # what without_kernel_call adds by swapping run_kernel out and back
    _tensors.run_kernel = lambda *a: None
    _tensors.run_kernel = real_run
row("stub swap cost", swap_cost)
lg, bias = C(torch.randn(1, 256, device="cuda")), C(torch.randn(256, device="cuda"))
outs = (cupy.empty((1, 256), cupy.float32), cupy.empty((1, 8), cupy.float32), cupy.empty((1, 8), cupy.int64))
gt = get_op("moe_routing", "grouped_topk")
row("grouped_topk typed", lambda: moe_routing.grouped_topk(lg, bias, 8, 4, 8))
row("grouped_topk typed out=", lambda: moe_routing.grouped_topk(lg, bias, 8, 4, 8, out=outs))
row("grouped_topk typed, no kernel call", without_kernel_call(lambda: moe_routing.grouped_topk(lg, bias, 8, 4, 8)))
row("grouped_topk typed out=, no kernel call", without_kernel_call(lambda: moe_routing.grouped_topk(lg, bias, 8, 4, 8, out=outs)))
row("grouped_topk binding", lambda: gt(lg, bias, *outs, 8, 4, 8, True, 1.0, 0))
q = C(torch.randn(1, 8, 128, **bf16)); kc, vc = C(torch.randn(2, 8, 16, 128, **bf16)), C(torch.randn(2, 8, 16, 128, **bf16))
tab = C(torch.tensor([[0, 1]], **i32)); sl = C(torch.tensor([20], **i32)); qo = cupy.empty_like(q)
dec = get_op("attention", "paged_decode_attention")
da = lambda **kw: attention.paged_decode_attention(q, kc, vc, tab, sl, check_metadata=False, **kw)
row("decode typed", da)
row("decode typed out=", lambda: da(out=qo))
row("decode typed, no kernel call", without_kernel_call(da))
row("decode typed out=, no kernel call", without_kernel_call(lambda: da(out=qo)))
row("decode binding", lambda: dec(q, qo, kc, vc, tab, sl, None, None, 0.088, 0, False, 0))
pr = C(torch.softmax(torch.randn(1, 1000, device="cuda"), -1)); so = cupy.empty((1,), cupy.int64)
sm = get_op("sampling", "top_k_top_p_sampling_from_probs")
sa = lambda **kw: sampling.top_k_top_p_sampling_from_probs(pr, 20, 0.9, 1, **kw)
row("sampling typed", sa)
row("sampling typed out=", lambda: sa(out=so))
row("sampling typed, no kernel call", without_kernel_call(sa))
row("sampling typed out=, no kernel call", without_kernel_call(lambda: sa(out=so)))
row("sampling binding", lambda: sm(pr, None, 20, None, 0.9, 1, 0, so, 0))
cargs = [C(a) for a in pen_args(1)]
row("penalty typed, no kernel call", without_kernel_call(lambda: penalty.get_token_penalty_multi_scores(*cargs)))

# --- zero rows: conversion and checks without a launch
g0 = cupy.empty((0, 64), ml_dtypes.bfloat16); g0o = cupy.empty((0, 64), ml_dtypes.bfloat16)
row("gelu binding cupy 0 rows", lambda: gelu(g0, g0o, 0))
lg0 = cupy.empty((0, 256), cupy.float32)
outs0 = (cupy.empty((0, 256), cupy.float32), cupy.empty((0, 8), cupy.float32), cupy.empty((0, 8), cupy.int64))
row("grouped_topk binding 0 rows", lambda: gt(lg0, bias, *outs0, 8, 4, 8, True, 1.0, 0))
pr0 = cupy.empty((0, 1000), cupy.float32); so0 = cupy.empty((0,), cupy.int64)
row("sampling binding 0 rows", lambda: sm(pr0, None, 20, None, 0.9, 1, 0, so0, 0))
q0 = cupy.empty((0, 8, 128), ml_dtypes.bfloat16); qo0 = cupy.empty_like(q0)
tab0 = cupy.empty((0, 2), cupy.int32); sl0 = cupy.empty((0,), cupy.int32)
row("decode binding 0 rows", lambda: dec(q0, qo0, kc, vc, tab0, sl0, None, None, 0.088, 0, False, 0))
row("torch.add out=", lambda: torch.add(xg, xg, out=og))
import shutil
print("perf:", shutil.which("perf"), "py-spy:", shutil.which("py-spy"), "nsys:", shutil.which("nsys"))
print("| what | µs |\n|---|---|")
for name, us in rows:
    print(f"| {name} | {us if isinstance(us, str) else f'{us:.2f}'} |")
