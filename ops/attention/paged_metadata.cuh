// Device-side check of the metadata a paged-attention launch reads from device memory: packed
// query offsets, sequence lengths and block ids. One block per sequence; the first problem
// found (by sequence order among those reported concurrently, any) is written to the report.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ops/attention/attention.h"
#include "ops/common/workspace.h"

namespace fdops::attention {

// Threads per block of the check (a template parameter: a kernel defined in a header is a
// template, so that two families' libraries may both contain it, with a stable name; a kernel
// in an unnamed namespace would be named after its translation unit's path).
inline constexpr int kCheckThreads = 128;

__device__ __forceinline__ void report_problem(MetadataReport* report, MetadataError error,
                                               int sequence, int index, int64_t value) {
  const int32_t clipped = static_cast<int32_t>(
      value > INT32_MAX ? INT32_MAX : (value < INT32_MIN ? INT32_MIN : value));
  if (atomicCAS(reinterpret_cast<int32_t*>(&report->error), 0, static_cast<int32_t>(error)) ==
      0) {
    report->sequence = sequence;
    report->index = index;
    report->value = clipped;
  }
}

template <int kBlockThreads>
__global__ void __launch_bounds__(kBlockThreads)
    check_paged_metadata_kernel(MetadataCheck c, MetadataReport* report) {
  const int b = blockIdx.x;
  int64_t q_len = 1;
  if (c.cu_seqlens_q != nullptr) {
    const int32_t first = c.cu_seqlens_q[b], next = c.cu_seqlens_q[b + 1];
    if (threadIdx.x == 0) {
      if (b == 0 && first != 0) report_problem(report, MetadataError::kCuSeqlens, b, 0, first);
      if (next < first) report_problem(report, MetadataError::kCuSeqlens, b, b + 1, next);
      if (b == c.batch - 1 && next != c.rows) {
        report_problem(report, MetadataError::kCuSeqlens, b, b + 1, next);
      }
    }
    if (next < first) return;
    q_len = next - first;
  }
  const int64_t len = c.lens[b];
  const int64_t capacity = static_cast<int64_t>(c.max_blocks_per_seq) * c.block_size;
  const int64_t begin = c.append ? len : 0;
  const int64_t end = c.append ? len + q_len : len;
  const int64_t least = c.append ? 0 : (c.cu_seqlens_q != nullptr ? q_len : 1);
  if ((c.append ? len < 0 : len < least) || end > capacity || (c.max_len > 0 && len > c.max_len)) {
    if (threadIdx.x == 0) report_problem(report, MetadataError::kLength, b, -1, len);
    return;
  }
  if (end <= begin) return;
  if (c.max_position > 0 && end > c.max_position && threadIdx.x == 0) {
    report_problem(report, MetadataError::kPosition, b, -1, end - 1);
  }
  const int32_t* table = c.block_tables + static_cast<int64_t>(b) * c.max_blocks_per_seq;
  const int64_t last_block = (end - 1) / c.block_size;
  for (int64_t i = begin / c.block_size + threadIdx.x; i <= last_block; i += kBlockThreads) {
    const int32_t id = table[i];
    if (id < 0 || id >= c.num_blocks) {
      report_problem(report, MetadataError::kBlockId, b, static_cast<int>(i), id);
    }
  }
}

// Launches the check and copies the report back, waiting for the stream.
inline cudaError_t run_metadata_check(const MetadataCheck& check, MetadataReport* report,
                                      cudaStream_t stream) {
  *report = MetadataReport{};
  if (check.batch == 0) return cudaSuccess;
  WorkspaceAllocation device_report;
  cudaError_t err = device_report.allocate(sizeof(MetadataReport), stream);
  if (err != cudaSuccess) return err;
  auto* d_report = static_cast<MetadataReport*>(device_report.data());
  err = cudaMemsetAsync(d_report, 0, sizeof(MetadataReport), stream);
  if (err == cudaSuccess) {
    check_paged_metadata_kernel<kCheckThreads>
        <<<check.batch, kCheckThreads, 0, stream>>>(check, d_report);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) {
    err = cudaMemcpyAsync(report, d_report, sizeof(MetadataReport), cudaMemcpyDeviceToHost,
                          stream);
  }
  const cudaError_t freed = device_report.release(stream);
  if (err == cudaSuccess) err = freed;
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  return err;
}

}  // namespace fdops::attention
