// The kernel table of the penalty family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/common/kernel_table.h"
#include "ops/penalty/penalty.h"

FDOPS_DEFINE_KERNEL_TABLE(penalty,
                          &fdops::penalty::launch_token_penalty_multi_scores,
                          &fdops::penalty::launch_token_penalty_once)
