// Hopper warpgroup MMA (wgmma.mma_async) and the 128-byte swizzled shared-memory layout its
// operands are read from, for kernels of the SM 9.0 modules.
//
// A warpgroup (4 consecutive warps) multiplies a 64-row A tile by a B tile of N columns, 16 at a
// time along K. Accumulators are fp32 in registers with, per warp, the layout of mma.sync
// m16n8k16's C repeated over N / 8 column tiles (warp w holds rows 16w .. 16w + 15; d[t][e] is
// row lane / 4 + 8 (e / 2), column 8t + 2 (lane % 4) + e % 2), so code written for mma.sync
// fragments (the online softmax) works on them unchanged. A comes from shared memory or, for
// P V, from registers in mma.sync's A layout; B always from shared memory.
//
// Shared-memory operands use the 128-byte swizzle: rows of 128 bytes (64 16-bit elements) in
// 1024-byte atoms of 8 rows, where 16-byte piece i of row r lives at piece i ^ (r % 8), so that
// the 8 rows an instruction phase reads hit different banks. Wider rows are stored as column
// blocks of 64 elements, each `rows` x 128 bytes. Atoms must start on 1024-byte boundaries.
//
// The instructions exist only in sm_90a code. The SM 9.0 modules also carry compute_90 PTX for
// newer GPUs, compiled without them (FDOPS_WGMMA 0), where kernels take their mma.sync path.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FDOPS_WGMMA 1
#else
#define FDOPS_WGMMA 0
#endif

// Modules whose host code plans for wgmma kernels: those built for SM 9.0 alone (each CUDA
// action here compiles one SM).
#if defined(__CUDA_ARCH_LIST__) && __CUDA_ARCH_LIST__ == 900
#define FDOPS_SM90_MODULE 1
#else
#define FDOPS_SM90_MODULE 0
#endif

namespace fdops::wgmma {

// Byte offset of 16-byte piece `piece` of row `row` in a swizzled tile of `rows` rows (a
// multiple of 8).
__host__ __device__ constexpr uint32_t swizzled_offset(int rows, int row, int piece) {
  return static_cast<uint32_t>((piece / 8) * rows * 128 + row * 128 +
                               ((piece % 8) ^ (row % 8)) * 16);
}

// The descriptor of a swizzled operand starting at shared address `address`: `leading_bytes`
// is the distance between atoms along the operand's contiguous dimension when that is M or N
// (a K-major operand ignores it within its 64-element rows), `stride_bytes` the distance
// between consecutive 8-row groups (1024 for a dense tile).
__device__ __forceinline__ uint64_t descriptor(uint32_t address, uint32_t leading_bytes,
                                               uint32_t stride_bytes) {
  return static_cast<uint64_t>((address & 0x3ffffu) >> 4) |
         static_cast<uint64_t>(leading_bytes >> 4) << 16 |
         static_cast<uint64_t>(stride_bytes >> 4) << 32 |
         uint64_t{1} << 62;  // 128-byte swizzle
}

#if FDOPS_WGMMA

// Orders register accesses before the next wgmma (required before a batch whose accumulators
// or A registers other instructions touched).
__device__ __forceinline__ void fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
// Waits until at most kPending committed batches of this warpgroup are in flight.
template <int kPending>
__device__ __forceinline__ void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Makes this thread's completed shared-memory writes (stores, cp.async) visible to wgmma,
// which reads through the async proxy; then a barrier before the warpgroups read them.
__device__ __forceinline__ void fence_shared_writes() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// The compiler sees the registers of an in-flight wgmma only at its issue: these empty asm
// statements keep it from touching them (or reusing an input's register) before wait().
template <int kN>
__device__ __forceinline__ void hold(float (&d)[kN][4]) {
#pragma unroll
  for (int t = 0; t < kN; ++t) {
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[t][e])::"memory");
  }
}
__device__ __forceinline__ void hold(uint32_t (&a)[4]) {
#pragma unroll
  for (int i = 0; i < 4; ++i) asm volatile("" : "+r"(a[i])::"memory");
}

// The instructions' operand lists by accumulator count: accumulators d[t][e] (the functions
// below name them d, and their other operands a, b and accumulate), numbered %0 .. %(count - 1).
#define FDOPS_WGMMA_D4(t) "+f"(d[t][0]), "+f"(d[t][1]), "+f"(d[t][2]), "+f"(d[t][3])
#define FDOPS_WGMMA_D32 \
  FDOPS_WGMMA_D4(0), FDOPS_WGMMA_D4(1), FDOPS_WGMMA_D4(2), FDOPS_WGMMA_D4(3), \
      FDOPS_WGMMA_D4(4), FDOPS_WGMMA_D4(5), FDOPS_WGMMA_D4(6), FDOPS_WGMMA_D4(7)
#define FDOPS_WGMMA_D64 \
  FDOPS_WGMMA_D32, FDOPS_WGMMA_D4(8), FDOPS_WGMMA_D4(9), FDOPS_WGMMA_D4(10), FDOPS_WGMMA_D4(11), \
      FDOPS_WGMMA_D4(12), FDOPS_WGMMA_D4(13), FDOPS_WGMMA_D4(14), FDOPS_WGMMA_D4(15)
