"""The wheel as a file: name and tags, RECORD, contents, and the shared objects' properties."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import pathlib
import re
import subprocess
import zipfile

import pytest

WHEEL = pathlib.Path(os.environ["FASTDEPLOY_OPS_WHEEL"])


@pytest.fixture(scope="module")
def archive() -> zipfile.ZipFile:
    with zipfile.ZipFile(WHEEL) as z:
        yield z


def test_name_and_tags(archive: zipfile.ZipFile) -> None:
    match = re.fullmatch(
        r"fastdeploy_ops-(?P<version>[\d.]+)-cp312-abi3-manylinux_2_(?P<glibc>\d+)_x86_64\.whl",
        WHEEL.name,
    )
    assert match, WHEEL.name
    wheel_file = archive.read(f"fastdeploy_ops-{match['version']}.dist-info/WHEEL").decode()
    assert f"Tag: cp312-abi3-manylinux_2_{match['glibc']}_x86_64" in wheel_file
    assert "Root-Is-Purelib: false" in wheel_file
    # The GPU machines (Ubuntu 24.04) have glibc 2.39: the policy the build enforces.
    assert int(match["glibc"]) <= 39


def test_record_lists_every_file_with_its_hash(archive: zipfile.ZipFile) -> None:
    record_name = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
    rows = list(csv.reader(io.StringIO(archive.read(record_name).decode())))
    recorded = {row[0]: row for row in rows}
    assert set(recorded) == set(archive.namelist())
    for name, digest, size in rows:
        if name == record_name:
            assert digest == "" and size == ""
            continue
        data = archive.read(name)
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert digest == f"sha256={expected}", name
        assert int(size) == len(data), name


def test_contents(archive: zipfile.ZipFile) -> None:
    names = set(archive.namelist())
    for sm in (70, 80):
        assert f"fastdeploy_ops/_ops_sm{sm}.abi3.so" in names
        assert f"fastdeploy_ops/manifest_sm{sm}.json" in names
    for module in ("__init__.py", "moe_routing.py", "activation.py", "selftest.py",
                   "reference/__init__.py", "testing/__init__.py", "tests/test_moe_routing.py"):
        assert f"fastdeploy_ops/{module}" in names, module
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_entries_are_sorted_with_fixed_timestamps(archive: zipfile.ZipFile) -> None:
    infos = archive.infolist()
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
    names = [i.filename for i in infos]
    assert names[-1].endswith("RECORD")
    assert names[:-1] == sorted(names[:-1])


def _readelf(path: pathlib.Path, *flags: str) -> str:
    return subprocess.run(["readelf", "--wide", *flags, str(path)], check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.parametrize("sm", [70, 80])
def test_module_exports_only_its_init_and_bundles_the_runtimes(
        archive: zipfile.ZipFile, tmp_path: pathlib.Path, sm: int) -> None:
    so = tmp_path / f"_ops_sm{sm}.abi3.so"
    so.write_bytes(archive.read(f"fastdeploy_ops/_ops_sm{sm}.abi3.so"))
    defined = [line.split()[-1] for line in _readelf(so, "--dyn-syms").splitlines()
               if re.match(r"\s*\d+:", line) and " UND " not in line and "FUNC" in line]
    assert defined == [f"PyInit__ops_sm{sm}"]
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _readelf(so, "--dynamic"))
    # libstdc++, libgcc and the CUDA runtime are linked statically: only glibc remains.
    assert not [lib for lib in needed if lib.startswith(("libstdc++", "libgcc_s", "libcudart"))]
