// The kernel table of the penalty family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/penalty/penalty.h"

FDOPS_DEFINE_KERNEL_TABLE(penalty, FDOPS_PENALTY_KERNELS)
