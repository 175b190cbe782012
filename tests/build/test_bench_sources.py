"""tools/bench's source discovery on hand-made query and aquery output: generated kernel sources
(a cuda_instantiations target in a family's srcs) become files at their bin-relative path, are
compiled for exactly the SMs Bazel compiles them for, and reach the CMake and setuptools builds
as files, never as labels. No Bazel, no compiler."""

from __future__ import annotations

import json
import pathlib

import pytest

import bench

# Family a (min_sm 80): a source file and a cuda_instantiations target with two groups, one of
# them (fp8) from SM89 on. Family b (min_sm 89): one source file.
_XML = """<?xml version="1.1" encoding="UTF-8" standalone="no"?>
<query version="2">
    <rule class="_ops_family" name="//ops/a:a">
        <int name="min_sm" value="80"/>
    </rule>
    <rule class="cuda_library" name="//ops/a:a_kernels">
        <list name="srcs">
            <label value="//ops/a:kernel_table.cu"/>
            <label value="//ops/a:a_groups"/>
        </list>
        <list name="hdrs">
            <label value="//ops/a:a.h"/>
            <label value="//ops/a:a.cuh"/>
        </list>
    </rule>
    <rule class="cc_library" name="//ops/a:a_binding">
        <list name="srcs"><label value="//ops/a:a_binding.cc"/></list>
        <list name="deps">
            <label value="//ops/a:a_kernels"/>
            <label value="//ops/common:binding"/>
        </list>
    </rule>
    <rule class="cuda_instantiations" name="//ops/a:a_groups">
        <label name="template" value="//ops/a:group.cu.in"/>
    </rule>
    <rule class="_ops_family" name="//ops/b:b">
        <int name="min_sm" value="89"/>
    </rule>
    <rule class="cuda_library" name="//ops/b:b_kernels">
        <list name="srcs"><label value="//ops/b:quant.cu"/></list>
        <list name="hdrs"><label value="//ops/b:b.h"/></list>
    </rule>
    <rule class="cc_library" name="//ops/b:b_binding">
        <list name="srcs"><label value="//ops/b:b_binding.cc"/></list>
        <list name="deps">
            <label value="//ops/b:b_kernels"/>
            <label value="//ops/common:binding"/>
        </list>
    </rule>
    <rule class="cc_library" name="//ops/common:binding">
        <list name="srcs"><label value="//ops/common:binding.cc"/></list>
    </rule>
    <source-file name="//ops/a:kernel_table.cu"/>
    <source-file name="//ops/a:a.h"/>
    <source-file name="//ops/a:a.cuh"/>
    <source-file name="//ops/a:a_binding.cc"/>
    <source-file name="//ops/b:quant.cu"/>
    <source-file name="//ops/b:b.h"/>
    <source-file name="//ops/b:b_binding.cc"/>
</query>
"""
_FAMILIES = ["//ops/a:a", "//ops/b:b"]
# The top-level build's files of //ops/a:a_groups (cquery --output=files).
_GROUP_FILES = ["bazel-out/k8-opt/bin/ops/a/group_c16.cu",
                "bazel-out/k8-opt/bin/ops/a/group_fp8.cu"]
_FLAGS = ["-x", "cu", "-std=c++17", "-O3"]
# Each SM of the per-SM transition has its own output folder.
_SM_OUT = {80: "bazel-out/k8-opt-ST-80aa/bin", 89: "bazel-out/k8-opt-ST-89bb/bin"}


def _action(sm: int, source: str, flags: list[str] = _FLAGS) -> dict:
    name = source.rsplit("/", 1)[-1]
    return {"mnemonic": "CudaCompile", "arguments": [
        "bazel-out/k8-opt-exec/bin/cuda/nvcc_wrapper", "/usr/bin/nvcc",
        "-ccbin", "/usr/bin/g++", *flags, "--objdir-as-tempdir",
        f"-gencode=arch=compute_{sm},code=[sm_{sm},compute_{sm}]",
        f"-Xcompiler=-frandom-seed=ops/x/_objs/{name}.o",
        "-I", ".", "-I", _SM_OUT[sm], "-isystem", "external/cuda/include",
        "-c", source, "-o", f"{_SM_OUT[sm]}/ops/x/_objs/{name}.o"]}


def _aquery(extra: list[dict] | None = None) -> dict:
    """What Bazel compiles for sm80 and sm89: the fp8 group and family b from SM89 only."""
    actions = []
    for sm in (80, 89):
        actions += [_action(sm, "ops/a/kernel_table.cu"),
                    _action(sm, f"{_SM_OUT[sm]}/ops/a/group_c16.cu")]
    actions += [_action(89, f"{_SM_OUT[89]}/ops/a/group_fp8.cu"), _action(89, "ops/b/quant.cu")]
    return {"actions": actions + (extra or [])}


