// Tensor-core paged attention kernel (head dims 64 and 128, any number of query heads per KV
// head): the query heads sharing a KV head are the 16 rows of mma.sync m16n8k16 tiles, so each
// K and V element loaded from memory feeds up to 16 heads at tensor-core cost.
//
// Work item as in paged_attention.cuh (row x KV head x tile of up to 16 query heads x context
// partition). Each warp takes 16-token chunks of the partition in turn (chunks w, w + 4, ...)
// and keeps its own online-softmax state; the block merges the warps' states at the end.
//
// Memory pipeline: each warp streams its chunks' K and V rows into its own shared-memory stages
// with cp.async (16 bytes per copy, the paged addressing done by the copying lanes), kMmaStages
// chunks deep, so the next chunks are in flight while one is computed. Warps never wait for
// each other inside the loop.
//
// Fragments are read from shared memory with plain 16-byte loads by permuting what the MMA's k
// and n indices mean (sums over head dims and over tokens do not depend on order):
// - S = Q K^T: thread (c = lane / 4, q = lane % 4) reads one 16-byte piece of token c's K row
//   per load x, head dims x * 4L + q * L .. + L (L = 8 elements of a 16-bit cache, 16 of an
//   8-bit one); each 4 consecutive dims of it are the thread's k pairs {2q, 2q + 1} and
//   {2q + 8, 2q + 9} of one MMA. Q is loaded with the same assignment.
// - O += P V: in n-tile j the thread's column c stands for head dim c * HD / 8 + j, so the
//   thread's V elements are HD / 8 consecutive dims of tokens 2q, 2q + 1, 2q + 8, 2q + 9; pairs
//   of tokens are interleaved with byte permutes. P comes from S's accumulators as in
//   FlashAttention-2, rounded to the MMA's input type.
//
// The fragment routines below (QueryFragments, score_chunk, online_softmax, accumulate_values)
// also serve the tiled prefill kernel (paged_prefill_mma.cuh), there at head dim 256 too.
//
// Quantised caches (int8, fp8) run the MMAs in fp16, which holds every int8 and e4m3 value
// exactly and converts from them in a few integer instructions (int8) or one (fp8 on SM89+).
// The query goes to fp16 scaled per head by a power of two that puts its largest element in
// [2^14, 2^15), which is exact for bf16 queries; the scale is undone on the scores.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "ops/attention/attention.h"
#include "ops/attention/cache_storage.cuh"
#include "ops/attention/paged_attention_common.cuh"
#include "ops/common/dispatch.cuh"
#include "ops/common/launch.cuh"

namespace fdops::attention {

inline constexpr int kMmaRows = 16;      // query heads per tile (the MMA's M)
inline constexpr int kChunkTokens = 16;  // tokens a warp computes at a time (P V's K)

// Chunks per warp in flight or being computed. Modules for SM90 have room for three at two
// blocks per SM (227 KB of shared memory per SM); the sm80 module also runs on SM86 and SM89
// (99 KB per block), so it keeps two.
#if defined(__CUDA_ARCH_LIST__) && __CUDA_ARCH_LIST__ >= 900
inline constexpr int kMmaStages = 3;
#else
inline constexpr int kMmaStages = 2;
#endif

// The type the MMAs multiply: the query's for 16-bit caches, fp16 for 8-bit ones.
template <typename T, CacheType C>
using MmaInput = std::conditional_t<C == CacheType::kC16, T, __half>;

// Shared-memory geometry of one warp's stage: K then V, 16 rows of HD elements each.
template <typename T, CacheType C, int HD>
struct MmaTile {
  using Element = typename CacheStorage<T, C>::Element;
  static constexpr int kRowBytes = HD * static_cast<int>(sizeof(Element));
  static constexpr int kRowPieces = kRowBytes / 16;  // 16-byte pieces per row: 4, 8 or 16
  static constexpr int kLoadDims = 16 / static_cast<int>(sizeof(Element));  // L above
  static constexpr int kLoadsPerRow = HD / (4 * kLoadDims);  // K loads per thread and token
  static constexpr int kStageBytes = 2 * kChunkTokens * kRowBytes;
  static constexpr int kPipelineBytes = kWarps * kMmaStages * kStageBytes;
  // The warps' states at the merge: [kWarps][kMmaRows][HD] outputs, then maxima and sums.
  static constexpr int kMergeBytes = (kWarps * kMmaRows * (HD + 2)) * sizeof(float);
  static constexpr int kSharedBytes =
      kPipelineBytes > kMergeBytes ? kPipelineBytes : kMergeBytes;

