from typing import Any

from fake_tensors import BOOL, F32, I32, I64, Cases, cuda

from fastdeploy_ops import speculative

BS, DRAFT, TOTAL = 16, 4, 64


def _verify() -> Any:
    return speculative.speculate_verify(
        cuda((TOTAL,), I64), cuda((BS, DRAFT), I64), cuda((BS,), I32), cuda((BS,), I64),
        cuda((BS,), BOOL), cuda((BS,), I32), cuda((BS,), I32), cuda((BS, DRAFT), I64),
        cuda((BS,), I32), cuda((TOTAL, 4), I64), cuda((TOTAL, 4), F32), cuda((BS,), I64),
        cuda((2,), I64), cuda((BS,), BOOL), cuda((BS,), I32), cuda((TOTAL,), I32),
        cuda((BS,), I32), cuda((BS,), F32), 2048, 2, True, False)


def _update() -> Any:
    return speculative.speculate_update(
        cuda((BS,), I32), cuda((BS,), I32), cuda((1,), BOOL), cuda((BS, DRAFT), I64),
        cuda((BS,), I32), cuda((BS, DRAFT), I64), cuda((BS,), I32), cuda((BS,), BOOL),
        cuda((BS,), I32), cuda((BS,), BOOL), cuda((1,), I64))


CASES: Cases = {"speculate_verify": (_verify, [None]), "speculate_update": (_update, [None])}
