// The kernel table of the attention family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/attention/attention.h"

FDOPS_DEFINE_KERNEL_TABLE(attention, FDOPS_ATTENTION_KERNELS)
