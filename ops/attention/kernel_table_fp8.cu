// The kernel table of the attention_fp8 family (fp8 e4m3 caches).
#include "ops/attention/attention.h"

FDOPS_DEFINE_KERNEL_TABLE(attention_fp8, FDOPS_ATTENTION_FP8_KERNELS)
