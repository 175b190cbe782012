// per_token_quant device code: fp8 e4m3 quantisation of [T, H] rows in 128-element blocks.
//
// Work is split into segments of 8 blocks (1024 elements) of one row; a warp quantises one
// segment per step (grid-stride over all segments, so short and long rows both fill the GPU).
// Lanes 0-15 hold blocks 0, 2, 4, 6 of the segment and lanes 16-31 blocks 1, 3, 5, 7, eight
// elements per lane and block, loaded as V-element vectors (V = 8: one 16-byte load); a block's
// max is reduced over its 16 lanes with four shuffles. Every load of a step is issued before any
// math, so a warp has 2 KB of bf16 in flight.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"
#include "ops/common/vec.cuh"
#include "ops/common/warp.cuh"
#include "ops/quantization/quantization.h"

namespace fdops::quantization {

inline constexpr int kThreads = 256;
inline constexpr int kWarps = kThreads / 32;
// 4 x 256 threads per SM (64 registers each): 32 warps, 64 KB of loads in flight per SM.
inline constexpr int kMinBlocksPerSm = 4;
inline constexpr int kBlocksPerSegment = 8;
inline constexpr int kSegment = kBlocksPerSegment * kBlockSize;  // elements
inline constexpr int kChunks = kBlocksPerSegment / 2;            // blocks per half-warp
inline constexpr float kE4m3Max = 448.f;
// Largest m for which divide_rn applies: x * 448 stays finite (|x| <= m) and 1 / m is normal.
inline constexpr float kFastDivisionMax = 0x1p119f;

struct Params {
  int64_t num_tokens;
  int64_t hidden;
  int64_t segments_per_row;
  int64_t scale_cols;        // scale entries per token: ceil(H / 128), or ceil(H / 512) (ue8m0)
  int64_t scale_row_stride;  // in 4-byte elements
  int64_t scale_col_stride;
  int64_t padding_rows;      // tokens after num_tokens whose scales are zeroed
  float range;               // 1, or 7 with finegrained_range
  bool ue8m0;
};

// What one block's elements are divided by, and the scale stored for it.
struct BlockScale {
  float m;               // plain: the divisor of x * 448
  float factor;          // plain: RN(1 / m); ue8m0: 1 / s (exact: s is a power of two)
  float stored;          // plain: m / 448
  uint32_t exponent;     // ue8m0: s's biased exponent byte
  bool exact_division;   // plain and m > kFastDivisionMax: divide each element with div.rn
};

__device__ __forceinline__ BlockScale block_scale(float amax, const Params& p) {
  BlockScale b;
  b.m = __fmul_rn(fmaxf(amax, 1e-10f), p.range);
  b.stored = __fdiv_rn(b.m, kE4m3Max);
  b.exact_division = !(b.m <= kFastDivisionMax);
  if (p.ue8m0) {
    // s = the smallest power of two >= v (exactly 2^ceil(log2 v)), from v's bits; v >= 5e-7
    // is normal. An all-ones exponent (v above 2^127) gives s = inf and factor 0.
    const float v = __fadd_rn(fmaxf(b.stored, 1e-10f), 5e-7f);
    uint32_t bits = __float_as_uint(v);
    if (bits & 0x7fffffu) bits += 0x800000u;
    bits &= 0x7f800000u;
    b.exponent = bits >> 23;
    b.factor = __frcp_rn(__uint_as_float(bits));
  } else {
    b.exponent = 0;
    b.factor = __frcp_rn(b.m);
  }
  return b;
}

// a / m correctly rounded, given r = RN(1 / m): a * r is within 2 ulp of a / m, one correction
// q + (a - m q) r (the residual exact through fma) makes it faithful and a second one correctly
// rounded (Markstein). Needs a finite and r normal (m <= kFastDivisionMax); a residual that
// underflows only touches quotients below 2^-60, far under e4m3's rounding threshold. The
// corrections turn a zero quotient's sign positive, so a's sign is put back.
__device__ __forceinline__ float divide_rn(float a, float m, float r) {
  float q = __fmul_rn(a, r);
  q = __fmaf_rn(__fmaf_rn(-m, q, a), r, q);
  q = __fmaf_rn(__fmaf_rn(-m, q, a), r, q);
  return copysignf(q, a);
}

// Two values to e4m3 (round to nearest even, saturating to +-448): lo in the low byte.
__device__ __forceinline__ uint32_t e4m3x2(float lo, float hi) {
  return __nv_cvt_float2_to_fp8x2(make_float2(lo, hi), __NV_SATFINITE, __NV_E4M3);
}

// V values to e4m3, stored as one V-byte access (dst aligned to V bytes).
template <int V>
__device__ __forceinline__ void store_e4m3(uint8_t* dst, const float* y) {
  if constexpr (V == 8) {
    uint2 w;
    w.x = e4m3x2(y[0], y[1]) | e4m3x2(y[2], y[3]) << 16;
    w.y = e4m3x2(y[4], y[5]) | e4m3x2(y[6], y[7]) << 16;
    *reinterpret_cast<uint2*>(dst) = w;
  } else if constexpr (V == 4) {
    *reinterpret_cast<uint32_t*>(dst) = e4m3x2(y[0], y[1]) | e4m3x2(y[2], y[3]) << 16;
  } else {
    static_assert(V == 1, "V is 8, 4 or 1");
    *dst = __nv_cvt_float_to_fp8(y[0], __NV_SATFINITE, __NV_E4M3);
  }
}

// Calls f(c, k, col) for every V-element piece a lane holds of a segment: access k of block
// 2c + half, starting `col` columns after the segment's first (see per_token_quant_kernel).
template <int V, typename F>
__device__ __forceinline__ void for_each_piece(int half, int piece, F&& f) {
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
#pragma unroll
    for (int k = 0; k < 8 / V; ++k) f(c, k, (2 * c + half) * kBlockSize + (k * 16 + piece) * V);
  }
}

