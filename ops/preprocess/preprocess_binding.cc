// nanobind binding of the preprocess family: validates every argument, then launches.
//
// What the host can see (dtypes, shapes, batch sizes shared between arguments, scalar ranges,
// device, layout) is checked here. Values inside the tensors (lengths, offsets, step indices)
// would need a device-to-host copy: the kernels bound every access with them instead.
#include <nanobind/stl/optional.h>

#include <cstdint>
#include <optional>
#include <string>

#include "ops/common/binding.h"
#include "ops/common/kernel_registry.h"
#include "ops/preprocess/preprocess.h"

namespace fdops {
namespace {

namespace nb = nanobind;
using namespace binding;  // the shared checks, ops/common/binding.h

// This family's kernels: linked into the module, or loaded by fastdeploy_ops.jit.
kernels::Family<preprocess::KernelTable> family_kernels("preprocess");

constexpr int64_t kInt32Max = INT32_MAX;

std::string str(int64_t v) { return std::to_string(v); }

void check_per_row(const char* op, const char* arg, const Tensor& t, DType dtype, int64_t rows,
                   const char* rows_name = "bs") {
  check_dtype(op, arg, t, {dtype});
  binding::check_per_row_shape(op, arg, t, rows, rows_name);
}

// A 1-D tensor, or [n, 1]: its length n.
int64_t vector_length(const char* op, const char* arg, const Tensor& t, const char* name) {
  check_rank(op, arg, t, {1, 2});
  FDOPS_CHECK_ARG(t.ndim() == 1 || dim(t, 1) == 1, op, arg,
                  std::string("have shape [") + name + "] or [" + name + ", 1]", describe_shape(t));
  return dim(t, 0);
}

// A tensor of the given rank whose first dimension is the batch.
void check_batched(const char* op, const char* arg, const Tensor& t, DType dtype, size_t rank,
                   int64_t batch, const char* names) {
  check_dtype(op, arg, t, {dtype});
  check_rank(op, arg, t, {rank});
  FDOPS_CHECK_ARG(dim(t, 0) == batch, op, arg,
                  std::string("have shape ") + names + " with bs = " + str(batch),
                  describe_shape(t));
}

// ---------------------------------------------------------------------------------------------

void get_padding_offset(const Tensor& input_ids, int64_t token_num, const Tensor& seq_len,
                        const Tensor& x_remove_padding, const Tensor& batch_id_per_token,
                        const Tensor& cu_seqlens_q, const Tensor& cu_seqlens_k,
                        std::uintptr_t stream) {
  const char* op = "get_padding_offset";
  const auto& table = family_kernels.table(op);
  check_dtype(op, "input_ids", input_ids, {DType::kInt64});
  check_rank(op, "input_ids", input_ids, {2});
  const int64_t batch = dim(input_ids, 0), max_len = dim(input_ids, 1);
  FDOPS_CHECK_ARG(batch < kInt32Max, op, "input_ids", "have fewer than 2^31 - 1 rows",
                  describe_shape(input_ids));
  check_per_row(op, "seq_len", seq_len, DType::kInt32, batch);
  const int64_t capacity = static_cast<int64_t>(input_ids.size());
  FDOPS_CHECK_ARG(token_num >= 0 && token_num <= kInt32Max, op, "token_num",
                  "be between 0 and 2^31 - 1", str(token_num));
  FDOPS_CHECK_ARG(token_num <= capacity, op, "token_num",
                  "be at most bs * max_len = " + str(capacity) + " (the tokens input_ids holds)",
                  str(token_num));
  check_dtype(op, "x_remove_padding", x_remove_padding, {DType::kInt64});
  check_shape(op, "x_remove_padding", x_remove_padding, {token_num}, "[token_num]");
  check_dtype(op, "batch_id_per_token", batch_id_per_token, {DType::kInt32});
  check_shape(op, "batch_id_per_token", batch_id_per_token, {token_num}, "[token_num]");
  check_dtype(op, "cu_seqlens_q", cu_seqlens_q, {DType::kInt32});
  check_shape(op, "cu_seqlens_q", cu_seqlens_q, {batch + 1}, "[bs + 1]");
  check_dtype(op, "cu_seqlens_k", cu_seqlens_k, {DType::kInt32});
  check_shape(op, "cu_seqlens_k", cu_seqlens_k, {batch + 1}, "[bs + 1]");
  const int device = check_cuda_tensors(op, {{"input_ids", &input_ids},
                                             {"seq_len", &seq_len},
                                             {"x_remove_padding", &x_remove_padding},
                                             {"batch_id_per_token", &batch_id_per_token},
                                             {"cu_seqlens_q", &cu_seqlens_q},
                                             {"cu_seqlens_k", &cu_seqlens_k}});
  // B = 0 still writes cu_seqlens = [0] (two 4-byte memsets, no kernel).
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.get_padding_offset(
                       static_cast<const int64_t*>(input_ids.data()),
                       static_cast<const int32_t*>(seq_len.data()),
                       static_cast<int64_t*>(x_remove_padding.data()),
                       static_cast<int32_t*>(batch_id_per_token.data()),
                       static_cast<int32_t*>(cu_seqlens_q.data()),
                       static_cast<int32_t*>(cu_seqlens_k.data()), batch, max_len, token_num,
                       binding::as_stream(stream)));
}

void rebuild_padding(const Tensor& tmp_out, const Tensor& cu_seqlens_q,
                     const Tensor& seq_len_this_time, const Tensor& seq_lens_decoder,
                     const Tensor& seq_lens_encoder, std::optional<Tensor> output_padding_offset,
                     std::optional<Tensor> first_token_out, const Tensor& out,
                     int64_t max_input_length, bool enable_logprob, std::uintptr_t stream) {
  const char* op = "rebuild_padding";
  const auto& table = family_kernels.table(op);
  const DType dtype = check_dtype(op, "tmp_out", tmp_out,
                                  {DType::kFloat32, DType::kFloat16, DType::kBFloat16});
  check_rank(op, "tmp_out", tmp_out, {2});
  const int64_t token_num = dim(tmp_out, 0), hidden = dim(tmp_out, 1);
  check_dtype(op, "cu_seqlens_q", cu_seqlens_q, {DType::kInt32});
  const int64_t cu_len = vector_length(op, "cu_seqlens_q", cu_seqlens_q, "bs + 1");
  FDOPS_CHECK_ARG(cu_len >= 1, op, "cu_seqlens_q", "have at least one element ([bs + 1])",
                  describe_shape(cu_seqlens_q));
  const int64_t batch = cu_len - 1;
  check_per_row(op, "seq_len_this_time", seq_len_this_time, DType::kInt32, batch);
  check_per_row(op, "seq_lens_decoder", seq_lens_decoder, DType::kInt32, batch);
  check_per_row(op, "seq_lens_encoder", seq_lens_encoder, DType::kInt32, batch);
  int64_t out_rows = batch;
  const char* out_names = "[bs, dim]";
  if (output_padding_offset) {
    check_dtype(op, "output_padding_offset", *output_padding_offset, {DType::kInt32});
    out_rows = vector_length(op, "output_padding_offset", *output_padding_offset, "rows");
    out_names = "[len(output_padding_offset), dim]";
    FDOPS_CHECK_ARG(max_input_length >= 1 && max_input_length <= kInt32Max, op, "max_input_length",
                    "be between 1 and 2^31 - 1 when output_padding_offset is given",
                    str(max_input_length));
  }
  FDOPS_CHECK_ARG(out_rows <= kInt32Max, op,
                  output_padding_offset ? "output_padding_offset" : "cu_seqlens_q",
                  "describe at most 2^31 - 1 output rows", str(out_rows));
  if (first_token_out) {
    binding::check_dtype_is(op, "first_token_out", *first_token_out, dtype, "tmp_out");
    check_shape(op, "first_token_out", *first_token_out, {batch, hidden}, "[bs, dim]");
  } else {
    FDOPS_CHECK_ARG(!(output_padding_offset && enable_logprob), op, "first_token_out",
                    "be given when enable_logprob is set with output_padding_offset", "None");
  }
  binding::check_dtype_is(op, "out", out, dtype, "tmp_out");
  check_shape(op, "out", out, {out_rows, hidden}, out_names);
  const int device = check_cuda_tensors(op, {{"tmp_out", &tmp_out},
                                             {"cu_seqlens_q", &cu_seqlens_q},
                                             {"seq_len_this_time", &seq_len_this_time},
                                             {"seq_lens_decoder", &seq_lens_decoder},
                                             {"seq_lens_encoder", &seq_lens_encoder},
                                             {"out", &out}});
  if (output_padding_offset)
    check_cuda_tensors(op, {{"tmp_out", &tmp_out},
                            {"output_padding_offset", &*output_padding_offset}});
  if (first_token_out)
    check_cuda_tensors(op, {{"tmp_out", &tmp_out}, {"first_token_out", &*first_token_out}});
  if (out_rows == 0 || hidden == 0) return;
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.rebuild_padding(
                       tmp_out.data(), out.data(),
                       first_token_out ? first_token_out->data() : nullptr,
                       dtype, static_cast<const int32_t*>(cu_seqlens_q.data()),
                       static_cast<const int32_t*>(seq_len_this_time.data()),
                       static_cast<const int32_t*>(seq_lens_decoder.data()),
                       static_cast<const int32_t*>(seq_lens_encoder.data()),
                       output_padding_offset
                           ? static_cast<const int32_t*>(output_padding_offset->data())
                           : nullptr,
                       token_num, hidden, batch, out_rows, max_input_length, enable_logprob,
                       binding::as_stream(stream)));
}

