"""Adding a kernel family takes its own files and one line in ops/families.bzl, nothing else.

In a copy of the workspace this test adds the family ``scaffold_demo`` (op ``scaled_copy``) as
the README's "Adding a kernel family" says: it copies the files of tests/build/scaffold_family
to the same paths in the workspace (``BUILD.bazel.in`` becomes ``BUILD.bazel``; every file is
new) and adds ``"//ops/scaffold_demo"`` to ops/families.bzl. No other file is edited, so each
check below fails if the package, its references, its benchmarks, the CPU test targets or the
manifest tests still needed a central edit:

- ``bazel build //python:wheel --config=sm70`` builds the family into the sm70 module;
- installed from that wheel, with ``FASTDEPLOY_OPS_SM=70`` and no GPU: ``fastdeploy_ops``
  lists and serves ``fastdeploy_ops.scaffold_demo``, the sm70 manifest holds the family and its
  op, a float64 input gets the binding's ``TypeError`` naming the op and the argument, and
  ``reference.scaled_copy`` and the benchmark's cases are found;
- ``bazel test //tests/python/... --config=sm70`` passes, the family's own CPU test included.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from nested_bazel import NO_CACHES, TMP, Workspace

FAMILY = "scaffold_demo"
OP = "scaled_copy"
# The family's files, at their workspace paths under this folder of the workspace; a BUILD file
# there would be a package of this workspace, so it is stored with the suffix .in.
FIXTURE = "tests/build/scaffold_family"

# Run with the family and the op as arguments, in a fresh interpreter.
CHECK = """
import json, sys
import numpy as np
import fastdeploy_ops

family, op = sys.argv[1:]
module = getattr(fastdeploy_ops, family)  # an attribute of the package, not imported by name
try:
    getattr(module, op)(np.zeros(4), 2.0)  # float64: the binding takes float32 only
    error = None
except Exception as exc:
    error = {"type": type(exc).__name__, "message": str(exc)}
manifest = json.loads((fastdeploy_ops._manifest.PACKAGE_DIR / "manifest_sm70.json").read_text())
from fastdeploy_ops.bench.__main__ import discover_ops
print(json.dumps({
    "all": fastdeploy_ops.__all__,
    "module": module.__name__,
    "info_ops": fastdeploy_ops.info()["ops"],
    "manifest": manifest["families"].get(family),
    "error": error,
    "reference": getattr(fastdeploy_ops.reference, op).__module__,
    "bench": discover_ops()[op].__module__,
}))
"""


def add_family(ws: Workspace) -> None:
    """Copies the fixture's files into `ws` (each must be new) and adds the family's line."""
    fixture = ws.path / FIXTURE
    for source in sorted(p for p in fixture.rglob("*") if p.is_file()):
        relative = str(source.relative_to(fixture)).removesuffix(".in")
        target = ws.path / relative
        assert not target.exists(), f"the scaffold would edit {relative}: it must only add files"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    before = (ws.path / "ops/families.bzl").read_text().splitlines()
    ws.replace("ops/families.bzl", "\n]\n", f'\n    "//ops/{FAMILY}",\n]\n')
    after = (ws.path / "ops/families.bzl").read_text().splitlines()
    assert [line for line in after if line not in before] == [f'    "//ops/{FAMILY}",']
    assert len(after) == len(before) + 1


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    """A copy of the workspace with the family added."""
    ws = Workspace("scaffold")
    add_family(ws)
    yield ws
    ws.shutdown()


@pytest.fixture(scope="module")
def site(workspace: Workspace) -> pathlib.Path:
    """The workspace's sm70 wheel, pip-installed into a folder of its own."""
    workspace.build("//python:wheel", "--config=sm70")
    (wheel,) = (workspace.path / "bazel-bin/python/wheel").glob("*.whl")
    target = TMP / "scaffold" / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "--target", str(target), str(wheel)],
                   check=True)
    return target


def test_installed_package_serves_the_family_without_a_gpu(site: pathlib.Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(site), FASTDEPLOY_OPS_SM="70", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", CHECK, FAMILY, OP], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert FAMILY in out["all"] and out["module"] == f"fastdeploy_ops.{FAMILY}"
    assert out["manifest"] == {"min_sm": 70, "ops": [OP], "group_min_sm": {}}
    assert OP in out["info_ops"]
    assert out["error"]["type"] == "TypeError", out["error"]
    assert out["error"]["message"].startswith(f"{OP}: argument 'input' must have dtype float32")
    assert out["reference"] == f"fastdeploy_ops.reference.{FAMILY}"
    assert out["bench"] == f"fastdeploy_ops.bench.{FAMILY}"


def test_cpu_tests_pass_with_the_family(workspace: Workspace) -> None:
    command = workspace.bazel("test", *NO_CACHES, "--color=no", "--curses=no", "--config=sm70",
                              "//tests/python/...")
    assert subprocess.run(command, cwd=workspace.path, check=False).returncode == 0
    # The family's own CPU test is a target of the glob, and ran.
    result = workspace.path / f"bazel-testlogs/tests/python/test_{FAMILY}_cpu/test.xml"
    suites = list(ET.parse(result).getroot().iter("testsuite"))
    assert sum(int(s.get("tests")) for s in suites) == 2
    assert sum(int(s.get("failures")) + int(s.get("errors")) + int(s.get("skipped"))
               for s in suites) == 0
