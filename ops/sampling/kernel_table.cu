// The kernel table of the sampling family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/sampling/sampling.h"

FDOPS_DEFINE_KERNEL_TABLE(sampling, FDOPS_SAMPLING_KERNELS)
