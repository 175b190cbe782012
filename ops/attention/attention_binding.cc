// nanobind binding of the attention family (bf16/fp16 and int8 caches).
#include "ops/attention/attention_binding.h"

namespace fdops {
namespace {

// This family's kernels: linked into the module, or loaded by fastdeploy_ops.jit.
kernels::Family<attention::KernelTable> family_kernels("attention");
const attention::PagedAttentionBindings bindings(family_kernels, /*fp8=*/false);

}  // namespace

void register_attention(nanobind::module_& m) { bindings.register_ops(m, ""); }

}  // namespace fdops