#define FDOPS_WGMMA_D128 \
  FDOPS_WGMMA_D64, FDOPS_WGMMA_D4(16), FDOPS_WGMMA_D4(17), FDOPS_WGMMA_D4(18), FDOPS_WGMMA_D4(19), \
      FDOPS_WGMMA_D4(20), FDOPS_WGMMA_D4(21), FDOPS_WGMMA_D4(22), FDOPS_WGMMA_D4(23), \
      FDOPS_WGMMA_D4(24), FDOPS_WGMMA_D4(25), FDOPS_WGMMA_D4(26), FDOPS_WGMMA_D4(27), \
      FDOPS_WGMMA_D4(28), FDOPS_WGMMA_D4(29), FDOPS_WGMMA_D4(30), FDOPS_WGMMA_D4(31)
#define FDOPS_WGMMA_R32 \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, " \
  "%12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
  "%24, %25, %26, %27, %28, %29, %30, %31"
#define FDOPS_WGMMA_R64 \
  FDOPS_WGMMA_R32 ", " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, " \
  "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, " \
  "%56, %57, %58, %59, %60, %61, %62, %63"
#define FDOPS_WGMMA_R128 \
  FDOPS_WGMMA_R64 ", " \
  "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, " \
  "%76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, " \
  "%88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, " \
  "%100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
  "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, " \
  "%124, %125, %126, %127"

// d (+)= A B with A and B from shared memory (descriptors %A and %B); %P: accumulate or not.
// REGS: the accumulators' count (N / 2), which names their operand lists above.
#define FDOPS_WGMMA_SS(N, REGS, A, B, P, TYPE)                               \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " P ", 0;\n"               \
               "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE "." TYPE \
               "\n{" FDOPS_WGMMA_R##REGS "}, " A ", " B ", p, 1, 1, 0, 0;\n}\n"  \
               : FDOPS_WGMMA_D##REGS                                         \
               : "l"(a), "l"(b), "r"(static_cast<uint32_t>(accumulate)))
// d += A B with A from registers (A: their four %-numbers) and B MN-major from shared memory
// (descriptor %B).
#define FDOPS_WGMMA_RS(N, REGS, A, B, P, TYPE)                               \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " P ", 0;\n"               \
               "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE "." TYPE \
               "\n{" FDOPS_WGMMA_R##REGS "}, {" A "}, " B ", p, 1, 1, 1;\n}\n"   \
               : FDOPS_WGMMA_D##REGS                                         \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1u))

// INSTRUCTION(args..., TYPE) with TYPE the PTX name of the 16-bit input type M.
#define FDOPS_WGMMA_TYPED(M, INSTRUCTION, ...)       \
  if constexpr (std::is_same_v<M, __nv_bfloat16>) { \
    INSTRUCTION(__VA_ARGS__, "bf16");                 \
  } else {                                            \
    INSTRUCTION(__VA_ARGS__, "f16");                  \
  }

// d (+)= A B, A (64 x 16) and B (16 x N, K-major) from shared memory; `accumulate` false
// overwrites d.
template <typename M, int N>
__device__ __forceinline__ void mma_ss(float (&d)[N / 8][4], uint64_t a, uint64_t b,
                                       bool accumulate) {
  static_assert(N == 64 || N == 128, "S tiles of 64 or 128 tokens");
  if constexpr (N == 64) {
    FDOPS_WGMMA_TYPED(M, FDOPS_WGMMA_SS, 64, 32, "%32", "%33", "%34")
  } else {
    FDOPS_WGMMA_TYPED(M, FDOPS_WGMMA_SS, 128, 64, "%64", "%65", "%66")
  }
}

// d += A B, A (64 x 16) from registers in mma.sync's A layout, B (16 x N) from shared memory
// with N contiguous (MN-major, read transposed).
template <typename M, int N>
__device__ __forceinline__ void mma_rs_mn_major(float (&d)[N / 8][4], const uint32_t (&a)[4],
                                                uint64_t b) {
  static_assert(N == 64 || N == 128 || N == 256, "head dims 64, 128 and 256");
  if constexpr (N == 64) {
    FDOPS_WGMMA_TYPED(M, FDOPS_WGMMA_RS, 64, 32,
                      "%32, %33, %34, %35", "%36", "%37")
  } else if constexpr (N == 128) {
    FDOPS_WGMMA_TYPED(M, FDOPS_WGMMA_RS, 128, 64,
                      "%64, %65, %66, %67", "%68", "%69")
  } else {
    FDOPS_WGMMA_TYPED(M, FDOPS_WGMMA_RS, 256, 128,
                      "%128, %129, %130, %131", "%132", "%133")
  }
}

#undef FDOPS_WGMMA_D4
#undef FDOPS_WGMMA_D32
#undef FDOPS_WGMMA_D64
#undef FDOPS_WGMMA_D128
#undef FDOPS_WGMMA_R32
#undef FDOPS_WGMMA_R64
#undef FDOPS_WGMMA_R128
#undef FDOPS_WGMMA_SS
#undef FDOPS_WGMMA_RS
#undef FDOPS_WGMMA_TYPED

#endif  // FDOPS_WGMMA

}  // namespace fdops::wgmma
