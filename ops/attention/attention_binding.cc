// nanobind binding of the attention family: validates every argument, then forwards to the
// family's kernel table. Caches hold the query's dtype (c16), int8, or fp8 e4m3 passed as uint8
// views (fastdeploy_ops.attention makes them); fp8 needs kernels built for SM89+.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/attention/attention.h"
#include "ops/common/binding.h"
#include "ops/common/kernel_registry.h"

namespace fdops::attention {
namespace {

namespace nb = nanobind;
using namespace binding;  // the shared checks, ops/common/binding.h

// This family's kernels: linked into the module, or loaded by fastdeploy_ops.jit.
kernels::Family<KernelTable> family_kernels("attention");

class PagedAttentionBindings {
 public:
  explicit PagedAttentionBindings(const kernels::Family<KernelTable>& kernels)
      : kernels_(kernels) {}

  void register_ops(nb::module_& m) const {
    binding::def(
        m, "paged_kv_append",
        [this](const Tensor& key, const Tensor& value, const Tensor& key_cache,
               const Tensor& value_cache, const Tensor& block_tables, const Tensor& cache_lens,
               const Tensor& cu_seqlens_q, std::optional<Tensor> key_scale,
               std::optional<Tensor> value_scale, std::optional<Tensor> query,
               std::optional<Tensor> cos_sin_cache, bool is_neox, bool check_metadata,
               std::uintptr_t stream) {
          append(key, value, key_cache, value_cache, block_tables, cache_lens, cu_seqlens_q,
                 key_scale, value_scale, query, cos_sin_cache, is_neox, check_metadata,
                 binding::as_stream(stream));
        },
        nb::arg("key"), nb::arg("value"), nb::arg("key_cache").noconvert(),
        nb::arg("value_cache").noconvert(), nb::arg("block_tables"), nb::arg("cache_lens"),
        nb::arg("cu_seqlens_q"), nb::arg("key_scale").none(), nb::arg("value_scale").none(),
        nb::arg("query").noconvert().none(), nb::arg("cos_sin_cache").none(),
        nb::arg("is_neox"), nb::arg("check_metadata"), nb::arg("stream"),
        "Appends K and V to the paged cache. See fastdeploy_ops.attention.");
    binding::def(
        m, "paged_decode_attention",
        [this](const Tensor& query, const Tensor& out, const Tensor& key_cache,
               const Tensor& value_cache, const Tensor& block_tables, const Tensor& seq_lens,
               std::optional<Tensor> key_scale, std::optional<Tensor> value_scale,
               double softmax_scale, int64_t max_seq_len, bool check_metadata,
               std::uintptr_t stream) {
          attend("paged_decode_attention", query, out, nullptr, key_cache, value_cache,
                 block_tables, seq_lens, key_scale, value_scale, softmax_scale, max_seq_len,
                 check_metadata, binding::as_stream(stream));
        },
        nb::arg("query"), nb::arg("out").noconvert(), nb::arg("key_cache"),
        nb::arg("value_cache"), nb::arg("block_tables"), nb::arg("seq_lens"),
        nb::arg("key_scale").none(), nb::arg("value_scale").none(), nb::arg("softmax_scale"),
        nb::arg("max_seq_len"), nb::arg("check_metadata"), nb::arg("stream"),
        "Decode attention over the paged cache. See fastdeploy_ops.attention.");
    binding::def(
        m, "paged_prefill_attention",
        [this](const Tensor& query, const Tensor& out, const Tensor& cu_seqlens_q,
               const Tensor& key_cache, const Tensor& value_cache, const Tensor& block_tables,
               const Tensor& seq_lens, std::optional<Tensor> key_scale,
               std::optional<Tensor> value_scale, double softmax_scale, int64_t max_seq_len,
               bool check_metadata, std::uintptr_t stream) {
          attend("paged_prefill_attention", query, out, &cu_seqlens_q, key_cache, value_cache,
                 block_tables, seq_lens, key_scale, value_scale, softmax_scale, max_seq_len,
                 check_metadata, binding::as_stream(stream));
        },
        nb::arg("query"), nb::arg("out").noconvert(), nb::arg("cu_seqlens_q"),
        nb::arg("key_cache"), nb::arg("value_cache"), nb::arg("block_tables"),
        nb::arg("seq_lens"), nb::arg("key_scale").none(), nb::arg("value_scale").none(),
        nb::arg("softmax_scale"), nb::arg("max_seq_len"), nb::arg("check_metadata"),
        nb::arg("stream"),
        "Chunked-prefill attention over the paged cache. See fastdeploy_ops.attention.");
    m.def("paged_attention_plan",
          [this](const std::string& dtype, const std::string& cache, int64_t num_heads,
                 int64_t kv_heads, int64_t head_dim, int64_t block_size,
                 int64_t max_blocks_per_seq, int64_t rows, int64_t batch, bool prefill,
                 int64_t max_seq_len, int64_t resident_blocks) {
            return plan(dtype, cache, num_heads, kv_heads, head_dim, block_size,
                        max_blocks_per_seq, rows, batch, prefill, max_seq_len, resident_blocks);
          },
          nb::arg("dtype"), nb::arg("cache"), nb::arg("num_heads"), nb::arg("kv_heads"),
          nb::arg("head_dim"), nb::arg("block_size"), nb::arg("max_blocks_per_seq"),
          nb::arg("rows"), nb::arg("batch"), nb::arg("prefill"), nb::arg("max_seq_len"),
          nb::arg("resident_blocks"),
          "How paged attention divides a launch. See fastdeploy_ops.attention.");
  }

