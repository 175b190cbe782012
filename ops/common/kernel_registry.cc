#include "ops/common/kernel_registry.h"

#include <dlfcn.h>
#include <nanobind/stl/string.h>

#include <map>
#include <stdexcept>

namespace fdops::kernels {
namespace {

namespace nb = nanobind;

std::map<std::string, FamilySlot*>& registry() {
  static std::map<std::string, FamilySlot*> families;
  return families;
}

FamilySlot& find(const std::string& family) {
  auto it = registry().find(family);
  if (it != registry().end()) return *it->second;
  std::string known;
  for (const auto& [name, slot] : registry()) known += (known.empty() ? "" : ", ") + name;
  throw nb::value_error(
      ("_load_kernel_library: unknown family '" + family + "' (this module has: " + known + ")")
          .c_str());
}

// dlopen()s `path` (kept open for the life of the process) and returns its table function.
TableFunction open_library(const std::string& family, const std::string& path) {
  // RTLD_LOCAL: the library's cudart and kernels never interpose on this module's or another's.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = dlerror();
    throw std::runtime_error("_load_kernel_library: cannot load " + path + ": " +
                             (error ? error : "unknown dlopen error"));
  }
  const std::string symbol = "fdops_kernel_table_" + family;
  void* fn = dlsym(handle, symbol.c_str());
  if (fn == nullptr) {
    throw std::runtime_error("_load_kernel_library: " + path + " does not define " + symbol +
                             " (not a kernel library of family '" + family + "')");
  }
  return reinterpret_cast<TableFunction>(fn);
}

void load_kernel_library(const std::string& family, const std::string& path, bool replace) {
  FamilySlot& slot = find(family);
  const std::string current = slot.origin();
  if (!current.empty() && !replace) {
    throw std::runtime_error("_load_kernel_library: family '" + family + "' already has kernels (" +
                             current + "); pass replace=True to use " + path + " instead");
  }
  slot.install(open_library(family, path), path);
}

nb::dict kernel_families() {
  nb::dict out;
  for (const auto& [name, slot] : registry()) out[name.c_str()] = slot->origin();
  return out;
}

}  // namespace

FamilySlot::FamilySlot(const char* name, uint32_t abi) : name_(name), abi_(abi) {
  registry().emplace(name, this);
}

std::string FamilySlot::origin() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return origin_;
}

void FamilySlot::install(TableFunction fn, const std::string& origin) {
  const void* table = fn(abi_);
  if (table == nullptr) {
    throw std::runtime_error("kernel library " + origin + " of family '" + name_ +
                             "' was built for another kernel ABI than this module's (" +
                             std::to_string(abi_) + "): rebuild it from this package's sources");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  table_.store(table, std::memory_order_release);
  origin_ = origin;
}

void FamilySlot::throw_missing(const char* op) const {
  throw std::runtime_error(std::string(op) + ": this module has no kernels of family '" + name_ +
                           "' (not built for its SM, and none loaded): use fastdeploy_ops." +
                           name_ + " so that they are JIT-compiled for the GPU, or build the "
                           "wheel for the GPU's SM");
}

void install_builtin(const char* family, TableFunction fn) { find(family).install(fn, "builtin"); }

void bind_loader(nb::module_& m) {
  m.def("_load_kernel_library", &load_kernel_library, nb::arg("family"), nb::arg("path"),
        nb::arg("replace") = false,
        "Load a kernel library built by fastdeploy_ops.jit and make it the family's kernels.");
  m.def("_kernel_families", &kernel_families,
        "{family: origin of its kernels}: 'builtin', a library path, or '' when absent.");
}

}  // namespace fdops::kernels
