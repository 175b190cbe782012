// Argument validation shared by every family's nanobind binding, and the one way a family
// defines a kernel function (binding::def): as a Python binding and as a C entry point
// (ops/common/op_entry.h) that runs the same code for the torch operators.
//
// Tensors arrive as TensorView, a borrowed view of any DLPack producer's tensor (PyTorch,
// PaddlePaddle, CuPy, JAX, NumPy) or of a torch operator's argument. From Python, nanobind
// imports them as unconstrained nb::ndarray<>: with no dtype or device constraint it never
// converts, so an output or in-place argument is always the caller's own buffer. Every check
// throws before any launch, with a message naming the op, the argument, what was expected and
// what was given.
#pragma once

#include <cuda_runtime_api.h>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ops/common/dtype.h"
#include "ops/common/op_entry.h"

namespace fdops::binding {

namespace nb = nanobind;

// A tensor argument, borrowed for the duration of one call (nb::ndarray<>'s accessors).
class TensorView {
 public:
  explicit TensorView(const fdops_tensor& t) : t_(t) {}

  void* data() const { return t_.data; }
  size_t ndim() const { return static_cast<size_t>(t_.ndim); }
  size_t shape(size_t i) const { return static_cast<size_t>(t_.shape[i]); }
  int64_t stride(size_t i) const { return t_.strides[i]; }
  size_t size() const {
    size_t n = 1;
    for (int32_t i = 0; i < t_.ndim; ++i) n *= static_cast<size_t>(t_.shape[i]);
    return n;
  }
  nb::dlpack::dtype dtype() const { return {t_.dtype_code, t_.dtype_bits, t_.dtype_lanes}; }
  size_t nbytes() const { return (size() * t_.dtype_bits * t_.dtype_lanes + 7) / 8; }
  int32_t device_type() const { return t_.device_type; }
  int32_t device_id() const { return t_.device_id; }

