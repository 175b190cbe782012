// The kernel table of the moe_routing family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/common/kernel_table.h"
#include "ops/moe_routing/moe_routing.h"

FDOPS_DEFINE_KERNEL_TABLE(moe_routing,
                          &fdops::moe_routing::launch_grouped_topk,
                          &fdops::moe_routing::launch_noaux_tc,
                          &fdops::moe_routing::launch_fused_cast_sigmoid_bias,
                          &fdops::moe_routing::launch_moe_topk_select)