  // Where 16-byte piece `piece` of K row `row` lives, in pieces from the tile's start. Pieces
  // are XOR-swizzled within 128-byte lines so that each 8-lane phase of the fragment loads
  // (rows 2p and 2p + 1, pieces 4x .. 4x + 3) touches 8 different bank groups.
  __device__ __forceinline__ static int k_piece(int row, int piece) {
    const int linear = row * kRowPieces + piece;
    return kRowPieces >= 8 ? linear ^ (4 * (row & 1)) : linear;
  }
  // Likewise for V, whose fragment loads read rows 2q + e (q = 0..3) at pieces of two adjacent
  // columns c: the swizzle spreads the four rows over the bits the columns leave free.
  __device__ __forceinline__ static int v_piece(int row, int piece) {
    const int linear = row * kRowPieces + piece;
    const int q = (row >> 1) & 3;
    if constexpr (kRowPieces == 16) return linear ^ ((q & 1) | ((q & 2) << 1));
    return linear ^ (2 * q);
  }
};

// Two values in one 32-bit register as type M, the first in the low half.
template <typename M>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<M, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

// d += a b for one m16n8k16 tile (fp32 accumulators).
template <typename M>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1) {
  if constexpr (std::is_same_v<M, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, asynchronously; `bytes` < 16 fills the rest with zeros.
__device__ __forceinline__ void copy_async_16(uint32_t dst, const void* src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(bytes));
}
__device__ __forceinline__ void copy_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int kPending>
__device__ __forceinline__ void copy_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ __forceinline__ uint4 load_shared_16(const uint8_t* base, int piece) {
  return *reinterpret_cast<const uint4*>(base + 16 * piece);
}
__device__ __forceinline__ uint2 load_shared_8(const uint8_t* base, int piece, int half) {
  return *reinterpret_cast<const uint2*>(base + 16 * piece + 8 * half);
}

// Two 8-bit cache elements (bytes `lo` and `hi` of the 8 bytes in a, b) as an fp16 pair.
// int8: the half with bits 0x64 | (x + 128) is 1024 + x + 128, exactly; subtracting 1152 leaves
// x. fp8: the hardware conversion (SM89+), also exact.
template <CacheType C>
__device__ __forceinline__ uint32_t byte_pair_to_half2(uint32_t a, uint32_t b, uint32_t selector) {
  const uint32_t pair = __byte_perm(a, b, selector);  // bytes: [lo, ?, hi, ?]
  if constexpr (C == CacheType::kInt8) {
    const uint32_t biased = (pair & 0x00ff00ffu) ^ 0x64806480u;
    const __half2 value =
        __hsub2(*reinterpret_cast<const __half2*>(&biased), __half2(1152.0f, 1152.0f));
    return *reinterpret_cast<const uint32_t*>(&value);
  } else {
    const uint32_t packed = __byte_perm(pair, 0, 0x3320);  // bytes [lo, hi] in the low half
    const __half2_raw value =
        __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(packed), __NV_E4M3);
    return *reinterpret_cast<const uint32_t*>(&value);
  }
}

// 8 consecutive elements of an 8-bit cache row (two words) as 4 fp16 pairs.
template <CacheType C>
__device__ __forceinline__ void bytes_to_half2x4(uint32_t lo, uint32_t hi, uint32_t* out) {
  out[0] = byte_pair_to_half2<C>(lo, lo, 0x5140);
  out[1] = byte_pair_to_half2<C>(lo, lo, 0x7362);
  out[2] = byte_pair_to_half2<C>(hi, hi, 0x5140);
  out[3] = byte_pair_to_half2<C>(hi, hi, 0x7362);
}

// The query fragments of one thread, loaded and converted in two steps so that the load's
// latency can overlap other memory traffic. Rows c and c + 8 of a 16-row tile (`rows[r]`,
// nullptr: zeros) hold, for k-step x * L / 4 + m, head dims x * 4L + q * L + 4m + {0, 1} (a0,
// a1) and + {2, 3} (a2, a3): the permutation of k that the K fragment loads use.
template <typename T, CacheType C, int HD>
struct QueryFragments {
  using Tile = MmaTile<T, C, HD>;
  static constexpr int kL = Tile::kLoadDims;
  static constexpr int kPieces = HD / 4 / 8;  // 8 dims each, per row and thread
  static constexpr int kSteps = HD / 16;