 private:
  // The cache, its block tables and scales, checked against each other and the query dtype.
  static PagedCache check_cache(const char* op, const KernelTable& table, DType dtype,
                                const Tensor& key_cache, const Tensor& value_cache,
                                const Tensor& block_tables,
                                const std::optional<Tensor>& key_scale,
                                const std::optional<Tensor>& value_scale) {
    check_rank(op, "key_cache", key_cache, {4});
    check_shape(op, "value_cache", value_cache,
                {dim(key_cache, 0), dim(key_cache, 1), dim(key_cache, 2), dim(key_cache, 3)},
                "[num_blocks, kv_heads, block_size, head_dim] of 'key_cache'");
    PagedCache cache = {};
    const std::string dtype_name = binding::dtype_name(dtype);
    const std::string given = binding::describe_dtype(key_cache);
    DType storage = dtype;
    if (given == dtype_name) {
      cache.type = CacheType::kC16;
    } else if (given == "int8") {
      cache.type = CacheType::kInt8;
      storage = DType::kInt8;
    } else if (given == "uint8") {  // float8_e4m3fn, as the Python layer passes it
      cache.type = CacheType::kFp8E4M3;
      storage = DType::kUInt8;
    } else {
      binding::throw_type_error(
          op, "key_cache", "have the query's dtype (" + dtype_name + "), int8 or float8_e4m3fn",
          given);
    }
    const std::string cache_kind =
        cache.type == CacheType::kFp8E4M3 ? "float8_e4m3fn" : given;
    FDOPS_CHECK_ARG(table.supports_cache(cache.type), op, "key_cache",
                    "have a cache dtype the loaded attention kernels serve (float8_e4m3fn caches "
                    "need kernels built for SM89+)",
                    cache_kind);
    binding::check_dtype_is(op, "value_cache", value_cache, storage, "key_cache");
    cache.num_blocks = dim(key_cache, 0);
    cache.kv_heads = static_cast<int32_t>(dim(key_cache, 1));
    cache.block_size = static_cast<int32_t>(dim(key_cache, 2));
    cache.head_dim = static_cast<int32_t>(dim(key_cache, 3));
    FDOPS_CHECK_ARG(cache.num_blocks >= 1 && dim(key_cache, 1) >= 1 && dim(key_cache, 2) >= 1 &&
                        dim(key_cache, 1) <= 65535 && dim(key_cache, 2) <= 65535,
                    op, "key_cache",
                    "have num_blocks >= 1 and 1 <= kv_heads, block_size <= 65535 in "
                    "[num_blocks, kv_heads, block_size, head_dim]",
                    describe_shape(key_cache));
    bool instantiated = false;
    for (int d : kHeadDims) instantiated |= dim(key_cache, 3) == d;
    FDOPS_CHECK_ARG(instantiated, op, "key_cache",
                    "have head_dim 64, 128 or 256 (the head dims with kernels) in "
                    "[num_blocks, kv_heads, block_size, head_dim]",
                    describe_shape(key_cache));

    const bool quantized = cache.type != CacheType::kC16;
    const char* scale_names[] = {"key_scale", "value_scale"};
    const std::optional<Tensor>* scales[] = {&key_scale, &value_scale};
    for (int i = 0; i < 2; ++i) {
      if (quantized) {
        FDOPS_CHECK_ARG(scales[i]->has_value(), op, scale_names[i],
                        "be given for " + cache_kind +
                            " caches (fp32 [kv_heads] dequantisation scales)", "None");
        check_dtype(op, scale_names[i], **scales[i], {DType::kFloat32});
        check_shape(op, scale_names[i], **scales[i], {cache.kv_heads}, "[kv_heads]");
      } else {
        FDOPS_CHECK_ARG(!scales[i]->has_value(), op, scale_names[i],
                        "be None for " + cache_kind +
                            " caches (scales belong to int8 and fp8 caches)", "a tensor");
      }
    }
    if (quantized) {
      cache.key_scale = static_cast<const float*>(key_scale->data());
      cache.value_scale = static_cast<const float*>(value_scale->data());
    }

    check_dtype(op, "block_tables", block_tables, {DType::kInt32});
    check_rank(op, "block_tables", block_tables, {2});
    const int64_t capacity = dim(block_tables, 1) * cache.block_size;
    FDOPS_CHECK_ARG(dim(block_tables, 1) >= 1 && capacity <= INT32_MAX, op, "block_tables",
                    "have shape [batch, max_blocks_per_seq] with 1 <= max_blocks_per_seq and "
                    "max_blocks_per_seq * block_size <= 2^31 - 1",
                    describe_shape(block_tables) + " with block_size " +
                        std::to_string(cache.block_size));
    cache.block_tables = static_cast<const int32_t*>(block_tables.data());
    cache.max_blocks_per_seq = static_cast<int32_t>(dim(block_tables, 1));
    check_aligned(op, "key_cache", key_cache);
    check_aligned(op, "value_cache", value_cache);
    cache.key = key_cache.data();
    cache.value = value_cache.data();
    return cache;
  }

