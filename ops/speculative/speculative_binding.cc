// nanobind binding of the speculative family: validates every argument, then launches.
//
// Shapes follow FastDeploy's buffers: a per-row tensor is [bs] or [bs, 1] (read flat); the
// packed per-token tensors are [total] or [total, 1]. Lengths, offsets and counts stored in the
// tensors cannot be seen here without a device synchronisation; the kernels bound them.
#include <cstdint>
#include <limits>
#include <string>

#include "ops/common/binding.h"
#include "ops/common/kernel_registry.h"
#include "ops/speculative/speculative.h"

namespace fdops {
namespace {

namespace nb = nanobind;
using namespace binding;  // the shared checks, ops/common/binding.h
using speculative::kMaxBatch;

// This family's kernels: linked into the module, or loaded by fastdeploy_ops.jit.
kernels::Family<speculative::KernelTable> family_kernels("speculative");

constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();

// The length n of a [n] or [n, 1] tensor of `dtype`.
int64_t vector_length(const char* op, const char* arg, const Tensor& t, DType dtype,
                      const char* n) {
  check_dtype(op, arg, t, {dtype});
  check_rank(op, arg, t, {1, 2});
  FDOPS_CHECK_ARG(t.ndim() == 1 || dim(t, 1) == 1, op, arg,
                  std::string("have shape [") + n + "] or [" + n + ", 1]",
                  binding::describe_shape(t));
  return dim(t, 0);
}

// A per-row tensor of `dtype` with `rows` elements, as [rows] or [rows, 1].
void check_vector(const char* op, const char* arg, const Tensor& t, DType dtype, int64_t rows,
                  const char* n) {
  check_dtype(op, arg, t, {dtype});
  binding::check_per_row_shape(op, arg, t, rows, n);
}

// The rows of the batch and of the real batch, both within [0, kMaxBatch].
void check_batch(const char* op, const char* batch_arg, int64_t batch, int64_t real_batch) {
  FDOPS_CHECK_ARG(batch <= kMaxBatch, op, batch_arg,
                  "have at most " + std::to_string(kMaxBatch) + " rows (bs <= " +
                      std::to_string(kMaxBatch) + ")",
                  std::to_string(batch) + " rows");
  FDOPS_CHECK_ARG(real_batch <= batch, op, "seq_lens_this_time",
                  "have at most bs = " + std::to_string(batch) + " rows (real_bs <= bs)",
                  std::to_string(real_batch) + " rows");
}

template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.data());
}

