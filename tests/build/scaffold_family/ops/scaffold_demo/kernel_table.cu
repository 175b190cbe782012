// The kernel table of the scaffold_demo family: the one symbol its bindings (or
// fastdeploy_ops.jit) look up in its kernel library.
#include "ops/scaffold_demo/scaffold_demo.h"

FDOPS_DEFINE_KERNEL_TABLE(scaffold_demo, FDOPS_SCAFFOLD_DEMO_KERNELS)
