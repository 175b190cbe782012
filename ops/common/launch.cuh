// Kernel launches with programmatic dependent launch (PDL) on SM90+, and per-device launch
// limits (one-wave grids, dynamic shared memory), queried once per kernel and device.
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
#include <mutex>

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

// The configuration of a launch by launch_kernel*: PDL where kProgrammaticLaunch.
class LaunchConfig {
 public:
  LaunchConfig(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream) {
    config_.gridDim = grid;
    config_.blockDim = block;
    config_.dynamicSmemBytes = shared_bytes;
    config_.stream = stream;
    attribute_.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute_.val.programmaticStreamSerializationAllowed = 1;
    config_.attrs = &attribute_;
    config_.numAttrs = kProgrammaticLaunch ? 1 : 0;
  }
  LaunchConfig(const LaunchConfig&) = delete;
  LaunchConfig& operator=(const LaunchConfig&) = delete;
  const cudaLaunchConfig_t* get() const { return &config_; }

 private:
  cudaLaunchConfig_t config_ = {};
  cudaLaunchAttribute attribute_ = {};
};

// kernel<<<grid, block, shared_bytes, stream>>>(args...), with PDL where kProgrammaticLaunch.
template <typename... Params, typename... Args>
inline cudaError_t launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block,
                                 size_t shared_bytes, cudaStream_t stream, Args&&... args) {
  const LaunchConfig config(grid, block, shared_bytes, stream);
  return cudaLaunchKernelEx(config.get(), kernel, static_cast<Params>(args)...);
}

// The same for a kernel chosen at run time; args points to each of its parameters.
inline cudaError_t launch_kernel_untyped(const void* kernel, dim3 grid, dim3 block,
                                         size_t shared_bytes, cudaStream_t stream, void** args) {
  const LaunchConfig config(grid, block, shared_bytes, stream);
  return cudaLaunchKernelExC(config.get(), kernel, args);
}

// compute(device) for the current device, computed once per device for each Site (a type unique
// to the caller) and cached; values must be >= 0. Returns -1 if the device cannot be queried.
template <typename Site, typename Compute>
inline int once_per_device(Compute&& compute) {
  constexpr int kCachedDevices = 16;
  static std::atomic<int> cached[kCachedDevices] = {};  // value + 1; 0 = not yet computed
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return -1;
  if (device >= kCachedDevices) return compute(device);
  const int known = cached[device].load(std::memory_order_relaxed);
  if (known != 0) return known - 1;
  const int value = compute(device);
  cached[device].store(value + 1, std::memory_order_relaxed);
  return value;
}

struct MultiprocessorCountSite {};

// SMs of the current device (1 if it cannot be queried).
inline int multiprocessor_count() {
  const int sms = once_per_device<MultiprocessorCountSite>([](int device) {
    int count = 0;
    if (cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
      cudaGetLastError();
      return 1;
    }
    return count > 0 ? count : 1;
  });
  return sms > 0 ? sms : 1;
}

struct SharedMemoryPerMultiprocessorSite {};

// Bytes of shared memory per SM of the current device (0 if it cannot be queried). Cached:
// cudaDeviceGetAttribute is a driver call, about a microsecond on a launch's host path.
inline int shared_memory_per_multiprocessor() {
  const int bytes = once_per_device<SharedMemoryPerMultiprocessorSite>([](int device) {
    int value = 0;
    if (cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device) !=
        cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return value;
  });
  return bytes > 0 ? bytes : 0;
}

struct ComputeCapabilitySite {};

// The current device's compute capability as 10 * major + minor (90 for SM 9.0), 0 if it
// cannot be queried.
inline int compute_capability() {
  const int value = once_per_device<ComputeCapabilitySite>([](int device) {
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return 10 * major + minor;
  });
  return value > 0 ? value : 0;
}

template <auto Kernel>
struct ResidentBlocksSite {};
template <auto Kernel>
struct DynamicSharedSite {};

// Blocks of Kernel (launched with `threads` threads and no dynamic shared memory) that are
// resident at once on the current device: a grid of this size runs in one wave.
template <auto Kernel>
inline unsigned resident_blocks(int threads) {
  const int blocks = once_per_device<ResidentBlocksSite<Kernel>>(
      [threads](int /*device*/) {
        int per_sm = 0;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, threads, 0) !=
            cudaSuccess) {
          cudaGetLastError();  // a failed query is not a launch error
          return 1;
        }
        return per_sm > 0 ? per_sm * multiprocessor_count() : 1;
      });
  return static_cast<unsigned>(blocks > 0 ? blocks : 1);
}

// The most dynamic shared memory a block of Kernel may use on the current device; Kernel is
// opted in to it (above 48 KB that takes cudaFuncSetAttribute). 0 if that fails.
template <auto Kernel>
inline size_t max_dynamic_shared_bytes() {
  const int bytes = once_per_device<DynamicSharedSite<Kernel>>(
      [](int device) {
        int optin = 0;
        cudaFuncAttributes attributes = {};
        if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
                cudaSuccess ||
            cudaFuncGetAttributes(&attributes, Kernel) != cudaSuccess) {
          cudaGetLastError();
          return 0;
        }
        const int available = optin - static_cast<int>(attributes.sharedSizeBytes);
        if (available <= 0 ||
            cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, available) !=
                cudaSuccess) {
          cudaGetLastError();
          return 0;
        }
        return available;
      });
  return bytes > 0 ? static_cast<size_t>(bytes) : 0;
}

// Blocks of `kernel` resident per SM of the current device when launched with `threads` threads
// and `shared_bytes` of dynamic shared memory (the kernel is opted in to that much first), or 0
// if it cannot run so. Queried once per (device, kernel, threads, shared_bytes).
inline int resident_blocks_per_sm(const void* kernel, int threads, size_t shared_bytes) {
  struct Entry {
    int device;
    const void* kernel;
    int threads;
    size_t shared_bytes;
    int blocks;
  };
  constexpr int kEntries = 64;
  static Entry entries[kEntries];
  static int used = 0;
  static std::mutex mutex;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 0;
  std::lock_guard<std::mutex> lock(mutex);
  for (int i = 0; i < used; ++i) {
    const Entry& e = entries[i];
    if (e.device == device && e.kernel == kernel && e.threads == threads &&
        e.shared_bytes == shared_bytes) {
      return e.blocks;
    }
  }
  int blocks = 0;
  // Opting in whatever the size: without it, static and dynamic shared memory together may
  // not pass 48 KB.
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(shared_bytes)) == cudaSuccess &&
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, shared_bytes) ==
          cudaSuccess) {
    if (used < kEntries) entries[used++] = {device, kernel, threads, shared_bytes, blocks};
  } else {
    cudaGetLastError();  // a failed query is not a launch error
    blocks = 0;
  }
  return blocks;
}

}  // namespace fdops
