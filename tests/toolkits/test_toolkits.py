"""One wheel, two toolkits: CUDA 12.4 builds sm70 and sm90, CUDA 13 builds sm100 and sm120.

Runs against //tests/toolkits:wheel. Each module's SASS is listed with the
cuobjdump of the toolkit its manifest names, and must be exactly its own SM's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

SMS = (70, 90, 100, 120)
CUOBJDUMP = {"12": os.environ["CUOBJDUMP_12"], "13": os.environ["CUOBJDUMP_13"]}


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    (path,) = Path(os.environ["FASTDEPLOY_OPS_WHEEL_DIR"]).glob("*.whl")
    with zipfile.ZipFile(path) as wheel:
        wheel.extractall(folder)
    return folder / "fastdeploy_ops"


def test_one_module_per_sm(unpacked: Path) -> None:
    assert sorted(p.name for p in unpacked.glob("_ops_sm*.so")) == sorted(
        f"_ops_sm{sm}.abi3.so" for sm in SMS)


@pytest.mark.parametrize("sm", SMS)
def test_module_holds_exactly_its_sm_sass_from_its_toolkit(unpacked: Path, sm: int) -> None:
    manifest = json.loads((unpacked / f"manifest_sm{sm}.json").read_text())
    line = "13" if sm >= 100 else "12"
    assert manifest["cuda_version"].split(".")[0] == line
    module = unpacked / f"_ops_sm{sm}.abi3.so"
    listed = subprocess.run([CUOBJDUMP[line], "--list-elf", str(module)], capture_output=True,
                            text=True, check=True).stdout
    archs = re.findall(r"^ELF file\s+\d+: .*\.sm_(\d+[a-z]?)\.cubin$", listed, re.M)
    # One cubin per compiled source, every one for this SM and nothing else (SM 9.0's for
    # sm_90a, whose wgmma the prefill kernel uses).
    assert len(archs) >= 10, listed
    assert set(archs) == {"90a" if sm == 90 else str(sm)}, listed
