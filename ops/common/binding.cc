#include "ops/common/binding.h"

#include <cstring>
#include <sstream>

namespace fdops::binding {
namespace {

std::optional<DType> dtype_of(const Tensor& t) {
  const nb::dlpack::dtype dt = t.dtype();
  if (dt.lanes != 1) return std::nullopt;
  switch (static_cast<nb::dlpack::dtype_code>(dt.code)) {
    case nb::dlpack::dtype_code::Float:
      if (dt.bits == 32) return DType::kFloat32;
      if (dt.bits == 16) return DType::kFloat16;
      return std::nullopt;
    case nb::dlpack::dtype_code::Bfloat:
      if (dt.bits == 16) return DType::kBFloat16;
      return std::nullopt;
    case nb::dlpack::dtype_code::Int:
      if (dt.bits == 8) return DType::kInt8;
      if (dt.bits == 32) return DType::kInt32;
      if (dt.bits == 64) return DType::kInt64;
      return std::nullopt;
    case nb::dlpack::dtype_code::UInt:
      if (dt.bits == 8) return DType::kUInt8;
      return std::nullopt;
    case nb::dlpack::dtype_code::Bool:
      if (dt.bits == 8) return DType::kBool;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

const char* device_name(int32_t device_type) {
  if (device_type == nb::device::cpu::value) return "cpu";
  if (device_type == nb::device::cuda::value) return "cuda";
  if (device_type == nb::device::cuda_host::value) return "cuda_host (pinned host memory)";
  if (device_type == nb::device::cuda_managed::value) return "cuda_managed";
  return "non-CUDA";
}

bool is_row_major_contiguous(const Tensor& t) {
  if (t.size() == 0) return true;  // nothing is read or written; frameworks give empty views odd strides
  int64_t expected = 1;
  for (size_t i = t.ndim(); i-- > 0;) {
    if (t.shape(i) != 1 && t.stride(i) != expected) return false;
    expected *= static_cast<int64_t>(t.shape(i));
  }
  return true;
}

}  // namespace

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kBool: return "bool";
    case DType::kInt8: return "int8";
    case DType::kUInt8: return "uint8";
  }
  return "unknown";
}

std::string describe_dtype(const Tensor& t) {
  if (auto dtype = dtype_of(t)) return dtype_name(*dtype);
  const nb::dlpack::dtype dt = t.dtype();
  const char* kind = "unknown";
  switch (static_cast<nb::dlpack::dtype_code>(dt.code)) {
    case nb::dlpack::dtype_code::Int: kind = "int"; break;
    case nb::dlpack::dtype_code::UInt: kind = "uint"; break;
    case nb::dlpack::dtype_code::Float: kind = "float"; break;
    case nb::dlpack::dtype_code::Bfloat: kind = "bfloat"; break;
    case nb::dlpack::dtype_code::Complex: kind = "complex"; break;
    case nb::dlpack::dtype_code::Bool: kind = "bool"; break;
    default: break;
  }
  return std::string(kind) + std::to_string(dt.bits);
}

std::string describe_shape(const Tensor& t) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < t.ndim(); ++i) s << (i ? ", " : "") << t.shape(i);
  s << "]";
  return s.str();
}

void throw_type_error(const char* op, const char* arg, const std::string& expected,
                      const std::string& given) {
  throw nb::type_error(
      (std::string(op) + ": argument '" + arg + "' must " + expected + ", got " + given).c_str());
}

void throw_value_error(const char* op, const char* arg, const std::string& expected,
                       const std::string& given) {
  throw nb::value_error(
      (std::string(op) + ": argument '" + arg + "' must " + expected + ", got " + given).c_str());
}

DType check_dtype(const char* op, const char* arg, const Tensor& t,
                  std::initializer_list<DType> allowed) {
  const std::optional<DType> dtype = dtype_of(t);
  for (DType d : allowed) {
    if (dtype && *dtype == d) return d;
  }
  std::string expected = "have dtype ";
  size_t i = 0;
  for (DType d : allowed) {
    expected += (i == 0 ? "" : (i + 1 == allowed.size() ? " or " : ", "));
    expected += dtype_name(d);
    ++i;
  }
  throw_type_error(op, arg, expected, describe_dtype(t));
}

void check_dtype_is(const char* op, const char* arg, const Tensor& t, DType dtype,
                    const char* like) {
  const std::optional<DType> given = dtype_of(t);
  if (given && *given == dtype) return;
  throw_type_error(op, arg,
                   std::string("have the dtype of '") + like + "' (" + dtype_name(dtype) + ")",
                   describe_dtype(t));
}

void check_rank(const char* op, const char* arg, const Tensor& t,
                std::initializer_list<size_t> ranks) {
  for (size_t r : ranks) {
    if (t.ndim() == r) return;
  }
  std::string expected = "be ";
  size_t i = 0;
  for (size_t r : ranks) {
    expected += (i == 0 ? "" : " or ") + std::to_string(r) + "-D";
    ++i;
  }
  throw_value_error(op, arg, expected,
                    std::to_string(t.ndim()) + "-D with shape " + describe_shape(t));
}

void check_shape(const char* op, const char* arg, const Tensor& t,
                 const std::vector<int64_t>& shape, const char* names) {
  bool ok = t.ndim() == shape.size();
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = dim(t, i) == shape[i];
  if (ok) return;
  std::ostringstream want;
  want << "have shape " << names << " = [";
  for (size_t i = 0; i < shape.size(); ++i) want << (i ? ", " : "") << shape[i];
  want << "]";
  throw_value_error(op, arg, want.str(), describe_shape(t));
}