void set_value_by_flags_and_idx(const Tensor& pre_ids_all, const Tensor& input_ids,
                                const Tensor& seq_lens_this_time, const Tensor& seq_lens_encoder,
                                const Tensor& seq_lens_decoder, const Tensor& step_idx,
                                const Tensor& stop_flags, std::uintptr_t stream) {
  const char* op = "set_value_by_flags_and_idx";
  const auto& table = family_kernels.table(op);
  check_dtype(op, "seq_lens_this_time", seq_lens_this_time, {DType::kInt32});
  const int64_t batch = vector_length(op, "seq_lens_this_time", seq_lens_this_time, "bs");
  check_batched(op, "pre_ids_all", pre_ids_all, DType::kInt64, 2, batch, "[bs, L]");
  check_batched(op, "input_ids", input_ids, DType::kInt64, 2, batch, "[bs, L_in]");
  check_per_row(op, "seq_lens_encoder", seq_lens_encoder, DType::kInt32, batch);
  check_per_row(op, "seq_lens_decoder", seq_lens_decoder, DType::kInt32, batch);
  check_per_row(op, "step_idx", step_idx, DType::kInt64, batch);
  check_per_row(op, "stop_flags", stop_flags, DType::kBool, batch);
  const int device = check_cuda_tensors(op, {{"pre_ids_all", &pre_ids_all},
                                             {"input_ids", &input_ids},
                                             {"seq_lens_this_time", &seq_lens_this_time},
                                             {"seq_lens_encoder", &seq_lens_encoder},
                                             {"seq_lens_decoder", &seq_lens_decoder},
                                             {"step_idx", &step_idx},
                                             {"stop_flags", &stop_flags}});
  if (batch == 0) return;
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.set_value_by_flags_and_idx(
                       static_cast<int64_t*>(pre_ids_all.data()),
                       static_cast<const int64_t*>(input_ids.data()),
                       static_cast<const int32_t*>(seq_lens_encoder.data()),
                       static_cast<const int32_t*>(seq_lens_decoder.data()),
                       static_cast<const int64_t*>(step_idx.data()),
                       static_cast<const uint8_t*>(stop_flags.data()), batch,
                       dim(pre_ids_all, 1), dim(input_ids, 1), binding::as_stream(stream)));
}