  // The kernels move 16 bytes per access (cache rows are multiples of 16 bytes): tensors with
  // head dims must start on such a boundary (a contiguous view at an odd offset may not).
  static void check_aligned(const char* op, const char* arg, const Tensor& t) {
    const auto address = reinterpret_cast<std::uintptr_t>(t.data());
    FDOPS_CHECK_ARG(address % 16 == 0, op, arg, "start at a 16-byte aligned address",
                    "an address " + std::to_string(address % 16) + " bytes past one");
  }

  static void check_max_seq_len(const char* op, int64_t max_seq_len) {
    FDOPS_CHECK_ARG(max_seq_len >= 0 && max_seq_len <= INT32_MAX, op, "max_seq_len",
                    "be None or an int in [1, 2^31 - 1] (the longest seq_lens entry)",
                    std::to_string(max_seq_len));
  }

  // The launch's plan exists: every shape the checks above accept has a kernel (the CPU tests
  // enumerate them through paged_attention_plan), so this is a last guard before the launch.
  static void check_plan(const char* op, const KernelTable& table, const AttentionParams& p,
                         const Tensor& query) {
    AttentionPlan plan = {};
    FDOPS_CHECK_ARG(table.plan_attention(p, 1, &plan) == cudaSuccess, op, "query",
                    "have a shape some kernel serves (num_heads = " + std::to_string(p.num_heads) +
                        " over kv_heads = " + std::to_string(p.cache.kv_heads) + ", head_dim " +
                        std::to_string(p.cache.head_dim) + ")",
                    describe_shape(query));
  }