  uint4 raw[2][kPieces];
  uint32_t frag[kSteps][4];
  float score_scale[2];  // turns a row's accumulated score into the exp2 domain

  __device__ __forceinline__ void load(const T* const rows[2], int q) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
#pragma unroll
      for (int i = 0; i < kPieces; ++i) {
        const int x = i / (kL / 8), v = i % (kL / 8);
        raw[r][i] = rows[r] != nullptr
                        ? __ldg(reinterpret_cast<const uint4*>(rows[r] + x * 4 * kL + q * kL +
                                                               8 * v))
                        : make_uint4(0, 0, 0, 0);
      }
    }
  }

  // `scale`: softmax scale x log2(e) x the key's dequantisation scale.
  __device__ __forceinline__ void build(float scale) {
    using M = MmaInput<T, C>;
    float q_rows[2][HD / 4];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
#pragma unroll
      for (int i = 0; i < kPieces; ++i) {
        const T* e = reinterpret_cast<const T*>(&raw[r][i]);
#pragma unroll
        for (int j = 0; j < 8; ++j) q_rows[r][8 * i + j] = to_float(e[j]);
      }
      score_scale[r] = scale;
      if constexpr (CacheStorage<T, C>::kQuantized) {
        // A power of two taking the row's largest |q| into [2^14, 2^15): fp16 then holds every
        // element the way bf16 did (or exactly as given, for fp16 queries).
        float row_max = 0.0f;
#pragma unroll
        for (int i = 0; i < HD / 4; ++i) row_max = fmaxf(row_max, fabsf(q_rows[r][i]));
        row_max = fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, 1));
        row_max = fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, 2));
        int exponent = 0;
        frexpf(row_max, &exponent);  // row_max < 2^exponent (0 for row_max == 0)
        const int shift = row_max > 0.0f ? min(max(15 - exponent, -100), 100) : 0;
#pragma unroll
        for (int i = 0; i < HD / 4; ++i) q_rows[r][i] = ldexpf(q_rows[r][i], shift);
        score_scale[r] = ldexpf(score_scale[r], -shift);
      }
    }
#pragma unroll
    for (int k = 0; k < kSteps; ++k) {
      const int base = 4 * k;  // of q_rows: load x = k / (kL / 4), m = k % (kL / 4)
      frag[k][0] = pack2<M>(q_rows[0][base], q_rows[0][base + 1]);
      frag[k][1] = pack2<M>(q_rows[1][base], q_rows[1][base + 1]);
      frag[k][2] = pack2<M>(q_rows[0][base + 2], q_rows[0][base + 3]);
      frag[k][3] = pack2<M>(q_rows[1][base + 2], q_rows[1][base + 3]);
    }
  }
};

// s[t] += Q K^T for the 16 K rows at `k_rows` (a 16-row slice of a tile in MmaTile's layout):
// tokens 8t + c of the slice (n-tile t).
template <typename T, CacheType C, int HD>
__device__ __forceinline__ void score_chunk(const uint8_t* k_rows,
                                            const uint32_t (&q_frag)[HD / 16][4],
                                            float (*s)[4], int c, int q) {
  using Tile = MmaTile<T, C, HD>;
  using M = MmaInput<T, C>;
#pragma unroll
  for (int t = 0; t < 2; ++t) {
    const int row = 8 * t + c;
#pragma unroll
    for (int x = 0; x < Tile::kLoadsPerRow; ++x) {
      const uint4 piece = load_shared_16(k_rows, Tile::k_piece(row, 4 * x + q));
      if constexpr (!CacheStorage<T, C>::kQuantized) {
        mma_16816<M>(s[t], q_frag[2 * x], piece.x, piece.y);
        mma_16816<M>(s[t], q_frag[2 * x + 1], piece.z, piece.w);
      } else {
        uint32_t b[8];  // pairs of head dims 0-1, 2-3, ..., 14-15 of the piece
        bytes_to_half2x4<C>(piece.x, piece.y, &b[0]);
        bytes_to_half2x4<C>(piece.z, piece.w, &b[4]);
#pragma unroll
        for (int m = 0; m < 4; ++m) {
          mma_16816<M>(s[t], q_frag[4 * x + m], b[2 * m], b[2 * m + 1]);
        }
      }
    }
  }
}

