"""fastdeploy_ops.jit without a GPU: cache keys, atomic entries, corruption, locking across
processes, compiler discovery, the loader's JIT policy, the CLI, and one real compile with the
build's nvcc (a kernel library of the wheel's shipped sources loaded into the sm70 module).

Most tests use a fake nvcc (a Python script) that records every invocation, so that compiles
can be counted."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import pytest

from fastdeploy_ops import _device, _loader, _manifest, _selection, jit
from fastdeploy_ops.errors import OpUnavailableError
from fastdeploy_ops.jit import _cache, _compiler

FAKE_NVCC = f"""#!{sys.executable}
import os, pathlib, sys, time
args = sys.argv[1:]
if args == ["--version"]:
    print(os.environ.get("FAKE_NVCC_VERSION", "Cuda compilation tools, release 12.4, V12.4.131"))
    sys.exit(0)
if args == ["--list-gpu-code"]:  # a file `targets` beside the fake replaces CUDA 12.4's list
    targets = pathlib.Path(sys.argv[0]).with_name("targets")
    print(targets.read_text() if targets.exists() else "\\n".join(
        f"sm_{{sm}}" for sm in (50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90)))
    sys.exit(0)
with open(os.environ["FAKE_NVCC_LOG"], "a") as log:  # O_APPEND: one line per call, atomically
    log.write(("compile " if "-c" in args else "link ") + " ".join(args) + "\\n")
if os.environ.get("FAKE_NVCC_FAIL"):
    print("fake.cu(1): error: this is a planted failure", file=sys.stderr)
    sys.exit(2)
time.sleep(float(os.environ.get("FAKE_NVCC_SECONDS", "0")))
out = pathlib.Path(args[args.index("-o") + 1])
if "-c" in args:
    out.write_bytes(b"object of " + pathlib.Path(args[args.index("-c") + 1]).read_bytes())
else:
    out.write_bytes(b"library of " + b"".join(pathlib.Path(a).read_bytes() for a in args
                                              if a.endswith(".o")))
"""


def write_fake_nvcc(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nvcc = folder / "nvcc"
    nvcc.write_text(FAKE_NVCC)
    nvcc.chmod(0o755)
    return nvcc


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A fake nvcc, its invocation log, a small source tree and an empty cache."""
    nvcc = write_fake_nvcc(tmp_path / "fake-cuda" / "bin")
    log = tmp_path / "nvcc.log"
    monkeypatch.setenv("FAKE_NVCC_LOG", str(log))
    for name in _cache.NVCC_ENV:
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "jit"
    sources = root / "sources" / "ops" / "demo"
    sources.mkdir(parents=True)
    for name, text in {"a.cu": "// a\n", "b.cu": "// b\n", "demo.h": "// h\n"}.items():
        (sources / name).write_text(text)
    (root / "families.json").write_text(json.dumps({
        "schema_version": _manifest.SCHEMA_VERSION,
        "package_version": "1.0.0",
        "gencode": "-gencode=arch=compute_{sm},code=sm_{sm}",
        "arch_specific_sass": {"90": "90a"},
        "sources_dir": "sources",
        "families": {"demo": {"min_sm": 70, "ops": ["demo_op"],
                              "sources": ["ops/demo/a.cu", "ops/demo/b.cu"],
                              "headers": ["ops/demo/demo.h"], "nvcc_flags": ["-O3"],
                              "source_min_sm": {}, "group_min_sm": {}}},
    }))
    return types.SimpleNamespace(
        nvcc=nvcc, log=log, root=root, cache=tmp_path / "cache",
        compiler=_compiler.probe(nvcc, "test"),
        tree=lambda: jit.load_sources(root),
        calls=lambda kind: [line for line in log.read_text().splitlines()
                            if line.startswith(kind + " ")] if log.exists() else [],
    )


def build(fake: types.SimpleNamespace, sm: int = 80) -> jit.Build:
    return jit.build(fake.tree(), "demo", sm, fake.compiler, fake.cache, quiet=True)


# Shipped sources.

def test_the_wheel_ships_the_sources_of_every_family(compiled_modules: Path) -> None:
    tree = jit.load_sources()
    manifests = _manifest.read_manifests(compiled_modules)
    for manifest in manifests.values():
        assert set(tree.families) == set(manifest.families) | set(manifest.skipped)
    raw = json.loads((compiled_modules / "manifest_sm80.json").read_text())
    for name, family in tree.families.items():
        assert family.sources and all(p.endswith(".cu") for p in family.sources)
        # Exactly one source defines the family's kernel table (fdops_kernel_table_<name>).
        tables = [p for p in family.sources
                  if f"FDOPS_DEFINE_KERNEL_TABLE({name}," in (tree.root / p).read_text()]
        assert len(tables) == 1, (name, tables)
        assert "ops/common/kernel_table.h" in family.headers
        # The AOT flags without the AOT gencode: the JIT adds its own for the device.
        assert list(family.nvcc_flags) == raw["nvcc_flags"][:-1]
        assert tree.file_hashes(name)  # every listed file is there
        declared = manifests[80].families.get(name) or manifests[80].skipped[name]
        assert family.min_sm == declared.min_sm
    assert tree.package_version == manifests[80].package_version
    # SASS only for the device's SM: a JIT library is built on the GPU it runs on.
    assert tree.gencode(86) == "-gencode=arch=compute_86,code=sm_86"
    # SM 9.0's as in the AOT build: sm_90a, whose wgmma the prefill kernel uses.
    assert tree.gencode(90) == "-gencode=arch=compute_90a,code=sm_90a"