void speculate_verify(const Tensor& sampled_token_ids, const Tensor& accept_tokens,
                      const Tensor& accept_num, const Tensor& step_idx, const Tensor& stop_flags,
                      const Tensor& seq_lens_encoder, const Tensor& seq_lens_decoder,
                      const Tensor& draft_tokens, const Tensor& seq_lens_this_time,
                      const Tensor& verify_tokens, const Tensor& verify_scores,
                      const Tensor& max_dec_len, const Tensor& end_tokens,
                      const Tensor& is_block_step, const Tensor& output_cum_offsets,
                      const Tensor& actual_candidate_len, const Tensor& actual_draft_token_nums,
                      const Tensor& topp, int64_t max_seq_len, int64_t verify_window,
                      bool enable_topp, bool benchmark_mode, bool accept_all_drafts,
                      int verify_mode, bool prefill_one_step_stop, int64_t seed,
                      std::uintptr_t stream) {
  const char* op = "speculate_verify";
  const auto& table = family_kernels.table(op);
  // Shapes: bs and D from accept_tokens, total and C from verify_tokens.
  check_dtype(op, "accept_tokens", accept_tokens, {DType::kInt64});
  check_rank(op, "accept_tokens", accept_tokens, {2});
  const int64_t batch = dim(accept_tokens, 0), width = dim(accept_tokens, 1);
  FDOPS_CHECK_ARG(width >= 1 && width <= kIntMax, op, "accept_tokens",
                  "have between 1 and 2^31-1 columns (D)", std::to_string(width));
  check_dtype(op, "verify_tokens", verify_tokens, {DType::kInt64});
  check_rank(op, "verify_tokens", verify_tokens, {2});
  const int64_t total = dim(verify_tokens, 0), candidates = dim(verify_tokens, 1);
  FDOPS_CHECK_ARG(candidates >= 1 && candidates <= kIntMax, op, "verify_tokens",
                  "have between 1 and 2^31-1 columns (max_candidate_len)",
                  std::to_string(candidates));

  const int64_t sampled = vector_length(op, "sampled_token_ids", sampled_token_ids,
                                        DType::kInt64, "total");
  FDOPS_CHECK_ARG(sampled == total, op, "sampled_token_ids",
                  "have total = " + std::to_string(total) + " elements (the rows of verify_tokens)",
                  binding::describe_shape(sampled_token_ids));
  check_vector(op, "accept_num", accept_num, DType::kInt32, batch, "bs");
  check_vector(op, "step_idx", step_idx, DType::kInt64, batch, "bs");
  check_vector(op, "stop_flags", stop_flags, DType::kBool, batch, "bs");
  check_vector(op, "seq_lens_encoder", seq_lens_encoder, DType::kInt32, batch, "bs");
  check_vector(op, "seq_lens_decoder", seq_lens_decoder, DType::kInt32, batch, "bs");
  check_dtype(op, "draft_tokens", draft_tokens, {DType::kInt64});
  check_shape(op, "draft_tokens", draft_tokens, {batch, width}, "[bs, D] (accept_tokens' shape)");
  const int64_t real_batch = vector_length(op, "seq_lens_this_time", seq_lens_this_time,
                                           DType::kInt32, "real_bs");
  check_batch(op, "accept_tokens", batch, real_batch);
  check_dtype(op, "verify_scores", verify_scores, {DType::kFloat32});
  check_shape(op, "verify_scores", verify_scores, {total, candidates},
              "[total, max_candidate_len] (verify_tokens' shape)");
  check_vector(op, "max_dec_len", max_dec_len, DType::kInt64, batch, "bs");
  const int64_t ends = vector_length(op, "end_tokens", end_tokens, DType::kInt64, "n");
  FDOPS_CHECK_ARG(ends >= 1 && ends <= kIntMax, op, "end_tokens", "hold at least one token",
                  binding::describe_shape(end_tokens));
  check_vector(op, "is_block_step", is_block_step, DType::kBool, batch, "bs");
  check_vector(op, "output_cum_offsets", output_cum_offsets, DType::kInt32, batch, "bs");
  check_vector(op, "actual_candidate_len", actual_candidate_len, DType::kInt32, total, "total");
  check_vector(op, "actual_draft_token_nums", actual_draft_token_nums, DType::kInt32, batch,
               "bs");
  check_vector(op, "topp", topp, DType::kFloat32, batch, "bs");
  FDOPS_CHECK_ARG(max_seq_len >= 1 && max_seq_len <= kIntMax, op, "max_seq_len",
                  "be between 1 and 2^31-1", std::to_string(max_seq_len));
  FDOPS_CHECK_ARG(verify_window >= 0 && verify_window < kIntMax, op, "verify_window",
                  "be between 0 and 2^31-2", std::to_string(verify_window));
  FDOPS_CHECK_ARG(verify_mode >= 0 && verify_mode <= 2, op, "verify_mode",
                  "be 0 (candidates), 1 (top1) or 2 (target_sampling)",
                  std::to_string(verify_mode));

  const int device = binding::check_cuda_tensors(
      op, {{"sampled_token_ids", &sampled_token_ids},
           {"accept_tokens", &accept_tokens},
           {"accept_num", &accept_num},
           {"step_idx", &step_idx},
           {"stop_flags", &stop_flags},
           {"seq_lens_encoder", &seq_lens_encoder},
           {"seq_lens_decoder", &seq_lens_decoder},
           {"draft_tokens", &draft_tokens},
           {"seq_lens_this_time", &seq_lens_this_time},
           {"verify_tokens", &verify_tokens},
           {"verify_scores", &verify_scores},
           {"max_dec_len", &max_dec_len},
           {"end_tokens", &end_tokens},
           {"is_block_step", &is_block_step},
           {"output_cum_offsets", &output_cum_offsets},
           {"actual_candidate_len", &actual_candidate_len},
           {"actual_draft_token_nums", &actual_draft_token_nums},
           {"topp", &topp}});
  if (real_batch == 0) return;  // rows from real_bs on are never touched

  speculative::VerifyParams p{};
  p.sampled_token_ids = ptr<const int64_t>(sampled_token_ids);
  p.accept_tokens = ptr<int64_t>(accept_tokens);
  p.accept_num = ptr<int32_t>(accept_num);
  p.step_idx = ptr<int64_t>(step_idx);
  p.stop_flags = ptr<uint8_t>(stop_flags);
  p.seq_lens_encoder = ptr<const int32_t>(seq_lens_encoder);
  p.draft_tokens = ptr<const int64_t>(draft_tokens);
  p.seq_lens_this_time = ptr<const int32_t>(seq_lens_this_time);
  p.verify_tokens = ptr<const int64_t>(verify_tokens);
  p.verify_scores = ptr<const float>(verify_scores);
  p.max_dec_len = ptr<const int64_t>(max_dec_len);
  p.end_tokens = ptr<const int64_t>(end_tokens);
  p.is_block_step = ptr<const uint8_t>(is_block_step);
  p.output_cum_offsets = ptr<const int32_t>(output_cum_offsets);
  p.actual_candidate_len = ptr<const int32_t>(actual_candidate_len);
  p.topp = ptr<const float>(topp);
  p.real_batch = static_cast<int>(real_batch);
  p.max_draft_tokens = static_cast<int>(width);
  p.end_length = static_cast<int>(ends);
  p.max_candidate_len = static_cast<int>(candidates);
  p.total_tokens = total;
  p.max_seq_len = max_seq_len;
  p.verify_window = static_cast<int>(verify_window);
  p.mode = static_cast<speculative::VerifyMode>(verify_mode);
  p.enable_topp = enable_topp;
  p.benchmark_mode = benchmark_mode;
  p.accept_all_drafts = accept_all_drafts;
  p.prefill_one_step_stop = prefill_one_step_stop;
  p.seed = static_cast<uint64_t>(seed);  // a 64-bit pattern passed as int64 (torch's int)
  binding::DeviceGuard guard(op, device);
  binding::check_launch(op, table.speculate_verify(p, binding::as_stream(stream)));
}

