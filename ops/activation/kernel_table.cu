// The kernel table of the activation family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/activation/activation.h"

FDOPS_DEFINE_KERNEL_TABLE(activation, FDOPS_ACTIVATION_KERNELS)
