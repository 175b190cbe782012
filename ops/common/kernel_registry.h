// Which kernels each family's bindings launch: the tables linked into this module ahead of
// time, or ones loaded at run time from a JIT-compiled kernel library (fastdeploy_ops.jit).
//
// Every module registers every family's bindings; a family whose kernels are absent (min_sm
// above the module's SM) has no table until one is loaded, and its ops raise a clear error.
// Families are keyed by name; a specialised kernel set (for example one attention head dim)
// can later be its own entry, keyed "<family>/<specialisation>".
#pragma once

#include <nanobind/nanobind.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace fdops::kernels {

// `fdops_kernel_table_<family>` (see kernel_table.h).
using TableFunction = const void* (*)(uint32_t abi);

// The kernels of one family as its bindings see them; registers itself by name on construction
// (bindings define one per family at namespace scope).
class FamilySlot {
 public:
  FamilySlot(const char* name, uint32_t abi);
  FamilySlot(const FamilySlot&) = delete;
  FamilySlot& operator=(const FamilySlot&) = delete;

  const char* name() const { return name_; }
  uint32_t abi() const { return abi_; }
  // "builtin", the path of the loaded library, or "" while no kernels are registered.
  std::string origin() const;
  // Makes `fn`'s table current; throws std::runtime_error naming `origin` if fn rejects the ABI.
  void install(TableFunction fn, const std::string& origin);

 protected:
  // The current table; throws RuntimeError naming `op` and the family when there is none.
  const void* table_for(const char* op) const {
    const void* table = table_.load(std::memory_order_acquire);
    if (table == nullptr) throw_missing(op);
    return table;
  }

 private:
  [[noreturn]] void throw_missing(const char* op) const;

  const char* name_;
  uint32_t abi_;
  std::atomic<const void*> table_{nullptr};
  mutable std::mutex mutex_;  // guards origin_
  std::string origin_;
};

template <typename Table>
class Family : public FamilySlot {
 public:
  explicit Family(const char* name) : FamilySlot(name, Table::kAbi) {}
  const Table& table(const char* op) const { return *static_cast<const Table*>(table_for(op)); }
};

// Called by each module's generated registration for the families whose kernels it links.
void install_builtin(const char* family, TableFunction fn);

// Adds `_load_kernel_library(family, path, replace)` and `_kernel_families()` to the module.
void bind_loader(nanobind::module_& m);

}  // namespace fdops::kernels
