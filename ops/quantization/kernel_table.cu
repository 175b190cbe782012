// The kernel table of the quantization family: the one symbol its bindings (or
// fastdeploy_ops.jit) look up in its kernel library.
#include "ops/quantization/quantization.h"

FDOPS_DEFINE_KERNEL_TABLE(quantization, FDOPS_QUANTIZATION_KERNELS)
