// Scratch memory for one launch (split-K partial results, token counters), stream-ordered.
//
// Allocated from a memory pool of our own per device, with no release threshold, so after the
// first calls an allocation is a pool hit of about a microsecond, it is ordered on the caller's
// stream like the kernels, and it works under CUDA graph capture (as allocation nodes). The
// pool is ours so that keeping its memory cached changes nothing for other users of the
// device's default pool.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <mutex>

namespace fdops {

inline cudaError_t workspace_pool(cudaMemPool_t* pool) {
  constexpr int kDevices = 64;
  static cudaMemPool_t pools[kDevices] = {};
  static std::mutex mutex;
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  if (device >= kDevices) return cudaErrorInvalidDevice;
  std::lock_guard<std::mutex> lock(mutex);
  if (pools[device] == nullptr) {
    cudaMemPoolProps props = {};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device;
    cudaMemPool_t created = nullptr;
    err = cudaMemPoolCreate(&created, &props);
    if (err != cudaSuccess) return err;
    uint64_t keep_all = UINT64_MAX;
    err = cudaMemPoolSetAttribute(created, cudaMemPoolAttrReleaseThreshold, &keep_all);
    if (err != cudaSuccess) return err;
    pools[device] = created;
  }
  *pool = pools[device];
  return cudaSuccess;
}

// Freed on `stream` by release() (or, if release is never called, leaked: callers release).
class WorkspaceAllocation {
 public:
  cudaError_t allocate(size_t bytes, cudaStream_t stream) {
    cudaMemPool_t pool = nullptr;
    cudaError_t err = workspace_pool(&pool);
    if (err != cudaSuccess) return err;
    return cudaMallocFromPoolAsync(&data_, bytes, pool, stream);
  }
  void* data() const { return data_; }
  cudaError_t release(cudaStream_t stream) {
    if (data_ == nullptr) return cudaSuccess;
    const cudaError_t err = cudaFreeAsync(data_, stream);
    data_ = nullptr;
    return err;
  }

 private:
  void* data_ = nullptr;
};

}  // namespace fdops
