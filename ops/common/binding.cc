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
    // Managed memory is the GPU's to read and write too (CuPy labels arrays in it so).
    if (t.device_type() != nb::device::cuda::value &&
        t.device_type() != nb::device::cuda_managed::value) {
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

namespace {

// A new reference, released at the end of the scope.
class Owned {
 public:
  explicit Owned(PyObject* object) : object_(object) {}
  ~Owned() { Py_XDECREF(object_); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  PyObject* get() const { return object_; }
  explicit operator bool() const { return object_ != nullptr; }

 private:
  PyObject* object_;
};

PyObject* interned(const char* name) { return PyUnicode_InternFromString(name); }

// An attribute of `object`, or null with no Python error set.
PyObject* attribute(PyObject* object, PyObject* name) {
  PyObject* value = PyObject_GetAttr(object, name);
  if (value == nullptr) PyErr_Clear();
  return value;
}

bool as_int64(PyObject* value, int64_t* out) {
  if (value == nullptr) return false;
  const long long v = PyLong_AsLongLong(value);
  if (v == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    return false;
  }
  *out = v;
  return true;
}

// cupy.ndarray, once the process has imported CuPy (kept for the process), else null.
PyTypeObject* cupy_ndarray_type() {
  static PyObject* type = nullptr;
  if (type != nullptr) return reinterpret_cast<PyTypeObject*>(type);
  PyObject* cupy = PyDict_GetItemString(PyImport_GetModuleDict(), "cupy");  // borrowed
  if (cupy == nullptr) return nullptr;
  PyObject* ndarray = PyObject_GetAttrString(cupy, "ndarray");
  if (ndarray == nullptr) {
    PyErr_Clear();  // CuPy is still being imported: asked again next time
    return nullptr;
  }
  if (!PyType_Check(ndarray)) {
    Py_DECREF(ndarray);
    return nullptr;
  }
  type = ndarray;
  return reinterpret_cast<PyTypeObject*>(type);
}

struct ArrayDtype {
  uint8_t code;
  uint8_t bits;
  int64_t itemsize;
};

// Whether a numpy dtype of kind V is ml_dtypes' bfloat16.
bool is_bfloat16(PyObject* dtype, int64_t itemsize) {
  static PyObject* const kName = interned("name");
  const Owned name(attribute(dtype, kName));
  if (itemsize != 2 || !name || !PyUnicode_Check(name.get())) return false;
  return PyUnicode_CompareWithASCIIString(name.get(), "bfloat16") == 0;
}

// DLPack's code and bits of a numpy dtype of native byte order and kind b, i, u or f, or of
// bfloat16; false for any other. The dtypes seen are remembered by identity (CuPy hands out
// numpy's canonical dtype instances; each is kept alive by the cache so that its address stays
// its own).
bool array_dtype(PyObject* dtype, ArrayDtype* out) {
  struct Known {
    PyObject* dtype;
    ArrayDtype value;
  };
  static Known known[16];
  static int count = 0;
  for (int i = 0; i < count; ++i) {
    if (known[i].dtype == dtype) {
      *out = known[i].value;
      return true;
    }
  }
  static PyObject* const kKind = interned("kind");
  static PyObject* const kItemsize = interned("itemsize");
  static PyObject* const kIsNative = interned("isnative");
  const Owned kind(attribute(dtype, kKind));
  const Owned isnative(attribute(dtype, kIsNative));
  int64_t itemsize = 0;
  const Owned itemsize_value(attribute(dtype, kItemsize));
  if (!kind || !PyUnicode_Check(kind.get()) || isnative.get() != Py_True ||
      !as_int64(itemsize_value.get(), &itemsize) || itemsize < 1 || itemsize > 8) {
    return false;
  }
  Py_ssize_t length = 0;
  const char* letter = PyUnicode_AsUTF8AndSize(kind.get(), &length);
  if (letter == nullptr || length != 1) {
    PyErr_Clear();
    return false;
  }
  nb::dlpack::dtype_code code;
  switch (letter[0]) {
    case 'b': code = nb::dlpack::dtype_code::Bool; break;
    case 'i': code = nb::dlpack::dtype_code::Int; break;
    case 'u': code = nb::dlpack::dtype_code::UInt; break;
    case 'f': code = nb::dlpack::dtype_code::Float; break;
    case 'V':  // CuPy's bfloat16 is ml_dtypes' numpy dtype, of kind V
      if (!is_bfloat16(dtype, itemsize)) return false;
      code = nb::dlpack::dtype_code::Bfloat;
      break;
    default: return false;  // complex and others: DLPack knows them
  }
  *out = {static_cast<uint8_t>(code), static_cast<uint8_t>(8 * itemsize), itemsize};
  if (count < static_cast<int>(sizeof(known) / sizeof(known[0]))) {
    Py_INCREF(dtype);
    known[count++] = {dtype, *out};
  }
  return true;
}

}  // namespace

bool CupyArray::read(PyObject* src) noexcept {
  PyTypeObject* ndarray = cupy_ndarray_type();
  if (ndarray == nullptr || Py_TYPE(src) != ndarray) return false;
  static PyObject* const kData = interned("data");
  static PyObject* const kPtr = interned("ptr");
  static PyObject* const kDeviceId = interned("device_id");
  static PyObject* const kDtype = interned("dtype");

  const Owned dtype(attribute(src, kDtype));
  ArrayDtype element{};
  if (!dtype || !array_dtype(dtype.get(), &element)) return false;
  const Owned data(attribute(src, kData));
  if (!data) return false;
  const Owned ptr(attribute(data.get(), kPtr));
  const Owned device_id(attribute(data.get(), kDeviceId));
  int64_t address = 0, device = 0;
  if (!as_int64(ptr.get(), &address) || !as_int64(device_id.get(), &device)) return false;
  const int ndim = read_layout(src, element.itemsize);
  if (ndim < 0) return false;
  tensor_ = fdops_tensor{reinterpret_cast<void*>(static_cast<intptr_t>(address)),
                         shape_,
                         strides_,
                         ndim,
                         nb::device::cuda::value,
                         static_cast<int32_t>(device),
                         element.code,
                         element.bits,
                         1};
  return true;
}

int CupyArray::read_layout(PyObject* src, int64_t itemsize) noexcept {
  // A C-contiguous array (CuPy keeps the flag) needs only its extents, which the cdef field
  // `_shape` gives as one list: `shape` and `strides` each build a list and then a tuple from
  // it (read from Python on an H100 host: 0.47 of the 0.74 µs all attributes took; `_shape`
  // and the flag 0.30). Where those fields are missing (another CuPy release) or the array is
  // strided, the public attributes are read.
  static PyObject* const kCContiguous = interned("_c_contiguous");
  static PyObject* const kExtents = interned("_shape");
  static PyObject* const kShape = interned("shape");
  static PyObject* const kStrides = interned("strides");
  const Owned c_contiguous(attribute(src, kCContiguous));
  if (c_contiguous.get() == Py_True) {
    const Owned extents(attribute(src, kExtents));
    if (extents && PyList_Check(extents.get())) {
      const Py_ssize_t ndim = PyList_Size(extents.get());
      if (ndim > kMaxDims) return -1;
      for (Py_ssize_t i = 0; i < ndim; ++i) {
        if (!as_int64(PyList_GetItem(extents.get(), i), &shape_[i])) return -1;
      }
      int64_t stride = 1;
      for (Py_ssize_t i = ndim - 1; i >= 0; --i) {
        strides_[i] = stride;
        stride *= shape_[i];
      }
      return static_cast<int>(ndim);
    }
  }
  const Owned shape(attribute(src, kShape));
  const Owned strides(attribute(src, kStrides));
  if (!shape || !strides || !PyTuple_Check(shape.get()) || !PyTuple_Check(strides.get())) {
    return -1;
  }
  const Py_ssize_t ndim = PyTuple_Size(shape.get());
  if (ndim > kMaxDims || PyTuple_Size(strides.get()) != ndim) return -1;
  for (Py_ssize_t i = 0; i < ndim; ++i) {
    int64_t stride_bytes = 0;
    if (!as_int64(PyTuple_GetItem(shape.get(), i), &shape_[i]) ||
        !as_int64(PyTuple_GetItem(strides.get(), i), &stride_bytes) ||
        stride_bytes % itemsize != 0) {
      return -1;
    }
    strides_[i] = stride_bytes / itemsize;
  }
  return static_cast<int>(ndim);
}

}  // namespace fdops::binding
