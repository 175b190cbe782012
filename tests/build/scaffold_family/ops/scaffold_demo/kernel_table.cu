// The kernel table of the scaffold_demo family: the one symbol its bindings (or
// fastdeploy_ops.jit) look up in its kernel library.
#include "ops/common/kernel_table.h"
#include "ops/scaffold_demo/scaffold_demo.h"

FDOPS_DEFINE_KERNEL_TABLE(scaffold_demo, &fdops::scaffold_demo::launch_scaled_copy)
