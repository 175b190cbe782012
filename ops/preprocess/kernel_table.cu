// The kernel table of the preprocess family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/common/kernel_table.h"
#include "ops/preprocess/preprocess.h"

FDOPS_DEFINE_KERNEL_TABLE(preprocess,
                          &fdops::preprocess::launch_get_padding_offset,
                          &fdops::preprocess::launch_rebuild_padding,
                          &fdops::preprocess::launch_set_value_by_flags_and_idx,
                          &fdops::preprocess::launch_set_stop_value_multi_ends)
