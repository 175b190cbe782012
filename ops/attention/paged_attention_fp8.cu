// The attention_fp8 family's launch functions (fp8 e4m3 caches, SM89+ for the hardware
// conversions): the same kernels as the attention family, instantiated for fp8 only.
#include "ops/attention/attention.h"
#include "ops/attention/paged_attention_groups.cuh"
#include "ops/attention/paged_kv_append.cuh"
#include "ops/attention/paged_metadata.cuh"

namespace fdops::attention {

cudaError_t launch_paged_attention_fp8(const AttentionParams& params, cudaStream_t stream) {
  if (params.cache.type != CacheType::kFp8E4M3) return cudaErrorInvalidValue;
  return dispatch_paged_attention<CacheType::kFp8E4M3>(params, stream);
}

cudaError_t plan_paged_attention_fp8(const AttentionParams& params, int64_t resident_blocks,
                                     AttentionPlan* plan) {
  if (params.cache.type != CacheType::kFp8E4M3) {
    *plan = AttentionPlan{};
    return cudaErrorInvalidValue;
  }
  return dispatch_paged_attention_plan<CacheType::kFp8E4M3>(params, resident_blocks, plan);
}

cudaError_t launch_paged_kv_append_fp8(const AppendParams& params, cudaStream_t stream) {
  if (params.cache.type != CacheType::kFp8E4M3) return cudaErrorInvalidValue;
  return launch_paged_kv_append_of<CacheType::kFp8E4M3>(params, stream);
}

cudaError_t check_paged_metadata_fp8(const MetadataCheck& check, MetadataReport* report,
                                     cudaStream_t stream) {
  return run_metadata_check(check, report, stream);
}

}  // namespace fdops::attention
