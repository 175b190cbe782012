"""Which families each SM's module holds or skips, for every SM the wheel may ship.

The manifests come from //tests/python:manifests_all_sms (ops_manifests), written from the
families' declarations: no kernel of any SM is compiled for this test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SMS = (70, 80, 89, 90)

# Family -> min_sm of every family whose gating differs between the SMs above. Families missing
# here must be in every module (min_sm 70, checked below).
GATED = {
    "attention": 80,
    "attention_fp8": 89,
    "quantization": 89,
}

OPS = {
    "attention": [
        "paged_kv_append",
        "paged_decode_attention",
        "paged_prefill_attention",
        "paged_attention_plan",
    ],
    "attention_fp8": [
        "paged_kv_append_fp8",
        "paged_decode_attention_fp8",
        "paged_prefill_attention_fp8",
        "paged_attention_plan_fp8",
    ],
    "quantization": ["per_token_quant", "per_token_quant_padding"],
}


def manifests() -> dict[int, dict]:
    """SM -> manifest, from the files the BUILD rule passes in MANIFESTS."""
    loaded = [json.loads(Path(p).read_text()) for p in os.environ["MANIFESTS"].split()]
    return {m["sm"]: m for m in loaded}


def test_one_manifest_per_sm() -> None:
    found = manifests()
    assert sorted(found) == list(SMS)
    for sm, manifest in found.items():
        assert manifest["module"] == f"_ops_sm{sm}"
        assert f"-gencode=arch=compute_{sm},code=[sm_{sm},compute_{sm}]" in manifest["nvcc_flags"]


@pytest.mark.parametrize("sm", SMS)
@pytest.mark.parametrize("family", sorted(GATED))
def test_gated_family_is_included_or_skipped_with_its_reason(sm: int, family: str) -> None:
    manifest = manifests()[sm]
    min_sm = GATED[family]
    if sm >= min_sm:
        assert family in manifest["families"] and family not in manifest["skipped"]
        entry = manifest["families"][family]
    else:
        assert family in manifest["skipped"] and family not in manifest["families"]
        entry = manifest["skipped"][family]
        assert entry["reason"] == f"requires SM{min_sm}+, this module is sm{sm}"
    assert entry["min_sm"] == min_sm
    if family in OPS:
        assert entry["ops"] == OPS[family]


# The reasons users read, spelled out once (the parametrized test derives them).
@pytest.mark.parametrize("sm, family, reason", [
    (70, "attention", "requires SM80+, this module is sm70"),
    (70, "attention_fp8", "requires SM89+, this module is sm70"),
    (80, "attention_fp8", "requires SM89+, this module is sm80"),
    (80, "quantization", "requires SM89+, this module is sm80"),
])
def test_skip_reasons(sm: int, family: str, reason: str) -> None:
    assert manifests()[sm]["skipped"][family]["reason"] == reason


@pytest.mark.parametrize("sm", SMS)
def test_ungated_families_are_in_every_module(sm: int) -> None:
    manifest = manifests()[sm]
    assert set(manifest["skipped"]) == {f for f, min_sm in GATED.items() if min_sm > sm}
    for family, entry in manifest["families"].items():
        assert entry["min_sm"] == GATED.get(family, 70), family
