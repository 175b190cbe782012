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
import sys
import zipfile

import pytest

WHEEL = pathlib.Path(os.environ["FASTDEPLOY_OPS_WHEEL"])


@pytest.fixture(scope="module")
def archive() -> zipfile.ZipFile:
    with zipfile.ZipFile(WHEEL) as z:
        yield z


# The oldest glibc the modules may need: Debian 11 and Ubuntu 20.04 (tools/buildroot/sysroot.lock).
GLIBC_FLOOR = (2, 31)
SUFFIXES = (".abi3.so", ".cpython-311-x86_64-linux-gnu.so")


def test_name_and_tags(archive: zipfile.ZipFile) -> None:
    match = re.fullmatch(
        r"fastdeploy_ops-(?P<version>[\d.]+)-cp311\.cp312-abi3\.cp311-manylinux_2_(?P<glibc>\d+)"
        r"_x86_64\.whl",
        WHEEL.name,
    )
    assert match, WHEEL.name
    dist_info = f"fastdeploy_ops-{match['version']}.dist-info"
    wheel_file = archive.read(f"{dist_info}/WHEEL").decode()
    platform = f"manylinux_2_{match['glibc']}_x86_64"
    assert re.findall(r"^Tag: (.*)$", wheel_file, re.M) == [f"cp311-cp311-{platform}",
                                                           f"cp312-abi3-{platform}"]
    assert "Root-Is-Purelib: false" in wheel_file
    assert "Requires-Python: >=3.11\n" in archive.read(f"{dist_info}/METADATA").decode()
    assert (2, int(match["glibc"])) <= GLIBC_FLOOR


def _shared_objects(archive: zipfile.ZipFile, tmp_path: pathlib.Path) -> list[pathlib.Path]:
    paths = []
    for name in archive.namelist():
        if name.endswith(".so"):
            paths.append(tmp_path / pathlib.Path(name).name)
            paths[-1].write_bytes(archive.read(name))
    return paths


def test_no_module_needs_a_glibc_above_the_floor(
        archive: zipfile.ZipFile, tmp_path: pathlib.Path) -> None:
    # Read from the shared objects' ELF version references (readelf), not from the wheel's name:
    # the four extension modules and the torch operators' library.
    shared_objects = _shared_objects(archive, tmp_path)
    names = sorted(so.name for so in shared_objects)
    assert len(names) == 5 and re.fullmatch(r"_torch_ops_\d+_\d+\.so", names[-1]), names
    for so in shared_objects:
        needed = {tuple(int(p) for p in v.split("."))
                  for v in re.findall(r"Name: GLIBC_([\d.]+)", _readelf(so, "--version-info"))}
        assert needed, so.name
        assert max(needed) <= GLIBC_FLOOR, (so.name, max(needed))


def test_builder_refuses_a_module_above_the_floor(tmp_path: pathlib.Path) -> None:
    # The build root's own libstdc++ needs a glibc far newer than 2.31.
    newer = pathlib.Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")
    description = tmp_path / "README.md"
    description.write_text("x")
    result = subprocess.run(
        [sys.executable, os.environ["WHEEL_BUILDER"], "--out_dir", str(tmp_path / "out"),
         "--distribution", "demo", "--version", "1", "--tag", "cp312-abi3",
         "--glibc_policy", "2.31", "--requires_python", ">=3.12", "--summary", "x",
         "--description_file", str(description), "--file", f"demo/_demo.abi3.so={newer}"],
        capture_output=True, text=True)
    assert result.returncode != 0
    assert re.search(r"demo/_demo\.abi3\.so \(GLIBC_2\.\d+\) needs glibc 2\.\d+, above the "
                     r"wheel's policy glibc 2\.31", result.stderr), result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


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
        for suffix in SUFFIXES:
            assert f"fastdeploy_ops/_ops_sm{sm}{suffix}" in names
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


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("sm", [70, 80])
def test_module_exports_only_its_init_and_bundles_the_runtimes(
        archive: zipfile.ZipFile, tmp_path: pathlib.Path, sm: int, suffix: str) -> None:
    so = tmp_path / f"_ops_sm{sm}{suffix}"
    so.write_bytes(archive.read(f"fastdeploy_ops/_ops_sm{sm}{suffix}"))
    defined = [line.split()[-1] for line in _readelf(so, "--dyn-syms").splitlines()
               if re.match(r"\s*\d+:", line) and " UND " not in line and "FUNC" in line]
    assert defined == [f"PyInit__ops_sm{sm}"]
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _readelf(so, "--dynamic"))
    # libstdc++, libgcc and the CUDA runtime are linked statically: only glibc remains.
    assert not [lib for lib in needed if lib.startswith(("libstdc++", "libgcc_s", "libcudart"))]