  // How a launch of these shapes is divided when the device runs `resident_blocks` blocks at
  // once (fastdeploy_ops.attention.paged_attention_plan). Needs no GPU.
  nb::dict plan(const std::string& dtype, const std::string& cache_type, int64_t num_heads,
                int64_t kv_heads, int64_t head_dim, int64_t block_size,
                int64_t max_blocks_per_seq, int64_t rows, int64_t batch, bool prefill,
                int64_t max_seq_len, int64_t resident_blocks) const {
    const char* op = "paged_attention_plan";
    const KernelTable& table = kernels_.table(op);
    AttentionParams p = {};
    FDOPS_CHECK_ARG(dtype == "bfloat16" || dtype == "float16", op, "dtype",
                    "be 'bfloat16' or 'float16'", dtype);
    p.dtype = dtype == "bfloat16" ? DType::kBFloat16 : DType::kFloat16;
    FDOPS_CHECK_ARG(cache_type == "c16" || cache_type == "int8" || cache_type == "float8_e4m3fn",
                    op, "cache", "be 'c16', 'int8' or 'float8_e4m3fn'", cache_type);
    p.cache.type = cache_type == "c16"    ? CacheType::kC16
                   : cache_type == "int8" ? CacheType::kInt8
                                          : CacheType::kFp8E4M3;
    FDOPS_CHECK_ARG(table.supports_cache(p.cache.type), op, "cache",
                    "be a cache type the loaded attention kernels serve (float8_e4m3fn caches need "
                    "kernels built for SM89+)",
                    cache_type);
    bool instantiated = false;
    for (int d : kHeadDims) instantiated |= head_dim == d;
    FDOPS_CHECK_ARG(instantiated, op, "head_dim", "be 64, 128 or 256", std::to_string(head_dim));
    FDOPS_CHECK_ARG(kv_heads >= 1 && kv_heads <= 65535, op, "kv_heads", "be in [1, 65535]",
                    std::to_string(kv_heads));
    FDOPS_CHECK_ARG(num_heads >= 1 && num_heads <= 65535 && num_heads % kv_heads == 0, op,
                    "num_heads", "be a multiple of kv_heads = " + std::to_string(kv_heads) +
                                     " in [1, 65535]",
                    std::to_string(num_heads));
    FDOPS_CHECK_ARG(block_size >= 1 && block_size <= 65535, op, "block_size", "be in [1, 65535]",
                    std::to_string(block_size));
    FDOPS_CHECK_ARG(max_blocks_per_seq >= 1 && max_blocks_per_seq * block_size <= INT32_MAX, op,
                    "max_blocks_per_seq",
                    "be >= 1 with max_blocks_per_seq * block_size <= 2^31 - 1",
                    std::to_string(max_blocks_per_seq));
    FDOPS_CHECK_ARG(batch >= 1 && batch <= INT32_MAX, op, "batch", "be in [1, 2^31 - 1]",
                    std::to_string(batch));
    FDOPS_CHECK_ARG(rows >= 1 && (prefill || rows == batch), op, "rows",
                    prefill ? "be >= 1" : "equal batch for decode", std::to_string(rows));
    check_max_seq_len(op, max_seq_len);
    FDOPS_CHECK_ARG(resident_blocks >= 0, op, "resident_blocks", "be >= 0",
                    std::to_string(resident_blocks));
    p.cache.kv_heads = static_cast<int32_t>(kv_heads);
    p.cache.head_dim = static_cast<int32_t>(head_dim);
    p.cache.block_size = static_cast<int32_t>(block_size);
    p.cache.max_blocks_per_seq = static_cast<int32_t>(max_blocks_per_seq);
    p.num_heads = static_cast<int32_t>(num_heads);
    p.rows = rows;
    p.batch = static_cast<int32_t>(batch);
    p.max_seq_len = static_cast<int32_t>(max_seq_len);
    static const int32_t kPrefillMarker = 0;  // only cu_seqlens_q's presence matters to a plan
    p.cu_seqlens_q = prefill ? &kPrefillMarker : nullptr;
    AttentionPlan plan = {};
    const cudaError_t err = table.plan_attention(p, resident_blocks, &plan);
    nb::dict result;
    result["kernel"] = err != cudaSuccess                                 ? "none"
                       : plan.kernel == AttentionKernel::kTiledPrefill ? "tiled_prefill"
                       : plan.kernel == AttentionKernel::kTiledPrefillWgmma
                           ? "tiled_prefill_wgmma"
                       : plan.kernel == AttentionKernel::kTensorCore   ? "tensor_core"
                                                                       : "cuda_core";
    result["head_tile"] = plan.head_tile;
    result["head_tiles"] = plan.head_tiles;
    result["num_splits"] = plan.num_splits;
    result["partition_tokens"] = plan.partition_tokens;
    result["threads"] = plan.threads;
    result["shared_bytes"] = plan.shared_bytes;
    result["blocks"] = plan.blocks;
    result["workspace_bytes"] = plan.workspace_bytes;
    return result;
  }

