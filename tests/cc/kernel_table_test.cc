// Checks of ops/common/kernel_table.h: which changes of a family's list change its ABI number,
// and that FDOPS_DEFINE_KERNEL_TABLE fills each field with the function its entry names.
#include <cstdint>
#include <cstdio>

#include "ops/common/kernel_table.h"

struct CUstream_st;  // incomplete, as cudaStream_t's is
using Stream = CUstream_st*;

namespace fdops::abi_demo {

struct Params {
  const void* input;
  int64_t n;
};
struct WiderParams {
  const void* input;
  int64_t n;
  float scale;
};

int launch_a(const Params&, Stream) { return 1; }
int launch_b(const Params&, Stream) { return 2; }
int launch_wider(const WiderParams&, Stream) { return 3; }
int launch_int(const void*, int32_t, Stream) { return 4; }
int launch_float(const void*, float, Stream) { return 5; }
int launch_unsigned(const void*, uint32_t, Stream) { return 6; }
int launch_pointer(const Params*, Stream) { return 7; }
int launch_two(const Params&, int32_t, Stream) { return 8; }

#define DEMO_KERNELS(X) X(a, launch_a) X(b, launch_b)
FDOPS_KERNEL_TABLE(DEMO_KERNELS)

// The same entries in the other order: another table layout, so another ABI number (and a
// definition from it would not compile).
#define DEMO_KERNELS_REORDERED(X) X(b, launch_b) X(a, launch_a)

constexpr uint32_t abi_a = FDOPS_KERNEL_LIST_ABI_(DEMO_KERNELS);
#define SWAPPED_NAMES(X) X(b, launch_a) X(a, launch_b)
#define RENAMED(X) X(a, launch_a) X(c, launch_b)
#define WIDER_STRUCT(X) X(a, launch_wider) X(b, launch_b)
#define EXTRA_PARAMETER(X) X(a, launch_two) X(b, launch_b)
#define POINTER_NOT_REFERENCE(X) X(a, launch_pointer) X(b, launch_b)
#define ONE_LESS(X) X(a, launch_a)
#define INT_ARG(X) X(x, launch_int)
#define FLOAT_ARG(X) X(x, launch_float)
#define UNSIGNED_ARG(X) X(x, launch_unsigned)

// Field names are in order, so a list naming the same two functions in the other order (the
// swap of two same-signature launchers) is a different table, not the same one filled wrongly.
static_assert(FDOPS_KERNEL_LIST_ABI_(SWAPPED_NAMES) != abi_a);
static_assert(FDOPS_KERNEL_LIST_ABI_(RENAMED) != abi_a);
static_assert(FDOPS_KERNEL_LIST_ABI_(WIDER_STRUCT) != abi_a);
static_assert(FDOPS_KERNEL_LIST_ABI_(EXTRA_PARAMETER) != abi_a);
static_assert(FDOPS_KERNEL_LIST_ABI_(POINTER_NOT_REFERENCE) != abi_a);
static_assert(FDOPS_KERNEL_LIST_ABI_(ONE_LESS) != abi_a);
static_assert(FDOPS_KERNEL_LIST_ABI_(DEMO_KERNELS_REORDERED) != abi_a);
static_assert(FDOPS_KERNEL_LIST_ABI_(INT_ARG) != FDOPS_KERNEL_LIST_ABI_(FLOAT_ARG));
static_assert(FDOPS_KERNEL_LIST_ABI_(INT_ARG) != FDOPS_KERNEL_LIST_ABI_(UNSIGNED_ARG));
static_assert(KernelTable::kAbi == abi_a);

}  // namespace fdops::abi_demo

FDOPS_DEFINE_KERNEL_TABLE(abi_demo, DEMO_KERNELS)

// The symbol as a module finds it (by its C name, as dlsym does).
extern "C" const void* fdops_kernel_table_abi_demo(uint32_t abi);

int main() {
  using fdops::abi_demo::KernelTable;
  if (fdops_kernel_table_abi_demo(KernelTable::kAbi + 1) != nullptr) {
    std::puts("FAIL: a table was returned for another ABI number");
    return 1;
  }
  const auto* table =
      static_cast<const KernelTable*>(fdops_kernel_table_abi_demo(KernelTable::kAbi));
  if (table == nullptr || table->a({}, nullptr) != 1 || table->b({}, nullptr) != 2) {
    std::puts("FAIL: the table's fields are not the functions of their names");
    return 1;
  }
  std::puts("ok");
  return 0;
}
