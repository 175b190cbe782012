from fake_tensors import BF16, F32, I64, T, Cases, cuda

from fastdeploy_ops import moe_routing

CASES: Cases = {
    "grouped_topk": (lambda: moe_routing.grouped_topk(cuda((T, 256)), cuda((256,), F32), 8, 4, 8),
                     [((T, 256), F32), ((T, 8), F32), ((T, 8), I64)]),
    "noaux_tc": (lambda: moe_routing.noaux_tc(cuda((T, 256), F32), cuda((T, 256), F32), 8, 4, 8),
                 [((T, 256), F32), ((T, 8), F32), ((T, 8), I64)]),
    "fused_cast_sigmoid_bias": (lambda: moe_routing.fused_cast_sigmoid_bias(
        cuda((T, 256)), cuda((256,), F32), "bfloat16"), [((T, 256), BF16)] * 2),
    "moe_topk_select_3d": (lambda: moe_routing.moe_topk_select(cuda((2, 32, 128), F32), None, 8),
                           [((T, 8), I64), ((T, 8), F32)]),
}
