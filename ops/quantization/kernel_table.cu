// The kernel table of the quantization family: the one symbol its bindings (or
// fastdeploy_ops.jit) look up in its kernel library.
#include "ops/common/kernel_table.h"
#include "ops/quantization/quantization.h"

FDOPS_DEFINE_KERNEL_TABLE(quantization,
                          &fdops::quantization::launch_per_token_quant,
                          &fdops::quantization::launch_per_token_quant_padding)