void speculate_update(const Tensor& seq_lens_encoder, const Tensor& seq_lens_decoder,
                      const Tensor& not_need_stop, const Tensor& draft_tokens,
                      const Tensor& actual_draft_token_nums, const Tensor& accept_tokens,
                      const Tensor& accept_num, const Tensor& stop_flags,
                      const Tensor& seq_lens_this_time, const Tensor& is_block_step,
                      const Tensor& stop_nums, std::uintptr_t stream) {
  const char* op = "speculate_update";
  const auto& table = family_kernels.table(op);
  // max_bs from stop_flags (as upstream), D from draft_tokens.
  const int64_t batch = vector_length(op, "stop_flags", stop_flags, DType::kBool, "max_bs");
  check_vector(op, "seq_lens_encoder", seq_lens_encoder, DType::kInt32, batch, "max_bs");
  check_vector(op, "seq_lens_decoder", seq_lens_decoder, DType::kInt32, batch, "max_bs");
  check_dtype(op, "not_need_stop", not_need_stop, {DType::kBool});
  FDOPS_CHECK_ARG(not_need_stop.size() == 1, op, "not_need_stop", "have exactly one element",
                  binding::describe_shape(not_need_stop));
  check_dtype(op, "draft_tokens", draft_tokens, {DType::kInt64});
  check_rank(op, "draft_tokens", draft_tokens, {2});
  const int64_t width = dim(draft_tokens, 1);
  check_shape(op, "draft_tokens", draft_tokens, {batch, width}, "[max_bs, D]");
  FDOPS_CHECK_ARG(width >= 1 && width <= kIntMax, op, "draft_tokens",
                  "have between 1 and 2^31-1 columns (D)", std::to_string(width));
  check_vector(op, "actual_draft_token_nums", actual_draft_token_nums, DType::kInt32, batch,
               "max_bs");
  check_dtype(op, "accept_tokens", accept_tokens, {DType::kInt64});
  check_shape(op, "accept_tokens", accept_tokens, {batch, width},
              "[max_bs, D] (draft_tokens' shape)");
  check_vector(op, "accept_num", accept_num, DType::kInt32, batch, "max_bs");
  const int64_t real_batch = vector_length(op, "seq_lens_this_time", seq_lens_this_time,
                                           DType::kInt32, "real_bs");
  check_batch(op, "stop_flags", batch, real_batch);
  check_vector(op, "is_block_step", is_block_step, DType::kBool, batch, "max_bs");
  check_dtype(op, "stop_nums", stop_nums, {DType::kInt64});
  FDOPS_CHECK_ARG(stop_nums.size() == 1, op, "stop_nums", "have exactly one element",
                  binding::describe_shape(stop_nums));

  const int device = binding::check_cuda_tensors(
      op, {{"seq_lens_encoder", &seq_lens_encoder},
           {"seq_lens_decoder", &seq_lens_decoder},
           {"not_need_stop", &not_need_stop},
           {"draft_tokens", &draft_tokens},
           {"actual_draft_token_nums", &actual_draft_token_nums},
           {"accept_tokens", &accept_tokens},
           {"accept_num", &accept_num},
           {"stop_flags", &stop_flags},
           {"seq_lens_this_time", &seq_lens_this_time},
           {"is_block_step", &is_block_step},
           {"stop_nums", &stop_nums}});
  if (batch == 0) return;  // project convention: an empty batch touches nothing

  speculative::UpdateParams p{};
  p.seq_lens_encoder = ptr<int32_t>(seq_lens_encoder);
  p.seq_lens_decoder = ptr<int32_t>(seq_lens_decoder);
  p.not_need_stop = ptr<uint8_t>(not_need_stop);
  p.draft_tokens = ptr<int64_t>(draft_tokens);
  p.actual_draft_token_nums = ptr<int32_t>(actual_draft_token_nums);
  p.accept_tokens = ptr<const int64_t>(accept_tokens);
  p.accept_num = ptr<const int32_t>(accept_num);
  p.stop_flags = ptr<const uint8_t>(stop_flags);
  p.seq_lens_this_time = ptr<const int32_t>(seq_lens_this_time);
  p.is_block_step = ptr<const uint8_t>(is_block_step);
  p.stop_nums = ptr<const int64_t>(stop_nums);
  p.real_batch = static_cast<int>(real_batch);
  p.batch = static_cast<int>(batch);
  p.max_draft_tokens = static_cast<int>(width);
  binding::DeviceGuard guard(op, device);
  binding::check_launch(op, table.speculate_update(p, binding::as_stream(stream)));
}

}  // namespace

