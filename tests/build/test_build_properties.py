"""Build-system properties, measured from Bazel's execution log (never from timings).

Runs a nested Bazel over a copy of this workspace, so the counts are of real CUDA compiles:
- touching one kernel source recompiles exactly that source once per SM, then relinks;
- touching a family's private header recompiles only that family's sources;
- touching a README or a test compiles and links nothing;
- the kernels are compiled once per SM, not once per Python ABI (abi3, cp311);
- adding sm90 to an sm70+sm80 build compiles only sm90 actions; adding sm120 compiles only sm120
  actions, with CUDA 13's nvcc, and a changed CUDA 13 stamp recompiles only those;
- two clean builds in different folders give byte-identical wheels.
"""

from __future__ import annotations

import re
import shutil

import pytest

from nested_bazel import Workspace, executed, executed_cuda_compiles

_SMS_70_80 = ["--//cuda:sms=70", "--//cuda:sms=80"]
_COMPILES_AND_LINKS = ("CudaCompile", "CppCompile", "CppLink")


def _linked_modules(spawns: list[dict]) -> list[tuple[str, str]]:
    """(Python ABI, SM) of every extension module the build linked, sorted."""
    found = []
    for spawn in executed(spawns, "CppLink"):
        match = re.search(r"/_ops/(\w+)/lib_ops_sm(\d+)\.so", " ".join(spawn["commandArgs"]))
        assert match, spawn["commandArgs"]
        found.append(match.groups())
    return sorted(found)


def _kernel_sources(ws: Workspace) -> list[str]:
    return sorted(str(p.relative_to(ws.path)) for p in (ws.path / "ops").glob("*/*.cu"))


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    ws = Workspace("a")
    ws.build("//python:wheel", *_SMS_70_80)
    yield ws
    ws.shutdown()


@pytest.fixture(scope="module")
def clean_wheel_sha256(workspace: Workspace) -> str:
    """The wheel of the untouched sources, before any test edits them."""
    return workspace.wheel_sha256()


def test_second_clean_build_elsewhere_gives_identical_wheel(
        workspace: Workspace, clean_wheel_sha256: str) -> None:
    other = Workspace("b")
    try:
        other.build("//python:wheel", *_SMS_70_80)
        assert other.wheel_sha256() == clean_wheel_sha256
    finally:
        other.shutdown()


def test_touching_one_kernel_recompiles_it_once_per_sm(
        workspace: Workspace, clean_wheel_sha256: str) -> None:
    # A new function, so the object (and hence the archive and the modules) really changes.
    workspace.append("ops/moe_routing/grouped_topk.cu", '\nextern "C" void fdops_touched() {}\n')
    spawns = workspace.build("//python:wheel", *_SMS_70_80)
    assert executed_cuda_compiles(spawns) == [
        ("ops/moe_routing/grouped_topk.cu", "70"),
        ("ops/moe_routing/grouped_topk.cu", "80"),
    ]
    assert not executed(spawns, "CppCompile")  # bindings and nanobind untouched
    # One module per SM and Python ABI relinked: both ABIs' modules hold the same kernel objects.
    assert _linked_modules(spawns) == [("abi3", "70"), ("abi3", "80"), ("cp311", "70"),
                                       ("cp311", "80")]


def test_a_second_python_abi_compiles_no_kernel(workspace: Workspace) -> None:
    # The stable-ABI wheel alone is a subset of the default build (abi3 and cp311): its kernels,
    # bindings and modules are the same actions, so nothing compiles or links, and the kernels of
    # the default build were compiled once per SM, not once per ABI.
    spawns = workspace.build("//python:wheel", *_SMS_70_80, "--//tools/python:abis=abi3")
    mnemonics = [s["mnemonic"] for s in spawns]
    assert "PyWheel" in mnemonics
    assert [m for m in mnemonics if m in _COMPILES_AND_LINKS] == []
    wheels = [w.name for w in workspace.path.glob("bazel-bin/python/wheel/*.whl")]
    assert len(wheels) == 1 and re.fullmatch(
        r"fastdeploy_ops-[\d.]+-cp312-abi3-manylinux_2_\d+_x86_64\.whl", wheels[0]), wheels


