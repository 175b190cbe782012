// Kernel launches with programmatic dependent launch (PDL) on SM90+, and grid sizing by
// occupancy.
//
// PDL lets a kernel be scheduled while the previous kernel in the stream is still finishing, so
// its launch latency (about 1 µs in a CUDA graph) overlaps the predecessor's tail. It is safe
// only for kernels that call wait_for_dependencies() before their first global memory access:
// that instruction blocks until every grid the kernel depends on has completed and its writes
// are visible. launch_kernel() asks for PDL only when this translation unit is compiled for
// SM90+ alone (each CUDA action here compiles one SM), i.e. when wait_for_dependencies() is the
// real instruction; on older SMs it is a plain launch and the functions below are no-ops.
#pragma once

#include <cuda_runtime.h>

#include <atomic>

namespace fdops {

#if defined(__CUDA_ARCH_LIST__) && __CUDA_ARCH_LIST__ >= 900
inline constexpr bool kProgrammaticLaunch = true;
#else
inline constexpr bool kProgrammaticLaunch = false;
#endif

// Blocks until the grids this kernel depends on have completed and their memory is visible.
// Call before the first global load or store of a kernel started by launch_kernel().
__device__ __forceinline__ void wait_for_dependencies() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel in the stream start launching now. Its wait_for_dependencies() still
// waits for this whole grid to finish, so this may be called anywhere.
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// kernel<<<grid, block, shared_bytes, stream>>>(args...), with PDL where kProgrammaticLaunch.
template <typename... Params, typename... Args>
inline cudaError_t launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block,
                                 size_t shared_bytes, cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  cudaLaunchAttribute attribute = {};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = kProgrammaticLaunch ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...);
}

// Blocks of Kernel (launched with `threads` threads and no dynamic shared memory) that are
// resident at once on the current device: a grid of this size runs in one wave. Queried once
// per kernel and device.
template <auto Kernel>
inline unsigned resident_blocks(int threads) {
  constexpr int kCachedDevices = 16;
  static std::atomic<unsigned> cached[kCachedDevices] = {};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 1;
  if (device < kCachedDevices) {
    const unsigned known = cached[device].load(std::memory_order_relaxed);
    if (known != 0) return known;
  }
  int per_sm = 0, sms = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, threads, 0) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    return 1;
  }
  const unsigned blocks = static_cast<unsigned>(per_sm > 0 && sms > 0 ? per_sm * sms : 1);
  if (device < kCachedDevices) cached[device].store(blocks, std::memory_order_relaxed);
  return blocks;
}

}  // namespace fdops
