// nanobind binding of the attention_fp8 family (fp8 e4m3 caches, passed as uint8 views). Its
// ops carry the suffix _fp8; fastdeploy_ops.attention picks them for float8 caches.
#include "ops/attention/attention_binding.h"

namespace fdops {
namespace {

// This family's kernels: linked into the module, or loaded by fastdeploy_ops.jit.
kernels::Family<attention_fp8::KernelTable> family_kernels("attention_fp8");
const attention::PagedAttentionBindings bindings(family_kernels, /*fp8=*/true);

}  // namespace

void register_attention_fp8(nanobind::module_& m) { bindings.register_ops(m, "_fp8"); }

}  // namespace fdops
