"""Where the CuPy call path's microseconds go (host time per call, tiny inputs)."""
import sys
import torch, cupy
import fastdeploy_ops
from fastdeploy_ops import _tensors, activation, penalty, attention
from fastdeploy_ops._loader import get_op
from fastdeploy_ops.bench.overhead import host_us_per_call as t

x = cupy.random.randn(8, 64).astype(cupy.float16)
out = cupy.empty_like(x)
gelu = get_op("activation", "gelu_tanh")
fw = _tensors.framework_of("gelu_tanh", "input", x)
rows = []
def row(name, fn):
    rows.append((name, t(torch, fn)))
row("gelu typed cupy", lambda: activation.gelu_tanh(x))
row("gelu typed cupy out=", lambda: activation.gelu_tanh(x, out))
row("binding gelu(x, out, 0)", lambda: gelu(x, out, 0))
row("binding gelu(capsules)", lambda: gelu(x.__dlpack__(), out.__dlpack__(), 0))
row("x.__dlpack__()", lambda: x.__dlpack__())
row("x.__dlpack__(max_version=(1,1))", lambda: x.__dlpack__(max_version=(1, 1)))
row("x.__cuda_array_interface__", lambda: x.__cuda_array_interface__)
row("attrs ptr/shape/strides/dtype/dev", lambda: (x.data.ptr, x.shape, x.strides, x.dtype.num, x.data.device_id))
row("cupy.empty_like", lambda: cupy.empty_like(x))
row("cupy.ndarray(shape,dtype)", lambda: cupy.ndarray(x.shape, x.dtype))
row("cupy.empty(shape,dtype)", lambda: cupy.empty(x.shape, x.dtype))
row("_cupy_like", lambda: _tensors._cupy_like(x))
row("_cupy_stream", lambda: _tensors._cupy_stream([x, out]))
row("get_current_stream().ptr", lambda: cupy.cuda.get_current_stream().ptr)
row("get_current_stream(dev).ptr", lambda: cupy.cuda.get_current_stream(0).ptr)
row("runtime.getDevice()", lambda: cupy.cuda.runtime.getDevice())
row("x.device.id", lambda: x.device.id)
row("get_op", lambda: get_op("activation", "gelu_tanh"))
row("framework_of", lambda: _tensors.framework_of("gelu_tanh", "input", x))
row("run_kernel", lambda: _tensors.run_kernel(fw, _tensors.Kernel("activation", "gelu_tanh"), (x, out)))
# penalties
ids = cupy.zeros((1, 16), cupy.int64); logits = cupy.random.randn(1, 1000).astype(cupy.float32)
one = cupy.ones((1, 1), cupy.float32); lens = cupy.ones((1, 1), cupy.int64)
pargs = (ids, logits, one, one, one, one, ids[:, :2].copy(), lens, lens, lens, lens, cupy.array([2], cupy.int64))
pen = get_op("penalty", "get_token_penalty_multi_scores")
row("penalty typed cupy", lambda: penalty.get_token_penalty_multi_scores(*pargs))
row("penalty binding prealloc", lambda: pen(*pargs, 0))
# attention
q = cupy.random.randn(1, 8, 128).astype(cupy.float16)
kc = cupy.random.randn(2, 8, 16, 128).astype(cupy.float16); vc = kc.copy()
tables = cupy.array([[0, 1]], cupy.int32); sl = cupy.array([20], cupy.int32)
aout = cupy.empty_like(q)
row("decode typed cupy", lambda: attention.paged_decode_attention(q, kc, vc, tables, sl, check_metadata=False))
dec = get_op("attention", "paged_decode_attention")
row("decode binding", lambda: dec(q, aout, kc, vc, tables, sl, None, None, 0.088, 0, False, 0))
# torch side: penalties workspace
tl = torch.randn(1, 1000, device="cuda")
row("torch new_empty int32", lambda: tl.new_empty((1001 + 32,), dtype=torch.int32))
row("torch.empty(n, dtype, device=)", lambda: torch.empty(1033, dtype=torch.int32, device=tl.device))
row("torch empty_like", lambda: torch.empty_like(tl))
tids = torch.zeros(1, 16, device="cuda", dtype=torch.int64)
trow = torch.ones(1, 1, device="cuda"); tlens = torch.ones(1, 1, device="cuda", dtype=torch.int64)
targs = (tids, tl, trow, trow, trow, trow, tids[:, :2].clone(), tlens, tlens, tlens, tlens, torch.tensor([2], device="cuda", dtype=torch.int64))
tws = torch.empty(1 << 16, device="cuda", dtype=torch.int32)
ops = torch.ops.fastdeploy_ops
row("penalty typed torch", lambda: penalty.get_token_penalty_multi_scores(*targs))
row("penalty operator direct", lambda: ops.get_token_penalty_multi_scores(*targs))
row("penalty operator .default", lambda: ops.get_token_penalty_multi_scores.default(*targs))
row("shape_of", lambda: _tensors.shape_of("p", "logits", tl, (2,)))
pieces = [torch.randn(1, 1, device="cuda") for _ in range(12)]; joined = torch.empty(12, 1, device="cuda")
row("torch.cat 12", lambda: torch.cat(pieces, out=joined))
for name, us in rows:
    print(f"| {name} | {us:.2f} |")