// out += P V for the 16 V rows at `v_rows`: P's tokens 2q + {0, 1} (b0) and 2q + 8 + {0, 1}
// (b1); in n-tile j the thread's column c stands for head dim c * HD / 8 + j.
template <typename T, CacheType C, int HD>
__device__ __forceinline__ void accumulate_values(const uint8_t* v_rows,
                                                  const uint32_t (&p_frag)[4],
                                                  float (&out)[HD / 8][4], int c, int q) {
  using Tile = MmaTile<T, C, HD>;
  using M = MmaInput<T, C>;
  constexpr int kDimTiles = HD / 8;
  if constexpr (!CacheStorage<T, C>::kQuantized) {
#pragma unroll
    for (int h = 0; h < kDimTiles / 8; ++h) {  // 8 head dims per 16-byte piece
      uint4 v[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int row = 2 * q + (i & 1) + 8 * (i >> 1);
        v[i] = load_shared_16(v_rows, Tile::v_piece(row, c * (kDimTiles / 8) + h));
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const uint32_t selector = (i & 1) ? 0x7632 : 0x5410;
        const uint32_t b0 = __byte_perm((&v[0].x)[i / 2], (&v[1].x)[i / 2], selector);
        const uint32_t b1 = __byte_perm((&v[2].x)[i / 2], (&v[3].x)[i / 2], selector);
        mma_16816<M>(out[8 * h + i], p_frag, b0, b1);
      }
    }
  } else {
    // HD / 8 bytes per row: half of a 16-byte piece (HD 64), one (HD 128) or two (HD 256).
    constexpr int kWords = kDimTiles / 4;
    uint32_t v[4][kWords];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int row = 2 * q + (i & 1) + 8 * (i >> 1);
      if constexpr (kWords == 2) {
        const uint2 piece = load_shared_8(v_rows, Tile::v_piece(row, c / 2), c % 2);
        v[i][0] = piece.x, v[i][1] = piece.y;
      } else {
#pragma unroll
        for (int h = 0; h < kWords / 4; ++h) {
          const uint4 piece = load_shared_16(v_rows, Tile::v_piece(row, c * (kWords / 4) + h));
          v[i][4 * h] = piece.x, v[i][4 * h + 1] = piece.y;
          v[i][4 * h + 2] = piece.z, v[i][4 * h + 3] = piece.w;
        }
      }
    }
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) {
      const uint32_t selector = (j % 4) | ((4 + j % 4) << 8);  // byte j of each row
      const uint32_t b0 = byte_pair_to_half2<C>(v[0][j / 4], v[1][j / 4], selector);
      const uint32_t b1 = byte_pair_to_half2<C>(v[2][j / 4], v[3][j / 4], selector);
      mma_16816<M>(out[j], p_frag, b0, b1);
    }
  }
}

// 2^x with the hardware approximation (relative error about 2^-22), results below 2^-126
// flushed to 0: a weight that small is nothing next to the row's max, whose weight is 1.
// exp2f without fast math adds a range test and two multiplies per call, a sixth of the
// softmax's instructions.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// The weights of one online-softmax step of a thread's two rows (r = 0: row c, r = 1: row
// c + 8) over kN n-tiles of scores, already in the exp2 domain with -inf where masked: `s`
// becomes the unnormalised weights exp2(s - max), the running max and the thread's share of
// the sum move to the new max, and correction[r] is the factor that moves the row's earlier
// outputs there. A row whose scores were all -inf so far keeps the max -inf and weights 0.
template <int kN>
__device__ __forceinline__ void softmax_weights(float (&s)[kN][4], float (&row_max)[2],
                                                float (&row_sum)[2], float (&correction)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float m = -INFINITY;
#pragma unroll
    for (int t = 0; t < kN; ++t) m = fmaxf(m, fmaxf(s[t][2 * r], s[t][2 * r + 1]));
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
    const float new_max = fmaxf(row_max[r], m);
    const float base = new_max == -INFINITY ? 0.0f : new_max;
    correction[r] = fast_exp2(row_max[r] - base);
    row_max[r] = new_max;
    float sum = 0.0f;
#pragma unroll
    for (int t = 0; t < kN; ++t) {
      s[t][2 * r] = fast_exp2(s[t][2 * r] - base);
      s[t][2 * r + 1] = fast_exp2(s[t][2 * r + 1] - base);
      sum += s[t][2 * r] + s[t][2 * r + 1];
    }
    row_sum[r] = row_sum[r] * correction[r] + sum;
  }
}

template <int kDimTiles>
__device__ __forceinline__ void rescale_rows(float (&out)[kDimTiles][4],
                                             const float (&correction)[2]) {
#pragma unroll
  for (int j = 0; j < kDimTiles; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) out[j][e] *= correction[e / 2];
  }
}

