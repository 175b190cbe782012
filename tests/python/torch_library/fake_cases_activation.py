from fake_tensors import BF16, T, Cases, cuda

from fastdeploy_ops import activation

CASES: Cases = {
    "gelu_tanh": (lambda: activation.gelu_tanh(cuda((T, 14336))), [((T, 14336), BF16)]),
}
