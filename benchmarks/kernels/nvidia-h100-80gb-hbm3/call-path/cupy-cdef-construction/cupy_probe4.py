"""CuPy output construction variants, penalties launch forms, decode's Python parts (host µs)."""
import sys, time, statistics
import numpy, torch, cupy
import fastdeploy_ops
from fastdeploy_ops import _tensors, attention, moe_routing, penalty
from fastdeploy_ops._loader import get_op
from fastdeploy_ops.bench.overhead import host_us_per_call as t

rows = []
def row(name, fn):
    try:
        rows.append((name, t(torch, fn)))
    except Exception as e:  # noqa
        rows.append((name, f"error {type(e).__name__}: {e}"))

print("cupy", cupy.__version__, "numpy", numpy.__version__, "torch", torch.__version__, "python", sys.version.split()[0])
nd = cupy.ndarray
base = cupy._core.core._ndarray_base
bnew = base.__new__
f32 = numpy.dtype("float32"); i64 = numpy.dtype("int64")
s = (1, 8)
m = cupy.cuda.alloc(4096)
m_like = cupy.zeros((1, 8), cupy.float32)
torch_a = torch.randn(8, 64, device="cuda"); torch_c = torch.empty_like(torch_a)
def via_base(shape, dtype, memptr=None):
    x = bnew(nd); x._init(shape, dtype, memptr); return x
def via_noinit(shape, dtype, memptr=None):
    x = nd.__new__(nd, _no_init=True); x._init(shape, dtype, memptr); return x
row("ndarray(s,'float32')", lambda: nd(s, "float32"))
row("ndarray(s,f32 obj)", lambda: nd(s, f32))
row("bnew+_init(s,'float32')", lambda: via_base(s, "float32"))
row("bnew+_init(s,f32 obj)", lambda: via_base(s, f32))
row("noinit+_init(s,'float32')", lambda: via_noinit(s, "float32"))
row("bnew(nd) alone", lambda: bnew(nd))
row("ndarray(s,'float32',memptr=m)", lambda: nd(s, "float32", memptr=m))
row("bnew+_init(s,'float32',m)", lambda: via_base(s, "float32", m))
row("ndarray(s,'float32',memptr=m+256)", lambda: nd(s, "float32", memptr=m + 256))
row("bnew+_init(s,'float32',m+256)", lambda: via_base(s, "float32", m + 256))
row("cupy.cuda.alloc(1536)", lambda: cupy.cuda.alloc(1536))
def group_nd():
    b = cupy.cuda.alloc(1536)
    return (nd((1, 256), "float32", memptr=b), nd((1, 8), "float32", memptr=b + 1024), nd((1, 8), "int64", memptr=b + 1280))
def group_base():
    b = cupy.cuda.alloc(1536)
    return (via_base((1, 256), "float32", b), via_base((1, 8), "float32", b + 1024), via_base((1, 8), "int64", b + 1280))
def group_base_inline():
    b = cupy.cuda.alloc(1536)
    x = bnew(nd); x._init((1, 256), "float32", b)
    y = bnew(nd); y._init((1, 8), "float32", b + 1024)
    z = bnew(nd); z._init((1, 8), "int64", b + 1280)
    return x, y, z
row("group: alloc + 3 ndarray(memptr)", group_nd)
row("group: alloc + 3 bnew+_init", group_base)
row("group: alloc + 3 bnew+_init inline", group_base_inline)
row("3 x ndarray(s)", lambda: (nd((1, 256), "float32"), nd((1, 8), "float32"), nd((1, 8), "int64")))
row("_cupy_empty_group (current)", lambda: _tensors._cupy_empty_group(m_like, (((1, 256), "float32"), ((1, 8), "float32"), ((1, 8), "int64"))))
# CuPy's own calls for scale
a, b2, c = (cupy.ones((8, 64), cupy.float32) for _ in range(3))
row("cupy.add(a,b,out=c)", lambda: cupy.add(a, b2, out=c))
row("cupy.add(a,b)", lambda: cupy.add(a, b2))
row("cupy.empty(s)", lambda: cupy.empty(s, cupy.float32))
row("torch.add out=", lambda: torch.add(torch_a, torch_a, out=torch_c))
# penalties: split (bs=1) vs fused (bs>=66, table fits: no workspace) vs fused with workspace
pen = get_op("penalty", "get_token_penalty_multi_scores")
C = cupy.from_dlpack
def pen_args(bs, L=16, V=1000):
    ids = torch.zeros(bs, L, device="cuda", dtype=torch.int64); one = torch.ones(bs, 1, device="cuda")
    lens = torch.ones(bs, 1, device="cuda", dtype=torch.int64)
    return [C(x) for x in [ids, torch.randn(bs, V, device="cuda"), one.clone(), one.clone(), one.clone(),
            one.clone(), torch.zeros(bs, 2, device="cuda", dtype=torch.int64), lens.clone(), lens.clone(), lens.clone(),
            lens.clone(), torch.tensor([2], device="cuda", dtype=torch.int64)]]
for bs, L in ((1, 16), (66, 16), (66, 4096), (0, 16), (1, 4096)):
    args = pen_args(bs, L)
    row(f"pen binding bs={bs} L={L}", lambda: pen(*args, 0))
gelu = get_op("activation", "gelu_tanh")
xg = C(torch.randn(8, 64, device="cuda")); og = cupy.empty_like(xg)
row("gelu binding", lambda: gelu(xg, og, 0))
# decode typed parts
q = C(torch.randn(1, 8, 128, device="cuda", dtype=torch.bfloat16)); kc = C(torch.randn(2, 8, 16, 128, device="cuda", dtype=torch.bfloat16))
row("attention._cache_op", lambda: attention._cache_op("paged_decode_attention", kc, kc))
row("Kernel(f, op)", lambda: _tensors.Kernel("attention", "paged_decode_attention"))
row("framework_of", lambda: _tensors.framework_of("op", "query", q))
row("_softmax_scale", lambda: attention._softmax_scale("op", q, None))
row("get_op cached", lambda: get_op("attention", "paged_decode_attention", None))
row("_cupy_stream", lambda: _tensors._cupy_stream((q,)))
row("_cupy_like(q)", lambda: _tensors._cupy_like(q))
print("| what | µs |\n|---|---|")
for name, us in rows:
    print(f"| {name} | {us if isinstance(us, str) else f'{us:.2f}'} |")
