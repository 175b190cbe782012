// The kernel table of the attention_fp8 family (fp8 e4m3 caches).
#include "ops/attention/attention.h"
#include "ops/common/kernel_table.h"

FDOPS_DEFINE_KERNEL_TABLE(attention_fp8, &fdops::attention::launch_paged_kv_append_fp8,
                          &fdops::attention::launch_paged_attention_fp8,
                          &fdops::attention::plan_paged_attention_fp8,
                          &fdops::attention::check_paged_metadata_fp8)
