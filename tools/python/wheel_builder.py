"""Writes a reproducible wheel whose manylinux tag is computed from its shared objects.

The tag's glibc version is the highest GLIBC_x.y symbol version any shared object in the wheel
requires (the rule auditwheel applies); the build fails if it exceeds the declared policy. Entries
are sorted and carry a fixed timestamp and mode, so equal inputs give a byte-identical wheel.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import pathlib
import re
import struct
import sys
import zipfile

_EPOCH = (1980, 1, 1, 0, 0, 0)
_SHT_GNU_VERNEED = 0x6FFFFFFE
_GLIBC_VERSION = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.\d+)?$")


def required_symbol_versions(data: bytes) -> set[str]:
    """Names in the ELF64 little-endian object's version-needed section (GLIBC_2.34, ...)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names: set[str] = set()
    for _, sh_type, _, _, offset, _, link, info, _, _ in sections:
        if sh_type != _SHT_GNU_VERNEED:
            continue
        strtab_offset = sections[link][4]

        def string_at(index: int) -> str:
            start = strtab_offset + index
            return data[start:data.index(b"\0", start)].decode()

        entry = offset
        for _ in range(info):
            _, count, _, aux, next_entry = struct.unpack_from("<HHIII", data, entry)
            aux_entry = entry + aux
            for _ in range(count):
                _, _, _, name, next_aux = struct.unpack_from("<IHHII", data, aux_entry)
                names.add(string_at(name))
                aux_entry += next_aux
            entry += next_entry
    return names


def glibc_requirement(shared_objects: dict[str, bytes]) -> tuple[tuple[int, int], str]:
    """The highest glibc version required, and which object requires it."""
    best, where = (2, 17), "no object (manylinux2014 baseline)"
    for name, data in shared_objects.items():
        for version in required_symbol_versions(data):
            match = _GLIBC_VERSION.match(version)
            if match:
                found = (int(match.group(1)), int(match.group(2)))
                if found > best:
                    best, where = found, f"{name} ({version})"
    return best, where


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _zip_entry(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.create_system = 3
    archive.writestr(info, data, compresslevel=6)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--distribution", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--tag", action="append", required=True,
                        help="PYTHON-ABI pair its modules serve, e.g. cp312-abi3 (repeatable)")
    parser.add_argument("--glibc_policy", required=True, help="highest allowed, e.g. 2.39")
    parser.add_argument("--requires_python", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--description_file", required=True)
    parser.add_argument("--file", action="append", default=[], help="DEST=SRC, DEST inside the wheel")
    args = parser.parse_args(argv)

    files: dict[str, bytes] = {}
    for spec in args.file:
        dest, src = spec.split("=", 1)
        if dest in files:
            raise SystemExit(f"wheel_builder: two files for {dest}")
        files[dest] = pathlib.Path(src).read_bytes()

    shared_objects = {name: data for name, data in files.items() if name.endswith(".so")}
    (major, minor), where = glibc_requirement(shared_objects)
    policy = tuple(int(p) for p in args.glibc_policy.split("."))
    if (major, minor) > policy:
        raise SystemExit(
            f"wheel_builder: {where} needs glibc {major}.{minor}, above the wheel's policy "
            f"glibc {args.glibc_policy}; build with an older toolchain or raise glibc_policy"
        )
    platform = f"manylinux_{major}_{minor}_x86_64" if shared_objects else "any"
    tags = [f"{pair}-{platform}" for pair in sorted(set(args.tag))]
    # The file name carries the compressed tag set (cp311.cp312-abi3.cp311-...): installers take
    # the wheel where one of its combinations fits; WHEEL lists the pairs the modules really are.
    pythons, abis = zip(*(pair.split("-") for pair in sorted(set(args.tag))))
    name_tag = f"{'.'.join(sorted(set(pythons)))}-{'.'.join(sorted(set(abis)))}-{platform}"
    dist_info = f"{args.distribution}-{args.version}.dist-info"

    description = pathlib.Path(args.description_file).read_text()
    files[f"{dist_info}/METADATA"] = (
        "Metadata-Version: 2.1\n"
        f"Name: {args.distribution}\n"
        f"Version: {args.version}\n"
        f"Summary: {args.summary}\n"
        f"Requires-Python: {args.requires_python}\n"
        "Requires-Dist: numpy\n"
        "Description-Content-Type: text/markdown\n"
        f"\n{description}"
    ).encode()
    files[f"{dist_info}/WHEEL"] = (
        "Wheel-Version: 1.0\n"
        "Generator: fastdeploy_ops wheel_builder\n"
        f"Root-Is-Purelib: {'false' if shared_objects else 'true'}\n"
        + "".join(f"Tag: {tag}\n" for tag in tags)
    ).encode()
    record_name = f"{dist_info}/RECORD"
    record = "".join(
        f"{name},{_record_hash(data)},{len(data)}\n" for name, data in sorted(files.items())
    ) + f"{record_name},,\n"
    files[record_name] = record.encode()

    wheel_name = f"{args.distribution}-{args.version}-{name_tag}.whl"
    out_dir = pathlib.Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_dir / wheel_name, "w") as archive:
        # RECORD last, as installers expect; everything else sorted.
        for name in sorted(n for n in files if n != record_name) + [record_name]:
            _zip_entry(archive, name, files[name], executable=name.endswith(".so"))
    print(wheel_name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
