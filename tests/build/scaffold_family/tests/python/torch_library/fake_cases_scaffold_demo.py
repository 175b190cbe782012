from fake_tensors import F32, Cases, cuda

from fastdeploy_ops import scaffold_demo

CASES: Cases = {
    "scaled_copy": (lambda: scaffold_demo.scaled_copy(cuda((4, 1024), F32), 0.5),
                    [((4, 1024), F32)]),
}