 private:
  fdops_tensor t_;
};

using Tensor = TensorView;

const char* dtype_name(DType dtype);
std::string describe_dtype(const Tensor& t);
std::string describe_shape(const Tensor& t);

[[noreturn]] void throw_type_error(const char* op, const char* arg, const std::string& expected,
                                   const std::string& given);
[[noreturn]] void throw_value_error(const char* op, const char* arg, const std::string& expected,
                                    const std::string& given);

// The tensor's dtype if it is one of `allowed`; TypeError otherwise.
DType check_dtype(const char* op, const char* arg, const Tensor& t,
                  std::initializer_list<DType> allowed);

// The tensor has exactly `dtype`, the dtype of argument `like`; TypeError otherwise.
void check_dtype_is(const char* op, const char* arg, const Tensor& t, DType dtype,
                    const char* like);

// The tensor's rank is one of `ranks`; ValueError otherwise.
void check_rank(const char* op, const char* arg, const Tensor& t,
                std::initializer_list<size_t> ranks);

// The tensor has exactly `shape`; `names` spells the dimensions in the message ("[T, K]").
void check_shape(const char* op, const char* arg, const Tensor& t,
                 const std::vector<int64_t>& shape, const char* names);

// A per-row tensor: shape [rows] or [rows, 1] (FastDeploy passes [rows, 1]); `rows_name` spells
// the row count in the message ("bs", "B", ...).
void check_per_row_shape(const char* op, const char* arg, const Tensor& t, int64_t rows,
                         const char* rows_name);

// Raises ValueError "<op>: argument '<arg>' must <expected>, got <given>" unless `ok`. A macro,
// so that the message (often built with std::to_string) is only built when the check fails:
// these checks run on every call.
#define FDOPS_CHECK_ARG(ok, op, arg, expected, given)                                 \
  do {                                                                                \
    if (!(ok)) ::fdops::binding::throw_value_error((op), (arg), (expected), (given)); \
  } while (0)

// Every tensor is a CUDA tensor, row-major contiguous, and all are on one GPU, which is returned.
// `args` pairs each argument's name with its tensor.
struct NamedTensor {
  const char* name;
  const Tensor* tensor;
};
int check_cuda_tensors(const char* op, const std::vector<NamedTensor>& args);

// Makes `device` current for the lifetime of the guard (kernels launch on the tensors' GPU).
class DeviceGuard {
 public:
  DeviceGuard(const char* op, int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  int device_ = -1;
};

// Raises RuntimeError naming the op if a launch returned an error.
void check_launch(const char* op, cudaError_t status);

// The floating-point dtypes most ops accept.
inline constexpr std::initializer_list<DType> kFloatTypes = {DType::kFloat32, DType::kFloat16,
                                                            DType::kBFloat16};

inline cudaStream_t as_stream(std::uintptr_t handle) {
  return reinterpret_cast<cudaStream_t>(handle);
}

inline int64_t dim(const Tensor& t, size_t i) { return static_cast<int64_t>(t.shape(i)); }

// ---- Kernel functions: one C++ function, defined as a Python binding and a C entry point ----

namespace detail {

// Runs one kernel function on C values (fdops_value) instead of Python objects.
class OpEntry {
 public:
  virtual ~OpEntry() = default;
  virtual void call(const fdops_value* args, int32_t nargs, std::uintptr_t stream) const = 0;
};

// A C value of the wrong kind for its parameter (a schema that does not match the binding).
[[noreturn]] void throw_bad_entry_argument(const char* op, int32_t index, const char* expected,
                                           int32_t kind);
// An int argument beyond what its parameter holds.
[[noreturn]] void throw_entry_int_range(const char* op, int32_t index, int64_t value);

// One parameter of a kernel function from its C value.
template <typename T>
struct EntryArgument;

template <>
struct EntryArgument<TensorView> {
  static TensorView get(const char* op, int32_t i, const fdops_value& v) {
    if (v.kind != FDOPS_VALUE_TENSOR) throw_bad_entry_argument(op, i, "a tensor", v.kind);
    return TensorView(v.as.tensor);
  }
};
template <>
struct EntryArgument<std::optional<TensorView>> {
  static std::optional<TensorView> get(const char* op, int32_t i, const fdops_value& v) {
    if (v.kind == FDOPS_VALUE_NONE) return std::nullopt;
    return EntryArgument<TensorView>::get(op, i, v);
  }
};
template <>
struct EntryArgument<int64_t> {
  static int64_t get(const char* op, int32_t i, const fdops_value& v) {
    if (v.kind != FDOPS_VALUE_INT) throw_bad_entry_argument(op, i, "an int", v.kind);
    return v.as.integer;
  }
};
template <>
struct EntryArgument<int> {
  static int get(const char* op, int32_t i, const fdops_value& v) {
    const int64_t value = EntryArgument<int64_t>::get(op, i, v);
    if (value < INT32_MIN || value > INT32_MAX) throw_entry_int_range(op, i, value);
    return static_cast<int>(value);
  }
};
template <>
struct EntryArgument<double> {
  static double get(const char* op, int32_t i, const fdops_value& v) {
    if (v.kind == FDOPS_VALUE_INT) return static_cast<double>(v.as.integer);
    if (v.kind != FDOPS_VALUE_FLOAT) throw_bad_entry_argument(op, i, "a float", v.kind);
    return v.as.real;
  }
};
template <>
struct EntryArgument<float> {
  static float get(const char* op, int32_t i, const fdops_value& v) {
    return static_cast<float>(EntryArgument<double>::get(op, i, v));
  }
};
template <>
struct EntryArgument<bool> {
  static bool get(const char* op, int32_t i, const fdops_value& v) {
    if (v.kind != FDOPS_VALUE_BOOL) throw_bad_entry_argument(op, i, "a bool", v.kind);
    return v.as.boolean != 0;
  }
};

// The parameter types of a function pointer or of a lambda's call operator.
template <typename F>
struct Parameters : Parameters<decltype(&F::operator())> {};
template <typename R, typename... A>
struct Parameters<R (*)(A...)> {
  using type = std::tuple<A...>;
};
template <typename R, typename C, typename... A>
struct Parameters<R (C::*)(A...) const> {
  using type = std::tuple<A...>;
};

template <typename F, typename Tuple>
class BoundOpEntry;

// A kernel function whose last parameter is the stream (std::uintptr_t).
template <typename F, typename... A>
class BoundOpEntry<F, std::tuple<A...>> final : public OpEntry {
  static_assert(sizeof...(A) >= 1, "a kernel function takes the stream last");
  using Stream = std::decay_t<std::tuple_element_t<sizeof...(A) - 1, std::tuple<A...>>>;
  static_assert(std::is_same_v<Stream, std::uintptr_t>,
                "a kernel function's last parameter is the stream (std::uintptr_t)");
  static constexpr int32_t kArguments = static_cast<int32_t>(sizeof...(A)) - 1;

 public:
  BoundOpEntry(const char* name, F fn) : name_(name), fn_(std::move(fn)) {}

  void call(const fdops_value* args, int32_t nargs, std::uintptr_t stream) const override {
    if (nargs != kArguments) {
      throw std::runtime_error(std::string(name_) + ": the operator passed " +
                               std::to_string(nargs) + " arguments, the kernel function takes " +
                               std::to_string(kArguments) + " besides the stream");
    }
    call(args, stream, std::make_index_sequence<sizeof...(A) - 1>());
  }

 private:
  template <size_t... I>
  void call(const fdops_value* args, std::uintptr_t stream, std::index_sequence<I...>) const {
    fn_(EntryArgument<std::decay_t<std::tuple_element_t<I, std::tuple<A...>>>>::get(
            name_, static_cast<int32_t>(I), args[I])...,
        stream);
  }