void check_per_row_shape(const char* op, const char* arg, const Tensor& t, int64_t rows,
                         const char* rows_name) {
  const bool ok = (t.ndim() == 1 || (t.ndim() == 2 && t.shape(1) == 1)) && dim(t, 0) == rows;
  if (ok) return;
  throw_value_error(op, arg,
                    std::string("have shape [") + rows_name + "] or [" + rows_name + ", 1] with " +
                        rows_name + " = " + std::to_string(rows),
                    describe_shape(t));
}

int check_cuda_tensors(const char* op, const std::vector<NamedTensor>& args) {
  int device = -1;
  const char* device_arg = nullptr;
  for (const NamedTensor& a : args) {
    const Tensor& t = *a.tensor;
    if (t.device_type() != nb::device::cuda::value) {
      throw_value_error(op, a.name, "be a CUDA tensor",
                        std::string("a ") + device_name(t.device_type()) + " tensor");
    }
    if (!is_row_major_contiguous(t)) {
      throw_value_error(op, a.name, "be contiguous (row-major)",
                        "a strided view of shape " + describe_shape(t));
    }
    if (device < 0) {
      device = t.device_id();
      device_arg = a.name;
    } else if (t.device_id() != device) {
      throw_value_error(op, a.name,
                        "be on the same GPU as '" + std::string(device_arg) + "' (cuda:" +
                            std::to_string(device) + ")",
                        "cuda:" + std::to_string(t.device_id()));
    }
  }
  return device;
}

DeviceGuard::DeviceGuard(const char* op, int device) : device_(device) {
  cudaError_t status = cudaGetDevice(&previous_);
  if (status == cudaSuccess && previous_ != device_) status = cudaSetDevice(device_);
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(op) + ": cannot make cuda:" + std::to_string(device_) +
                             " current: " + cudaGetErrorString(status));
  }
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0 && previous_ != device_) cudaSetDevice(previous_);
}

void check_launch(const char* op, cudaError_t status) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(op) + ": kernel launch failed: " +
                             cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
  }
}

namespace detail {
namespace {

const char* value_kind_name(int32_t kind) {
  switch (kind) {
    case FDOPS_VALUE_NONE: return "None";
    case FDOPS_VALUE_TENSOR: return "a tensor";
    case FDOPS_VALUE_INT: return "an int";
    case FDOPS_VALUE_FLOAT: return "a float";
    case FDOPS_VALUE_BOOL: return "a bool";
  }
  return "an unknown kind of value";
}

// The module's entry points, in definition order; `entries` point into `ops`.
struct OpEntries {
  std::vector<std::unique_ptr<OpEntry>> ops;
  std::vector<fdops_op_entry> entries;
  fdops_op_entries table{FDOPS_OP_ENTRIES_ABI, 0, nullptr};
};

OpEntries& op_entries() {
  static OpEntries* entries = new OpEntries();  // never destroyed: callers may run until exit
  return *entries;
}

fdops_status status_of(const nb::builtin_exception& e) {
  switch (e.type()) {
    case nb::exception_type::type_error: return FDOPS_TYPE_ERROR;
    case nb::exception_type::value_error: return FDOPS_VALUE_ERROR;
    default: return FDOPS_RUNTIME_ERROR;
  }
}

int32_t fail(fdops_status status, const char* what, char* message, size_t message_size) {
  if (message_size > 0) {
    std::strncpy(message, what, message_size - 1);
    message[message_size - 1] = '\0';
  }
  return status;
}

int32_t call_op_entry(const void* op, const fdops_value* args, int32_t nargs, uintptr_t stream,
                      char* message, size_t message_size) noexcept {
  try {
    static_cast<const OpEntry*>(op)->call(args, nargs, stream);
    return FDOPS_OK;
  } catch (const nb::builtin_exception& e) {
    return fail(status_of(e), e.what(), message, message_size);
  } catch (const std::exception& e) {
    return fail(FDOPS_RUNTIME_ERROR, e.what(), message, message_size);
  } catch (...) {
    return fail(FDOPS_RUNTIME_ERROR, "unknown C++ exception", message, message_size);
  }
}

}  // namespace

void throw_bad_entry_argument(const char* op, int32_t index, const char* expected, int32_t kind) {
  throw nb::type_error((std::string(op) + ": argument #" + std::to_string(index + 1) +
                        " of the kernel function must be " + expected + ", got " +
                        value_kind_name(kind))
                           .c_str());
}

void throw_entry_int_range(const char* op, int32_t index, int64_t value) {
  throw nb::value_error((std::string(op) + ": argument #" + std::to_string(index + 1) +
                         " of the kernel function must be a 32-bit int, got " +
                         std::to_string(value))
                            .c_str());
}

void add_op_entry(const char* name, std::unique_ptr<OpEntry> entry) {
  OpEntries& all = op_entries();
  all.entries.push_back({name, entry.get(), &call_op_entry});
  all.ops.push_back(std::move(entry));
  all.table.count = static_cast<uint32_t>(all.entries.size());
  all.table.entries = all.entries.data();
}

}  // namespace detail

void bind_op_entries(nb::module_& m) {
  m.attr("_op_entries") = nb::capsule(&detail::op_entries().table, FDOPS_OP_ENTRIES_CAPSULE);
}

}  // namespace fdops::binding
