// The kernel table of the attention family (bf16/fp16 and int8 caches).
#include "ops/attention/attention.h"
#include "ops/common/kernel_table.h"

FDOPS_DEFINE_KERNEL_TABLE(attention, &fdops::attention::launch_paged_kv_append,
                          &fdops::attention::launch_paged_attention,
                          &fdops::attention::plan_paged_attention,
                          &fdops::attention::check_paged_metadata)