void set_stop_value_multi_ends(const Tensor& topk_ids, const Tensor& stop_flags,
                               const Tensor& seq_lens, const Tensor& end_ids,
                               const Tensor& next_tokens, const Tensor& pre_ids,
                               const Tensor& step_idx, const Tensor& stop_seqs,
                               const Tensor& stop_seqs_len, const Tensor& stop_token_ids,
                               const Tensor& stop_token_ids_len, const Tensor& min_tokens,
                               const Tensor& max_tokens, bool beam_search,
                               bool prefill_one_step_stop, std::uintptr_t stream) {
  const char* op = "set_stop_value_multi_ends";
  const auto& table = family_kernels.table(op);
  check_dtype(op, "topk_ids", topk_ids, {DType::kInt64});
  const int64_t batch = vector_length(op, "topk_ids", topk_ids, "bs");
  check_per_row(op, "stop_flags", stop_flags, DType::kBool, batch);
  check_per_row(op, "seq_lens", seq_lens, DType::kInt32, batch);
  check_dtype(op, "end_ids", end_ids, {DType::kInt64});
  const int64_t num_end_ids = vector_length(op, "end_ids", end_ids, "n_end");
  FDOPS_CHECK_ARG(num_end_ids >= 1, op, "end_ids", "hold at least one end id",
                  describe_shape(end_ids));
  check_per_row(op, "next_tokens", next_tokens, DType::kInt64, batch);
  check_batched(op, "pre_ids", pre_ids, DType::kInt64, 2, batch, "[bs, L]");
  check_per_row(op, "step_idx", step_idx, DType::kInt64, batch);
  check_batched(op, "stop_seqs", stop_seqs, DType::kInt64, 3, batch, "[bs, S, Mx]");
  const int64_t num_stop_seqs = dim(stop_seqs, 1), stop_seq_max_len = dim(stop_seqs, 2);
  check_dtype(op, "stop_seqs_len", stop_seqs_len, {DType::kInt32});
  check_shape(op, "stop_seqs_len", stop_seqs_len, {batch, num_stop_seqs}, "[bs, S]");
  check_batched(op, "stop_token_ids", stop_token_ids, DType::kInt64, 2, batch, "[bs, Ks]");
  check_per_row(op, "stop_token_ids_len", stop_token_ids_len, DType::kInt32, batch);
  check_per_row(op, "min_tokens", min_tokens, DType::kInt64, batch);
  check_per_row(op, "max_tokens", max_tokens, DType::kInt64, batch);
  const int device = check_cuda_tensors(op, {{"topk_ids", &topk_ids},
                                             {"stop_flags", &stop_flags},
                                             {"seq_lens", &seq_lens},
                                             {"end_ids", &end_ids},
                                             {"next_tokens", &next_tokens},
                                             {"pre_ids", &pre_ids},
                                             {"step_idx", &step_idx},
                                             {"stop_seqs", &stop_seqs},
                                             {"stop_seqs_len", &stop_seqs_len},
                                             {"stop_token_ids", &stop_token_ids},
                                             {"stop_token_ids_len", &stop_token_ids_len},
                                             {"min_tokens", &min_tokens},
                                             {"max_tokens", &max_tokens}});
  if (batch == 0) return;
  preprocess::StopValueArgs args{};
  args.topk_ids = static_cast<int64_t*>(topk_ids.data());
  args.stop_flags = static_cast<uint8_t*>(stop_flags.data());
  args.next_tokens = static_cast<int64_t*>(next_tokens.data());
  args.seq_lens = static_cast<const int32_t*>(seq_lens.data());
  args.end_ids = static_cast<const int64_t*>(end_ids.data());
  args.pre_ids = static_cast<const int64_t*>(pre_ids.data());
  args.step_idx = static_cast<const int64_t*>(step_idx.data());
  args.stop_seqs = static_cast<const int64_t*>(stop_seqs.data());
  args.stop_seqs_len = static_cast<const int32_t*>(stop_seqs_len.data());
  args.stop_token_ids = static_cast<const int64_t*>(stop_token_ids.data());
  args.stop_token_ids_len = static_cast<const int32_t*>(stop_token_ids_len.data());
  args.min_tokens = static_cast<const int64_t*>(min_tokens.data());
  args.max_tokens = static_cast<const int64_t*>(max_tokens.data());
  args.batch = batch;
  args.num_end_ids = num_end_ids;
  args.pre_ids_len = dim(pre_ids, 1);
  args.num_stop_seqs = num_stop_seqs;
  args.stop_seq_max_len = stop_seq_max_len;
  args.max_stop_tokens = dim(stop_token_ids, 1);
  args.beam_search = beam_search;
  args.prefill_one_step_stop = prefill_one_step_stop;
  binding::DeviceGuard guard(op, device);
  check_launch(op, table.set_stop_value_multi_ends(args, binding::as_stream(stream)));
}

}  // namespace

