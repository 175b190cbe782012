"""Host time per call of the call path's pieces (micro.txt): run with the wheel on PYTHONPATH,
`python micro.py`, on a GPU machine with torch and cupy."""
import statistics
import time
import torch, cupy
import fastdeploy_ops
from fastdeploy_ops._loader import get_op
def t(name, fn, n=3000):
    try:
        for _ in range(200): fn()
        torch.cuda.synchronize()
        s=[]
        for _ in range(7):
            a=time.perf_counter()
            for _ in range(n): fn()
            s.append((time.perf_counter()-a)/n*1e6)
            torch.cuda.synchronize()
        print(f"{name:45s} {statistics.median(s):7.2f} us", flush=True)
    except Exception as e:
        print(f"{name:45s} ERR {e!r}"[:300], flush=True)
x = torch.randn(8, 64, device="cuda", dtype=torch.bfloat16); o = torch.empty_like(x)
a = torch.randn(8, 64, device="cuda"); c = torch.empty_like(a)
t("torch.add out", lambda: torch.add(a, a, out=c))
t("torch gelu", lambda: torch.nn.functional.gelu(x, approximate="tanh"))
t("torch.empty(device=x.device)", lambda: torch.empty((8, 64), dtype=torch.bfloat16, device=x.device))
t("x.new_empty", lambda: x.new_empty((8, 64)))
t("x.new_empty dtype", lambda: x.new_empty((8, 64), dtype=torch.float32))
t("torch.empty_like", lambda: torch.empty_like(x))
t("_to_dlpack", lambda: torch._C._to_dlpack(x))
t("raw stream", lambda: torch._C._cuda_getCurrentRawStream(0))
t("get_device", lambda: x.get_device())
lib = torch.library.Library("microt", "FRAGMENT")
lib.define("noop(Tensor a, Tensor(a!) b) -> ()")
lib.impl("noop", lambda *args: None, "CUDA")
op = torch.ops.microt.noop.default
t("noop torch op (CUDA key)", lambda: op(x, o))
gelu = get_op("activation", "gelu_tanh")
td = torch._C._to_dlpack
t("binding gelu capsules", lambda: gelu(td(x), td(o), 0))
t("binding gelu tensors", lambda: gelu(x, o, 0))
t("typed gelu", lambda: fastdeploy_ops.activation.gelu_tanh(x))
t("typed gelu out", lambda: fastdeploy_ops.activation.gelu_tanh(x, o))
t("torch op gelu", lambda: torch.ops.fastdeploy_ops.gelu_tanh(x, o))
cx = cupy.random.rand(8, 64, dtype=cupy.float32).astype(cupy.float16); co = cupy.empty_like(cx)
dev = cx.device
def withdev():
    with dev: pass
t("cupy with device", withdev)
t("cupy empty", lambda: cupy.empty((8, 64), dtype="float16"))
def e2():
    with dev: return cupy.empty((8, 64), dtype="float16")
t("cupy empty with dev", e2)
t("cupy stream", lambda: cupy.cuda.get_current_stream().ptr)
t("cupy stream(dev id)", lambda: cupy.cuda.get_current_stream(dev.id).ptr)
t("cupy runtime getDevice", lambda: cupy.cuda.runtime.getDevice())
t("cupy dev.id", lambda: dev.id)
t("cupy __dlpack__()", lambda: cx.__dlpack__())
t("cupy __dlpack__(stream=-1)", lambda: cx.__dlpack__(stream=-1))
t("cupy toDlpack", lambda: cx.toDlpack())
t("binding gelu cupy arrays", lambda: gelu(cx, co, 0))
t("binding gelu cupy toDlpack", lambda: gelu(cx.toDlpack(), co.toDlpack(), 0))
t("binding gelu cupy dlpack -1", lambda: gelu(cx.__dlpack__(stream=-1), co.__dlpack__(stream=-1), 0))
t("typed gelu cupy", lambda: fastdeploy_ops.activation.gelu_tanh(cx))
t("cupy dtype str", lambda: str(cx.dtype))
t("cupy shape", lambda: cx.shape)
