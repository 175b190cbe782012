// Kernel tables: the plain-C boundary between a family's bindings and its kernels.
//
// Each family header declares `struct KernelTable` (one function pointer per launch function,
// typed with decltype, plus `static constexpr uint32_t kAbi`), and the family's kernel library
// defines its table once with FDOPS_DEFINE_KERNEL_TABLE. Only plain types (pointers, integers,
// floats, enums, structs of those, cudaStream_t) cross the boundary, so a kernel library built
// later by another nvcc (the JIT compiler, fastdeploy_ops.jit) plugs into a module built by ours.
// Bump a family's kAbi whenever a launch signature or a struct passed to one changes.
#pragma once

#include <cstdint>

// Defines `extern "C" const void* fdops_kernel_table_<family>(uint32_t abi)`: the table of
// fdops::<family>::KernelTable holding the given launch functions (in field order) when `abi`
// is the one this library was built with, nullptr otherwise.
#define FDOPS_DEFINE_KERNEL_TABLE(family, ...)                                                 \
  extern "C" __attribute__((visibility("default"))) const void* fdops_kernel_table_##family( \
      uint32_t abi) {                                                                          \
    static const ::fdops::family::KernelTable table{__VA_ARGS__};                              \
    return abi == ::fdops::family::KernelTable::kAbi ? &table : nullptr;                       \
  }
