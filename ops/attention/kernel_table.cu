// The kernel table of the attention family (bf16/fp16 and int8 caches).
#include "ops/attention/attention.h"

FDOPS_DEFINE_KERNEL_TABLE(attention, FDOPS_ATTENTION_KERNELS)
