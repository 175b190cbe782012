from typing import Any

from fake_tensors import BF16, BOOL, I32, I64, Cases, cuda

from fastdeploy_ops import preprocess


def _set_stop() -> Any:
    bs = 32
    return preprocess.set_stop_value_multi_ends(
        cuda((bs, 1), I64), cuda((bs, 1), BOOL), cuda((bs,), I32), cuda((2,), I64),
        cuda((bs, 1), I64), cuda((bs, 1024), I64), cuda((bs,), I64), cuda((bs, 4, 8), I64),
        cuda((bs, 4), I32), cuda((bs, 4), I64), cuda((bs,), I32), cuda((bs,), I64),
        cuda((bs,), I64))


def _lengths() -> tuple[Any, ...]:
    return cuda((9,), I32), cuda((8,), I32), cuda((8,), I32), cuda((8,), I32)


CASES: Cases = {
    "get_padding_offset": (lambda: preprocess.get_padding_offset(
        cuda((8, 2048), I64), 5000, cuda((8,), I32)),
        [((5000,), I64), ((5000,), I32), ((9,), I32), ((9,), I32)]),
    "rebuild_padding": (lambda: preprocess.rebuild_padding(cuda((5000, 4096)), *_lengths()),
                        [((8, 4096), BF16)]),
    "rebuild_padding_speculative": (lambda: preprocess.rebuild_padding(
        cuda((5000, 4096)), *_lengths(), cuda((20,), I32), None, 2048), [((20, 4096), BF16)]),
    "set_value_by_flags_and_idx": (lambda: preprocess.set_value_by_flags_and_idx(
        cuda((32, 1024), I64), cuda((32, 16), I64), cuda((32,), I32), cuda((32,), I32),
        cuda((32,), I32), cuda((32,), I64), cuda((32,), BOOL)), [((32, 1024), I64)]),
    "set_stop_value_multi_ends": (_set_stop, [((32, 1), I64), ((32, 1), BOOL), ((32, 1), I64)]),
}
