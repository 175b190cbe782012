from fake_tensors import F32, FP8, I32, T, Cases, cuda

from fastdeploy_ops import quantization

CASES: Cases = {
    "per_token_quant": (lambda: quantization.per_token_quant(cuda((T, 7168)), 128),
                        [((T, 7168), FP8), ((T, 56), F32)]),
    "per_token_quant_ue8m0": (lambda: quantization.per_token_quant(cuda((T, 7168)), 128, True),
                              [((T, 7168), FP8), ((T, 14), I32)]),
    # The padded scale has a row per token rounded up to a multiple of 4, column-major.
    "per_token_quant_padding": (lambda: quantization.per_token_quant_padding(
        cuda((T - 1, 7168)), 128), [((T - 1, 7168), FP8), ((T, 56), F32)]),
}
