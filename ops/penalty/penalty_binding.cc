// nanobind binding of the penalty family: validates every argument, then launches.
#include <cstdint>
#include <string>

#include "ops/common/binding.h"
#include "ops/common/kernel_registry.h"
#include "ops/penalty/penalty.h"

namespace fdops {
namespace {

namespace nb = nanobind;
using namespace binding;  // the shared checks, ops/common/binding.h

// This family's kernels: linked into the module, or loaded by fastdeploy_ops.jit.
kernels::Family<penalty::KernelTable> family_kernels("penalty");

// A per-row tensor: `dtype`, shape [bs] or [bs, 1] (FastDeploy passes [bs, 1]).
void check_per_row(const char* op, const char* arg, const Tensor& t, DType dtype, int64_t bs) {
  check_dtype(op, arg, t, {dtype});
  binding::check_per_row_shape(op, arg, t, bs, "bs");
}

// A 2-D int64 tensor with one row per row of logits; returns its number of columns.
int64_t check_rows(const char* op, const char* arg, const Tensor& t, int64_t bs) {
  check_dtype(op, arg, t, {DType::kInt64});
  check_rank(op, arg, t, {2});
  FDOPS_CHECK_ARG(dim(t, 0) == bs, op, arg,
                  "have bs = " + std::to_string(bs) + " rows (the rows of 'logits')",
                  describe_shape(t));
  return dim(t, 1);
}

// logits [bs, V] of a float dtype; returns the dtype, sets bs and V.
DType check_logits(const char* op, const Tensor& logits, int64_t* bs, int64_t* vocab) {
  const DType dtype = check_dtype(op, "logits", logits, kFloatTypes);
  check_rank(op, "logits", logits, {2});
  *bs = dim(logits, 0);
  *vocab = dim(logits, 1);
  FDOPS_CHECK_ARG(*vocab >= 1 && *vocab <= INT32_MAX, op, "logits",
                  "have between 1 and 2^31-1 columns (the vocabulary)", describe_shape(logits));
  return dtype;
}

void get_token_penalty_multi_scores(const Tensor& token_ids_all, const Tensor& logits,
                                    const Tensor& penalty_scores, const Tensor& frequency_scores,
                                    const Tensor& presence_scores, const Tensor& temperatures,
                                    const Tensor& bad_tokens, const Tensor& bad_tokens_lens,
                                    const Tensor& prompt_lens, const Tensor& cur_dec_lens,
                                    const Tensor& min_dec_lens, const Tensor& eos_token_id,
                                    std::uintptr_t stream) {
  const char* op = "get_token_penalty_multi_scores";
  const auto& table = family_kernels.table(op);
  int64_t bs = 0, vocab = 0;
  const DType dtype = check_logits(op, logits, &bs, &vocab);
  const int64_t max_model_len = check_rows(op, "token_ids_all", token_ids_all, bs);
  FDOPS_CHECK_ARG(max_model_len <= penalty::kMaxModelLen, op, "token_ids_all",
                  "have fewer than 2^30 columns (max_model_len)", describe_shape(token_ids_all));
  check_per_row(op, "penalty_scores", penalty_scores, DType::kFloat32, bs);
  check_per_row(op, "frequency_scores", frequency_scores, DType::kFloat32, bs);
  check_per_row(op, "presence_scores", presence_scores, DType::kFloat32, bs);
  check_per_row(op, "temperatures", temperatures, DType::kFloat32, bs);
  const int64_t max_bad_tokens = check_rows(op, "bad_tokens", bad_tokens, bs);
  check_per_row(op, "bad_tokens_lens", bad_tokens_lens, DType::kInt64, bs);
  check_per_row(op, "prompt_lens", prompt_lens, DType::kInt64, bs);
  check_per_row(op, "cur_dec_lens", cur_dec_lens, DType::kInt64, bs);
  check_per_row(op, "min_dec_lens", min_dec_lens, DType::kInt64, bs);
  check_dtype(op, "eos_token_id", eos_token_id, {DType::kInt64});
  check_rank(op, "eos_token_id", eos_token_id, {1, 2});
  FDOPS_CHECK_ARG(eos_token_id.ndim() == 1 || dim(eos_token_id, 1) == 1, op, "eos_token_id",
                  "have shape [n] or [n, 1]", describe_shape(eos_token_id));
  const int64_t num_eos = dim(eos_token_id, 0);
  const int device = check_cuda_tensors(op, {{"logits", &logits},
                                             {"token_ids_all", &token_ids_all},
                                             {"penalty_scores", &penalty_scores},
                                             {"frequency_scores", &frequency_scores},
                                             {"presence_scores", &presence_scores},
                                             {"temperatures", &temperatures},
                                             {"bad_tokens", &bad_tokens},
                                             {"bad_tokens_lens", &bad_tokens_lens},
                                             {"prompt_lens", &prompt_lens},
                                             {"cur_dec_lens", &cur_dec_lens},
                                             {"min_dec_lens", &min_dec_lens},
                                             {"eos_token_id", &eos_token_id}});
  if (bs == 0) return;
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.token_penalty_multi_scores(
                       static_cast<const int64_t*>(token_ids_all.data()), logits.data(), dtype,
                       static_cast<const float*>(penalty_scores.data()),
                       static_cast<const float*>(frequency_scores.data()),
                       static_cast<const float*>(presence_scores.data()),
                       static_cast<const float*>(temperatures.data()),
                       static_cast<const int64_t*>(bad_tokens.data()),
                       static_cast<const int64_t*>(bad_tokens_lens.data()),
                       static_cast<const int64_t*>(prompt_lens.data()),
                       static_cast<const int64_t*>(cur_dec_lens.data()),
                       static_cast<const int64_t*>(min_dec_lens.data()),
                       static_cast<const int64_t*>(eos_token_id.data()),
                       bs, vocab, max_model_len, max_bad_tokens, num_eos,
                       binding::as_stream(stream)));
}

void get_token_penalty_once(const Tensor& pre_ids, const Tensor& logits,
                            const Tensor& penalty_scores, const Tensor& out,
                            std::uintptr_t stream) {
  const char* op = "get_token_penalty_once";
  const auto& table = family_kernels.table(op);
  int64_t bs = 0, vocab = 0;
  const DType dtype = check_logits(op, logits, &bs, &vocab);
  const int64_t num_ids = check_rows(op, "pre_ids", pre_ids, bs);
  const DType penalty_dtype =
      dtype == DType::kFloat32
          ? check_dtype(op, "penalty_scores", penalty_scores, {DType::kFloat32})
          : check_dtype(op, "penalty_scores", penalty_scores, {DType::kFloat32, dtype});
  check_per_row(op, "penalty_scores", penalty_scores, penalty_dtype, bs);
  binding::check_dtype_is(op, "out", out, dtype, "logits");
  binding::check_shape(op, "out", out, {bs, vocab}, "[bs, V]");
  const size_t bytes = logits.nbytes();
  const auto* in_begin = static_cast<const char*>(logits.data());
  const auto* out_begin = static_cast<const char*>(out.data());
  const bool overlap = bytes > 0 && in_begin < out_begin + bytes && out_begin < in_begin + bytes;
  FDOPS_CHECK_ARG(!overlap, op, "out", "not overlap 'logits' (the result is a new tensor)",
                  "a tensor sharing memory with 'logits'");
  const int device = check_cuda_tensors(op, {{"logits", &logits},
                                             {"pre_ids", &pre_ids},
                                             {"penalty_scores", &penalty_scores},
                                             {"out", &out}});
  if (bs == 0) return;
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.token_penalty_once(
                       static_cast<const int64_t*>(pre_ids.data()), logits.data(), out.data(),
                       dtype, penalty_scores.data(), penalty_dtype, bs, vocab, num_ids,
                       binding::as_stream(stream)));
}

}  // namespace

void register_penalty(nb::module_& m) {
  binding::def(m, "get_token_penalty_multi_scores", &get_token_penalty_multi_scores,
               nb::arg("token_ids_all"), nb::arg("logits").noconvert(), nb::arg("penalty_scores"),
               nb::arg("frequency_scores"), nb::arg("presence_scores"), nb::arg("temperatures"),
               nb::arg("bad_tokens"), nb::arg("bad_tokens_lens"), nb::arg("prompt_lens"),
               nb::arg("cur_dec_lens"), nb::arg("min_dec_lens"), nb::arg("eos_token_id"),
               nb::arg("stream"),
               "Min-length EOS ban, repetition/frequency/presence penalties, temperature and bad "
               "tokens, in place on logits. See fastdeploy_ops.penalty.");
  binding::def(m, "get_token_penalty_once", &get_token_penalty_once, nb::arg("pre_ids"),
               nb::arg("logits"), nb::arg("penalty_scores"), nb::arg("out").noconvert(),
               nb::arg("stream"),
               "out = logits with the repetition penalty applied once per distinct id of pre_ids.");
}

}  // namespace fdops
