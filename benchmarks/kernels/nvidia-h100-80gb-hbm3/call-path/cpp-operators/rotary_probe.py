"""Where the rotary operator's host time goes, next to gelu_tanh's (µs per call)."""
import torch
import fastdeploy_ops
from fastdeploy_ops._loader import get_op
from fastdeploy_ops.bench.overhead import host_us_per_call


def report(name, fn):
    print(f"{name:45s} {host_us_per_call(torch, fn, calls=2000):7.2f} us", flush=True)


fastdeploy_ops.register_torch_ops()
bf16 = dict(device="cuda", dtype=torch.bfloat16)
q, k = torch.randn(1, 32 * 128, **bf16), torch.randn(1, 8 * 128, **bf16)
pos = torch.zeros(1, device="cuda", dtype=torch.int32)
cs = torch.randn(64, 128, **bf16)
x = torch.randn(8, 64, **bf16)
out = torch.empty_like(x)
a, b, c, d = (torch.randn(8, 64, device="cuda") for _ in range(4))
cap = torch._C._to_dlpack
rot = get_op("rotary", "fused_rotary_position_encoding")
gelu = get_op("activation", "gelu_tanh")
ops = torch.ops.fastdeploy_ops
report("torch.add out", lambda: torch.add(a, b, out=c))
report("torch.addcmul out", lambda: torch.addcmul(a, b, c, out=d))
report("binding gelu capsules", lambda: gelu(cap(x), cap(out), 0))
report("binding rotary capsules", lambda: rot(cap(q), cap(k), cap(pos), cap(cs), 128, True, 0))
report("binding rotary capsules, key None", lambda: rot(cap(q), None, cap(pos), cap(cs), 128, True, 0))
report("binding rotary capsules, gptj", lambda: rot(cap(q), cap(k), cap(pos), cap(cs), 128, False, 0))
report("op gelu .default", lambda: ops.gelu_tanh.default(x, out))
report("op gelu packet", lambda: ops.gelu_tanh(x, out))
report("op rotary .default", lambda: ops.fused_rotary_position_encoding.default(q, k, pos, cs, 128, True))
report("op rotary packet", lambda: ops.fused_rotary_position_encoding(q, k, pos, cs, 128, True))
report("op rotary .default, key None", lambda: ops.fused_rotary_position_encoding.default(q, None, pos, cs, 128, True))
lib = torch.library.Library("probe", "FRAGMENT")
lib.define("g(Tensor input, Tensor(a!) out) -> ()")
lib.impl("g", lambda *args: None, "CUDA")
lib.define("r(Tensor(a!) query, Tensor(b!)? key, Tensor position_ids, Tensor cos_sin_cache, "
           "int head_size, bool is_neox) -> ()")
lib.impl("r", lambda *args: None, "CUDA")
lib.define("r2(Tensor query, Tensor? key, Tensor position_ids, Tensor cos_sin_cache, "
           "int head_size, bool is_neox) -> ()")
lib.impl("r2", lambda *args: None, "CUDA")
report("python noop op, gelu schema", lambda: torch.ops.probe.g.default(x, out))
report("python noop op, rotary schema", lambda: torch.ops.probe.r.default(q, k, pos, cs, 128, True))
report("python noop op, rotary schema unmutated", lambda: torch.ops.probe.r2.default(q, k, pos, cs, 128, True))