// One whole online-softmax step: the weights, then the outputs moved to the new max.
template <int kN, int kDimTiles>
__device__ __forceinline__ void online_softmax(float (&s)[kN][4], float (&row_max)[2],
                                               float (&row_sum)[2], float (&out)[kDimTiles][4]) {
  float correction[2];
  softmax_weights(s, row_max, row_sum, correction);
  rescale_rows(out, correction);
}

// P's A fragment for the 16 tokens of n-tiles t and t + 1 of the weights: tokens 2q, 2q + 1
// (a0: row c, a1: row c + 8) and 2q + 8, 2q + 9 (a2, a3).
template <typename M, int kN>
__device__ __forceinline__ void weight_fragment(const float (&e)[kN][4], int t,
                                                uint32_t (&p_frag)[4]) {
  p_frag[0] = pack2<M>(e[t][0], e[t][1]);
  p_frag[1] = pack2<M>(e[t][2], e[t][3]);
  p_frag[2] = pack2<M>(e[t + 1][0], e[t + 1][1]);
  p_frag[3] = pack2<M>(e[t + 1][2], e[t + 1][3]);
}

// Copies one chunk's K and V rows (tokens first .. first + 15, those from `end` on as zeros)
// into a stage: lane l copies pieces l, l + 32, ... of the K and V tiles.
template <typename Tile>
__device__ __forceinline__ void copy_chunk(const PagedCache& cache, const SplitPlan& plan,
                                           int kv_head, const int32_t* block_ids,
                                           int64_t block_base, int64_t first, int64_t end,
                                           uint8_t* stage, int lane) {
  const auto* key = static_cast<const uint8_t*>(cache.key);
  const auto* value = static_cast<const uint8_t*>(cache.value);
  const uint32_t k_tile = shared_address(stage);
  const uint32_t v_tile = k_tile + kChunkTokens * Tile::kRowBytes;
#pragma unroll
  for (int i = 0; i < Tile::kRowPieces / 2; ++i) {
    const int index = lane + 32 * i;
    const int row = index / Tile::kRowPieces, piece = index % Tile::kRowPieces;
    const int64_t token = first + row;
    int64_t offset = 0;  // a valid address even for rows past the end (nothing is read)
    int bytes = 0;
    if (token < end) {
      const uint32_t local = static_cast<uint32_t>(token - block_base);
      const uint32_t block = plan.block_size.quotient(local);
      const uint32_t in_block = local - block * plan.block_size.divisor;
      offset = cache_row_offset(cache, block_ids[block], kv_head, static_cast<int>(in_block)) *
                   static_cast<int64_t>(sizeof(typename Tile::Element)) +
               16 * piece;
      bytes = 16;
    }
    copy_async_16(k_tile + 16 * Tile::k_piece(row, piece), key + offset, bytes);
    copy_async_16(v_tile + 16 * Tile::v_piece(row, piece), value + offset, bytes);
  }
}

