"""Logit penalty ops (family ``penalty``, SM70+): repetition / frequency / presence penalties.

All functions take tensors of any DLPack framework (torch, paddle, cupy, jax) and run on the
caller's current stream. Arguments are validated before launch; a violation raises
``TypeError`` (dtype) or ``ValueError`` (shape, range, device, layout) naming the op and the
argument. With ``bs == 0`` rows nothing is launched.

Values read from tensors on the GPU (token ids, lengths) cannot be checked without a device
synchronisation, so the kernels check them instead: ids outside ``[0, V)`` are ignored (never
written), lengths are clamped to the tensor's extent. Results are bitwise deterministic.
"""

from __future__ import annotations

from ._tensors import Kernel, Tensor, framework_of, kernels_by_op, launch, shape_of

__all__ = ["get_token_penalty_multi_scores", "get_token_penalty_once"]

FAMILY = "penalty"

# The family's torch operators (fastdeploy_ops._torch_library): each binding's arguments but
# the stream; (a!) marks a tensor the kernel writes.
TORCH_SCHEMAS = {
    Kernel(FAMILY, "get_token_penalty_multi_scores"): (
        "(Tensor token_ids_all, Tensor(a!) logits, Tensor penalty_scores, "
        "Tensor frequency_scores, Tensor presence_scores, Tensor temperatures, Tensor bad_tokens, "
        "Tensor bad_tokens_lens, Tensor prompt_lens, Tensor cur_dec_lens, Tensor min_dec_lens, "
        "Tensor eos_token_id) -> ()"
    ),
    Kernel(FAMILY, "get_token_penalty_once"): (
        "(Tensor pre_ids, Tensor logits, Tensor penalty_scores, Tensor(a!) out) -> ()"
    ),
}
_KERNELS = kernels_by_op(TORCH_SCHEMAS)


def get_token_penalty_multi_scores(
    token_ids_all: Tensor,
    logits: Tensor,
    penalty_scores: Tensor,
    frequency_scores: Tensor,
    presence_scores: Tensor,
    temperatures: Tensor,
    bad_tokens: Tensor,
    bad_tokens_lens: Tensor,
    prompt_lens: Tensor,
    cur_dec_lens: Tensor,
    min_dec_lens: Tensor,
    eos_token_id: Tensor,
) -> Tensor:
    """Apply the sampling penalties and the temperature to ``logits``, in place.

    For each row ``b`` (all arithmetic in fp32, each operation rounded on its own), in order:

    1. Min length: if ``0 <= cur_dec_lens[b] < min_dec_lens[b]``, every ``eos_token_id`` in
       ``[0, V)`` gets the logit ``-1e10`` (``-1e4`` for float16 logits), stored in the logits'
       dtype; the later steps then apply to it as to any logit.
    2. Repeat counts over ``token_ids_all[b]``: ``rep[v]`` = number of times ``v`` occurs in
       ``token_ids_all[b, prompt_lens[b]:]`` (the generated part, up to the end of the row);
       ``-1`` if ``v`` occurs only in ``token_ids_all[b, :prompt_lens[b]]``; ``0`` otherwise.
       Ids outside ``[0, V)`` (``-1`` padding) are ignored. Not counted (``rep = 0``) when
       ``alpha == 1 and beta == 0 and gamma == 0``, or when ``cur_dec_lens[b] < 0``.
    3. Unless ``alpha == 1, beta == 0, gamma == 0`` and ``temperature == 1`` (row untouched):
       if ``rep != 0``: ``l = l * alpha if l < 0 else l / alpha``; if ``rep > 0``:
       ``l = (l - rep * beta) - gamma``; then ``l = l / temperature``, rounded once to the
       logits' dtype.
    4. Bad tokens: ``bad_tokens[b, :min(bad_tokens_lens[b], N)]`` in ``[0, V)`` get ``-1e10``
       (``-inf`` in float16).

    Here ``alpha, beta, gamma = penalty_scores[b], frequency_scores[b], presence_scores[b]``.

    Args:
        token_ids_all: ``[bs, max_model_len]`` int64: prompt, then generated tokens, ``-1``
            padding; ``max_model_len < 2**30``.
        logits: ``[bs, V]`` float32, float16 or bfloat16, contiguous, on the GPU; written in
            place.
        penalty_scores: ``[bs, 1]`` (or ``[bs]``) float32 repetition penalty ``alpha``.
        frequency_scores: ``[bs, 1]`` float32 frequency penalty ``beta``.
        presence_scores: ``[bs, 1]`` float32 presence penalty ``gamma``.
        temperatures: ``[bs, 1]`` float32 (not checked for zero: FastDeploy divides too).
        bad_tokens: ``[bs, N]`` int64 banned ids per row (``N`` may be 0).
        bad_tokens_lens: ``[bs, 1]`` int64 number of valid entries of ``bad_tokens[b]``.
        prompt_lens: ``[bs, 1]`` int64 prompt length per row (clamped to
            ``[0, max_model_len]``).
        cur_dec_lens: ``[bs, 1]`` int64 decoded length (``step_idx``); negative disables the
            row's counting and EOS ban.
        min_dec_lens: ``[bs, 1]`` int64 minimum decoded length.
        eos_token_id: ``[n]`` or ``[n, 1]`` int64 end-of-sequence ids.

    Returns:
        ``logits`` (the same tensor, modified in place).

    Differences from FastDeploy (``token_ids_all`` form of ``token_penalty_multi_scores.cu``):

    - ``alpha``, ``beta`` and ``gamma`` are read as float32 in every step (FastDeploy reads the
      float32 tensors through a pointer of the logits' dtype in step 3: garbage for
      float16/bfloat16 logits).
    - Token ids, EOS ids and bad ids outside ``[0, V)`` are ignored (FastDeploy only checks bad
      ids and writes out of bounds for the others); prompt lengths are clamped to the row.
    - The per-row ``[bs, 1]`` tensors may also be 1-D ``[bs]``; ``eos_token_id`` may be ``[n]``.
    - ``bs == 0`` is allowed (no launch); every argument's dtype and shape is checked.
    - The result is the same but computed without a dense ``[bs, V]`` count pass: a row's counts
      live in a hash table in shared memory, or, for rows too long for it, in a ``[bs, V]``
      int32 scratch buffer of which only the slots of the row's ids are touched. The scratch
      buffer (and, for batches of fewer than about one row per two SMs, a ``[bs, ceil(V / 32)]``
      bitmap) comes from the library's stream-ordered memory pool on the GPU, not from the
      caller's framework: it is taken and given back on the caller's stream around the launch
      (also inside a CUDA graph capture), and the pool keeps the largest size used.
    - The subtraction is evaluated as ``(l - rep * beta) - gamma`` without FMA contraction, so
      float32 results are reproducible bit for bit (FastDeploy's compiler may fuse the first
      multiply-subtract: at most one float32 ulp of difference).
    """
    op = "get_token_penalty_multi_scores"
    kernel = _KERNELS[op]
    framework = framework_of(op, "logits", logits)
    launch(framework, kernel, token_ids_all, logits, penalty_scores, frequency_scores,
           presence_scores, temperatures, bad_tokens, bad_tokens_lens, prompt_lens, cur_dec_lens,
           min_dec_lens, eos_token_id)
    return logits


