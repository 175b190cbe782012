// Launch functions of the paged-attention family (bf16/fp16 queries; c16 and int8 caches from
// SM80, fp8 e4m3 caches from SM89).
//
// The paged KV cache: key and value caches [num_blocks, kv_heads, block_size, head_dim];
// position p of sequence b lives in block block_tables[b, p / block_size], row p % block_size.
// Arguments are validated by the bindings before a launch; device-resident metadata (lengths,
// block ids) is checked by check_paged_metadata when the caller asks for it, and the kernels
// never read or write outside the cache for bad metadata: they skip the write (append) or
// return NaN for the affected rows (attention).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/common/dtype.h"
#include "ops/common/kernel_table.h"

namespace fdops::attention {

// How the cache stores K and V. Quantised caches hold round(x / scale) per KV head, scales
// being fp32 [kv_heads] dequantisation factors: int8 clamps to [-127, 127], fp8 e4m3 saturates
// to +-448.
enum class CacheType : int32_t {
  kC16 = 0,  // the query's dtype (bf16 or fp16)
  kInt8 = 1,
  kFp8E4M3 = 2,
};

// Head dims with instantiated kernels.
inline constexpr int kHeadDims[] = {64, 128, 256};
// Tokens whose block ids a thread block stages in shared memory at a time.
inline constexpr int kBlockIdWindow = 2048;

struct PagedCache {
  void* key;
  void* value;
  const float* key_scale;    // [kv_heads] for int8 and fp8 caches, else nullptr
  const float* value_scale;  // likewise
  const int32_t* block_tables;  // [batch, max_blocks_per_seq]
  int64_t num_blocks;
  int32_t max_blocks_per_seq;
  int32_t block_size;
  int32_t kv_heads;
  int32_t head_dim;
  CacheType type;
};

// Attention of `rows` query tokens over the paged cache. Decode (cu_seqlens_q == nullptr): row b
// is sequence b's one new token and attends to all seq_lens[b] cached tokens. Prefill: rows
// cu_seqlens_q[b] .. cu_seqlens_q[b + 1] are sequence b's q_len new tokens, already appended,
// at positions seq_lens[b] - q_len .. seq_lens[b] - 1; each attends causally to the positions
// up to its own. Query head h reads KV head h / (num_heads / kv_heads).
struct AttentionParams {
  const void* query;  // [rows, num_heads, head_dim] of dtype
  void* out;          // [rows, num_heads, head_dim] of dtype
  DType dtype;        // bf16 or fp16; a c16 cache has this dtype too
  PagedCache cache;
  const int32_t* seq_lens;      // [batch]: tokens in the cache, the new ones included
  const int32_t* cu_seqlens_q;  // [batch + 1], or nullptr for decode (rows == batch)
  int64_t rows;
  int32_t batch;
  int32_t num_heads;
  // The longest context of the batch as the caller knows it on the host, or 0 for "up to the
  // block table's capacity". Only the split of contexts over blocks depends on it: a context
  // longer than the hint is still attended to whole (its last partition runs to its end).
  int32_t max_seq_len;
  float softmax_scale;
};

// The kernels. Per query token: tensor cores (mma.sync, a tile of 16 query heads sharing one KV
// head) and CUDA cores (fp32 FMA, a tile of 1, 2, 4 or 8 heads). Tiled prefill: tensor cores
// over 128 (token, head) rows of one sequence's chunk, each K/V tile loaded once for them all.
enum class AttentionKernel : int32_t {
  kNone = 0,
  kTensorCore = 1,
  kCudaCore = 2,
  kTiledPrefill = 3,
  kTiledPrefillWgmma = 4,  // the same work, warp-specialised on wgmma (SM 9.0, 16-bit caches)
};

// How one launch divides the work. A pure function of the shapes and of how many blocks the
// device runs at once, so every accepted shape is checked for a kernel without a GPU.
// A block of the per-token kernels computes one query row x one KV head x one tile of the query
// heads sharing it x one partition of the row's context; a block of the tiled prefill kernel,
// 128 (token, head) rows of one sequence (head_tile = the group) x one KV head x one partition.
// Several partitions are merged by a second kernel.
struct AttentionPlan {
  AttentionKernel kernel;
  int32_t head_tile;         // query heads per block
  int32_t head_tiles;        // blocks per (row, KV head): ceil(group size / head_tile); 1 tiled
  int32_t num_splits;        // partitions per row; 1 writes the output directly
  int32_t partition_tokens;  // tokens per partition (the last one runs to the row's end)
  int32_t threads;           // per block
  int32_t shared_bytes;      // dynamic shared memory per block
  int64_t blocks;            // rows * kv_heads * head_tiles * num_splits (per token), or
                             // tiles * kv_heads * num_splits (tiled prefill)
  int64_t workspace_bytes;   // partial outputs of the split, 0 without one
};

// Writes `tokens` new K and V rows into the cache: rows cu_seqlens_q[b] .. cu_seqlens_q[b + 1]
// of sequence b go to positions cache_lens[b], cache_lens[b] + 1, ... With cos_sin_cache, the
// rotary embedding of each token's position is applied to K before it is stored and to query
// in place (neox pairs (i, i + rot_dim / 2) or interleaved pairs (2i, 2i + 1) of the first
// rot_dim dims), in fp32 with one rounding, like the rotary family.
struct AppendParams {
  const void* key;    // [tokens, kv_heads, head_dim] of dtype
  const void* value;  // likewise
  void* query;        // [tokens, num_heads, head_dim] of dtype, rotated in place; or nullptr
  const void* cos_sin_cache;  // [max_position, rot_dim] of dtype (cos, then sin), or nullptr
  DType dtype;
  PagedCache cache;
  const int32_t* cache_lens;    // [batch]: tokens in the cache before this append
  const int32_t* cu_seqlens_q;  // [batch + 1]
  int64_t tokens;
  int64_t max_position;
  int32_t batch;
  int32_t num_heads;  // of query (0 without query)
  int32_t rot_dim;
  bool is_neox;
};

// Device-resident metadata to check before a launch. For an append, sequence b touches
// positions [lens[b], lens[b] + q_len); for attention, [0, lens[b]) with lens[b] >= q_len
// (>= 1 for decode). q_len is 1 per sequence without cu_seqlens_q.
struct MetadataCheck {
  const int32_t* block_tables;
  const int32_t* lens;
  const int32_t* cu_seqlens_q;  // or nullptr
  int64_t num_blocks;
  int64_t rows;          // query tokens: cu_seqlens_q[batch] must equal it
  int64_t max_position;  // > 0: every touched position must be below it (rotary table rows)
  int32_t max_len;       // > 0: lens[b] must not exceed it (the caller's max_seq_len hint)
  int32_t batch;
  int32_t max_blocks_per_seq;
  int32_t block_size;
  bool append;
};

enum class MetadataError : int32_t {
  kNone = 0,
  kCuSeqlens = 1,  // cu_seqlens_q[index] = value breaks 0 = cu[0] <= ... <= cu[batch] = rows
  kLength = 2,     // lens[sequence] = value is negative, too short, beyond the block table
                   // or beyond max_len
  kBlockId = 3,    // block_tables[sequence, index] = value is outside [0, num_blocks)
  kPosition = 4,   // position value of sequence is beyond the rotary table
};

// The first problem found (error kNone if none).
struct MetadataReport {
  MetadataError error;
  int32_t sequence;
  int32_t index;
  int32_t value;
};

cudaError_t launch_paged_kv_append(const AppendParams& params, cudaStream_t stream);
cudaError_t launch_paged_attention(const AttentionParams& params, cudaStream_t stream);
// The plan launch_paged_attention follows when the device runs `resident_blocks` blocks of the
// chosen kernel at once; cudaErrorInvalidValue (and kernel kNone) if no kernel serves `params`.
// Host code only: no CUDA call, no device needed.
cudaError_t plan_paged_attention(const AttentionParams& params, int64_t resident_blocks,
                                 AttentionPlan* plan);
// Runs the check on `stream` and waits for it: not while the stream is being captured.
cudaError_t check_paged_metadata(const MetadataCheck& check, MetadataReport* report,
                                 cudaStream_t stream);

// Whether these kernels serve caches of `type`: fp8 caches need kernels built for SM89+.
bool supports_cache_type(CacheType type);

// The launch functions above, as the bindings reach them (see ops/common/kernel_table.h).
#define FDOPS_ATTENTION_KERNELS(X)                  \
  X(supports_cache, supports_cache_type)            \
  X(paged_kv_append, launch_paged_kv_append)        \
  X(paged_attention, launch_paged_attention)        \
  X(plan_attention, plan_paged_attention)           \
  X(check_metadata, check_paged_metadata)
FDOPS_KERNEL_TABLE(FDOPS_ATTENTION_KERNELS)

}  // namespace fdops::attention
