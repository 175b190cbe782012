// The kernel table of the gated_demo family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "tests/gating/gated_demo.h"

FDOPS_DEFINE_KERNEL_TABLE(gated_demo, FDOPS_GATED_DEMO_KERNELS)
