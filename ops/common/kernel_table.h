// Kernel tables: the plain-C boundary between a family's bindings and its kernels.
//
// A family header names its launch functions once, as a list macro of (field, function) pairs:
//
//   #define FDOPS_ACTIVATION_KERNELS(X) X(gelu_tanh, launch_gelu_tanh)
//   FDOPS_KERNEL_TABLE(FDOPS_ACTIVATION_KERNELS)
//
// and the family's kernel library defines the table's one exported symbol with
// FDOPS_DEFINE_KERNEL_TABLE(activation, FDOPS_ACTIVATION_KERNELS). The struct's fields, the
// table's contents (each field set to the function its entry names) and its ABI number all come
// from that list. The ABI number hashes, in list order, each field's name and its function's
// signature: every parameter's kind (pointer, reference, const, integer, signed, floating
// point, enum, class), size and alignment, through pointers. Adding, removing, renaming or
// reordering launchers, or changing a parameter's type or a struct's size changes it; a change
// that keeps every size and kind (two int fields of a struct swapped) does not, and needs a
// renamed field.
//
// Only plain types (pointers, integers, floats, enums, structs of those, cudaStream_t) cross the
// boundary, so a kernel library built later by another nvcc (the JIT compiler,
// fastdeploy_ops.jit) plugs into a module built by ours; the hash uses only what every C++
// compiler of the platform ABI agrees on, since the binding side is compiled by the host compiler
// and the kernel side by nvcc.
#pragma once

#include <cstdint>
#include <type_traits>

namespace fdops::kernel_abi {

inline constexpr uint64_t kFnvOffset = 1469598103934665603ull;
inline constexpr uint64_t kFnvPrime = 1099511628211ull;

constexpr uint64_t mix(uint64_t hash, uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    hash = (hash ^ ((value >> (8 * i)) & 0xffu)) * kFnvPrime;
  }
  return hash;
}

constexpr uint64_t mix(uint64_t hash, const char* text) {
  for (; *text != '\0'; ++text) hash = (hash ^ static_cast<unsigned char>(*text)) * kFnvPrime;
  return mix(hash, uint64_t{0xff});  // a terminator, so "ab","c" differs from "a","bc"
}

template <typename T, typename = void>
struct IsComplete : std::false_type {};
template <typename T>
struct IsComplete<T, std::void_t<decltype(sizeof(T))>> : std::true_type {};

// Kind bits, size and alignment of T; through pointers and references to what they point to.
// Incomplete types (cudaStream_t's CUstream_st) contribute their kind only.
template <typename T>
constexpr uint64_t type_code() {
  uint64_t code = mix(kFnvOffset, uint64_t{std::is_reference_v<T> ? 1u : 0u});
  using U = std::remove_reference_t<T>;
  code = mix(code, uint64_t{std::is_const_v<U> ? 1u : 0u});
  using V = std::remove_cv_t<U>;
  if constexpr (std::is_pointer_v<V>) {
    return mix(mix(code, uint64_t{2}), type_code<std::remove_pointer_t<V>>());
  } else if constexpr (std::is_void_v<V> || !IsComplete<V>::value) {
    return mix(code, uint64_t{std::is_void_v<V> ? 3u : 4u});
  } else {
    const uint64_t kind = (std::is_integral_v<V> ? 1u : 0u) | (std::is_signed_v<V> ? 2u : 0u) |
                          (std::is_floating_point_v<V> ? 4u : 0u) |
                          (std::is_enum_v<V> ? 8u : 0u) | (std::is_class_v<V> ? 16u : 0u);
    return mix(mix(mix(code, kind), uint64_t{sizeof(V)}), uint64_t{alignof(V)});
  }
}

template <typename Function>
struct Signature;
template <typename R, typename... Args>
struct Signature<R (*)(Args...)> {
  static constexpr uint64_t code() {
    uint64_t hash = mix(mix(kFnvOffset, type_code<R>()), uint64_t{sizeof...(Args)});
    ((hash = mix(hash, type_code<Args>())), ...);
    return hash;
  }
};

// One list entry's contribution: its field name and its function's signature.
template <typename Function>
constexpr uint64_t add_entry(uint64_t hash, const char* field) {
  return mix(mix(hash, field), Signature<Function>::code());
}

constexpr uint32_t fold(uint64_t hash) { return static_cast<uint32_t>(hash ^ (hash >> 32)); }

}  // namespace fdops::kernel_abi

#define FDOPS_KERNEL_TABLE_FIELD_(field, function) decltype(&function) field;
#define FDOPS_KERNEL_TABLE_HASH_(field, function) \
  hash = ::fdops::kernel_abi::add_entry<decltype(&function)>(hash, #field);
#define FDOPS_KERNEL_TABLE_ASSIGN_(field, function) table.field = &function;
#define FDOPS_KERNEL_LIST_ABI_(LIST)                   \
  ([] {                                                \
    uint64_t hash = ::fdops::kernel_abi::kFnvOffset;   \
    LIST(FDOPS_KERNEL_TABLE_HASH_)                     \
    return ::fdops::kernel_abi::fold(hash);            \
  }())

// Declares `struct KernelTable` from the family's list macro: one function pointer per entry
// and `kAbi`, derived from the list.
#define FDOPS_KERNEL_TABLE(LIST)                                    \
  struct KernelTable {                                              \
    LIST(FDOPS_KERNEL_TABLE_FIELD_)                                 \
    static constexpr uint32_t kAbi = FDOPS_KERNEL_LIST_ABI_(LIST);  \
  };

// Defines `extern "C" const void* fdops_kernel_table_<family>(uint32_t abi)`, the one symbol the
// bindings (or fastdeploy_ops.jit) look up in a kernel library: fdops::<family>::KernelTable
// with each field set to its entry of LIST (names resolved in namespace fdops::<family>) when
// `abi` is the one this library was built with, nullptr otherwise. LIST is usually the list the
// table was declared from; another list must have the same fields and signatures (checked).
#define FDOPS_DEFINE_KERNEL_TABLE(family, LIST)                                                \
  namespace fdops::family {                                                                    \
  static_assert(FDOPS_KERNEL_LIST_ABI_(LIST) == KernelTable::kAbi,                             \
                #LIST " does not match the fields and signatures of " #family "::KernelTable"); \
  extern "C" __attribute__((visibility("default"))) const void* fdops_kernel_table_##family( \
      uint32_t abi) {                                                                          \
    static const KernelTable table = [] {                                                      \
      KernelTable table{};                                                                     \
      LIST(FDOPS_KERNEL_TABLE_ASSIGN_)                                                         \
      return table;                                                                            \
    }();                                                                                       \
    return abi == KernelTable::kAbi ? &table : nullptr;                                        \
  }                                                                                            \
  }