// Rounds one segment's pieces to e4m3 and stores them: x / s (kUe8m0: an exact
// multiplication), else x * 448 / m (multiply, then divide) through divide_rn.
template <bool kUe8m0, int V, int kPieces, typename T>
__device__ __forceinline__ void quantize_pieces(const Vec<T, V> (&raw)[kChunks][kPieces],
                                                const BlockScale (&b)[kChunks], uint8_t* dst,
                                                int half, int piece, int64_t remaining) {
  for_each_piece<V>(half, piece, [&](int c, int k, int col) {
    if (col >= remaining) return;
    float y[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const float x = to_float(raw[c][k].v[i]);
      y[i] = kUe8m0 ? __fmul_rn(x, b[c].factor)
                    : divide_rn(__fmul_rn(x, kE4m3Max), b[c].m, b[c].factor);
    }
    store_e4m3<V>(dst + col, y);
  });
}

// The rare exact-division case (a block max above 2^119, bf16 only), out of line so that it
// costs the common path no registers: reloads the segment and divides with div.rn.
template <int V, typename T>
__device__ __noinline__ void quantize_segment_exact(const T* src, uint8_t* dst, float m0,
                                                    float m1, float m2, float m3, int half,
                                                    int piece, int64_t remaining) {
  const float m[kChunks] = {m0, m1, m2, m3};
  for_each_piece<V>(half, piece, [&](int c, int, int col) {
    if (col >= remaining) return;
    Vec<T, V> raw;
    raw.load(src + col);
    float y[V];
#pragma unroll
    for (int i = 0; i < V; ++i) y[i] = __fdiv_rn(__fmul_rn(to_float(raw.v[i]), kE4m3Max), m[c]);
    store_e4m3<V>(dst + col, y);
  });
}