def _resolve(aquery: dict | None = None, generated: dict | None = None,
             families: list[str] | None = None) -> tuple[list[bench.Family], list[str]]:
    rules, source_files = bench.parse_query(_XML)
    if generated is None:
        generated = {"//ops/a:a_groups": [bench._checkout_path(p) for p in _GROUP_FILES]}
    return bench.resolve_families(_FAMILIES, rules, source_files, generated,
                                  bench.parse_aquery(aquery or _aquery()), families)


def test_generated_targets_are_the_srcs_that_are_no_source_files() -> None:
    rules, source_files = bench.parse_query(_XML)
    assert bench.generated_targets(_FAMILIES, rules, source_files) == ["//ops/a:a_groups"]


def test_generated_sources_are_files_at_their_bin_relative_path() -> None:
    assert bench._checkout_path("bazel-out/k8-opt-ST-80aa/bin/ops/a/g.cu") == "ops/a/g.cu"
    assert bench._checkout_path("ops/a/kernel_table.cu") == "ops/a/kernel_table.cu"
    # Keyed by the `-c` argument, mapped: the per-SM bazel-out paths meet the top-level files.
    compiles = bench.parse_aquery(_aquery())
    assert sorted(compiles) == [80, 89]
    assert sorted(compiles[80]) == ["ops/a/group_c16.cu", "ops/a/kernel_table.cu"]
    assert compiles[80]["ops/a/group_c16.cu"] == _FLAGS  # includes, -ccbin, Bazel-only: gone

    families, common = _resolve()
    a, b = families
    assert a.cuda_sources == ["ops/a/kernel_table.cu", "ops/a/group_c16.cu", "ops/a/group_fp8.cu"]
    assert a.source_min_sm == {"ops/a/kernel_table.cu": 80, "ops/a/group_c16.cu": 80,
                               "ops/a/group_fp8.cu": 89}
    assert a.nvcc_flags == _FLAGS and a.binding == "ops/a/a_binding.cc"
    assert a.headers == ["ops/a/a.h", "ops/a/a.cuh"]
    assert (b.cuda_sources, b.source_min_sm) == (["ops/b/quant.cu"], {"ops/b/quant.cu": 89})
    assert common == ["ops/common/binding.cc"]
    for family in families:
        for source in family.cuda_sources:
            assert ":" not in source and not source.startswith(("//", "bazel-out/")), source


def test_comparison_compiles_what_bazel_compiles_per_sm() -> None:
    families, _ = _resolve()
    sources = bench.Sources(families, [])
    compiles = bench.parse_aquery(_aquery())
    for sm in (80, 89):
        assert sorted(sources.compiled([sm])) == sorted(compiles[sm])
    assert sources.compiled([80]) == ["ops/a/kernel_table.cu", "ops/a/group_c16.cu"]
    assert len(sources.compiled([80, 89])) == 4
    assert families[0].sources_by_min_sm() == {
        80: ["ops/a/kernel_table.cu", "ops/a/group_c16.cu"], 89: ["ops/a/group_fp8.cu"]}


def test_an_unresolved_label_is_never_passed_on_as_a_file() -> None:
    with pytest.raises(ValueError, match="//ops/a:a_groups in the srcs of //ops/a:a_kernels"):
        _resolve(generated={})


def test_a_source_bazel_compiles_but_no_family_lists_fails() -> None:
    with pytest.raises(ValueError, match=r"ops/other/x.cu'\] for sm80"):
        _resolve(_aquery([_action(80, "ops/other/x.cu")]))


def test_sources_whose_sms_are_not_a_lowest_one_and_up_fail() -> None:
    # group_c16 compiled for sm80 only, not for sm89.
    aquery = _aquery()
    aquery["actions"] = [a for a in aquery["actions"]
                         if a["arguments"][-3] != f"{_SM_OUT[89]}/ops/a/group_c16.cu"]
    with pytest.raises(ValueError, match="from their lowest SM up"):
        _resolve(aquery)


def test_a_family_whose_compiles_differ_in_flags_fails() -> None:
    aquery = _aquery()
    aquery["actions"][1] = _action(80, f"{_SM_OUT[80]}/ops/a/group_c16.cu", _FLAGS + ["-DX"])
    with pytest.raises(ValueError, match="differ in their nvcc flags"):
        _resolve(aquery)


def test_families_subset_and_unknown_family() -> None:
    families, _ = _resolve(families=["b"])
    assert [f.name for f in families] == ["b"]
    with pytest.raises(SystemExit, match="unknown families"):
        _resolve(families=["a", "nope"])


