from fake_tensors import BF16, D, H, I32, KV, T, Cases, cuda

from fastdeploy_ops import rotary

CASES: Cases = {
    "rotary": (lambda: rotary.fused_rotary_position_encoding(
        cuda((T, H * D)), cuda((T, KV * D)), cuda((T,), I32), cuda((8192, D)), D),
        [((T, H * D), BF16), ((T, KV * D), BF16)]),
}