def test_a_description_of_another_schema_is_refused(fake: types.SimpleNamespace) -> None:
    description = fake.root / "families.json"
    data = json.loads(description.read_text())
    data["schema_version"] = _manifest.SCHEMA_VERSION + 1
    description.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="families.json.*schema_version"):
        fake.tree()


# Cache keys.

def test_the_key_changes_with_every_input_and_not_with_timestamps(
        fake: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    def key() -> str:
        tree = fake.tree()
        inputs = _cache.key_inputs("demo", 80, tree.package_version, tree.file_hashes("demo"),
                                   ["-O3", tree.gencode(80)], fake.compiler.identity)
        return _cache.entry_for(fake.cache, inputs).key

    base = key()
    a_cu = fake.root / "sources/ops/demo/a.cu"
    os.utime(a_cu, (1, 1))  # a timestamp alone is no change
    assert key() == base
    seen = {base}

    def changed(undo) -> None:
        new = key()
        assert new not in seen
        seen.add(new)
        undo()
        assert key() == base

    a_cu.write_text("// a, edited\n")
    changed(lambda: a_cu.write_text("// a\n"))
    header = fake.root / "sources/ops/demo/demo.h"
    header.write_text("// h, edited\n")
    changed(lambda: header.write_text("// h\n"))
    description = fake.root / "families.json"
    original = description.read_text()
    description.write_text(original.replace('"1.0.0"', '"1.0.1"'))
    changed(lambda: description.write_text(original))
    monkeypatch.setenv("NVCC_CCBIN", "g++-13")
    changed(lambda: monkeypatch.delenv("NVCC_CCBIN"))
    tree = fake.tree()
    variants = [
        ("demo", 90, ["-O3", tree.gencode(90)], fake.compiler.identity),
        ("demo", 80, ["-O2", tree.gencode(80)], fake.compiler.identity),
        ("demo", 80, ["-O3", tree.gencode(80)], fake.compiler.identity.replace("12.4", "13.0")),
    ]
    for family, sm, flags, identity in variants:
        inputs = _cache.key_inputs(family, sm, tree.package_version, tree.file_hashes(family),
                                   flags, identity)
        assert _cache.entry_for(fake.cache, inputs).key not in seen
        seen.add(_cache.entry_for(fake.cache, inputs).key)


def test_an_edited_source_builds_a_new_entry(fake: types.SimpleNamespace) -> None:
    first = build(fake)
    (fake.root / "sources/ops/demo/b.cu").write_text("// b, from a newer wheel\n")
    second = build(fake)
    assert first.compiled and second.compiled
    assert first.entry.path != second.entry.path
    assert second.entry.library.read_bytes().endswith(b"// b, from a newer wheel\n")


# Entries.

def test_compiles_once_then_loads_from_the_cache(fake: types.SimpleNamespace) -> None:
    first = build(fake)
    assert first.compiled and first.entry.problem() is None
    assert len(fake.calls("compile")) == 2 and len(fake.calls("link")) == 1
    compile_a = next(c for c in fake.calls("compile") if "a.cu" in c)
    assert "-O3" in compile_a and "-gencode=arch=compute_80,code=sm_80" in compile_a
    assert f"-I {fake.root / 'sources'}" in compile_a
    second = build(fake)
    assert not second.compiled and second.entry == first.entry
    assert len(fake.calls("compile")) == 2
    meta = first.entry.metadata()
    assert meta["inputs"]["sm"] == 80 and meta["ops"] == ["demo_op"]


def test_sources_above_the_sm_are_left_out(fake: types.SimpleNamespace) -> None:
    """A source marked with a higher SM (an fp8 instantiation group) is compiled only for it."""
    description = fake.root / "families.json"
    data = json.loads(description.read_text())
    data["families"]["demo"]["source_min_sm"] = {"ops/demo/b.cu": 89}
    description.write_text(json.dumps(data))
    build(fake, sm=80)
    assert [("a.cu" in c, "b.cu" in c) for c in fake.calls("compile")] == [(True, False)]
    build(fake, sm=89)
    assert sum("b.cu" in c for c in fake.calls("compile")) == 1


def test_entries_appear_whole_or_not_at_all(fake: types.SimpleNamespace,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    built = build(fake)
    assert sorted(p.name for p in built.entry.path.iterdir()) == ["entry.json", "libdemo.so"]
    assert {p.name for p in fake.cache.iterdir()} == {"locks", "logs", built.entry.name}
    monkeypatch.setenv("FAKE_NVCC_FAIL", "1")
    with pytest.raises(jit.JitError, match="planted failure") as failed:
        build(fake, sm=90)
    log = failed.value.log
    assert log is not None and str(log) in str(failed.value)
    assert "planted failure" in log.read_text() and "a.cu" in log.read_text()
    # Nothing half-built stays behind: no entry for sm90, no staging folder.
    assert {p.name for p in fake.cache.iterdir()} == {"locks", "logs", built.entry.name}


@pytest.mark.parametrize("damage", ["truncate", "flip", "drop_metadata", "garble_metadata"])
def test_a_damaged_entry_is_detected_removed_and_rebuilt(fake: types.SimpleNamespace,
                                                         damage: str) -> None:
    entry = build(fake).entry
    library, meta = entry.library, entry.path / "entry.json"
    content = library.read_bytes()
    if damage == "truncate":
        library.write_bytes(content[: len(content) // 2])
    elif damage == "flip":
        library.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))
    elif damage == "drop_metadata":
        meta.unlink()
    else:
        meta.write_text("{")
    assert entry.problem() is not None
    rebuilt = build(fake)
    assert rebuilt.compiled and rebuilt.replaced and rebuilt.entry == entry
    assert entry.problem() is None and library.read_bytes() == content
    assert len(fake.calls("compile")) == 4


RACE = """
import json, sys
from pathlib import Path
from fastdeploy_ops import jit
tree = jit.load_sources(Path(sys.argv[1]))
compiler = jit.find_compiler()
done = jit.build(tree, "demo", 80, compiler, Path(sys.argv[2]))
print(json.dumps({"compiled": done.compiled, "library": str(done.entry.library),
                  "content": done.entry.library.read_text()}))
"""


def test_processes_started_together_compile_once_and_all_load_it(
        fake: types.SimpleNamespace) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), FASTDEPLOY_OPS_NVCC=str(fake.nvcc),
               FAKE_NVCC_SECONDS="1")
    children = [subprocess.Popen([sys.executable, "-c", RACE, str(fake.root), str(fake.cache)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(8)]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["compiled"] for r in results) == 1
    assert len({r["library"] for r in results}) == 1
    assert all(r["content"].startswith("library of object of") for r in results)
    assert len(fake.calls("compile")) == 2 and len(fake.calls("link")) == 1


def test_the_package_folder_is_only_read(fake: types.SimpleNamespace) -> None:
    def snapshot() -> dict[str, tuple[int, int]]:
        return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in fake.root.rglob("*")}

    before = snapshot()
    for path in [fake.root, *fake.root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        assert build(fake).compiled
    finally:
        for path in [fake.root, *fake.root.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    assert snapshot() == before


def test_the_first_compile_says_what_and_how_long(fake: types.SimpleNamespace,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    jit.build(fake.tree(), "demo", 80, fake.compiler, fake.cache)
    message = capsys.readouterr().err
    assert "compiling the 'demo' kernels for sm_80" in message and "2 sources" in message
    assert "about" in message and str(fake.cache) in message
    jit.build(fake.tree(), "demo", 80, fake.compiler, fake.cache)
    assert capsys.readouterr().err == ""


def test_unknown_family_and_low_sm_are_errors(fake: types.SimpleNamespace) -> None:
    with pytest.raises(jit.JitError, match="no JIT sources for family 'nope'.*demo"):
        jit.build(fake.tree(), "nope", 80, fake.compiler, fake.cache)
    with pytest.raises(jit.JitError, match="requires SM70"):
        jit.build(fake.tree(), "demo", 61, fake.compiler, fake.cache)


def test_an_unusable_cache_is_a_jit_error(fake: types.SimpleNamespace) -> None:
    fake.cache.write_text("a file where the cache folder should be")
    with pytest.raises(jit.JitError, match="cannot build in the JIT cache .*FASTDEPLOY_OPS_CACHE"):
        build(fake)


def test_a_cache_other_users_can_change_is_refused(fake: types.SimpleNamespace,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    built = build(fake)
    for path, mode in ((fake.cache, 0o777), (fake.cache, 0o770), (built.entry.path, 0o757)):
        original = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode)
        try:
            with pytest.raises(jit.JitError, match=rf"refusing to load .*{path} is writable by "
                               rf"other users \(mode {mode:o}\).*FASTDEPLOY_OPS_CACHE_TRUST"):
                build(fake)
            monkeypatch.setenv("FASTDEPLOY_OPS_CACHE_TRUST", "shared")
            assert build(fake).entry == built.entry  # on purpose: allowed
            monkeypatch.delenv("FASTDEPLOY_OPS_CACHE_TRUST")
        finally:
            path.chmod(original)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_an_entry_of_another_user_is_refused(fake: types.SimpleNamespace) -> None:
    built = build(fake)
    os.chown(built.entry.library, 12345, -1)
    with pytest.raises(jit.JitError, match=r"libdemo.so belongs to uid 12345, not to this user"):
        build(fake)


def test_a_new_cache_is_private(fake: types.SimpleNamespace) -> None:
    old = os.umask(0o002)  # a user-private-group system's default: files group-writable
    try:
        built = build(fake)
    finally:
        os.umask(old)
    assert stat.S_IMODE(fake.cache.stat().st_mode) & 0o077 == 0
    for path in (built.entry.path, built.entry.library):
        assert stat.S_IMODE(path.stat().st_mode) & 0o022 == 0, path
    assert build(fake).entry == built.entry  # and it loads


@pytest.mark.parametrize("error, expected", [
    (errno.ENOSPC, r"the disk holding the JIT cache .* is full \(\d+ MB free"),
    (errno.EACCES, r"no permission to write .*entry in the JIT cache"),
])
def test_disk_errors_are_said_as_such(fake: types.SimpleNamespace,
                                      monkeypatch: pytest.MonkeyPatch, error: int,
                                      expected: str) -> None:
    def publish(self, staging, inputs, extra):
        raise OSError(error, os.strerror(error), str(staging))

    monkeypatch.setattr(_cache.Entry, "publish", publish)
    with pytest.raises(jit.JitError, match=expected):
        build(fake)


def test_leftovers_of_killed_compiles_are_removed(fake: types.SimpleNamespace) -> None:
    tree = fake.tree()
    inputs = _cache.key_inputs("demo", 80, tree.package_version, tree.file_hashes("demo"),
                               [*tree.families["demo"].nvcc_flags, tree.gencode(80)],
                               fake.compiler.identity)
    entry = _cache.entry_for(fake.cache, inputs)
    leftover = fake.cache / f".{entry.name}.abc123" / "entry"
    leftover.mkdir(parents=True)
    (leftover / "0-a.cu.o").write_bytes(b"half an object")
    assert build(fake).entry == entry
    assert not leftover.parent.exists()


def test_cache_folder_default_and_override(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert _cache.cache_dir({"FASTDEPLOY_OPS_CACHE": str(tmp_path)}) == tmp_path
    assert _cache.cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/fastdeploy_ops/jit")
    assert _cache.cache_dir({}) == Path.home() / ".cache/fastdeploy_ops/jit"
    # A relative setting is taken from the folder the process is in now, and stays put.
    monkeypatch.chdir(tmp_path)
    assert _cache.cache_dir({"FASTDEPLOY_OPS_CACHE": "jit-cache"}) == tmp_path / "jit-cache"
    assert _cache.cache_dir({"FASTDEPLOY_OPS_CACHE": "~/c"}) == Path.home() / "c"
    monkeypatch.setenv("FASTDEPLOY_OPS_CACHE", "jit-cache")
    jit.process_cache_dir.cache_clear()
    try:
        first = jit.process_cache_dir()
        monkeypatch.chdir(tmp_path.parent)
        assert jit.process_cache_dir() == first == tmp_path / "jit-cache"
    finally:
        jit.process_cache_dir.cache_clear()


@pytest.mark.parametrize("value, expected", [
    (None, True), ("", True), ("1", True), ("ON", True), (" yes ", True), ("true", True),
    ("0", False), ("off", False), ("No", False), ("FALSE", False)])
def test_jit_switch_values(monkeypatch: pytest.MonkeyPatch, value: str | None,
                           expected: bool) -> None:
    if value is None:
        monkeypatch.delenv(jit.ENV_JIT, raising=False)
    else:
        monkeypatch.setenv(jit.ENV_JIT, value)
    assert jit.enabled() is expected


@pytest.mark.parametrize("value", ["2", "disable", "of", "enabled"])
def test_an_unknown_jit_switch_is_an_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(jit.ENV_JIT, value)
    with pytest.raises(ValueError, match=f"FASTDEPLOY_OPS_JIT='{value}': expected one of"):
        jit.enabled()


def test_the_host_compiler_is_part_of_the_identity(tmp_path: Path) -> None:
    """nvcc compiles host code with NVCC_CCBIN, else g++ on PATH: its version is in the key."""
    nvcc = write_fake_nvcc(tmp_path / "cuda" / "bin")
    identities = []
    for version in ("g++ (Debian 13.2.0-25) 13.2.0", "g++ (Debian 14.1.0-1) 14.1.0"):
        gxx = tmp_path / version.split()[-1] / "g++"
        gxx.parent.mkdir()
        gxx.write_text(f"#!/bin/sh\necho '{version}'\n")
        gxx.chmod(0o755)
        for env in ({"PATH": str(gxx.parent)}, {"NVCC_CCBIN": str(gxx)},
                    {"NVCC_CCBIN": str(gxx.parent)}):
            identity = _compiler.probe(nvcc, "test", env).identity
            assert identity.endswith(f"host compiler: {gxx}: {version}"), identity
        identities.append(_compiler.probe(nvcc, "test", {"PATH": str(gxx.parent)}).identity)
    assert identities[0] != identities[1]
    missing = _compiler.probe(nvcc, "test", {"PATH": str(tmp_path / "none")}).identity
    assert missing.endswith("host compiler: g++ (not found)")


# Deadlines.

def test_a_stuck_compiler_is_stopped(fake: types.SimpleNamespace,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NVCC_SECONDS", "30")
    monkeypatch.setenv(jit.ENV_TIMEOUT, "0.5")
    start = time.monotonic()
    with pytest.raises(jit.JitError, match="did not finish within 0.5 s, "
                       "FASTDEPLOY_OPS_JIT_TIMEOUT") as raised:
        build(fake)
    assert time.monotonic() - start < 10
    assert raised.value.log is not None and "did not finish" in raised.value.log.read_text()
    assert not [p for p in fake.cache.iterdir() if p.name.startswith(".demo-")]  # no leftovers


@pytest.mark.parametrize("value", ["soon", "0", "-3"])
def test_a_bad_deadline_is_an_error(fake: types.SimpleNamespace,
                                    monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(jit.ENV_WAIT, value)
    with pytest.raises(jit.JitError, match=f"FASTDEPLOY_OPS_JIT_WAIT='{value}' is not a number"):
        build(fake)


def test_a_lock_held_past_the_deadline_names_its_holder(
        fake: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = fake.tree()
    inputs = _cache.key_inputs("demo", 80, tree.package_version, tree.file_hashes("demo"),
                               [*tree.families["demo"].nvcc_flags, tree.gencode(80)],
                               fake.compiler.identity)
    lock = _cache.entry_for(fake.cache, inputs).lock_path
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setenv(jit.ENV_WAIT, "0.5")
        with pytest.raises(jit.JitError, match=rf"after waiting 0.5 s \(FASTDEPLOY_OPS_JIT_WAIT\)"
                           rf" for process {holder.pid} compiling 'demo' for sm_80"):
            build(fake)
    finally:
        holder.kill()
        holder.wait()
    assert build(fake).compiled  # the lock died with its holder


HOLD_LOCK = """
import sys, time
from pathlib import Path
from fastdeploy_ops.jit._cache import locked
with locked(Path(sys.argv[1]), note="compiling 'demo' for sm_80"):
    print("held", flush=True)
    time.sleep(60)
"""


# Compiler discovery.

@pytest.fixture
def no_standard_nvcc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Hide /usr/local/cuda and NVIDIA's pip packages from discovery."""
    monkeypatch.setattr(_compiler, "_STANDARD_PATH", tmp_path / "absent" / "nvcc")
    monkeypatch.setattr(_compiler, "_pip_package_nvccs", lambda: iter(()))


def test_discovery_order(tmp_path: Path, no_standard_nvcc: None) -> None:
    explicit, home, on_path = (write_fake_nvcc(tmp_path / name / "bin")
                               for name in ("explicit", "home", "path"))
    env = {"FASTDEPLOY_OPS_NVCC": str(explicit), "CUDA_HOME": str(home.parent.parent),
           "PATH": str(on_path.parent)}
    assert _compiler.find_compiler(env).nvcc == explicit
    del env["FASTDEPLOY_OPS_NVCC"]
    assert _compiler.find_compiler(env).found_by == "CUDA_HOME"
    env["CUDA_HOME"] = str(tmp_path / "nowhere")
    found = _compiler.find_compiler(env)
    assert (found.nvcc, found.found_by, found.version) == (on_path, "PATH", "12.4.131")


def test_an_unusable_explicit_nvcc_is_an_error_not_a_fallback(tmp_path: Path,
                                                             no_standard_nvcc: None) -> None:
    broken = tmp_path / "nvcc"
    broken.write_text("#!/bin/sh\necho no version here\n")
    broken.chmod(0o755)
    on_path = write_fake_nvcc(tmp_path / "path" / "bin")
    with pytest.raises(jit.CompilerNotFoundError, match="FASTDEPLOY_OPS_NVCC: .* without an nvcc"):
        _compiler.find_compiler({"FASTDEPLOY_OPS_NVCC": str(broken), "PATH": str(on_path.parent)})


def test_the_first_nvcc_that_can_target_the_sm_is_chosen(tmp_path: Path,
                                                         no_standard_nvcc: None) -> None:
    cuda12 = write_fake_nvcc(tmp_path / "cuda12" / "bin")
    cuda13 = write_fake_nvcc(tmp_path / "cuda13" / "bin")
    (cuda13.parent / "targets").write_text("sm_75\nsm_90\nsm_100\nsm_100a\nsm_120\n")
    env = {"CUDA_HOME": str(cuda12.parent.parent), "PATH": str(cuda13.parent)}
    assert _compiler.find_compiler(env).nvcc == cuda12
    assert _compiler.find_compiler(env, sm=90).nvcc == cuda12
    found = _compiler.find_compiler(env, sm=100)
    assert (found.nvcc, found.found_by) == (cuda13, "PATH")
    assert found.targets == {75, 90, 100, 120}
    with pytest.raises(jit.CompilerNotFoundError) as raised:
        _compiler.find_compiler({"CUDA_HOME": env["CUDA_HOME"]}, sm=100)
    assert "CUDA 12.4.131 cannot target sm_100 (it targets sm_50, " in str(raised.value)


def test_no_compiler_names_every_place_searched(tmp_path: Path, no_standard_nvcc: None) -> None:
    with pytest.raises(jit.CompilerNotFoundError) as raised:
        _compiler.find_compiler({"PATH": str(tmp_path), "CUDA_HOME": str(tmp_path / "cuda")})
    message = str(raised.value)
    for part in ("no usable nvcc", "CUDA_HOME: ", "does not exist", "CUDA_PATH: not set",
                 "PATH: no nvcc on it", "nvidia-cuda-nvcc", "/absent", "FASTDEPLOY_OPS_NVCC"):
        assert part in message, (part, message)


# The loader's policy.

def family(name: str, min_sm: int, skipped: bool = False) -> _manifest.Family:
    return _manifest.Family(name, min_sm, (f"{name}_op",), "skipped" if skipped else None)


def manifest(sm: int, present: list[_manifest.Family], skipped: list[_manifest.Family]):
    return _manifest.Manifest(f"_ops_sm{sm}", sm, "1.0.0", {f.name: f for f in present},
                            {f.name: f for f in skipped}, "12.4.131")


@pytest.mark.parametrize(
    ("module_sm", "device_sm", "forced", "min_sm", "present", "expected"),
    [
        (80, 80, False, 70, True, "builtin"),   # native
        (80, 86, False, 70, True, "builtin"),   # same major: SASS runs
        (80, 90, False, 70, True, "jit"),       # only through PTX
        (70, 90, False, 80, False, "jit"),      # skipped by the module, the GPU can run it
        (70, 75, False, 80, False, "unavailable"),  # the GPU cannot run it
        (80, 90, False, 100, False, "unavailable"),
        (70, 90, True, 70, True, "builtin"),    # forced: the module as it is
        (70, 90, True, 80, False, "unavailable"),
        (70, None, False, 70, True, "builtin"),  # no GPU: validation only
        (70, None, False, 80, False, "unavailable"),
    ],
)
def test_kernel_plan(module_sm: int, device_sm: int | None, forced: bool, min_sm: int,
                     present: bool, expected: str) -> None:
    f = family("fam", min_sm, skipped=not present)
    m = manifest(module_sm, [f] if present else [], [] if present else [f])
    assert _loader.kernel_plan(m, f, device_sm, forced) == expected


@pytest.mark.parametrize(
    ("module_sm", "device_sm", "forced", "expected"),
    [
        (90, 90, False, "builtin"),      # the module has the group
        (80, 89, False, "jit"),          # same major, but the module lacks the group
        (80, 86, False, "unavailable"),  # the GPU cannot run the group
        (80, 90, True, "unavailable"),   # forced: the module as it is
        (80, None, False, "unavailable"),
        (90, None, False, "builtin"),
    ],
)
def test_kernel_plan_of_a_group(module_sm: int, device_sm: int | None, forced: bool,
                                expected: str) -> None:
    """A family present from SM80 whose fp8 group needs SM89: the plan of a call that needs the
    group; calls that do not need it use the family as it is."""
    f = _manifest.Family("fam", 80, ("fam_op",), None, {"cache=fp8": 89})
    m = manifest(module_sm, [f], [])
    assert _loader.kernel_plan(m, f, device_sm, forced, "cache=fp8") == expected
    lacking = m.lacks("fam", "cache=fp8")
    assert (lacking is None) == (module_sm >= 89)
    if lacking:
        assert lacking == f"fam with cache=fp8 requires SM89+, this module is sm{module_sm}"
    if device_sm is not None and device_sm // 10 == module_sm // 10 and not forced:
        assert _loader.kernel_plan(m, f, device_sm, forced) == "builtin"


class FakeModule:
    """Stands in for an _ops_smNN module: records loaded kernel libraries."""

    def __init__(self) -> None:
        self.loaded: list[tuple[str, str, bool]] = []
        self.present_op = self.skipped_op = lambda *args: "ran"

    def _load_kernel_library(self, family: str, path: str, replace: bool = False) -> None:
        self.loaded.append((family, path, replace))


@pytest.fixture
def fake_loader(monkeypatch: pytest.MonkeyPatch) -> FakeModule:
    """A sm80 module with family 'present' and skipped family 'skipped' (min_sm 90), on an
    SM90 GPU: both families need JIT kernels."""
    present, skipped = family("present", 70), family("skipped", 90, skipped=True)
    manifests = {80: manifest(80, [present], [skipped])}
    device = _device.Device(90, "Test GPU", 1, 13000, None)
    chosen = _selection.Selection(manifests, device, None, 80, "test selection")
    module = FakeModule()
    monkeypatch.setattr(_selection, "selection", lambda: chosen)
    monkeypatch.setattr(_loader, "load_module", lambda: module)
    monkeypatch.delenv(jit.ENV_JIT, raising=False)
    for cache in (_loader.get_op, _loader._jit_load, _loader._warn_ptx):
        cache.cache_clear()
    _loader._JIT_FAILED.clear()
    yield module
    for cache in (_loader.get_op, _loader._jit_load, _loader._warn_ptx):
        cache.cache_clear()
    _loader._JIT_FAILED.clear()


def test_no_jit_during_graph_capture(fake_loader: FakeModule,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A capture in progress (seen through torch, if imported) stops the first use of a family
    that needs JIT kernels, with a clear error and no compile; after the capture it works."""
    capturing = [True]
    cuda = types.SimpleNamespace(is_available=lambda: True,
                                 is_current_stream_capturing=lambda: capturing[0])
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setattr(jit, "kernel_library", lambda family, sm: Path(f"/cache/lib{family}.so"))
    with pytest.raises(RuntimeError, match=r"^skipped_op: the 'skipped' kernels for sm_90 are "
                       r"loaded .* during CUDA graph capture: call the op once before capturing"):
        _loader.get_op("skipped", "skipped_op")
    assert fake_loader.loaded == []
    capturing[0] = False
    assert _loader.get_op("skipped", "skipped_op")() == "ran"
    assert fake_loader.loaded == [("skipped", "/cache/libskipped.so", True)]
    capturing[0] = True  # loaded before: a capture may use it
    assert _loader.get_op("skipped", "skipped_op")() == "ran"


def test_a_failed_jit_is_retried_after_a_pause(fake_loader: FakeModule,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed compile is not retried on every call, nor never: after the pause it is."""
    attempts = []
    failing = [True]

    def kernel_library(family: str, sm: int) -> Path:
        attempts.append(family)
        if failing[0]:
            raise jit.JitError("the disk holding the JIT cache /c is full")
        return Path(f"/cache/lib{family}.so")

    now = [1000.0]
    monkeypatch.setattr(jit, "kernel_library", kernel_library)
    monkeypatch.setattr(_loader.time, "monotonic", lambda: now[0])
    for _ in range(3):
        with pytest.raises(OpUnavailableError, match="disk holding the JIT cache /c is full"):
            _loader.get_op("skipped", "skipped_op")
    assert attempts == ["skipped"]
    failing[0] = False
    now[0] += _loader._JIT_RETRY_SECONDS - 1
    with pytest.raises(OpUnavailableError):
        _loader.get_op("skipped", "skipped_op")
    now[0] += 2
    assert _loader.get_op("skipped", "skipped_op")() == "ran"
    assert attempts == ["skipped", "skipped"] and "skipped" not in _loader._JIT_FAILED


def test_get_op_loads_jit_kernels_once_per_family(fake_loader: FakeModule,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    monkeypatch.setattr(jit, "kernel_library",
                        lambda f, sm: built.append((f, sm)) or Path(f"/cache/lib{f}.so"))
    op = _loader.get_op("skipped", "skipped_op")
    assert op() == "ran"
    assert _loader.get_op("skipped", "skipped_op") is op  # a hit: nothing more happens
    _loader.get_op("present", "present_op")
    assert built == [("skipped", 90), ("present", 90)]
    assert fake_loader.loaded == [("skipped", "/cache/libskipped.so", True),
                                  ("present", "/cache/libpresent.so", True)]


def test_jit_off_skipped_family_raises_and_ptx_family_warns(
        fake_loader: FakeModule, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(jit.ENV_JIT, "0")
    with pytest.raises(OpUnavailableError) as raised:
        _loader.get_op("skipped", "skipped_op")
    message = str(raised.value)
    assert "FASTDEPLOY_OPS_JIT=0" in message and "--config=sm90" in message
    assert raised.value.jit_problem == "FASTDEPLOY_OPS_JIT=0"
    with pytest.warns(RuntimeWarning, match="'present' runs from _ops_sm80's PTX.*JIT=0"):
        assert _loader.get_op("present", "present_op")() == "ran"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _loader.get_op("present", "present_op")  # warned once
    assert fake_loader.loaded == []


def test_no_compiler_is_explained(fake_loader: FakeModule, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path, no_standard_nvcc: None) -> None:
    for var in ("FASTDEPLOY_OPS_NVCC", "CUDA_HOME", "CUDA_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    jit.compiler.cache_clear()
    chosen = _selection.selection()
    assert _loader.describe_kernels(chosen, {}) == {
        "present": "JIT-compiled for sm_90 on first use",
        "skipped": "JIT-compiled for sm_90 on first use"}
    try:
        with pytest.raises(OpUnavailableError, match="no usable nvcc found .*CUDA_HOME"):
            _loader.get_op("skipped", "skipped_op")
        with pytest.warns(RuntimeWarning, match="'present' runs from _ops_sm80's PTX.*no usable"):
            _loader.get_op("present", "present_op")
    finally:
        jit.compiler.cache_clear()
    described = _loader.describe_kernels(chosen, {})
    assert described["present"].startswith("_ops_sm80's PTX (JIT failed: no usable nvcc found")
    assert described["skipped"].startswith("unavailable (JIT failed: no usable nvcc found")


# Command line.

def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastdeploy_ops.jit", *args], text=True,
                          capture_output=True, timeout=300, check=False,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), **env))


def test_cli_warmup_status_clear(fake: types.SimpleNamespace, compiled_modules: Path) -> None:
    env = {"FASTDEPLOY_OPS_NVCC": str(fake.nvcc), "FASTDEPLOY_OPS_CACHE": str(fake.cache)}
    warm = run_cli("warmup", "--sm", "90", "--family", "activation", "--family", "rotary", **env)
    assert warm.returncode == 0, warm.stderr
    assert "activation: sm_90 compiled" in warm.stdout and "rotary: sm_90 compiled" in warm.stdout
    assert "compiling the 'activation' kernels for sm_90" in warm.stderr
    again = run_cli("warmup", "--sm", "90", "--family", "activation", **env)
    assert "activation: sm_90 cached" in again.stdout
    status = run_cli("status", **env)
    assert status.returncode == 0, status.stderr
    assert "nvcc 12.4.131" in status.stdout and "2 entries" in status.stdout
    assert "ok; ops: gelu_tanh" in status.stdout
    libraries = list(fake.cache.glob("activation-sm90-*/libactivation.so"))
    libraries[0].write_bytes(b"truncated")
    assert "library is 9 bytes" in run_cli("status", **env).stdout
    cleared = run_cli("clear", "--family", "rotary", **env)
    assert "removed 1 entries" in cleared.stdout
    assert "1 entries" in run_cli("status", **env).stdout
    assert "removed 1 entries" in run_cli("clear", **env).stdout
    bad = run_cli("warmup", "--sm", "90", "--family", "nope", **env)
    assert bad.returncode == 2 and "unknown families: nope" in bad.stderr


def test_cli_clear_stale(fake: types.SimpleNamespace, compiled_modules: Path) -> None:
    env = {"FASTDEPLOY_OPS_NVCC": str(fake.nvcc), "FASTDEPLOY_OPS_CACHE": str(fake.cache)}
    families = ("activation", "rotary", "penalty")
    for family in families:
        assert run_cli("warmup", "--sm", "90", "--family", family, **env).returncode == 0
    assert " s ago, ok; ops: gelu_tanh" in run_cli("status", **env).stdout
    assert "removed 0 entries" in run_cli("clear", "--stale", **env).stdout
    # rotary's entry from another package version, penalty's from another toolkit.
    (rotary,) = fake.cache.glob("rotary-sm90-*")
    meta = json.loads((rotary / "entry.json").read_text())
    meta["inputs"]["package_version"] = "0.0.1"
    (rotary / "entry.json").write_text(json.dumps(meta))
    assert "from fastdeploy_ops 0.0.1" in run_cli("status", **env).stdout
    assert "removed 1 entries" in run_cli("clear", "--stale", **env).stdout
    assert not rotary.exists()
    # A newer toolkit: what the old one built is stale, what the new one builds is not.
    newer = {**env, "FAKE_NVCC_VERSION": "Cuda compilation tools, release 13.0, V13.0.48"}
    assert run_cli("warmup", "--sm", "90", "--family", "penalty", **newer).returncode == 0
    assert len(list(fake.cache.glob("penalty-sm90-*"))) == 2
    assert "removed 2 entries" in run_cli("clear", "--stale", **newer).stdout
    (left,) = fake.cache.glob("*-sm90-*")
    assert left.name.startswith("penalty-") and "V13.0.48" in (left / "entry.json").read_text()


# A real compile with the build's nvcc 12.4 (no GPU needed to build or dlopen).

REAL = """
import json, sys
from pathlib import Path
import fastdeploy_ops._ops_sm70 as sm70
from fastdeploy_ops import jit
done = jit.build(jit.sources(), "activation", 80, jit.find_compiler(), Path(sys.argv[1]))
assert sm70._kernel_families()["activation"] == "builtin"
sm70._load_kernel_library("activation", str(done.entry.library), replace=True)
print(json.dumps({"compiled": done.compiled, "library": str(done.entry.library),
                  "origins": sm70._kernel_families()}))
"""


def test_real_compile_of_shipped_sources_loads_into_the_sm70_module(
        tmp_path: Path, compiled_modules: Path) -> None:
    if shutil.which("nvcc") is None:
        pytest.skip("no nvcc on PATH (the build root has CUDA 12.4's)")
    done = subprocess.run([sys.executable, "-c", REAL, str(tmp_path / "cache")], text=True,
                          capture_output=True, timeout=600, check=False,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["compiled"]
    assert out["origins"]["activation"] == out["library"]
    assert out["origins"]["moe_routing"] == "builtin"
    exported = subprocess.run(["nm", "-D", "--defined-only", out["library"]], text=True,
                              capture_output=True, check=True).stdout.split()
    assert "fdops_kernel_table_activation" in exported
    assert not [s for s in exported if s.startswith("cuda")]  # its cudart stays private
    assert "compiling the 'activation' kernels for sm_80" in done.stderr


PRETEND_H100 = """
import json, warnings
import numpy as np
import fastdeploy_ops
from fastdeploy_ops import _device, _loader, _selection, activation
# An SM90 GPU with a CUDA 13 driver: the wheel's sm70/sm80 modules reach it only through PTX.
_device.probe = lambda: _device.Device(90, "pretend H100", 1, 13000, None)
before = fastdeploy_ops.info()["kernels"]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        activation.gelu_tanh(np.zeros(4, np.float32))
    except ValueError as exc:
        message = str(exc)
print(json.dumps({"module": _selection.selection().manifest.module, "message": message,
                  "before": before, "after": fastdeploy_ops.info()["kernels"],
                  "origins": _loader.load_module()._kernel_families(),
                  "warnings": [str(w.message) for w in caught]}))
"""


@pytest.mark.parametrize("jit_enabled", [True, False])
def test_the_loader_jit_compiles_for_a_gpu_without_native_module(
        run_python, tmp_path: Path, compiled_modules: Path, jit_enabled: bool) -> None:
    """The whole first-call path with the real module and the build's nvcc, on a pretend SM90
    device: the JIT builds activation for sm_90 and the sm80 module launches through it; with
    FASTDEPLOY_OPS_JIT=0 the op stays on PTX, with a warning."""
    if shutil.which("nvcc") is None:
        pytest.skip("no nvcc on PATH (the build root has CUDA 12.4's)")
    out = run_python(PRETEND_H100, FASTDEPLOY_OPS_CACHE=str(tmp_path),
                     FASTDEPLOY_OPS_JIT="1" if jit_enabled else "0")
    assert out["module"] == "_ops_sm80"
    assert out["message"].startswith("gelu_tanh: argument 'input' must be a CUDA tensor")
    assert out["origins"]["moe_routing"] == "builtin"  # untouched until one of its ops is used
    assert out["after"]["moe_routing"] == out["before"]["moe_routing"]
    if jit_enabled:
        [library] = tmp_path.glob("activation-sm90-*/libactivation.so")
        assert out["origins"]["activation"] == str(library)
        assert out["warnings"] == []
        assert out["before"]["activation"] == "JIT-compiled for sm_90 on first use"
        assert out["after"]["activation"] == f"JIT-compiled for sm_90: {library}"
    else:
        assert out["origins"]["activation"] == "builtin"
        assert out["before"] == out["after"]
        assert out["after"]["activation"] == "_ops_sm80's PTX (FASTDEPLOY_OPS_JIT=0)"
        assert list(tmp_path.iterdir()) == []
        [warning] = out["warnings"]
        assert "runs from _ops_sm80's PTX" in warning and "FASTDEPLOY_OPS_JIT=0" in warning


WRONG_ABI = """
import sys
import fastdeploy_ops._ops_sm70 as sm70
try:
    sm70._load_kernel_library("activation", sys.argv[1], replace=True)
except RuntimeError as exc:
    print(exc)
print(sm70._kernel_families()["activation"])
"""


def test_a_library_of_another_kernel_abi_is_refused(tmp_path: Path,
                                                    compiled_modules: Path) -> None:
    compiler = shutil.which("g++-13") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no g++")
    source = tmp_path / "table.cc"
    source.write_text('#include <cstdint>\nextern "C" const void* '
                      "fdops_kernel_table_activation(uint32_t abi) { return nullptr; }\n")
    library = tmp_path / "libactivation.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    done = subprocess.run([sys.executable, "-c", WRONG_ABI, str(library)], text=True,
                          capture_output=True, timeout=60, check=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    refused, origin = done.stdout.strip().splitlines()
    assert f"kernel library {library} of family 'activation' was built for another kernel ABI" \
        in refused
    assert origin == "builtin"  # the module's own kernels stay
