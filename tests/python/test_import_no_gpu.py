"""Importing and using the package where there is no GPU (each case in a fresh interpreter)."""

from __future__ import annotations

from pathlib import Path


INFO = """
import json, sys
import fastdeploy_ops
frameworks = sorted(m for m in ("torch", "paddle", "cupy", "jax", "numpy") if m in sys.modules)
probed = fastdeploy_ops._device.probe.cache_info().currsize
info = fastdeploy_ops.info()
print(json.dumps({"frameworks": frameworks, "probed_at_import": probed, "str": str(info),
                  "version": fastdeploy_ops.__version__, **info}))
"""

CALL = """
import json
import numpy as np
import fastdeploy_ops
from fastdeploy_ops import activation, moe_routing
calls = {
    "grouped_topk": lambda: moe_routing.grouped_topk(
        np.zeros((2, 16), np.float32), np.zeros(16, np.float32), 2, 1, 2),
    "gelu_tanh": lambda: activation.gelu_tanh(np.zeros((2, 16), np.float32)),
}
result = {}
for op, call in calls.items():
    try:
        call()
        result[op] = {"type": None}
    except Exception as exc:
        result[op] = {"type": type(exc).__name__, "message": str(exc),
                      **{k: getattr(exc, k, None) for k in ("op", "family", "required_sm",
                                                            "module_sm", "device_sm")}}
print(json.dumps(result))
"""


def test_import_touches_no_gpu_and_no_framework(run_python) -> None:
    out = run_python(INFO)
    assert out["frameworks"] == []
    assert out["probed_at_import"] == 0


def test_info_says_there_is_no_gpu(run_python) -> None:
    out = run_python(INFO)
    assert out["device"] is None
    assert out["device_problem"]
    assert out["module"] is None and out["module_sm"] is None and out["forced_sm"] is None
    assert "no GPU" in out["reason"] or "no _ops_smNN" in out["reason"]
    assert out["ops"] == [] and out["kernels"] == {}
    assert "device: none" in out["str"]
    assert out["torch_operators"] == "not registered yet (see fastdeploy_ops.register_torch_ops)"


def test_gpu_op_raises_device_unavailable(run_python) -> None:
    out = run_python(CALL)
    for op in ("grouped_topk", "gelu_tanh"):
        assert out[op]["type"] == "DeviceUnavailableError", out[op]
        assert out[op]["message"].startswith(f"{op}: no usable fastdeploy_ops module")
        assert out[op]["op"] == op


def test_info_lists_the_modules_in_the_wheel(run_python, compiled_modules: Path) -> None:
    out = run_python(INFO)
    assert out["modules"] == {"70": "_ops_sm70", "80": "_ops_sm80"}
    assert out["version"] != "0+unknown"
    assert out["package_dir"] == str(compiled_modules)
    assert "no GPU" in out["reason"]


def test_forced_sm70_loads_without_gpu(run_python, compiled_modules: Path) -> None:
    out = run_python(INFO, FASTDEPLOY_OPS_SM="70")
    assert out["module"] == "_ops_sm70" and out["module_sm"] == 70 and out["forced_sm"] == 70
    assert out["load_error"] is None
    assert "FASTDEPLOY_OPS_SM=70" in out["reason"] and "no GPU" in out["reason"]
    assert out["device"] is None
    assert out["ops"] == sorted(out["ops"])
    assert {"fused_cast_sigmoid_bias", "gelu_tanh", "grouped_topk", "moe_topk_select",
            "noaux_tc", "speculate_update", "speculate_verify"} <= set(out["ops"])
    assert "activation" not in out["skipped"]  # SM70+: tanhf instead of tanh.approx
    for family, reason in out["skipped"].items():  # families that need more than SM70
        assert reason.endswith(", this module is sm70"), reason
        assert f"skipped: {family}: {reason}" in out["str"]
    # A forced module is used as it is (never JIT): its own kernels, or none.
    for family, where in out["kernels"].items():
        expected = f"unavailable ({out['skipped'][family]})" if family in out["skipped"] else (
            "built into _ops_sm70")
        assert where == expected, (family, where)
    assert "kernels: activation: built into _ops_sm70" in out["str"]


def test_forced_sm70_gelu_tanh_reaches_the_binding(run_python, compiled_modules: Path) -> None:
    # activation is in the sm70 module: a CPU array gets past the loader to the device check.
    out = run_python(CALL, FASTDEPLOY_OPS_SM="70")["gelu_tanh"]
    assert out["type"] == "ValueError", out
    assert out["message"].startswith("gelu_tanh: argument 'input' must be a CUDA tensor"), out


def test_forced_sm70_routing_reaches_the_binding(run_python, compiled_modules: Path) -> None:
    # With a module loaded, a CPU array gets past the loader to the binding's device check.
    out = run_python(CALL, FASTDEPLOY_OPS_SM="70")["grouped_topk"]
    assert out["type"] in ("TypeError", "ValueError"), out
    assert "grouped_topk" in out["message"] and "CUDA" in out["message"]


def test_forced_sm_absent_names_the_available_modules(run_python, compiled_modules: Path) -> None:
    out = run_python(INFO, FASTDEPLOY_OPS_SM="75")
    assert out["module"] is None
    assert "FASTDEPLOY_OPS_SM=75" in out["reason"] and "sm70, sm80" in out["reason"]
    out = run_python(CALL, FASTDEPLOY_OPS_SM="75")["grouped_topk"]
    assert out["type"] == "DeviceUnavailableError" and "sm70, sm80" in out["message"]
