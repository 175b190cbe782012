"""SM gating through a real build: the test-only family gated_demo (min_sm 80) next to the
shipped families, built for sm70 and sm80 (//tests/gating:ops_gating).

This family, whose kernel cannot even compile for sm_70 (it uses an SM80 intrinsic), shows in
isolation that a family above a module's SM is left out of that module and recorded as skipped
with the reason, while the sm80 module holds it (the shipped attention and quantization
families are gated the same way; //tests/python:test_manifests_all_sms pins theirs).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
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


@functools.cache
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
        "min_sm": 80, "ops": [OP], "group_min_sm": {},
        "reason": "requires SM80+, this module is sm70"}
    assert "gated_demo" not in m["families"]
    # The shipped families next to it are all present (activation included: tanhf on sm70).
    assert {"activation", "moe_routing", "speculative"} <= set(m["families"])


def test_sm80_manifest_holds_gated_demo() -> None:
    m = manifest(80)
    assert m["module"] == "_ops_sm80"
    assert m["families"]["gated_demo"] == {"min_sm": 80, "ops": [OP], "group_min_sm": {}}
    assert "gated_demo" not in m["skipped"]


def test_sm70_module_has_the_binding_but_no_kernels() -> None:
    sm70, sm80 = module(70), module(80)
    assert sm70._kernel_families()["gated_demo"] == ""
    assert sm80._kernel_families()["gated_demo"] == "builtin"
    assert sm70._kernel_families()["moe_routing"] == "builtin"
    with pytest.raises(RuntimeError, match=f"^{OP}: this module has no kernels of family "
                                           "'gated_demo'"):
        getattr(sm70, OP)(np.zeros(64, np.int32), np.zeros(2, np.int32), 0)
    assert callable(getattr(sm80, OP))
    assert callable(sm70.gelu_tanh) and callable(sm80.gelu_tanh)
    # The sm80 op is the registered binding: it validates, then wants CUDA tensors.
    x = np.zeros(64, np.int32)
    with pytest.raises(ValueError, match=f"^{OP}: argument 'input' must be a CUDA tensor"):
        getattr(sm80, OP)(x, np.zeros(2, np.int32), 0)
    with pytest.raises(ValueError, match=f"^{OP}: argument 'input' must have a multiple of 32"):
        getattr(sm80, OP)(x[:33], np.zeros(1, np.int32), 0)


def jit_sources_dir() -> Path:
    description = next(Path(p) for p in os.environ["JIT_FILES"].split()
                       if p.endswith("/families.json"))
    return description.parent


def test_jit_compiles_the_skipped_family_and_the_sm70_module_loads_it(tmp_path: Path) -> None:
    """A real JIT build with the build root's nvcc 12.4 (no GPU needed): gated_demo's shipped
    sources for sm80, loaded into the sm70 module, which was built without its kernels."""
    from fastdeploy_ops import jit

    sources_dir = tmp_path / "jit"
    shutil.copytree(jit_sources_dir(), sources_dir)  # as installed: files, not symlinks
    tree = jit.load_sources(sources_dir)
    assert tree.families["gated_demo"].min_sm == 80
    with pytest.raises(jit.JitError, match="requires SM80"):
        jit.build(tree, "gated_demo", 70, jit.find_compiler(), tmp_path / "cache", quiet=True)
    built = jit.build(tree, "gated_demo", 80, jit.find_compiler(), tmp_path / "cache", quiet=True)
    assert built.compiled and built.entry.problem() is None
    library = str(built.entry.library)

    sm70 = module(70)
    with pytest.raises(ValueError, match="unknown family 'nope'"):
        sm70._load_kernel_library("nope", library)
    with pytest.raises(RuntimeError, match="does not define fdops_kernel_table_activation"):
        sm70._load_kernel_library("activation", library, replace=True)
    with pytest.raises(RuntimeError, match="already has kernels"):
        sm70._load_kernel_library("moe_routing", library)
    sm70._load_kernel_library("gated_demo", library)
    assert sm70._kernel_families()["gated_demo"] == library
    # The binding now finds kernels and goes on to validate its arguments.
    with pytest.raises(ValueError, match=f"^{OP}: argument 'input' must be a CUDA tensor"):
        getattr(sm70, OP)(np.zeros(64, np.int32), np.zeros(2, np.int32), 0)