def get_token_penalty_once(
    pre_ids: Tensor,
    logits: Tensor,
    penalty_scores: Tensor,
    *,
    out: Tensor | None = None,
) -> Tensor:
    """Repetition penalty applied once per distinct previous token; returns a new tensor.

    ``out = logits``, except that for each row ``b`` every distinct id ``v`` of
    ``pre_ids[b, :k]`` in ``[0, V)``, where ``k`` is the index of the first negative id of the
    row (its length if none), gets ``l * alpha if l < 0 else l / alpha`` (fp32, rounded once to
    the logits' dtype) with ``alpha = penalty_scores[b]``, however often ``v`` occurs.

    Args:
        pre_ids: ``[bs, L]`` int64 previous tokens, ``-1`` (any negative) ends a row.
        logits: ``[bs, V]`` float32, float16 or bfloat16; not modified.
        penalty_scores: ``[bs, 1]`` (or ``[bs]``) float32 or the logits' dtype (FastDeploy's
            test passes float16 for float16 logits).
        out: optional ``[bs, V]`` tensor of the logits' dtype to write; it must not share memory
            with ``logits``.

    Returns:
        ``out``, or a new tensor like ``logits``.

    Differences from FastDeploy: a row is read strictly up to its first negative id
    (FastDeploy's threads each stop at their own first negative, so ids after it may or may not
    be penalised); ids ``>= V`` are ignored (FastDeploy writes out of bounds); the penalty may
    also be float32; ``out=``; ``bs == 0`` is allowed.
    """
    op = "get_token_penalty_once"
    kernel = _KERNELS[op]
    framework = framework_of(op, "logits", logits)
    shape_of(op, "logits", logits, (2,))
    if out is None:
        out = framework.empty_like(logits)
    launch(framework, kernel, pre_ids, logits, penalty_scores, out)
    return out