void register_speculative(nb::module_& m) {
  binding::def(m, "speculate_verify", &speculate_verify, nb::arg("sampled_token_ids"),
               nb::arg("accept_tokens").noconvert(), nb::arg("accept_num").noconvert(),
               nb::arg("step_idx").noconvert(), nb::arg("stop_flags").noconvert(),
               nb::arg("seq_lens_encoder"), nb::arg("seq_lens_decoder"), nb::arg("draft_tokens"),
               nb::arg("seq_lens_this_time"), nb::arg("verify_tokens"), nb::arg("verify_scores"),
               nb::arg("max_dec_len"), nb::arg("end_tokens"), nb::arg("is_block_step"),
               nb::arg("output_cum_offsets"), nb::arg("actual_candidate_len"),
               nb::arg("actual_draft_token_nums"), nb::arg("topp"), nb::arg("max_seq_len"),
               nb::arg("verify_window"), nb::arg("enable_topp"), nb::arg("benchmark_mode"),
               nb::arg("accept_all_drafts"), nb::arg("verify_mode"),
               nb::arg("prefill_one_step_stop"), nb::arg("seed"), nb::arg("stream"),
               "Verify draft tokens; accept_tokens, accept_num, step_idx and stop_flags are "
               "written in place. See fastdeploy_ops.speculative.");
  binding::def(m, "speculate_update", &speculate_update, nb::arg("seq_lens_encoder").noconvert(),
               nb::arg("seq_lens_decoder").noconvert(), nb::arg("not_need_stop").noconvert(),
               nb::arg("draft_tokens").noconvert(), nb::arg("actual_draft_token_nums").noconvert(),
               nb::arg("accept_tokens"), nb::arg("accept_num"), nb::arg("stop_flags"),
               nb::arg("seq_lens_this_time"), nb::arg("is_block_step"), nb::arg("stop_nums"),
               nb::arg("stream"),
               "Advance lengths and draft lengths after verification; the first five tensors are "
               "written in place. See fastdeploy_ops.speculative.");
}

}  // namespace fdops
