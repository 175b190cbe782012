"""The manifests of the sm70 and sm80 modules say what each module contains and skips."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

import fastdeploy_ops
from fastdeploy_ops import _loader

ROUTING_OPS = sorted(["grouped_topk", "noaux_tc", "fused_cast_sigmoid_bias", "moe_topk_select"])
# Families whose entries are pinned here; every family's gating is checked against its min_sm
# below (and //tests/gating pins the skip of a family that needs more than SM70).
PINNED = {
    "activation": {"min_sm": 70, "ops": ["gelu_tanh"]},  # tanhf on sm70, tanh.approx on sm75+
    "moe_routing": {"min_sm": 70, "ops": ROUTING_OPS},
    "speculative": {"min_sm": 70, "ops": ["speculate_update", "speculate_verify"]},
}
# Families above SM80: skipped by the sm70 and sm80 modules, held by the sm89 and sm90 ones.
NEWER = {
    "quantization": {"min_sm": 89, "ops": ["per_token_quant", "per_token_quant_padding"]},
}


def raw(package_dir: Path, sm: int) -> dict:
    return json.loads((package_dir / f"manifest_sm{sm}.json").read_text())


def declared(manifest: dict) -> dict:
    """Every family of the manifest, present or skipped: name -> (min_sm, ops)."""
    entries = {**manifest["families"], **manifest["skipped"]}
    return {name: (entry["min_sm"], entry["ops"]) for name, entry in entries.items()}


@pytest.mark.parametrize("sm", [70, 80])
def test_each_module_holds_exactly_the_families_its_sm_allows(compiled_modules: Path,
                                                              sm: int) -> None:
    manifest = raw(compiled_modules, sm)
    assert manifest["module"] == f"_ops_sm{sm}" and manifest["sm"] == sm
    for name, entry in PINNED.items():
        assert manifest["families"][name] == entry, name
    for name, entry in manifest["families"].items():
        assert entry["min_sm"] <= sm, name
    for name, entry in manifest["skipped"].items():
        assert entry["min_sm"] > sm, name
        assert entry["reason"] == f"requires SM{entry['min_sm']}+, this module is sm{sm}"


@pytest.mark.parametrize("sm", [70, 80])
def test_families_above_sm80_are_skipped_with_the_reason(compiled_modules: Path, sm: int) -> None:
    manifest = raw(compiled_modules, sm)
    for name, entry in NEWER.items():
        assert name not in manifest["families"]
        assert manifest["skipped"][name] == {
            **entry, "reason": f"requires SM{entry['min_sm']}+, this module is sm{sm}"}


def test_sm70_and_sm80_declare_the_same_families(compiled_modules: Path) -> None:
    sm70, sm80 = raw(compiled_modules, 70), raw(compiled_modules, 80)
    assert declared(sm70) == declared(sm80)
    assert set(sm70["families"]) <= set(sm80["families"])
    assert "activation" not in sm70["skipped"]


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
    for sm, manifest in manifests.items():
        families = raw(compiled_modules, sm)["families"]
        assert manifest.ops == sorted(op for f in families.values() for op in f["ops"])
        assert {op for entry in PINNED.values() for op in entry["ops"]} <= set(manifest.ops)
        assert {n: f.reason for n, f in manifest.skipped.items()} == {
            n: f["reason"] for n, f in raw(compiled_modules, sm)["skipped"].items()}
    assert "gelu_tanh" in manifests[70].ops and "activation" not in manifests[70].skipped


def test_modules_bind_every_family_and_hold_the_kernels_of_their_manifest(
        compiled_modules: Path) -> None:
    """Bindings are SM-independent: every module defines every family's ops; only the families
    of its manifest have kernels (the skipped ones get theirs from fastdeploy_ops.jit)."""
    for sm, manifest in _loader.read_manifests(compiled_modules).items():
        module = importlib.import_module(f"fastdeploy_ops.{manifest.module}")
        origins = module._kernel_families()
        assert set(origins) == set(manifest.families) | set(manifest.skipped)
        for name, family in {**manifest.families, **manifest.skipped}.items():
            for op in family.ops:
                assert callable(getattr(module, op, None)), f"{manifest.module} lacks {op}"
            assert origins[name] == ("" if name in manifest.skipped else "builtin"), name
