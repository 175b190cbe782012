"""Which families each SM's module holds or skips, for every SM the wheel may ship.

The manifests come from //tests/python:manifests_all_sms (ops_manifests), the declarations
(every ops_family's min_sm and ops) from the jit/families.json that //python:jit_sources writes;
both are written from the families' BUILD files at analysis: no kernel of any SM is compiled
for this test. Every manifest must hold exactly the declared families and ops (so each family's
ops are the same in every module); a new family needs no edit here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SMS = (70, 80, 89, 90, 100, 120)  # the sms of //tests/python:manifests_all_sms

# What the hardware requires of these families: facts stated here on purpose, not derived, so
# that a declaration lowered below what its kernels need fails.
REQUIRED_SM = {
    "attention": 80,  # tensor-core kernels: mma.sync on bf16/fp16 and cp.async (SM80+)
    "quantization": 89,  # rounds to e4m3 with cvt.rn.satfinite.e4m3x2 (SM89+)
}
# Instantiation groups that need more than their family.
REQUIRED_GROUP_SM = {
    ("attention", "cache=fp8"): 89,  # e4m3 caches: the hardware e4m3 conversions (SM89+)
}


def manifests() -> dict[int, dict]:
    """SM -> manifest, from the files the BUILD rule passes in MANIFESTS."""
    loaded = [json.loads(Path(p).read_text()) for p in os.environ["MANIFESTS"].split()]
    return {m["sm"]: m for m in loaded}


def declarations() -> dict[str, dict]:
    """Family -> {"min_sm", "ops", "group_min_sm"} as its ops_family declares them."""
    return {name: {key: f[key] for key in ("min_sm", "ops", "group_min_sm")}
            for name, f in families_json()["families"].items()}


def families_json() -> dict:
    (path,) = [Path(p) for p in os.environ["JIT_FILES"].split() if p.endswith("/families.json")]
    return json.loads(path.read_text())


def test_one_manifest_per_sm() -> None:
    found = manifests()
    assert sorted(found) == list(SMS)
    for sm, manifest in found.items():
        assert manifest["module"] == f"_ops_sm{sm}"
        if sm == 90:  # SASS for sm_90a (wgmma), portable PTX for newer GPUs
            expected = ["-gencode=arch=compute_90a,code=sm_90a",
                        "-gencode=arch=compute_90,code=compute_90"]
        else:
            expected = [f"-gencode=arch=compute_{sm},code=[sm_{sm},compute_{sm}]"]
        assert all(flag in manifest["nvcc_flags"] for flag in expected)


@pytest.mark.parametrize("sm", SMS)
def test_each_manifest_names_its_toolkit_and_the_driver_it_needs(sm: int) -> None:
    # CUDA 12.4 up to sm90 (the last toolkit that targets sm70), CUDA 13 from sm100 on.
    manifest = manifests()[sm]
    if sm >= 100:
        assert manifest["cuda_version"].startswith("13.")
        assert manifest["cuda_min_driver"] == "580.65.06"
    else:
        assert manifest["cuda_version"].startswith("12.4.")
        assert manifest["cuda_min_driver"] == "525.60.13"


@pytest.mark.parametrize("sm", SMS)
def test_module_holds_the_families_its_sm_allows_and_skips_the_others(sm: int) -> None:
    manifest = manifests()[sm]
    declared = declarations()
    assert manifest["families"] == {
        name: entry for name, entry in declared.items() if entry["min_sm"] <= sm}
    assert manifest["skipped"] == {
        name: {**entry, "reason": f"requires SM{entry['min_sm']}+, this module is sm{sm}"}
        for name, entry in declared.items() if entry["min_sm"] > sm}


@pytest.mark.parametrize("family", sorted(REQUIRED_SM))
def test_families_declare_what_their_hardware_requires(family: str) -> None:
    assert declarations()[family]["min_sm"] == REQUIRED_SM[family]


@pytest.mark.parametrize("family, group", sorted(REQUIRED_GROUP_SM))
def test_groups_declare_what_their_hardware_requires(family: str, group: str) -> None:
    sm = REQUIRED_GROUP_SM[family, group]
    assert declarations()[family]["group_min_sm"] == {group: sm}
    # The JIT builds those groups' sources only for such SMs: every one of them is marked.
    value = group.partition("=")[2]
    entry = families_json()["families"][family]
    marked = {path for path, min_sm in entry["source_min_sm"].items() if min_sm == sm}
    assert marked == {path for path in entry["sources"] if f"_{value}_" in path.rpartition("/")[2]}
    assert len(marked) == 6  # 2 dtypes x 3 head dims


# The reasons users read, spelled out once (the tests above derive them).
@pytest.mark.parametrize("sm, family, reason", [
    (70, "attention", "requires SM80+, this module is sm70"),
    (80, "quantization", "requires SM89+, this module is sm80"),
])
def test_skip_reasons(sm: int, family: str, reason: str) -> None:
    assert manifests()[sm]["skipped"][family]["reason"] == reason
