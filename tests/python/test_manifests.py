"""The manifests of the sm70 and sm80 modules say what each module contains and skips."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import fastdeploy_ops
from fastdeploy_ops import _loader

ROUTING_OPS = sorted(["grouped_topk", "noaux_tc", "fused_cast_sigmoid_bias", "moe_topk_select"])


def raw(package_dir: Path, sm: int) -> dict:
    return json.loads((package_dir / f"manifest_sm{sm}.json").read_text())


def test_sm70_has_routing_and_skips_activation(compiled_modules: Path) -> None:
    manifest = raw(compiled_modules, 70)
    assert manifest["module"] == "_ops_sm70" and manifest["sm"] == 70
    assert manifest["families"] == {"moe_routing": {"min_sm": 70, "ops": ROUTING_OPS}}
    assert manifest["skipped"] == {"activation": {
        "min_sm": 75, "ops": ["gelu_tanh"], "reason": "requires SM75+, this module is sm70"}}


def test_sm80_has_both_families(compiled_modules: Path) -> None:
    manifest = raw(compiled_modules, 80)
    assert manifest["module"] == "_ops_sm80" and manifest["sm"] == 80
    assert manifest["families"] == {"moe_routing": {"min_sm": 70, "ops": ROUTING_OPS},
                                    "activation": {"min_sm": 75, "ops": ["gelu_tanh"]}}
    assert manifest["skipped"] == {}


def test_manifests_record_the_build(compiled_modules: Path) -> None:
    for sm in (70, 80):
        manifest = raw(compiled_modules, sm)
        assert manifest["cuda_version"].startswith("12.4")
        gencode = [flag for flag in manifest["nvcc_flags"] if f"compute_{sm}" in flag]
        assert gencode and f"sm_{sm}" in gencode[0]
        assert manifest["package_version"] == fastdeploy_ops.__version__ != "0+unknown"


def test_loader_reads_the_same(compiled_modules: Path) -> None:
    manifests = _loader.read_manifests(compiled_modules)
    assert sorted(manifests) == [70, 80]
    assert manifests[70].ops == ROUTING_OPS
    assert manifests[80].ops == sorted(ROUTING_OPS + ["gelu_tanh"])
    assert manifests[70].skipped["activation"].reason == "requires SM75+, this module is sm70"


def test_modules_define_exactly_their_manifest_ops(compiled_modules: Path) -> None:
    for sm, manifest in _loader.read_manifests(compiled_modules).items():
        module = importlib.import_module(f"fastdeploy_ops.{manifest.module}")
        for op in manifest.ops:
            assert callable(getattr(module, op, None)), f"{manifest.module} lacks {op}"
        for family in manifest.skipped.values():
            for op in family.ops:
                assert not hasattr(module, op), f"{manifest.module} has skipped op {op}"
