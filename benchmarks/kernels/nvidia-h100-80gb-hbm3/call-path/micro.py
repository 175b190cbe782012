"""Host time per call of the call path's pieces (micro.txt).

Run on a GPU machine with torch and cupy, the wheel on PYTHONPATH: ``python micro.py``. Each
line is ``fastdeploy_ops.bench.overhead.host_us_per_call`` of one piece with 3,000 calls per
batch (micro.txt was taken by an earlier form of this script with 200 warm-up calls instead of
50; same method otherwise).
"""

from __future__ import annotations

from collections.abc import Callable

import cupy
import torch

from fastdeploy_ops import activation
from fastdeploy_ops._loader import get_op
from fastdeploy_ops.bench.overhead import host_us_per_call


def report(name: str, fn: Callable[[], object]) -> None:
    try:
        print(f"{name:45s} {host_us_per_call(torch, fn, calls=3000):7.2f} us", flush=True)
    except Exception as error:  # noqa: BLE001 (a piece this torch or cupy lacks: say so, go on)
        print(f"{name:45s} ERR {error!r}"[:300], flush=True)


def torch_pieces() -> None:
    x = torch.randn(8, 64, device="cuda", dtype=torch.bfloat16)
    out = torch.empty_like(x)
    a = torch.randn(8, 64, device="cuda")
    c = torch.empty_like(a)
    report("torch.add out", lambda: torch.add(a, a, out=c))
    report("torch gelu", lambda: torch.nn.functional.gelu(x, approximate="tanh"))
    report("torch.empty(device=x.device)",
           lambda: torch.empty((8, 64), dtype=torch.bfloat16, device=x.device))
    report("x.new_empty", lambda: x.new_empty((8, 64)))
    report("x.new_empty dtype", lambda: x.new_empty((8, 64), dtype=torch.float32))
    report("torch.empty_like", lambda: torch.empty_like(x))
    report("_to_dlpack", lambda: torch._C._to_dlpack(x))
    report("raw stream", lambda: torch._C._cuda_getCurrentRawStream(0))
    report("get_device", lambda: x.get_device())
    library = torch.library.Library("microt", "FRAGMENT")
    library.define("noop(Tensor a, Tensor(a!) b) -> ()")
    library.impl("noop", lambda *args: None, "CUDA")
    noop = torch.ops.microt.noop.default
    report("noop torch op (CUDA key)", lambda: noop(x, out))
    gelu = get_op("activation", "gelu_tanh")
    capsule = torch._C._to_dlpack
    report("binding gelu capsules", lambda: gelu(capsule(x), capsule(out), 0))
    report("binding gelu tensors", lambda: gelu(x, out, 0))
    report("typed gelu", lambda: activation.gelu_tanh(x))
    report("typed gelu out", lambda: activation.gelu_tanh(x, out))
    report("torch op gelu", lambda: torch.ops.fastdeploy_ops.gelu_tanh(x, out))


def cupy_pieces() -> None:
    x = cupy.random.rand(8, 64, dtype=cupy.float32).astype(cupy.float16)
    out = cupy.empty_like(x)
    device = x.device
    gelu = get_op("activation", "gelu_tanh")

    def enter_device() -> None:
        with device:
            pass

    def empty_on_device() -> object:
        with device:
            return cupy.empty((8, 64), dtype="float16")

    report("cupy with device", enter_device)
    report("cupy empty", lambda: cupy.empty((8, 64), dtype="float16"))
    report("cupy empty with dev", empty_on_device)
    report("cupy stream", lambda: cupy.cuda.get_current_stream().ptr)
    report("cupy stream(dev id)", lambda: cupy.cuda.get_current_stream(device.id).ptr)
    report("cupy runtime getDevice", lambda: cupy.cuda.runtime.getDevice())
    report("cupy dev.id", lambda: device.id)
    report("cupy __dlpack__()", lambda: x.__dlpack__())
    report("cupy __dlpack__(stream=-1)", lambda: x.__dlpack__(stream=-1))
    report("cupy toDlpack", lambda: x.toDlpack())
    report("binding gelu cupy arrays", lambda: gelu(x, out, 0))
    report("binding gelu cupy toDlpack", lambda: gelu(x.toDlpack(), out.toDlpack(), 0))
    report("binding gelu cupy dlpack -1",
           lambda: gelu(x.__dlpack__(stream=-1), out.__dlpack__(stream=-1), 0))
    report("typed gelu cupy", lambda: activation.gelu_tanh(x))
    report("cupy dtype str", lambda: str(x.dtype))
    report("cupy shape", lambda: x.shape)


if __name__ == "__main__":
    torch_pieces()
    cupy_pieces()
