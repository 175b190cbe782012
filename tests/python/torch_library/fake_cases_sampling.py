from fake_tensors import F32, I32, I64, Cases, cuda

from fastdeploy_ops import sampling

B, V = 128, 128256

CASES: Cases = {
    "top_k_renorm_probs": (lambda: sampling.top_k_renorm_probs(cuda((B, V), F32), cuda((B,), I32)),
                           [((B, V), F32)]),
    "top_p_renorm_probs": (lambda: sampling.top_p_renorm_probs(cuda((B, V), F32), 0.9),
                           [((B, V), F32)]),
    "top_k_top_p_sampling": (lambda: sampling.top_k_top_p_sampling_from_probs(
        cuda((B, V), F32), 50, cuda((B,), F32), 7, 3), [((B,), I64)]),
}
