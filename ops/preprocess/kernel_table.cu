// The kernel table of the preprocess family: the one symbol its bindings (or fastdeploy_ops.jit)
// look up in its kernel library.
#include "ops/preprocess/preprocess.h"

FDOPS_DEFINE_KERNEL_TABLE(preprocess, FDOPS_PREPROCESS_KERNELS)
