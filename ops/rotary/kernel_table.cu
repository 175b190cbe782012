// The kernel table of the rotary family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/rotary/rotary.h"

FDOPS_DEFINE_KERNEL_TABLE(rotary, FDOPS_ROTARY_KERNELS)
