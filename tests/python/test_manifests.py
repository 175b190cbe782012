"""The manifests of the sm70 and sm80 modules say what each module contains and skips.

What each module must hold is derived from the families' declarations (their ops_family min_sm
and ops), which the wheel carries in jit/families.json: a new family needs no edit here.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

import fastdeploy_ops
from fastdeploy_ops import _manifest

def raw(package_dir: Path, sm: int) -> dict:
    return json.loads((package_dir / f"manifest_sm{sm}.json").read_text())


def declarations(package_dir: Path) -> dict[str, dict]:
    """Family -> {"min_sm", "ops", "group_min_sm"} as its ops_family declares them
    (jit/families.json)."""
    families = json.loads((package_dir / "jit" / "families.json").read_text())["families"]
    return {name: {key: f[key] for key in ("min_sm", "ops", "group_min_sm")}
            for name, f in families.items()}


@pytest.mark.parametrize("sm", [70, 80])
def test_each_module_holds_exactly_the_families_its_sm_allows(compiled_modules: Path,
                                                              sm: int) -> None:
    manifest = raw(compiled_modules, sm)
    assert manifest["module"] == f"_ops_sm{sm}" and manifest["sm"] == sm
    declared = declarations(compiled_modules)
    assert manifest["families"] == {
        name: entry for name, entry in declared.items() if entry["min_sm"] <= sm}
    assert manifest["skipped"] == {
        name: {**entry, "reason": f"requires SM{entry['min_sm']}+, this module is sm{sm}"}
        for name, entry in declared.items() if entry["min_sm"] > sm}


def test_activation_is_in_the_sm70_module(compiled_modules: Path) -> None:
    # Stated on purpose, not derived: activation's sm70 kernels evaluate tanh with tanhf
    # (tanh.approx.f32 exists from SM75 on), so the sm70 module must hold the family.
    assert "activation" in raw(compiled_modules, 70)["families"]


def test_manifests_record_the_build(compiled_modules: Path) -> None:
    for sm in (70, 80):
        manifest = raw(compiled_modules, sm)
        assert manifest["cuda_version"].startswith("12.4")
        gencode = [flag for flag in manifest["nvcc_flags"] if f"compute_{sm}" in flag]
        assert gencode and f"sm_{sm}" in gencode[0]
        assert manifest["package_version"] == fastdeploy_ops.__version__ != "0+unknown"


def test_loader_reads_the_same(compiled_modules: Path) -> None:
    manifests = _manifest.read_manifests(compiled_modules)
    assert sorted(manifests) == [70, 80]
    declared = declarations(compiled_modules)
    for sm, manifest in manifests.items():
        assert manifest.ops == sorted(
            op for entry in declared.values() if entry["min_sm"] <= sm for op in entry["ops"])
        assert {n: f.reason for n, f in manifest.skipped.items()} == {
            n: f["reason"] for n, f in raw(compiled_modules, sm)["skipped"].items()}


def test_modules_bind_every_family_and_hold_the_kernels_of_their_manifest(
        compiled_modules: Path) -> None:
    """Bindings are SM-independent: every module defines every family's ops; only the families
    of its manifest have kernels (the skipped ones get theirs from fastdeploy_ops.jit)."""
    declared = declarations(compiled_modules)
    for sm, manifest in _manifest.read_manifests(compiled_modules).items():
        module = importlib.import_module(f"fastdeploy_ops.{manifest.module}")
        origins = module._kernel_families()
        assert set(origins) == set(declared)
        for name, entry in declared.items():
            for op in entry["ops"]:
                assert callable(getattr(module, op, None)), f"{manifest.module} lacks {op}"
            assert origins[name] == ("" if name in manifest.skipped else "builtin"), name