def test_touching_a_family_header_recompiles_only_that_family(workspace: Workspace) -> None:
    workspace.append("ops/activation/activation.h", "\n// touched by the incrementality test\n")
    spawns = workspace.build("//python:wheel", *_SMS_70_80)
    compiled = {source for source, _ in executed_cuda_compiles(spawns)}
    assert compiled and all(s.startswith("ops/activation/") for s in compiled), compiled
    # activation is SM70+ (tanhf on sm70): every source of it is rebuilt once per SM.
    sources = [s for s in _kernel_sources(workspace) if s.startswith("ops/activation/")]
    assert executed_cuda_compiles(spawns) == [(s, sm) for s in sources for sm in ("70", "80")]


def _nvcc_of(spawn: dict) -> str:
    """The nvcc a CudaCompile ran: the wrapper's first argument."""
    return spawn["commandArgs"][1]


def test_adding_sm120_compiles_only_sm120_with_cuda13(workspace: Workspace) -> None:
    spawns = workspace.build("//python:wheel", *_SMS_70_80, "--//cuda:sms=120")
    compiles = executed_cuda_compiles(spawns)
    assert {sm for _, sm in compiles} == {"120"}
    assert _sources(compiles) == _every_source(workspace)
    assert {_nvcc_of(s) for s in executed(spawns, "CudaCompile")} == {
        "external/_main~toolchains~cuda_toolkit_13/bin/nvcc"}
    assert {sm for _, sm in _linked_modules(spawns)} == {"120"}


def test_a_changed_cuda13_stamp_recompiles_only_the_cuda13_sms(workspace: Workspace) -> None:
    # The CUDA 13 repository as fetched, with one line added to its stamp: the sm120 actions
    # (CUDA 13) must all run again, the sm70 and sm80 ones (CUDA 12.4) none.
    assert executed_cuda_compiles(
        workspace.build("//python:wheel", *_SMS_70_80, "--//cuda:sms=120")) == []
    (fetched,) = [p for p in (workspace.info("output_base") / "external").glob("*cuda_toolkit_13")
                  if p.is_dir()]
    changed = workspace.path.parent / "cuda_toolkit_13_changed"
    shutil.copytree(fetched, changed, symlinks=True)
    with open(changed / "version.txt", "a") as f:
        f.write("toolkit rebuilt with a different patch level\n")
    spawns = workspace.build("//python:wheel", *_SMS_70_80, "--//cuda:sms=120",
                             f"--override_repository={fetched.name}={changed}")
    compiled = executed_cuda_compiles(spawns)
    assert {sm for _, sm in compiled} == {"120"}
    assert _sources(compiled) == _every_source(workspace)
    # The same compiler gives the same objects, so nothing downstream of them runs again.
    assert _linked_modules(spawns) == []


# The README is the wheel's long description and the shipped GPU tests are in the wheel, so both
# rewrite the wheel, but neither may compile or link anything.
@pytest.mark.parametrize("touched", ["README.md", "python/fastdeploy_ops/tests/test_rotary.py"])
def test_touching_a_readme_or_a_test_compiles_nothing(workspace: Workspace, touched: str) -> None:
    workspace.append(touched, "\n# touched by the incrementality test\n")
    spawns = workspace.build("//python:wheel", *_SMS_70_80)
    mnemonics = [s["mnemonic"] for s in spawns]
    assert "PyWheel" in mnemonics  # the edit was seen
    assert [m for m in mnemonics if m in _COMPILES_AND_LINKS] == []


def test_adding_sm90_compiles_only_sm90(workspace: Workspace) -> None:
    spawns = workspace.build("//python:wheel", *_SMS_70_80, "--//cuda:sms=90")
    compiles = executed_cuda_compiles(spawns)
    assert {sm for _, sm in compiles} == {"90"}
    # Every source once, the generated instantiation groups (under bazel-out) included.
    assert _sources(compiles) == _every_source(workspace)


def _sources(compiles: list[tuple[str, str]]) -> list[str]:
    """The sources of `compiles`, generated ones without their bazel-out/<config>/bin/ prefix."""
    return sorted(re.sub(r"^bazel-out/[^/]+/bin/", "", source) for source, _ in compiles)


def _every_source(workspace: Workspace) -> list[str]:
    """Every kernel source, the generated instantiation groups (under bazel-out) included."""
    generated = {p.name for p in workspace.path.glob("bazel-out/*/bin/ops/*/*.cu")}
    return sorted(_kernel_sources(workspace) + [f"ops/attention/{name}" for name in generated])
