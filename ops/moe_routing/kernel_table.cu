// The kernel table of the moe_routing family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/moe_routing/moe_routing.h"

FDOPS_DEFINE_KERNEL_TABLE(moe_routing, FDOPS_MOE_ROUTING_KERNELS)