// V elements per access: 8 needs H % 8 == 0, 16-byte aligned input and 8-byte aligned q; 4
// needs 8- and 4-byte alignment (H % 4 == 0 always holds); 1 takes any layout. A lane's k-th
// access of a block starts at column k * 16 V + (lane % 16) V of the block, so each access
// instruction of a half-warp reads 16 V contiguous elements, and a V-element piece is either
// entirely inside the row or entirely in the zero-padded tail.
template <typename T, int V>
__global__ void __launch_bounds__(kThreads, kMinBlocksPerSm)
    per_token_quant_kernel(const T* __restrict__ input, uint8_t* __restrict__ q,
                           uint32_t* __restrict__ scale, Params p) {
  constexpr int kPieces = 8 / V;
  wait_for_dependencies();
  allow_dependent_launch();
  const int64_t thread = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t threads = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t i = thread; i < p.padding_rows * p.scale_cols; i += threads) {
    const int64_t row = p.num_tokens + i / p.scale_cols;
    scale[row * p.scale_row_stride + (i % p.scale_cols) * p.scale_col_stride] = 0;
  }

  const int lane = threadIdx.x & 31;
  const int half = lane >> 4;
  const int piece = lane & 15;
  const int64_t segments = p.num_tokens * p.segments_per_row;
  for (int64_t s = thread >> 5; s < segments; s += threads >> 5) {  // warp-uniform
    const int64_t row = s / p.segments_per_row;
    const int64_t first = (s - row * p.segments_per_row) * kSegment;
    const int64_t remaining = p.hidden - first;  // columns of the row from `first` on
    const T* src = input + row * p.hidden + first;

    Vec<T, V> raw[kChunks][kPieces];
    for_each_piece<V>(half, piece, [&](int c, int k, int col) {
      if (col < remaining) {
        raw[c][k].load(src + col);
      } else {
#pragma unroll
        for (int i = 0; i < V; ++i) raw[c][k].v[i] = from_float<T>(0.f);
      }
    });

    BlockScale b[kChunks];
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      float amax = 0.f;
#pragma unroll
      for (int k = 0; k < kPieces; ++k) {
#pragma unroll
        for (int i = 0; i < V; ++i) amax = fmaxf(amax, fabsf(to_float(raw[c][k].v[i])));
      }
#pragma unroll
      for (int offset = 8; offset > 0; offset >>= 1) {
        amax = fmaxf(amax, __shfl_xor_sync(kFullMask, amax, offset));
      }
      b[c] = block_scale(amax, p);
    }

    const int64_t first_block = first / kBlockSize;
    uint32_t* scale_row = scale + row * p.scale_row_stride;
    if (p.ue8m0) {
      // Byte c of `mine` is block 2c + half; blocks past the row end keep byte 0.
      uint32_t mine = 0;
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        if ((2 * c + half) * kBlockSize < remaining) mine |= b[c].exponent << (8 * c);
      }
      const uint32_t other = __shfl_xor_sync(kFullMask, mine, 16);
      const uint32_t even = half ? other : mine;  // blocks 0, 2, 4, 6
      const uint32_t odd = half ? mine : other;   // blocks 1, 3, 5, 7
      // Word w (lane w) packs blocks 4w .. 4w + 3, block j in byte j % 4.
      if (lane < kBlocksPerSegment / kBlocksPerWord &&
          lane * kBlocksPerWord * kBlockSize < remaining) {
        scale_row[(first_block / kBlocksPerWord + lane) * p.scale_col_stride] =
            __byte_perm(even, odd, lane == 0 ? 0x5140 : 0x7362);
      }
    } else if (piece < kChunks) {
      // Lane `piece` of each half stores block 2 * piece + half.
      float stored = b[0].stored;
#pragma unroll
      for (int c = 1; c < kChunks; ++c) stored = piece == c ? b[c].stored : stored;
      const int block = 2 * piece + half;
      if (block * kBlockSize < remaining) {
        scale_row[(first_block + block) * p.scale_col_stride] = __float_as_uint(stored);
      }
    }

    uint8_t* dst = q + row * p.hidden + first;
    bool exact = false;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) exact |= b[c].exact_division;
    if (p.ue8m0) {
      quantize_pieces<true>(raw, b, dst, half, piece, remaining);
    } else if (!exact) {
      quantize_pieces<false>(raw, b, dst, half, piece, remaining);
    } else {
      static_assert(kChunks == 4, "quantize_segment_exact takes four blocks");
      quantize_segment_exact<V>(src, dst, b[0].m, b[1].m, b[2].m, b[3].m, half, piece, remaining);
    }
  }
}

}  // namespace fdops::quantization