  // int32 [batch + 1] packed query offsets.
  static void check_cu_seqlens(const char* op, const Tensor& cu, int64_t batch) {
    check_dtype(op, "cu_seqlens_q", cu, {DType::kInt32});
    check_shape(op, "cu_seqlens_q", cu, {batch + 1}, "[batch + 1] (batch from 'block_tables')");
  }

  // Runs the device-side metadata check unless the stream is being captured into a graph
  // (waiting is not allowed there); throws ValueError naming the bad entry.
  void check_metadata(const char* op, const KernelTable& table, const MetadataCheck& check,
                      const char* lens_name, cudaStream_t stream) const {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    binding::check_launch(op, cudaStreamIsCapturing(stream, &capture));
    if (capture != cudaStreamCaptureStatusNone) return;
    MetadataReport report = {};
    binding::check_launch(op, table.check_metadata(check, &report, stream));
    const std::string seq = std::to_string(report.sequence);
    const std::string value = std::to_string(report.value);
    const std::string capacity =
        std::to_string(static_cast<int64_t>(check.max_blocks_per_seq) * check.block_size);
    switch (report.error) {
      case MetadataError::kNone:
        return;
      case MetadataError::kCuSeqlens:
        binding::throw_value_error(
            op, "cu_seqlens_q",
            "rise from 0 to the number of query tokens (" + std::to_string(check.rows) + ")",
            "cu_seqlens_q[" + std::to_string(report.index) + "] = " + value);
      case MetadataError::kLength:
        binding::throw_value_error(
            op, lens_name,
            std::string(check.append
                            ? "be >= 0 and leave room for the new tokens"
                            : "cover at least the sequence's query tokens (>= 1 for decode)") +
                " within the block table's capacity of " + capacity +
                " tokens (max_blocks_per_seq * block_size)" +
                (check.max_len > 0 ? " and max_seq_len = " + std::to_string(check.max_len) : ""),
            std::string(lens_name) + "[" + seq + "] = " + value);
      case MetadataError::kBlockId:
        binding::throw_value_error(
            op, "block_tables",
            "hold block ids in [0, num_blocks = " + std::to_string(check.num_blocks) +
                ") for every block a sequence uses",
            "block_tables[" + seq + ", " + std::to_string(report.index) + "] = " + value);
      case MetadataError::kPosition:
        binding::throw_value_error(
            op, "cos_sin_cache",
            "have a row for every position written (max_position = " +
                std::to_string(check.max_position) + ")",
            "position " + value + " of sequence " + seq);
    }
    throw std::runtime_error(std::string(op) + ": unknown metadata error");
  }

