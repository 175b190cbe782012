// The kernel table of the speculative family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/speculative/speculative.h"

FDOPS_DEFINE_KERNEL_TABLE(speculative, FDOPS_SPECULATIVE_KERNELS)
