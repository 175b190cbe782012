"""SM gating through a real build: the test-only family gated_demo (min_sm 80) next to the
shipped families, built for sm70 and sm80 (//tests/gating:ops_gating).

Every shipped family runs on SM70, so this family is what shows that a family above a module's
SM is left out of that module (its kernels are not even compiled: they use an SM80 intrinsic)
and recorded as skipped with the reason, while the sm80 module holds it.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

OP = "gated_demo_warp_sum"


def files() -> dict[str, Path]:
    paths = [Path(p) for p in os.environ["GATING_FILES"].split()]
    return {p.name: p for p in paths}


def manifest(sm: int) -> dict:
    return json.loads(files()[f"manifest_sm{sm}.json"].read_text())


def module(sm: int) -> ModuleType:
    name = f"_ops_sm{sm}"
    spec = importlib.util.spec_from_file_location(name, files()[f"{name}.abi3.so"])
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def test_both_modules_are_built() -> None:
    assert sorted(files()) == ["_ops_sm70.abi3.so", "_ops_sm80.abi3.so", "manifest_sm70.json",
                               "manifest_sm80.json"]


def test_sm70_manifest_skips_gated_demo_with_the_reason() -> None:
    m = manifest(70)
    assert m["module"] == "_ops_sm70"
    assert m["skipped"]["gated_demo"] == {
        "min_sm": 80, "ops": [OP], "reason": "requires SM80+, this module is sm70"}
    assert "gated_demo" not in m["families"]
    # The shipped families next to it are all present (activation included: tanhf on sm70).
    assert {"activation", "moe_routing", "speculative"} <= set(m["families"])


def test_sm80_manifest_holds_gated_demo() -> None:
    m = manifest(80)
    assert m["module"] == "_ops_sm80"
    assert m["families"]["gated_demo"] == {"min_sm": 80, "ops": [OP]}
    assert "gated_demo" not in m["skipped"]


def test_sm70_module_lacks_the_op_and_sm80_module_has_it() -> None:
    sm70, sm80 = module(70), module(80)
    assert not hasattr(sm70, OP)
    assert callable(getattr(sm80, OP))
    assert callable(sm70.gelu_tanh) and callable(sm80.gelu_tanh)
    # The sm80 op is the registered binding: it validates, then wants CUDA tensors.
    x = np.zeros(64, np.int32)
    with pytest.raises(ValueError, match=f"^{OP}: argument 'input' must be a CUDA tensor"):
        getattr(sm80, OP)(x, np.zeros(2, np.int32), 0)
    with pytest.raises(ValueError, match=f"^{OP}: argument 'input' must have a multiple of 32"):
        getattr(sm80, OP)(x[:33], np.zeros(1, np.int32), 0)
