// Device code of get_padding_offset (ops/preprocess/README.md): pack input_ids[b, :len_b] into
// one token stream, with the batch id of every token and the cumulative lengths.
//
// Lengths come from device memory, so they are clamped to [0, max_len] and every write is
// bounded by token_num (a host-side integer): a length sum that disagrees with token_num can
// neither write out of bounds nor leave the outputs undefined.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/common/warp.cuh"

namespace fdops::preprocess {
namespace padding_impl {

inline constexpr int kThreads = 256;       // pack kernel block
inline constexpr int kChunk = 1024;        // tokens of one row a block copies per step
inline constexpr int kScanThreads = 1024;  // cumulative-length kernel (large batches)
inline constexpr int64_t kTargetBlocks = 1024;  // rows x chunks the pack grid aims for

struct PaddingParams {
  const int64_t* input_ids;     // [batch, max_len]
  const int32_t* seq_len;       // [batch]
  int64_t* x_remove_padding;    // [token_num]
  int32_t* batch_id_per_token;  // [token_num]
  int32_t* cu_seqlens_q;        // [batch + 1]
  int32_t* cu_seqlens_k;        // [batch + 1]
  int64_t batch;
  int64_t max_len;
  int64_t token_num;
};

__device__ __forceinline__ long long min_ll(long long a, long long b) { return a < b ? a : b; }

// Row b's length, clamped to what its input_ids row holds.
__device__ __forceinline__ long long clamped_len(const PaddingParams& p, int64_t b) {
  const long long n = p.seq_len[b];
  return n < 0 ? 0 : (n > p.max_len ? p.max_len : n);
}

// Sum over the block (blockDim.x a multiple of 32, every thread calling). Integer, so exact.
__device__ __forceinline__ long long block_sum(long long v, long long* warp_sums) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  long long total = 0;
  for (int w = 0; w < warps; ++w) total += warp_sums[w];
  __syncthreads();  // warp_sums may be reused by the caller
  return total;
}

// Inclusive scan over the block (blockDim.x a multiple of 32, at most 1024, every thread
// calling); *total gets the block's sum.
__device__ __forceinline__ long long block_inclusive_scan(long long v, long long* warp_totals,
                                                          long long* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const long long up = __shfl_up_sync(kFullMask, v, offset);
    if (lane >= offset) v += up;
  }
  if (lane == 31) warp_totals[warp] = v;
  __syncthreads();
  if (warp == 0) {
    long long w = lane < warps ? warp_totals[lane] : 0;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      const long long up = __shfl_up_sync(kFullMask, w, offset);
      if (lane >= offset) w += up;
    }
    if (lane < warps) warp_totals[lane] = w;  // inclusive prefix over the warps
  }
  __syncthreads();
  if (warp > 0) v += warp_totals[warp - 1];
  *total = warp_totals[warps - 1];
  __syncthreads();  // warp_totals is rewritten by the next call
  return v;
}

// Positions [from, token_num) that no row fills (the lengths sum to less than token_num).
__device__ __forceinline__ void fill_tail(const PaddingParams& p, long long from) {
  for (long long pos = from + threadIdx.x; pos < p.token_num; pos += blockDim.x) {
    p.x_remove_padding[pos] = 0;
    p.batch_id_per_token[pos] = -1;
  }
}

// Single block: cu_seqlens for any batch size (a scan in tiles of blockDim.x rows), and the
// unfilled tail. Used before pack_tokens_kernel<true> when the batch is large.
__global__ void __launch_bounds__(kScanThreads) cu_seqlens_kernel(const PaddingParams p) {
  __shared__ long long warp_totals[32];
  long long carry = 0;
  for (int64_t base = 0; base < p.batch; base += blockDim.x) {
    const int64_t b = base + threadIdx.x;
    const long long len = b < p.batch ? clamped_len(p, b) : 0;
    long long tile_total;
    const long long inclusive = block_inclusive_scan(len, warp_totals, &tile_total);
    if (b < p.batch) {
      const int32_t cu = static_cast<int32_t>(min_ll(carry + inclusive, p.token_num));
      p.cu_seqlens_q[b + 1] = cu;
      p.cu_seqlens_k[b + 1] = cu;
    }
    carry += tile_total;
  }
  if (threadIdx.x == 0) {
    p.cu_seqlens_q[0] = 0;
    p.cu_seqlens_k[0] = 0;
  }
  fill_tail(p, carry);
}

// Grid (batch, y): block (b, y) copies chunks y, y + gridDim.y, ... (kChunk tokens each) of row
// b. kPrefixFromCu: the row's offset is cu_seqlens_q[b], written by cu_seqlens_kernel; otherwise
// the block sums the clamped lengths before b itself, and blocks (b, 0) write cu_seqlens[b + 1]
// (and block (batch - 1, 0) the unfilled tail).
template <bool kPrefixFromCu>
__global__ void __launch_bounds__(kThreads) pack_tokens_kernel(const PaddingParams p) {
  __shared__ long long warp_sums[kThreads / 32];
  const int64_t b = blockIdx.x;
  const long long len = clamped_len(p, b);
  const long long first = static_cast<long long>(blockIdx.y) * kChunk;
  const bool writes_cu = !kPrefixFromCu && blockIdx.y == 0;
  if (!writes_cu && first >= len) return;  // uniform over the block

  long long prefix;
  if constexpr (kPrefixFromCu) {
    prefix = p.cu_seqlens_q[b];  // min(true offset, token_num): still bounds every write
  } else {
    long long partial = 0;
    for (int64_t j = threadIdx.x; j < b; j += blockDim.x) partial += clamped_len(p, j);
    prefix = block_sum(partial, warp_sums);
    if (writes_cu) {
      if (threadIdx.x == 0) {
        const int32_t cu = static_cast<int32_t>(min_ll(prefix + len, p.token_num));
        p.cu_seqlens_q[b + 1] = cu;
        p.cu_seqlens_k[b + 1] = cu;
        if (b == 0) {
          p.cu_seqlens_q[0] = 0;
          p.cu_seqlens_k[0] = 0;
        }
      }
      if (b == p.batch - 1) fill_tail(p, prefix + len);
    }
  }

  const int64_t* row = p.input_ids + b * p.max_len;
  const int32_t batch_id = static_cast<int32_t>(b);
  const long long step = static_cast<long long>(gridDim.y) * kChunk;
  for (long long start = first; start < len; start += step) {
    const long long stop = min_ll(len, start + kChunk);
    for (long long i = start + threadIdx.x; i < stop; i += blockDim.x) {
      const long long pos = prefix + i;
      if (pos >= p.token_num) break;  // positions only grow with i
      p.x_remove_padding[pos] = row[i];
      p.batch_id_per_token[pos] = batch_id;
    }
  }
}

}  // namespace padding_impl
}  // namespace fdops::preprocess
