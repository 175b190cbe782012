// The C++ implementation of the torch operators (torch.ops.fastdeploy_ops.<op>): from
// PyTorch's dispatcher straight to the extension module's C entry points (ops/common/op_entry.h),
// with no Python in between. Each operator is a boxed kernel that reads its arguments off the
// dispatcher's stack by the schema, views the tensors in place (no DLPack export, no reference
// counting), takes the current CUDA stream of the first tensor's device and calls the entry.
//
// fastdeploy_ops._torch_library loads this library after defining the operators in Python (their
// schemas and fake implementations), and calls fdops_torch_implement for each. The module's
// entries are found on each operator's first call, through the resolver Python installs: it loads
// the module and the op's kernels (a JIT compile, if that is how this GPU gets them) and returns
// the module's entry table, or why it cannot.
//
// Built against one torch release (its C++ API and ABI); Python loads it only under that release.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <array>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "ops/common/op_entry.h"

namespace {

// Returns the module's entry table once op `op`'s kernels are loaded, or NULL with why not.
using Resolver = const fdops_op_entries* (*)(const char* op, char* message, size_t message_size);

std::atomic<Resolver> resolver{nullptr};

constexpr size_t kMaxArguments = 64;
constexpr size_t kMessageSize = 2048;

// DLPack's codes for a torch dtype (as torch's own DLPack export gives them).
void set_dtype(c10::ScalarType type, fdops_tensor& t) {
  uint8_t code = 0;  // kDLInt
  uint8_t bits = static_cast<uint8_t>(c10::elementSize(type) * 8);
  switch (type) {
    case c10::ScalarType::Float:
    case c10::ScalarType::Double:
    case c10::ScalarType::Half: code = 2; break;  // kDLFloat
    case c10::ScalarType::BFloat16: code = 4; break;  // kDLBfloat
    case c10::ScalarType::Byte:
    case c10::ScalarType::UInt16:
    case c10::ScalarType::UInt32:
    case c10::ScalarType::UInt64: code = 1; break;  // kDLUInt
    case c10::ScalarType::Bool: code = 6; break;  // kDLBool
    case c10::ScalarType::ComplexFloat:
    case c10::ScalarType::ComplexDouble: code = 5; break;  // kDLComplex
    case c10::ScalarType::Float8_e5m2: code = 8; break;  // kDLFloat8_e5m2
    case c10::ScalarType::Float8_e4m3fn: code = 10; break;  // kDLFloat8_e4m3fn
    case c10::ScalarType::Char:
    case c10::ScalarType::Short:
    case c10::ScalarType::Int:
    case c10::ScalarType::Long: break;
    default: code = 3; break;  // kDLOpaqueHandle: a dtype no binding accepts
  }
  t.dtype_code = code;
  t.dtype_bits = bits;
  t.dtype_lanes = 1;
}

fdops_tensor view_of(const at::Tensor& tensor) {
  fdops_tensor t{};
  t.data = tensor.numel() == 0 ? nullptr : tensor.data_ptr();
  t.shape = tensor.sizes().data();
  t.strides = tensor.strides().data();
  t.ndim = static_cast<int32_t>(tensor.dim());
  const c10::Device device = tensor.device();
  t.device_type = device.is_cuda() ? 2 : device.is_cpu() ? 1 : 0;  // kDLCUDA, kDLCPU, none
  t.device_id = device.has_index() ? device.index() : 0;
  set_dtype(tensor.scalar_type(), t);
  return t;
}

[[noreturn]] void throw_status(int32_t status, const char* message) {
  switch (status) {
    case FDOPS_TYPE_ERROR: TORCH_CHECK_TYPE(false, message);
    case FDOPS_VALUE_ERROR: TORCH_CHECK_VALUE(false, message);
    default: TORCH_CHECK(false, message);
  }
}

// One operator: its binding's entry, found on the first call.
class EntryKernel final : public c10::OperatorKernel {
 public:
  EntryKernel(std::string op, std::string binding)
      : op_(std::move(op)), binding_(std::move(binding)) {}

