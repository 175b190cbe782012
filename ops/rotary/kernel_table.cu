// The kernel table of the rotary family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/common/kernel_table.h"
#include "ops/rotary/rotary.h"

FDOPS_DEFINE_KERNEL_TABLE(rotary,
                          &fdops::rotary::launch_fused_rotary_position_encoding)