  void append(const Tensor& key, const Tensor& value, const Tensor& key_cache,
              const Tensor& value_cache, const Tensor& block_tables, const Tensor& cache_lens,
              const Tensor& cu_seqlens_q, const std::optional<Tensor>& key_scale,
              const std::optional<Tensor>& value_scale, const std::optional<Tensor>& query,
              const std::optional<Tensor>& cos_sin_cache, bool is_neox, bool check,
              cudaStream_t stream) const {
    const char* op = "paged_kv_append";
    const KernelTable& table = kernels_.table(op);
    const DType dtype = check_dtype(op, "key", key, {DType::kBFloat16, DType::kFloat16});
    AppendParams p = {};
    p.dtype = dtype;
    p.cache = check_cache(op, table, dtype, key_cache, value_cache, block_tables, key_scale,
                          value_scale);
    const int64_t tokens = key.ndim() >= 1 ? dim(key, 0) : 0;
    check_shape(op, "key", key, {tokens, p.cache.kv_heads, p.cache.head_dim},
                "[tokens, kv_heads, head_dim] of 'key_cache'");
    binding::check_dtype_is(op, "value", value, dtype, "key");
    check_shape(op, "value", value, {tokens, p.cache.kv_heads, p.cache.head_dim},
                "[tokens, kv_heads, head_dim] of 'key'");
    const int64_t batch = dim(block_tables, 0);
    check_dtype(op, "cache_lens", cache_lens, {DType::kInt32});
    check_shape(op, "cache_lens", cache_lens, {batch}, "[batch] (batch from 'block_tables')");
    check_cu_seqlens(op, cu_seqlens_q, batch);
    std::vector<NamedTensor> tensors = {{"key", &key},
                                        {"value", &value},
                                        {"key_cache", &key_cache},
                                        {"value_cache", &value_cache},
                                        {"block_tables", &block_tables},
                                        {"cache_lens", &cache_lens},
                                        {"cu_seqlens_q", &cu_seqlens_q}};
    if (key_scale) tensors.push_back({"key_scale", &*key_scale});
    if (value_scale) tensors.push_back({"value_scale", &*value_scale});
    FDOPS_CHECK_ARG(!query || cos_sin_cache, op, "query",
                    "be None without 'cos_sin_cache' (only the rotary embedding changes it)",
                    "a tensor");
    if (cos_sin_cache) {
      binding::check_dtype_is(op, "cos_sin_cache", *cos_sin_cache, dtype, "key");
      check_rank(op, "cos_sin_cache", *cos_sin_cache, {2});
      const int64_t rot_dim = dim(*cos_sin_cache, 1);
      FDOPS_CHECK_ARG(dim(*cos_sin_cache, 0) >= 1 && rot_dim >= 2 && rot_dim % 2 == 0 &&
                          rot_dim <= p.cache.head_dim,
                      op, "cos_sin_cache",
                      "have shape [max_position >= 1, rot_dim] with rot_dim even and 2 <= "
                      "rot_dim <= head_dim = " + std::to_string(p.cache.head_dim),
                      describe_shape(*cos_sin_cache));
      p.cos_sin_cache = cos_sin_cache->data();
      p.max_position = dim(*cos_sin_cache, 0);
      p.rot_dim = static_cast<int32_t>(rot_dim);
      p.is_neox = is_neox;
      tensors.push_back({"cos_sin_cache", &*cos_sin_cache});
    }
    if (query) {
      binding::check_dtype_is(op, "query", *query, dtype, "key");
      check_rank(op, "query", *query, {3});
      FDOPS_CHECK_ARG(dim(*query, 0) == tokens && dim(*query, 2) == p.cache.head_dim &&
                          dim(*query, 1) >= 1 && dim(*query, 1) <= 65535,
                      op, "query",
                      "have shape [tokens = " + std::to_string(tokens) +
                          ", num_heads, head_dim = " + std::to_string(p.cache.head_dim) + "]",
                      describe_shape(*query));
      p.query = query->data();
      p.num_heads = static_cast<int32_t>(dim(*query, 1));
      tensors.push_back({"query", &*query});
    }
    const int device = binding::check_cuda_tensors(op, tensors);
    p.key = key.data();
    p.value = value.data();
    p.cache_lens = static_cast<const int32_t*>(cache_lens.data());
    p.cu_seqlens_q = static_cast<const int32_t*>(cu_seqlens_q.data());
    p.tokens = tokens;
    p.batch = static_cast<int32_t>(batch);
    if (batch == 0 && tokens > 0) {
      binding::throw_value_error(op, "block_tables", "have a row per sequence", "0 rows");
    }
    binding::DeviceGuard guard(op, device);
    if (check) {
      check_metadata(op, table,
                     MetadataCheck{p.cache.block_tables, p.cache_lens, p.cu_seqlens_q,
                                   p.cache.num_blocks, tokens, p.max_position, 0, p.batch,
                                   p.cache.max_blocks_per_seq, p.cache.block_size, true},
                     "cache_lens", stream);
    }
    if (tokens == 0) return;
    binding::check_launch(op, table.paged_kv_append(p, stream));
  }

