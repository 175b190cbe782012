// The rotary-embedding rotation of one pair, shared by the rotary family and the attention
// family's fused cache append.
#pragma once

#include <cuda_runtime.h>

namespace fdops {

// x' = x cos - y sin, y' = y cos + x sin, every product and sum rounded on its own (no FMA
// contraction): deterministic, and identical to the fp32 numpy reference.
__device__ __forceinline__ void rotate(float x, float y, float c, float s, float* xo, float* yo) {
  *xo = __fsub_rn(__fmul_rn(x, c), __fmul_rn(y, s));
  *yo = __fadd_rn(__fmul_rn(y, c), __fmul_rn(x, s));
}

}  // namespace fdops