void register_preprocess(nb::module_& m) {
  binding::def(m, "get_padding_offset", &get_padding_offset, nb::arg("input_ids"),
               nb::arg("token_num"), nb::arg("seq_len"), nb::arg("x_remove_padding").noconvert(),
               nb::arg("batch_id_per_token").noconvert(), nb::arg("cu_seqlens_q").noconvert(),
               nb::arg("cu_seqlens_k").noconvert(), nb::arg("stream"),
               "Pack padded input ids into one token stream. See fastdeploy_ops.preprocess.");
  binding::def(m, "rebuild_padding", &rebuild_padding, nb::arg("tmp_out"), nb::arg("cu_seqlens_q"),
               nb::arg("seq_len_this_time"), nb::arg("seq_lens_decoder"),
               nb::arg("seq_lens_encoder"), nb::arg("output_padding_offset").none(),
               nb::arg("first_token_out").noconvert().none(), nb::arg("out").noconvert(),
               nb::arg("max_input_length"), nb::arg("enable_logprob"), nb::arg("stream"),
               "Gather each sequence's output hidden state (row per sequence/token).");
  binding::def(m, "set_value_by_flags_and_idx", &set_value_by_flags_and_idx,
               nb::arg("pre_ids_all").noconvert(), nb::arg("input_ids"),
               nb::arg("seq_lens_this_time"), nb::arg("seq_lens_encoder"),
               nb::arg("seq_lens_decoder"), nb::arg("step_idx"), nb::arg("stop_flags"),
               nb::arg("stream"),
               "Write this step's token into pre_ids_all[b, step_idx[b]] (in place).");
  binding::def(m, "set_stop_value_multi_ends", &set_stop_value_multi_ends,
               nb::arg("topk_ids").noconvert(), nb::arg("stop_flags").noconvert(),
               nb::arg("seq_lens"), nb::arg("end_ids"), nb::arg("next_tokens").noconvert(),
               nb::arg("pre_ids"), nb::arg("step_idx"), nb::arg("stop_seqs"),
               nb::arg("stop_seqs_len"), nb::arg("stop_token_ids"), nb::arg("stop_token_ids_len"),
               nb::arg("min_tokens"), nb::arg("max_tokens"), nb::arg("beam_search"),
               nb::arg("prefill_one_step_stop"), nb::arg("stream"),
               "Stop flags and end-token rewrites (in place).");
}

}  // namespace fdops