  void operator()(const c10::OperatorHandle& handle, c10::DispatchKeySet,
                  torch::jit::Stack* stack) {
    const std::vector<c10::Argument>& schema = handle.schema().arguments();
    const size_t n = schema.size();
    TORCH_CHECK(n <= kMaxArguments, op_, ": more than ", kMaxArguments, " arguments");
    std::array<fdops_value, kMaxArguments> values;
    int device = -1;  // of the first tensor: its current stream is the launch stream
    bool first_tensor = true;
    const c10::IValue* args = stack->data() + (stack->size() - n);
    for (size_t i = 0; i < n; ++i) {
      const c10::IValue& arg = args[i];
      fdops_value& value = values[i];
      if (arg.isTensor() && arg.toTensor().defined()) {
        const at::Tensor& tensor = arg.toTensor();
        TORCH_CHECK_TYPE(!tensor.requires_grad(), binding_, ": argument '", schema[i].name(),
                         "' must not require grad (these ops have no backward; pass .detach())");
        value.kind = FDOPS_VALUE_TENSOR;
        value.as.tensor = view_of(tensor);
        if (first_tensor) {
          first_tensor = false;
          if (tensor.is_cuda()) device = tensor.get_device();
        }
      } else if (arg.isNone() || arg.isTensor()) {  // an undefined tensor is an absent one
        value.kind = FDOPS_VALUE_NONE;
      } else if (arg.isInt()) {
        value.kind = FDOPS_VALUE_INT;
        value.as.integer = arg.toInt();
      } else if (arg.isDouble()) {
        value.kind = FDOPS_VALUE_FLOAT;
        value.as.real = arg.toDouble();
      } else if (arg.isBool()) {
        value.kind = FDOPS_VALUE_BOOL;
        value.as.boolean = arg.toBool();
      } else {
        TORCH_CHECK_TYPE(false, op_, ": argument '", schema[i].name(), "' has type ",
                         arg.tagKind(), ", which the kernel functions do not take");
      }
    }
    const fdops_op_entry& entry = this->entry();
    const uintptr_t stream =
        device >= 0 ? reinterpret_cast<uintptr_t>(c10::cuda::getCurrentCUDAStream(device).stream())
                    : 0;
    char message[kMessageSize];
    const int32_t status = entry.call(entry.op, values.data(), static_cast<int32_t>(n), stream,
                                      message, sizeof message);
    torch::jit::drop(*stack, n);
    if (status != FDOPS_OK) throw_status(status, message);
  }

 private:
  const fdops_op_entry& entry() {
    const fdops_op_entry* found = entry_.load(std::memory_order_acquire);
    if (found != nullptr) return *found;
    // Resolved without a lock: the resolver takes Python's GIL, which a thread waiting here
    // might hold. Two threads resolving at once find the same entry.
    const Resolver resolve = resolver.load(std::memory_order_acquire);
    TORCH_CHECK(resolve != nullptr, op_, ": no resolver installed (fastdeploy_ops._torch_library)");
    char message[kMessageSize] = "";
    const fdops_op_entries* table = resolve(op_.c_str(), message, sizeof message);
    TORCH_CHECK(table != nullptr, message);
    TORCH_CHECK(table->abi == FDOPS_OP_ENTRIES_ABI, op_, ": the extension module's entry ABI is ",
                table->abi, ", this library's ", FDOPS_OP_ENTRIES_ABI, " (mixed installations?)");
    for (uint32_t i = 0; i < table->count; ++i) {
      if (binding_ == table->entries[i].name) {
        entry_.store(&table->entries[i], std::memory_order_release);
        return table->entries[i];
      }
    }
    TORCH_CHECK(false, op_, ": the extension module has no entry point '", binding_, "'");
  }

  const std::string op_;
  const std::string binding_;
  std::atomic<const fdops_op_entry*> entry_{nullptr};
};

// The registrations made here, kept for the life of the process.
std::mutex libraries_mutex;
std::map<std::pair<std::string, c10::DispatchKey>, std::unique_ptr<torch::Library>> libraries;

torch::Library& library(const std::string& ns, c10::DispatchKey key) {
  std::unique_ptr<torch::Library>& lib = libraries[{ns, key}];
  if (!lib) {
    lib = std::make_unique<torch::Library>(torch::Library::IMPL, ns, key, __FILE__, __LINE__);
  }
  return *lib;
}

int fail(const char* what, char* message, size_t message_size) {
  if (message_size > 0) {
    std::strncpy(message, what, message_size - 1);
    message[message_size - 1] = '\0';
  }
  return 1;
}

}  // namespace

extern "C" {

// Installs the function operators call to find the module's entries (see Resolver).
__attribute__((visibility("default"))) void fdops_torch_set_resolver(Resolver resolve) {
  resolver.store(resolve, std::memory_order_release);
}

// Registers `ns::op` (already defined) for the CUDA and CPU dispatch keys, implemented by the
// module entry `binding`. Returns 0, or 1 with the error in `message`.
__attribute__((visibility("default"))) int fdops_torch_implement(const char* ns, const char* op,
                                                                  const char* binding,
                                                                  char* message,
                                                                  size_t message_size) {
  try {
    std::lock_guard<std::mutex> lock(libraries_mutex);
    for (c10::DispatchKey key : {c10::DispatchKey::CUDA, c10::DispatchKey::CPU}) {
      library(ns, key).impl(op, torch::CppFunction::makeFromBoxedFunctor(
                                    std::make_unique<EntryKernel>(op, binding)));
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what(), message, message_size);
  }
}

}  // extern "C"