@pytest.fixture
def workspace(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A workspace with family a's and b's files, and the generated groups outside it (where
    query_sources copies them). The Python and nanobind paths are fixed strings: the generated
    build files only name them, nothing here compiles."""
    root = tmp_path / "source"
    for path in ["ops/a/kernel_table.cu", "ops/a/a.h", "ops/a/a.cuh", "ops/a/a_binding.cc",
                 "ops/a/group.cu.in", "ops/b/quant.cu", "ops/b/b.h", "ops/b/b_binding.cc",
                 "ops/common/binding.cc", "ops/common/binding.h", "ops/families.bzl"]:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(f"// {path}\n")
    monkeypatch.setattr(bench, "_python_includes", lambda: ["/py/include"])
    monkeypatch.setattr(bench, "_nanobind_source", lambda: "/nanobind/nb_combined.cpp")
    return root


def _sources(tmp_path: pathlib.Path) -> bench.Sources:
    families, common = _resolve()
    generated = {}
    for path in ("ops/a/group_c16.cu", "ops/a/group_fp8.cu"):
        generated[path] = tmp_path / "generated" / path
        generated[path].parent.mkdir(parents=True, exist_ok=True)
        generated[path].write_text(f"// generated {path}\n")
    compiles = bench.parse_aquery(_aquery())
    return bench.Sources(families, common, generated,
                         {sm: sorted(c) for sm, c in compiles.items()})


def test_cmake_checkout_holds_and_lists_the_generated_files(
        workspace: pathlib.Path, tmp_path: pathlib.Path) -> None:
    sources = _sources(tmp_path)
    cmake = bench.CMake(workspace, tmp_path / "cmake", sources)
    for path in sources.generated:
        assert (cmake.checkout / path).read_text() == f"// generated {path}\n"
    lists = (cmake.checkout / "CMakeLists.txt").read_text()
    assert "a_groups" not in lists and "//" not in lists.split("\n", 1)[1]
    assert ("if(OPS_SMS_a_80)\n  add_library(ops_a_sm80 OBJECT ops/a/kernel_table.cu "
            "ops/a/group_c16.cu)") in lists
    assert "if(OPS_SMS_a_89)\n  add_library(ops_a_sm89 OBJECT ops/a/group_fp8.cu)" in lists
    assert "if(OPS_SMS_b_89)\n  add_library(ops_b_sm89 OBJECT ops/b/quant.cu)" in lists
    # Every family's binding is built, whatever the SMs (as Bazel links every binding).
    assert "add_library(ops_b OBJECT ops/b/b_binding.cc)" in lists
    # The second checkout gets them too.
    other = cmake.second_checkout(workspace, 0)
    assert all((other / path).is_file() for path in sources.generated)


def test_setuptools_lists_generated_files_with_their_lowest_sm(
        workspace: pathlib.Path, tmp_path: pathlib.Path) -> None:
    sources = _sources(tmp_path)
    setuptools = bench.Setuptools(workspace, tmp_path / "setuptools", sources)
    config = json.loads((setuptools.checkout / "bench_setup.json").read_text())
    assert config["min_sm"] == {"ops/a/kernel_table.cu": 80, "ops/a/group_c16.cu": 80,
                                "ops/a/group_fp8.cu": 89, "ops/b/quant.cu": 89}
    for source in config["sources"]:
        assert source.startswith("/") or (setuptools.checkout / source).is_file(), source
    assert set(config["nvcc_flags"]) == set(config["min_sm"])
    assert "ops/a/a.h" in config["headers"] and "ops/common/binding.h" in config["headers"]


def test_bazel_checkout_has_no_generated_copies(workspace: pathlib.Path,
                                                tmp_path: pathlib.Path) -> None:
    sources = _sources(tmp_path)
    checkout = bench.Bazel(workspace, tmp_path / "bazel", sources).checkout
    assert not any((checkout / path).exists() for path in sources.generated)
    assert '"//ops/a"' in (checkout / "ops/families.bzl").read_text()


def test_edits_are_of_files_every_checkout_has(tmp_path: pathlib.Path) -> None:
    sources = _sources(tmp_path)
    # Family a has the most sources at sm80; its first one that is no generated file.
    assert bench._kernel_to_edit(sources, [80]) == "ops/a/kernel_table.cu"
    assert bench._header_to_edit(sources, [80]) == "ops/a/a.h"
    # A family whose first source is generated: the first source file instead.
    a = sources.families[0]
    a.cuda_sources = ["ops/a/group_c16.cu", "ops/a/kernel_table.cu", "ops/a/group_fp8.cu"]
    assert bench._kernel_to_edit(sources, [80]) == "ops/a/kernel_table.cu"