  const char* name_;
  F fn_;
};

// Adds `entry` to this module's C entry points (see bind_op_entries).
void add_op_entry(const char* name, std::unique_ptr<OpEntry> entry);

}  // namespace detail

// Defines kernel function `name` (one that takes the stream last): `m.def(name, fn, extra...)`,
// and the same function as this module's C entry point `name` (ops/common/op_entry.h).
template <typename F, typename... Extra>
void def(nb::module_& m, const char* name, F fn, const Extra&... extra) {
  using Function = std::decay_t<F>;
  using Entry = detail::BoundOpEntry<Function, typename detail::Parameters<Function>::type>;
  detail::add_op_entry(name, std::make_unique<Entry>(name, fn));
  m.def(name, std::move(fn), extra...);
}

// Exports the module's C entry points as the capsule `_op_entries` (FDOPS_OP_ENTRIES_CAPSULE).
void bind_op_entries(nb::module_& m);

// A cupy.ndarray read through its attributes (data.ptr, data.device_id, dtype, and the extents
// and flag of a C-contiguous array, else shape and strides) rather than DLPack. CuPy's
// __dlpack__ asks the driver what kind of memory the pointer is and allocates a tensor and
// capsule that nanobind then imports and frees, and with a current stream other than the
// default one it records an event and makes the legacy stream wait on it, per array: ordering
// that our launch on the caller's current stream does not need. (On an H100 host the export
// alone took 0.3 µs, as long as reading the public attributes.)
class CupyArray {
 public:
  // Whether `src` is a cupy.ndarray (the exact type; subclasses go through DLPack) that this
  // view could read: native byte order, a bool/int/uint/float/bfloat16 dtype, at most kMaxDims
  // dimensions, strides a multiple of the item size. Anything else is false with no Python
  // error set, and the caller imports it through DLPack. CuPy is never imported from here.
  bool read(PyObject* src) noexcept;
  const fdops_tensor& tensor() const { return tensor_; }

 private:
  static constexpr int kMaxDims = 8;
  // Fills shape_ and strides_ (in elements); the number of dimensions, or -1 if unreadable.
  int read_layout(PyObject* src, int64_t itemsize) noexcept;

  int64_t shape_[kMaxDims] = {};
  int64_t strides_[kMaxDims] = {};
  fdops_tensor tensor_{};
};

}  // namespace fdops::binding

// nanobind argument conversion: a CuPy array (binding::CupyArray), or any other DLPack producer
// (or capsule), to a TensorView. The caster holds what it read (the CuPy array's shape and
// strides, or the imported nb::ndarray<>) for the call, so the view stays valid.
namespace nanobind::detail {

// What nanobind asks of an argument caster that hands its value out by reference.
template <typename V>
struct reference_caster {
  using Value = V;
  template <typename T>
  using Cast = V&;
  template <typename T>
  static constexpr bool can_cast() {
    return true;
  }
};

template <>
struct type_caster<fdops::binding::TensorView>
    : reference_caster<fdops::binding::TensorView> {
  using Array = make_caster<ndarray<>>;
  static constexpr auto Name = Array::Name;

  bool from_python(handle src, uint32_t flags, cleanup_list* cleanup) noexcept {
    if (cupy.read(src.ptr())) {
      view.emplace(cupy.tensor());
      return true;
    }
    if (!array.from_python(src, flags, cleanup)) return false;
    const ndarray<>& a = array.value;
    const dlpack::dtype dt = a.dtype();
    view.emplace(fdops_tensor{a.data(), a.shape_ptr(), a.stride_ptr(),
                              static_cast<int32_t>(a.ndim()), a.device_type(), a.device_id(),
                              dt.code, dt.bits, dt.lanes});
    return true;
  }
  explicit operator Value&() { return *view; }

  fdops::binding::CupyArray cupy;
  Array array;
  std::optional<Value> view;
};

// Optional tensors hold their ndarray for the call too (nanobind's own optional caster converts
// through a temporary caster, which would release it before the call).
template <>
struct type_caster<std::optional<fdops::binding::TensorView>>
    : reference_caster<std::optional<fdops::binding::TensorView>> {
  using Inner = type_caster<fdops::binding::TensorView>;
  static constexpr auto Name = optional_name(Inner::Name);

  bool from_python(handle src, uint32_t flags, cleanup_list* cleanup) noexcept {
    if (src.is_none()) {
      value.reset();
      return true;
    }
    if (!inner.from_python(src, flags, cleanup)) return false;
    value = *inner.view;
    return true;
  }
  explicit operator Value&() { return value; }

  Inner inner;
  Value value;
};

}  // namespace nanobind::detail
