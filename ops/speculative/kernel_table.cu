// The kernel table of the speculative family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/common/kernel_table.h"
#include "ops/speculative/speculative.h"

FDOPS_DEFINE_KERNEL_TABLE(speculative,
                          &fdops::speculative::launch_speculate_verify,
                          &fdops::speculative::launch_speculate_update)
