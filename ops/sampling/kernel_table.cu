// The kernel table of the sampling family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/common/kernel_table.h"
#include "ops/sampling/sampling.h"

FDOPS_DEFINE_KERNEL_TABLE(sampling,
                          &fdops::sampling::launch_top_k_renorm_probs,
                          &fdops::sampling::launch_top_p_renorm_probs,
                          &fdops::sampling::launch_top_k_top_p_sampling_from_probs)
