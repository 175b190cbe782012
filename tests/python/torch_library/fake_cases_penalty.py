from typing import Any

from fake_tensors import BF16, F32, I64, Cases, cuda

from fastdeploy_ops import penalty


def _multi_scores() -> Any:
    rows, vocab = 256, 128256
    return penalty.get_token_penalty_multi_scores(
        cuda((rows, 4096), I64), cuda((rows, vocab), F32), *(cuda((rows, 1), F32),) * 4,
        cuda((rows, 4), I64), *(cuda((rows, 1), I64),) * 4, cuda((2,), I64))


CASES: Cases = {
    "penalties": (_multi_scores, [((256, 128256), F32)]),
    "penalty_once": (lambda: penalty.get_token_penalty_once(
        cuda((8, 512), I64), cuda((8, 32000)), cuda((8, 1), F32)), [((8, 32000), BF16)]),
}
