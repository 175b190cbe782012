"""cuda_instantiations in real builds, measured from Bazel's execution log.

A nested Bazel over a copy of this workspace builds //tests/build/instantiation_fixture (three
instantiation groups of one template, sm80 only), then edits it:
- generating the groups twice (after `bazel clean`) gives byte-identical files naming their group;
- changing one group's value, or adding a value to the axis, compiles exactly the new group;
- touching the header every group includes, or the template, recompiles every group;
and //tests/python:test_manifests_all_sms (the sm70/80/89/90 manifests) builds without a compile.
"""

from __future__ import annotations

import hashlib
import pathlib
import subprocess

import pytest

from nested_bazel import Workspace, executed_cuda_compiles

FIXTURE = "tests/build/instantiation_fixture"
GROUPS = f"//{FIXTURE}:groups"
OBJECTS = f"//{FIXTURE}:objects_sm80"
_COMPILES_AND_LINKS = ("CudaCompile", "CppCompile", "CppLink")


def compiled_groups(spawns: list[dict]) -> list[tuple[str, str]]:
    """(generated file name, sm) of every CudaCompile that ran."""
    return [(pathlib.Path(source).name, sm) for source, sm in executed_cuda_compiles(spawns)]


def sm80(*names: str) -> list[tuple[str, str]]:
    return sorted((name, "80") for name in names)


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    ws = Workspace("instantiations")
    yield ws
    ws.shutdown()


def test_the_all_sm_manifests_test_compiles_nothing(workspace: Workspace) -> None:
    spawns = workspace.build("//tests/python:test_manifests_all_sms")
    assert [s["mnemonic"] for s in spawns if s.get("mnemonic") in _COMPILES_AND_LINKS] == []
    folder = workspace.path / "bazel-bin/tests/python/manifests_all_sms"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"manifest_sm{sm}.json" for sm in (70, 80, 89, 90, 100, 120))


def _generated(ws: Workspace) -> dict[str, str]:
    ws.build(GROUPS)
    folder = ws.path / "bazel-bin" / FIXTURE
    return {p.name: p.read_text() for p in sorted(folder.glob("scale_x*.cu"))}


def test_generating_twice_gives_identical_files(workspace: Workspace) -> None:
    first = _generated(workspace)
    subprocess.run(workspace.bazel("clean"), cwd=workspace.path, check=True)
    second = _generated(workspace)
    assert {n: hashlib.sha256(t.encode()).hexdigest() for n, t in second.items()} == \
        {n: hashlib.sha256(t.encode()).hexdigest() for n, t in first.items()}
    assert sorted(first) == ["scale_x1.cu", "scale_x2.cu", "scale_x3.cu"]
    for name, text in first.items():
        factor = name.removeprefix("scale_x").removesuffix(".cu")
        assert f"// Instantiation group: factor={factor}.\n" in text
        assert f"fixture::scale<{factor}>" in text
        assert f"from {FIXTURE}/scale.cu.in." in text


def test_first_build_compiles_every_group_once(workspace: Workspace) -> None:
    spawns = workspace.build(OBJECTS)
    assert compiled_groups(spawns) == sm80("scale_x1.cu", "scale_x2.cu", "scale_x3.cu")


def test_changing_one_group_compiles_only_that_group(workspace: Workspace) -> None:
    workspace.replace(f"{FIXTURE}/BUILD.bazel", '"3",\n    ]}', '"4",\n    ]}')
    assert compiled_groups(workspace.build(OBJECTS)) == sm80("scale_x4.cu")


def test_adding_a_value_compiles_only_the_new_group(workspace: Workspace) -> None:
    workspace.replace(f"{FIXTURE}/BUILD.bazel", '"4",\n    ]}', '"4",\n        "5",\n    ]}')
    assert compiled_groups(workspace.build(OBJECTS)) == sm80("scale_x5.cu")


# The negative control: what every group includes, or is generated from, recompiles them all.
@pytest.mark.parametrize("touched", ["scale.cuh", "scale.cu.in"])
def test_touching_the_header_or_template_recompiles_every_group(
        workspace: Workspace, touched: str) -> None:
    workspace.append(f"{FIXTURE}/{touched}", "\n// touched by the instantiation test\n")
    assert compiled_groups(workspace.build(OBJECTS)) == sm80(
        "scale_x1.cu", "scale_x2.cu", "scale_x4.cu", "scale_x5.cu")
