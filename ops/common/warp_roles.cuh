// Synchronisation between the warp roles of a warp-specialised block on SM 9.0: shared-memory
// mbarriers (a producer hands a buffer over, consumers hand it back), named barriers for a
// subset of the block's warps, and the register hand-over between warpgroups (setmaxnreg).
// They exist only in sm_90a code (FDOPS_WGMMA, ops/common/wgmma.cuh), where their callers are.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/common/wgmma.cuh"

namespace fdops::warp_roles {

#if FDOPS_WGMMA

// An mbarrier completes a phase when `count` arrivals have been made; waiters name the phase's
// parity (0 for the first phase, then 1, 0, ...).
__device__ __forceinline__ void mbarrier_init(uint32_t barrier, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(barrier), "r"(count)
               : "memory");
}

// One arrival, with release semantics: this thread's earlier memory writes are visible to
// whoever sees the phase complete.
__device__ __forceinline__ void mbarrier_arrive(uint32_t barrier) {
  asm volatile(
      "{\n.reg .b64 state;\nmbarrier.arrive.release.cta.shared::cta.b64 state, [%0];\n}\n" ::"r"(
          barrier)
      : "memory");
}

// Blocks until the phase of parity `parity` has completed (acquire semantics).
__device__ __forceinline__ void mbarrier_wait(uint32_t barrier, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\n"
      "wait_%=:\n"
      "mbarrier.try_wait.parity.acquire.cta.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait_%=;\n}\n" ::"r"(barrier),
      "r"(parity)
      : "memory");
}

// Named barrier `id` (1 .. 15; 0 is __syncthreads) over `threads` threads, a multiple of 32:
// sync waits for all of them; arrive counts this warp without waiting.
__device__ __forceinline__ void sync_threads(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void arrive_threads(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// A warpgroup gives registers back (shrink) or takes them (grow, waiting until the pool has
// them); all of its threads execute the call. kRegisters: a multiple of 8 in [24, 256].
template <int kRegisters>
__device__ __forceinline__ void shrink_registers() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}
template <int kRegisters>
__device__ __forceinline__ void grow_registers() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}

#endif  // FDOPS_WGMMA

}  // namespace fdops::warp_roles
