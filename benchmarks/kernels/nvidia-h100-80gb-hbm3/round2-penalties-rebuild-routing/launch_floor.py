"""The launch floor of the bench's method: cold and warm GPU time per call (fastdeploy_ops.bench's
Timer) of an empty CUDA C++ kernel (through CuPy, on torch's stream) and of torch's one-element
``zero_`` and ``add_``. ``python launch_floor.py`` with fastdeploy_ops, torch and cupy importable."""

import cupy
import torch

from fastdeploy_ops.bench.timing import Timer


def main() -> None:
    timer = Timer(torch, repetitions=100)
    empty = cupy.RawKernel(r'extern "C" __global__ void empty() {}', "empty")
    one = torch.zeros(1, device="cuda")

    def launch_empty() -> None:
        with cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):
            empty((1,), (128,), ())

    for name, call in [("empty kernel (cupy RawKernel, 1x128)", launch_empty),
                       ("torch zero_ of 1 float", lambda: one.zero_()),
                       ("torch add_ of 1 float", lambda: one.add_(1.0))]:
        cold, warm = timer.graph(call)
        print(f"{name}: cold {cold.median_us:.2f} us, warm {warm.median_us:.2f} us")


if __name__ == "__main__":
    main()