  void attend(const char* op, const Tensor& query, const Tensor& out, const Tensor* cu_seqlens_q,
              const Tensor& key_cache, const Tensor& value_cache, const Tensor& block_tables,
              const Tensor& seq_lens, const std::optional<Tensor>& key_scale,
              const std::optional<Tensor>& value_scale, double softmax_scale,
              int64_t max_seq_len, bool check, cudaStream_t stream) const {
    const KernelTable& table = kernels_.table(op);
    const DType dtype = check_dtype(op, "query", query, {DType::kBFloat16, DType::kFloat16});
    AttentionParams p = {};
    p.dtype = dtype;
    p.cache = check_cache(op, table, dtype, key_cache, value_cache, block_tables, key_scale,
                          value_scale);
    check_rank(op, "query", query, {3});
    const int64_t rows = dim(query, 0);
    const int64_t num_heads = dim(query, 1);
    FDOPS_CHECK_ARG(dim(query, 2) == p.cache.head_dim && num_heads >= 1 &&
                        num_heads % p.cache.kv_heads == 0 && num_heads <= 65535,
                    op, "query",
                    "have shape [" + std::string(cu_seqlens_q ? "tokens" : "batch") +
                        ", num_heads, head_dim = " + std::to_string(p.cache.head_dim) +
                        "] with num_heads a multiple of kv_heads = " +
                        std::to_string(p.cache.kv_heads) + " (grouped-query attention)",
                    describe_shape(query));
    binding::check_dtype_is(op, "out", out, dtype, "query");
    check_shape(op, "out", out, {rows, num_heads, p.cache.head_dim}, "the shape of 'query'");
    check_aligned(op, "query", query);
    const int64_t batch = dim(block_tables, 0);
    check_dtype(op, "seq_lens", seq_lens, {DType::kInt32});
    check_shape(op, "seq_lens", seq_lens, {batch}, "[batch] (batch from 'block_tables')");
    std::vector<NamedTensor> tensors = {{"query", &query},
                                        {"out", &out},
                                        {"key_cache", &key_cache},
                                        {"value_cache", &value_cache},
                                        {"block_tables", &block_tables},
                                        {"seq_lens", &seq_lens}};
    if (cu_seqlens_q) {
      check_cu_seqlens(op, *cu_seqlens_q, batch);
      tensors.push_back({"cu_seqlens_q", cu_seqlens_q});
      p.cu_seqlens_q = static_cast<const int32_t*>(cu_seqlens_q->data());
    } else {
      FDOPS_CHECK_ARG(rows == batch, op, "query",
                      "have one row per sequence (batch = " + std::to_string(batch) +
                          ", from 'block_tables')",
                      describe_shape(query));
    }
    if (key_scale) tensors.push_back({"key_scale", &*key_scale});
    if (value_scale) tensors.push_back({"value_scale", &*value_scale});
    FDOPS_CHECK_ARG(std::isfinite(softmax_scale) && softmax_scale > 0, op, "softmax_scale",
                    "be a finite number > 0", std::to_string(softmax_scale));
    check_max_seq_len(op, max_seq_len);
    p.rows = rows;
    p.batch = static_cast<int32_t>(batch);
    p.num_heads = static_cast<int32_t>(num_heads);
    p.max_seq_len = static_cast<int32_t>(max_seq_len);
    p.softmax_scale = static_cast<float>(softmax_scale);
    if (cu_seqlens_q && batch == 0 && rows > 0) {
      binding::throw_value_error(op, "block_tables", "have a row per sequence", "0 rows");
    }
    check_plan(op, table, p, query);
    const int device = binding::check_cuda_tensors(op, tensors);
    p.query = query.data();
    p.out = out.data();
    p.seq_lens = static_cast<const int32_t*>(seq_lens.data());
    binding::DeviceGuard guard(op, device);
    if (check) {
      check_metadata(op, table,
                     MetadataCheck{p.cache.block_tables, p.seq_lens, p.cu_seqlens_q,
                                   p.cache.num_blocks, rows, 0, p.max_seq_len, p.batch,
                                   p.cache.max_blocks_per_seq, p.cache.block_size, false},
                     "seq_lens", stream);
    }
    if (rows == 0) return;
    binding::check_launch(op, table.paged_attention(p, stream));
  }

  const kernels::Family<KernelTable>& kernels_;
};

const PagedAttentionBindings bindings(family_kernels);

}  // namespace
}  // namespace fdops::attention

namespace fdops {
void register_attention(nanobind::module_& m) { attention::bindings.register_ops(m); }
}  // namespace fdops
