"""Module selection and the loader's errors, without compiled modules or a GPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastdeploy_ops import _device, _loader, _manifest, _selection
from fastdeploy_ops._manifest import Manifest
from fastdeploy_ops._selection import Selection, select_module
from fastdeploy_ops.errors import DeviceUnavailableError, OpUnavailableError

CUDA_13_0 = 13000
CUDA_12_4 = 12040


def _built(*sms: int, cuda13: tuple[int, ...] = ()) -> dict[int, str]:
    """Modules of `sms`, as the wheel builds them: CUDA 13.5 for `cuda13`, else CUDA 12.4."""
    return {sm: "13.5.37" if sm in cuda13 else "12.4.131" for sm in sms}


@pytest.mark.parametrize(
    ("available", "device_sm", "driver", "expected"),
    [
        # Same major version: the highest SM not above the device (SASS runs natively).
        ([70, 80, 90], 86, CUDA_12_4, 80),
        ([70, 80, 86], 80, CUDA_12_4, 80),
        ([80, 86, 89, 90], 89, CUDA_12_4, 89),
        ([80, 86, 89, 90], 87, CUDA_12_4, 86),
        ([70, 80], 75, CUDA_12_4, 70),
        ([70, 75, 80], 75, CUDA_12_4, 75),
        ([90, 70, 80, 80], 90, CUDA_12_4, 90),  # order and duplicates do not matter
        # Same major preferred over a higher SM of an older major.
        ([86, 90], 90, CUDA_13_0, 90),
        # No module of the device's major version: PTX of the highest older SM, if the driver
        # can JIT CUDA 12.4 PTX.
        ([70, 80], 90, CUDA_13_0, 80),
        ([70, 80, 89], 90, CUDA_12_4, 89),
        ([70, 80, 90], 120, 12080, 90),
        ([90], 100, CUDA_12_4, 90),
        ([90], 100, CUDA_12_4 - 10, None),
        ([70, 80], 90, 12020, None),
        ([70, 80], 90, None, None),
        # Nothing at or below the device.
        ([75, 80], 70, CUDA_13_0, None),
        ([90], 86, CUDA_13_0, None),
        # No device, or no module.
        ([70, 80], None, None, None),
        ([70, 80], None, CUDA_13_0, None),
        ([], 90, CUDA_13_0, None),
    ],
)
def test_select_module(available: list[int], device_sm: int | None, driver: int | None,
                       expected: int | None) -> None:
    sm, reason = select_module(_built(*available), device_sm, driver, None)
    assert sm == expected, reason
    assert reason


@pytest.mark.parametrize(
    ("sms", "cuda13", "device_sm", "driver", "expected"),
    [
        # Blackwell modules (CUDA 13) need a driver of the CUDA 13 line, any minor version.
        ((90, 100, 120), (100, 120), 100, CUDA_13_0, 100),
        ((90, 100, 120), (100, 120), 120, 13020, 120),
        ((90, 100, 120), (100, 120), 103, CUDA_13_0, 100),
        # An older driver: the sm90 module's CUDA 12.4 PTX instead, if the driver JITs it.
        ((90, 100, 120), (100, 120), 100, 12080, 90),
        ((100, 120), (100, 120), 100, 12080, None),
        ((90, 100), (100,), 100, 12020, None),
        # sm90 built with CUDA 13 (--config=sm90-cuda13): on a CUDA 12 driver, the sm80 PTX.
        ((80, 90), (90,), 90, 12080, 80),
        ((80, 90), (90,), 90, 13010, 90),
        ((90,), (90,), 90, 12080, None),
        # CUDA 13 PTX of an older major needs a driver at least as new as CUDA 13.5.
        ((90,), (90,), 100, 13050, 90),
        ((90,), (90,), 100, 13000, None),
    ],
)
def test_select_module_by_driver(sms: tuple[int, ...], cuda13: tuple[int, ...],
                                 device_sm: int, driver: int, expected: int | None) -> None:
    sm, reason = select_module(_built(*sms, cuda13=cuda13), device_sm, driver, None)
    assert sm == expected, reason
    assert reason


def test_driver_reasons_name_the_driver_needed() -> None:
    _, reason = select_module(_built(100, cuda13=(100,)), 100, 12080, None)
    assert "sm100 is built with CUDA 13.5.37" in reason
    assert "CUDA 13 line" in reason and "this driver is CUDA 12.8" in reason
    _, reason = select_module(_built(90, 100, cuda13=(100,)), 100, 12080, None)
    assert "sm90's PTX is JIT-compiled" in reason and "CUDA 13 line" in reason
    _, reason = select_module(_built(90, cuda13=(90,)), 90, 12080, 90)
    assert "forced" in reason and "CUDA 13 line" in reason


def test_reasons_say_why() -> None:
    assert "same major" in select_module(_built(70, 80), 86, CUDA_12_4, None)[1]
    assert "PTX" in select_module(_built(70, 80), 90, CUDA_13_0, None)[1]
    too_old = select_module(_built(70, 80), 90, 12020, None)[1]
    assert "driver" in too_old and "CUDA 12.2" in too_old and "sm70, sm80" in too_old
    assert "newer" in select_module(_built(75, 80), 70, CUDA_13_0, None)[1]
    assert "no GPU" in select_module(_built(70), None, None, None)[1]
    assert "no _ops_smNN" in select_module(_built(), 90, CUDA_13_0, None)[1]


@pytest.mark.parametrize("device_sm", [None, 70, 90])
def test_forced_sm_present_is_used_with_or_without_gpu(device_sm: int | None) -> None:
    sm, reason = select_module(_built(70, 80), device_sm, CUDA_13_0 if device_sm else None, 70)
    assert sm == 70
    assert "FASTDEPLOY_OPS_SM=70" in reason
    assert ("no GPU" in reason) == (device_sm is None)


def test_forced_sm_newer_than_device_is_used_with_a_warning() -> None:
    sm, reason = select_module(_built(70, 90), 80, CUDA_13_0, 90)
    assert sm == 90
    assert "SM80" in reason and "will not launch" in reason


def test_forced_sm_absent_names_the_available_modules() -> None:
    sm, reason = select_module(_built(80, 70), 90, CUDA_13_0, 75)
    assert sm is None
    assert "FASTDEPLOY_OPS_SM=75" in reason and "sm70, sm80" in reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("  ", None), ("80", 80), (" 70 ", 70), ("sm80", 80),
     ("SM_90", 90), ("sm_75", 75)],
)
def test_parse_forced_sm(value: str | None, expected: int | None) -> None:
    assert _selection.parse_forced_sm(value) == expected


@pytest.mark.parametrize("value", ["abc", "8.0", "sm", "-70"])
def test_parse_forced_sm_rejects_garbage(value: str) -> None:
    with pytest.raises(ValueError, match="FASTDEPLOY_OPS_SM"):
        _selection.parse_forced_sm(value)


ROUTING = {"min_sm": 70, "ops": ["noaux_tc", "grouped_topk"], "group_min_sm": {}}
# Synthetic manifests of a wheel whose activation family is gated at SM75 (the real one is
# SM70+; //tests/gating pins the gating of a real build): the loader logic does not care.
ACTIVATION = {"min_sm": 75, "ops": ["gelu_tanh"], "group_min_sm": {}}


def manifest_json(sm: int, with_activation: bool) -> dict[str, object]:
    families = {"moe_routing": ROUTING}
    skipped = {}
    if with_activation:
        families["activation"] = ACTIVATION
    else:
        skipped["activation"] = {**ACTIVATION, "reason": f"requires SM75+, this module is sm{sm}"}
    return {"schema_version": _manifest.SCHEMA_VERSION, "module": f"_ops_sm{sm}", "sm": sm,
            "package_version": "1.2.3", "families": families, "skipped": skipped, "cuda_version": "12.4.131",
            "nvcc_flags": ["-O3", f"-gencode=arch=compute_{sm},code=[sm_{sm},compute_{sm}]"]}


def test_read_manifests(tmp_path: Path) -> None:
    for sm, with_activation in ((70, False), (80, True)):
        text = json.dumps(manifest_json(sm, with_activation))
        (tmp_path / f"manifest_sm{sm}.json").write_text(text)
    (tmp_path / "unrelated.json").write_text("{}")
    manifests = _manifest.read_manifests(tmp_path)
    assert sorted(manifests) == [70, 80]
    sm70, sm80 = manifests[70], manifests[80]
    assert sm70.module == "_ops_sm70" and sm70.package_version == "1.2.3"
    assert sm70.ops == ["grouped_topk", "noaux_tc"]
    assert sm70.skipped["activation"].reason == "requires SM75+, this module is sm70"
    assert sm70.skipped["activation"].min_sm == 75
    assert sm80.ops == ["gelu_tanh", "grouped_topk", "noaux_tc"]
    assert sm80.skipped == {}
    assert sm80.cuda_version == "12.4.131"


@pytest.mark.parametrize("breaks", ["no families", "no cuda_version", "cuda_version 13"])
def test_read_manifests_names_a_malformed_file(tmp_path: Path, breaks: str) -> None:
    bad = manifest_json(80, True)
    if breaks == "no families":
        del bad["families"]
    elif breaks == "no cuda_version":
        del bad["cuda_version"]
    else:
        bad["cuda_version"] = "13"  # the loader compares driver versions with it
    (tmp_path / "manifest_sm80.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="manifest_sm80.json"):
        _manifest.read_manifests(tmp_path)


def test_read_manifests_refuses_another_schema_version(tmp_path: Path) -> None:
    for version in (None, _manifest.SCHEMA_VERSION - 1, _manifest.SCHEMA_VERSION + 1):
        old = manifest_json(80, True)
        if version is None:
            del old["schema_version"]
        else:
            old["schema_version"] = version
        (tmp_path / "manifest_sm80.json").write_text(json.dumps(old))
        with pytest.raises(ValueError, match=f"manifest_sm80.json.*schema_version {version!r}"):
            _manifest.read_manifests(tmp_path)


def manifest(sm: int, with_activation: bool) -> Manifest:
    return _manifest.parse_manifest(manifest_json(sm, with_activation))


def device(sm: int | None) -> _device.Device:
    if sm is None:
        return _device.Device(None, None, 0, None, "no CUDA driver (test)")
    return _device.Device(sm, f"Test GPU {sm}", 1, CUDA_13_0, None)


def use_selection(monkeypatch: pytest.MonkeyPatch, sm: int | None, device_sm: int | None,
                  forced: int | None = None) -> None:
    manifests = {70: manifest(70, False), 80: manifest(80, True)}
    chosen = Selection(manifests, device(device_sm), forced, sm, "test selection")
    monkeypatch.setattr(_selection, "selection", lambda: chosen)


def test_get_op_without_module_raises_device_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    use_selection(monkeypatch, None, None)
    with pytest.raises(DeviceUnavailableError, match="^grouped_topk: .*test selection") as info:
        _loader.get_op("moe_routing", "grouped_topk")
    assert info.value.op == "grouped_topk"


def test_op_unavailable_message_for_a_forced_older_module(monkeypatch: pytest.MonkeyPatch) -> None:
    use_selection(monkeypatch, 70, 90, forced=70)
    with pytest.raises(OpUnavailableError) as info:
        _loader.get_op("activation", "gelu_tanh")
    err = info.value
    assert (err.op, err.family, err.required_sm, err.module_sm, err.device_sm) == (
        "gelu_tanh", "activation", 75, 70, 90)
    assert err.alternatives == (80,)
    message = str(err)
    for part in ("gelu_tanh", "'activation'", "SM75+", "_ops_sm70", "SM90",
                 "requires SM75+, this module is sm70", "FASTDEPLOY_OPS_SM", "80", "--config=sm90"):
        assert part in message, (part, message)


def test_op_unavailable_on_a_gpu_that_cannot_run_it(monkeypatch: pytest.MonkeyPatch) -> None:
    use_selection(monkeypatch, 70, 70)
    with pytest.raises(OpUnavailableError, match=r"This GPU \(SM70\) cannot run it"):
        _loader.get_op("activation", "gelu_tanh")


def test_op_of_a_family_no_module_has(monkeypatch: pytest.MonkeyPatch) -> None:
    use_selection(monkeypatch, 80, 90)
    with pytest.raises(OpUnavailableError, match="family 'attention' is in no module") as info:
        _loader.get_op("attention", "append_attention")
    assert info.value.required_sm is None


def test_selection_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    manifests = {70: manifest(70, False), 80: manifest(80, True)}
    monkeypatch.setattr(_selection, "read_manifests", lambda: manifests)
    monkeypatch.setattr(_device, "probe", lambda: device(86))
    cases = [("sm_70", 70, "FASTDEPLOY_OPS_SM=70"), ("", 80, "same major"),
             ("x", None, "FASTDEPLOY_OPS_SM='x'")]
    try:
        for value, expected, why in cases:
            monkeypatch.setenv(_selection.ENV_FORCE_SM, value)
            _selection.selection.cache_clear()
            chosen = _selection.selection()
            assert chosen.sm == expected and why in chosen.reason, chosen
    finally:
        _selection.selection.cache_clear()


def test_selection_adds_the_device_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_selection, "read_manifests", lambda: {70: manifest(70, False)})
    monkeypatch.setattr(_device, "probe", lambda: device(None))
    monkeypatch.delenv(_selection.ENV_FORCE_SM, raising=False)
    _selection.selection.cache_clear()
    try:
        chosen = _selection.selection()
        assert chosen.sm is None
        assert "no GPU" in chosen.reason and "no CUDA driver (test)" in chosen.reason
    finally:
        _selection.selection.cache_clear()