template <typename T, CacheType C, int HD>
__global__ void __launch_bounds__(kThreads)
    paged_attention_mma_kernel(AttentionParams p, SplitPlan plan) {
  static_assert(HD == 64 || HD == 128, "the MMA kernel covers head dims 64 and 128");
  using Storage = CacheStorage<T, C>;
  using M = MmaInput<T, C>;
  using Tile = MmaTile<T, C, HD>;
  constexpr bool kQuantized = Storage::kQuantized;
  constexpr int kDimTiles = HD / 8;  // n-tiles of P V, and head dims per thread of V

  extern __shared__ __align__(128) uint8_t shared[];  // the stages, then the merge
  __shared__ int32_t block_ids[kBlockIdWindow];
  __shared__ bool bad_block;

  const PagedCache& cache = p.cache;
  const WorkItem w = work_item(p, plan, kMmaRows);
  wait_for_dependencies();
  Partition part;
  if (!find_partition<T>(p, plan, w, HD, &part)) return;
  const int64_t begin = part.begin, end = part.end;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int c = lane / 4, q = lane % 4;

  // The query's pieces are loaded here and converted once the first block ids and copies are
  // under way, so those memory latencies overlap instead of adding up.
  QueryFragments<T, C, HD> query;
  {
    const T* rows[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int h = c + 8 * r;
      rows[r] = h < w.heads ? static_cast<const T*>(p.query) + (w.out_row + h) * HD : nullptr;
    }
    query.load(rows, q);
  }
  float key_scale = 1.0f;
  if constexpr (kQuantized) key_scale = __ldg(cache.key_scale + w.kv_head);

  float out[kDimTiles][4];
#pragma unroll
  for (int j = 0; j < kDimTiles; ++j) out[j][0] = out[j][1] = out[j][2] = out[j][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.0f, 0.0f};  // this thread's columns only; summed over the quad at the end

  uint8_t* stages = shared + warp * (kMmaStages * Tile::kStageBytes);
  for (int64_t window = begin; window < end; window += kBlockIdWindow) {
    const int64_t window_end = min(end, window + kBlockIdWindow);
    if (!load_block_ids(cache, part.seq, window, window_end, block_ids, &bad_block)) {
      write_empty_partition<T>(p, plan, w, HD, true);
      return;
    }
    const int64_t block_base = (window / cache.block_size) * cache.block_size;
    // This warp's chunks of the window: window + 16 (warp + kWarps i), i < chunks.
    const int window_chunks = static_cast<int>((window_end - window + kChunkTokens - 1) /
                                               kChunkTokens);
    const int chunks = (window_chunks - warp + kWarps - 1) / kWarps;
    auto chunk_first = [&](int i) {
      return window + static_cast<int64_t>(warp + kWarps * i) * kChunkTokens;
    };
    auto issue = [&](int i) {  // one commit group per chunk, empty past the last
      if (i < chunks) {
        copy_chunk<Tile>(cache, plan, w.kv_head, block_ids, block_base, chunk_first(i),
                         window_end, stages + (i % kMmaStages) * Tile::kStageBytes, lane);
      }
      copy_async_commit();
    };
#pragma unroll
    for (int i = 0; i < kMmaStages - 1; ++i) issue(i);
    if (window == begin) query.build(p.softmax_scale * kLog2e * key_scale);

    for (int i = 0; i < chunks; ++i) {
      issue(i + kMmaStages - 1);  // into the stage computed in iteration i - 1
      copy_async_wait<kMmaStages - 1>();
      __syncwarp();  // every lane's copies of chunk i have landed
      const uint8_t* k_tile = stages + (i % kMmaStages) * Tile::kStageBytes;
      const uint8_t* v_tile = k_tile + kChunkTokens * Tile::kRowBytes;
      const int64_t first = chunk_first(i);

      // S = Q K^T for tokens first + 8t + c (n-tile t).
      float s_acc[2][4] = {};
      score_chunk<T, C, HD>(k_tile, query.frag, s_acc, c, q);
      // Tokens 2q, 2q + 1 of each n-tile; those past the window's end score -inf (their K and V
      // rows are zeros).
#pragma unroll
      for (int t = 0; t < 2; ++t) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const bool inside = first + 8 * t + 2 * q + (i & 1) < window_end;
          s_acc[t][i] = inside ? s_acc[t][i] * query.score_scale[i / 2] : -INFINITY;
        }
      }
      online_softmax(s_acc, row_max, row_sum, out);
      uint32_t p_frag[4];
      weight_fragment<M>(s_acc, 0, p_frag);
      accumulate_values<T, C, HD>(v_tile, p_frag, out, c, q);
      __syncwarp();  // all lanes are done with this stage before it is refilled
    }
    copy_async_wait<0>();  // only empty groups are left; the next window restarts the pipeline
  }

  // Merge the warps: each writes its rows' state, the block combines them.
  __syncthreads();  // the stages become the merge space
  float* warp_out = reinterpret_cast<float*>(shared);     // [kWarps][kMmaRows][HD]
  float* warp_max = warp_out + kWarps * kMmaRows * HD;   // [kWarps][kMmaRows]
  float* warp_sum = warp_max + kWarps * kMmaRows;        // [kWarps][kMmaRows]
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = row_sum[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int row = c + 8 * r;
    if (q == 0) {
      warp_max[warp * kMmaRows + row] = row_max[r];
      warp_sum[warp * kMmaRows + row] = sum;
    }
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) {
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int dim = (2 * q + k) * kDimTiles + j;
        warp_out[(warp * kMmaRows + row) * HD + dim] = out[j][2 * r + k];
      }
    }
  }
  __syncthreads();
  allow_dependent_launch();
  float value_scale = 1.0f;
  if constexpr (kQuantized) value_scale = __ldg(cache.value_scale + w.kv_head);
  merge_and_write<T, kWarps, kMmaRows, HD>(p, plan, w, warp_max, warp_sum, warp_out, value_scale);
}

}  // namespace fdops::attention
