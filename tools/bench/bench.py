"""Build-speed comparison: this Bazel build against the status quo, on the same sources and flags.

    tools/bazel run //tools/bench -- --out benchmarks/build [--families activation,rotary]
        [--repeats 3] [--sm 80] [--added-sms 90,86,89] [--systems bazel,cmake] [--dry-run]

From `bazel query` of the extension's families (kernel sources, headers, bindings, min_sm) and
`bazel aquery` of their CUDA compiles (the exact nvcc flags), it writes two throwaway builds of
exactly those sources in copies of the workspace:
- setuptools: one extension built by a setup.py whose build_ext compiles .cu files with nvcc
  and the rest with g++, one source after another, as torch's CUDAExtension does without ninja
  (FastDeploy's way); setuptools' only dependency tracking is "any source or listed header newer
  than the extension rebuilds every source";
- CMake + Ninja + ccache: per family, an object library of its binding and one of its kernels
  per lowest SM, nvcc and g++ behind ccache (vLLM's way).
Kernel sources that Bazel generates (cuda_instantiations groups) are generated once up front by
Bazel and copied into those two builds' checkouts at their path below bazel-bin, where they
compile as ordinary files; each build compiles, per SM, exactly the sources Bazel compiles for
it (per aquery), e.g. fp8-cache attention groups and SM89 families only from SM89 on.
Then it times, per build system and several times each (medians): a cold build, a no-op build,
one kernel source edited, one header shared by a family's sources edited, a clean build from a
warm cache, a clean build of a second checkout at another path from the same cache, and adding
a second SM. It writes results.md (with the machine's core count and load) and results.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import textwrap
import time
import xml.etree.ElementTree as ET

_IGNORED = shutil.ignore_patterns("bazel-*", ".git", ".scratch", ".device", "__pycache__",
                                  "user.bazelrc", "benchmarks")
_NVCC = "/usr/bin/nvcc"
_CXX = "g++-13"
# Host flags of the bindings and nanobind in the comparison builds (Bazel's own toolchain flags
# differ slightly; the CUDA flags are Bazel's exactly).
_CXX_FLAGS = ["-O2", "-DNDEBUG", "-std=c++17", "-fPIC", "-fvisibility=hidden",
              "-fno-strict-aliasing"]
_LINK_FLAGS = ["-lcudart_static", "-ldl", "-lrt", "-lpthread", "-static-libstdc++",
               "-static-libgcc", "-Wl,--exclude-libs,ALL"]
# nvcc flags the comparison builds set their own way (sources, outputs, includes, SMs), and
# Bazel-only ones: object names seeded by Bazel's output path, intermediates next to the object.
_BAZEL_ONLY_NVCC_FLAGS = ("--objdir-as-tempdir", "-Xcompiler=-frandom-seed=")

ROWS = [
    ("cold", "cold build (empty caches)"),
    ("noop", "no-op build"),
    ("kernel_edit", "one kernel source edited"),
    ("header_edit", "one family header edited"),
    ("warm_clean", "clean build, warm cache"),
    ("second_checkout", "second checkout elsewhere, warm cache"),
    ("add_sm", "second SM added"),
]
SYSTEMS = ("bazel", "cmake", "setuptools")
SYSTEM_TITLES = {"bazel": "Bazel (this repo)", "cmake": "CMake+Ninja+ccache",
                 "setuptools": "setuptools (one extension)"}


@dataclasses.dataclass
class Family:
    name: str
    package: str  # e.g. ops/activation
    min_sm: int
    # Checkout paths of the kernel sources Bazel compiles for at least one SM of the bench,
    # generated ones (cuda_instantiations groups) included, in the order of the kernels' srcs.
    cuda_sources: list[str]
    # Each of those sources -> the lowest SM of the bench that Bazel compiles it for: the family's
    # min_sm, or higher for an instantiation group with a min_sm of its own (fp8 caches: SM89).
    source_min_sm: dict[str, int]
    headers: list[str]
    binding: str
    nvcc_flags: list[str]  # without sources, includes, outputs and -gencode

    def sources_for(self, sms: list[int]) -> list[str]:
        """The kernel sources a build for `sms` compiles (for those of `sms` they allow)."""
        return [s for s in self.cuda_sources if any(sm >= self.source_min_sm[s] for sm in sms)]

    def sources_by_min_sm(self) -> dict[int, list[str]]:
        """The kernel sources grouped by their lowest SM, lowest first."""
        groups: dict[int, list[str]] = {}
        for source in self.cuda_sources:
            groups.setdefault(self.source_min_sm[source], []).append(source)
        return dict(sorted(groups.items()))


@dataclasses.dataclass
class Sources:
    families: list[Family]
    common_sources: list[str]  # SM-independent host sources shared by every family (bindings)
    # Checkout path of each generated kernel source -> the file Bazel wrote, which the comparison
    # builds (no rules of their own to generate it) get a copy of at that path.
    generated: dict[str, pathlib.Path] = dataclasses.field(default_factory=dict)
    # SM -> the families' sources Bazel compiles for it (one CudaCompile action each), from
    # aquery: what the comparison builds' source lists are checked against.
    bazel_compiles: dict[int, list[str]] = dataclasses.field(default_factory=dict)

    def compiled(self, sms: list[int]) -> list[str]:
        """The CUDA sources the comparison builds compile for `sms`."""
        return [s for f in self.families for s in f.sources_for(sms)]


def _run(command: list[str], cwd: pathlib.Path, log: pathlib.Path,
         env: dict | None = None) -> float:
    """Runs `command`; returns its wall time in seconds. Fails with the log's tail."""
    start = time.monotonic()
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(command)}\n")
        f.flush()
        result = subprocess.run(command, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"bench: `{' '.join(command[:4])} ...` failed in {cwd}:\n{tail}")
    return elapsed


def _label_path(label: str) -> str:
    """//ops/activation:gelu_tanh.cu -> ops/activation/gelu_tanh.cu"""
    package, name = label.removeprefix("//").split(":")
    return f"{package}/{name}"


# An output's execution-root path: bazel-out/<configuration>/bin/<path in the source tree>. The
# configuration differs between the top-level build and each SM of the per-SM transition.
_BAZEL_OUT = re.compile(r"^bazel-out/[^/]+/bin/")
_GENCODE_SM = re.compile(r"^-gencode=arch=compute_(\d+)")


def _checkout_path(execroot_path: str) -> str:
    """Where a kernel source lies in a checkout: a source file at its own path, a generated one
    at its path below Bazel's bin folder (bazel-out/k8-opt-ST-1/bin/ops/a/x.cu -> ops/a/x.cu).
    That is the path a generated source has on Bazel's include path (-I <bin>) and in the
    wheel's JIT sources, and the same for every configuration, so aquery's per-SM paths and the
    top-level build's files meet there."""
    return _BAZEL_OUT.sub("", execroot_path)


def parse_query(xml: str) -> tuple[dict[str, tuple[str, dict]], set[str]]:
    """`bazel query --output=xml`: rule label -> (rule class, attributes); the source files."""
    rules, source_files = {}, set()
    root = ET.fromstring(xml)
    for rule in root.iter("rule"):
        attrs = {}
        for child in rule:
            if child.tag == "list":
                attrs[child.get("name")] = [c.get("value") for c in child]
            elif child.get("name"):
                attrs[child.get("name")] = child.get("value")
        rules[rule.get("name")] = (rule.get("class"), attrs)
    for source in root.iter("source-file"):
        source_files.add(source.get("name"))
    return rules, source_files


def _kernel_srcs(label: str, rules: dict[str, tuple[str, dict]]) -> tuple[str, list[str]]:
    """The `<name>_kernels` target of family `label` and its srcs labels."""
    package, name = label.removeprefix("//").split(":")
    kernels = f"//{package}:{name}_kernels"
    return kernels, rules[kernels][1].get("srcs", [])


def generated_targets(family_labels: list[str], rules: dict[str, tuple[str, dict]],
                      source_files: set[str]) -> list[str]:
    """The labels in the families' kernel srcs that are no source file: targets (such as a
    cuda_instantiations) or their declared outputs, whose files Bazel writes."""
    return sorted({src for label in family_labels for src in _kernel_srcs(label, rules)[1]
                   if src not in source_files})


def parse_aquery(aquery: dict) -> dict[int, dict[str, list[str]]]:
    """SM -> the checkout path of each source a CudaCompile action compiles for that SM -> its
    portable nvcc flags. Actions name generated sources by their bazel-out path (`-c`)."""
    compiles: dict[int, dict[str, list[str]]] = {}
    for action in aquery.get("actions", []):
        args = action["arguments"]
        sms = {int(m.group(1)) for arg in args if (m := _GENCODE_SM.match(arg))}
        if len(sms) != 1:
            raise ValueError(f"bench: a CudaCompile action with -gencode SMs {sorted(sms)}: {args}")
        compile_flag = args.index("-c")
        source = _checkout_path(args[compile_flag + 1])
        compiles.setdefault(sms.pop(), {})[source] = _portable_nvcc_flags(args[2:compile_flag])
    return compiles


def resolve_families(family_labels: list[str], rules: dict[str, tuple[str, dict]],
                     source_files: set[str], generated: dict[str, list[str]],
                     compiles: dict[int, dict[str, list[str]]],
                     families: list[str] | None) -> tuple[list[Family], list[str]]:
    """The families (all, or those named in `families`) and the common host sources.

    `generated` maps each generated-source label in the kernels' srcs to the checkout paths of
    its files; `compiles` is parse_aquery's result for the SMs of the bench. Fails if a srcs
    label is neither a source file nor in `generated` (a label is never a file to compile), if
    Bazel compiles a source no family lists, if a source's SMs are not "its lowest one and up",
    or if a family's sources or SMs disagree on their nvcc flags."""
    result, common = [], set()
    for label in family_labels:
        _, family = rules[label]
        package, name = label.removeprefix("//").split(":")
        kernels, srcs = _kernel_srcs(label, rules)
        _, binding = rules[f"//{package}:{name}_binding"]
        paths = []
        for src in srcs:
            if src in source_files:
                paths.append(_label_path(src))
            elif src in generated:
                paths.extend(generated[src])
            else:
                raise ValueError(f"bench: {src} in the srcs of {kernels} is neither a source "
                                 "file nor a generated-source target whose files were resolved")
        source_min_sm = {p: min(sm for sm, compiled in compiles.items() if p in compiled)
                         for p in paths if any(p in compiled for compiled in compiles.values())}
        flags = {tuple(compiled[p]) for compiled in compiles.values() for p in paths
                 if p in compiled}
        if len(flags) > 1:
            raise ValueError(f"bench: the CUDA compiles of {kernels} differ in their nvcc flags "
                             f"(the comparison builds set them per family): {sorted(flags)}")
        for dep in binding.get("deps", []):
            dep_class, dep_attrs = rules.get(dep, ("", {}))
            if dep_class == "cc_library" and not dep.endswith("_kernels"):
                common.update(_label_path(l) for l in dep_attrs.get("srcs", [])
                              if l.endswith(".cc"))
        result.append(Family(
            name=name, package=package, min_sm=int(family["min_sm"]),
            cuda_sources=[p for p in paths if p in source_min_sm], source_min_sm=source_min_sm,
            headers=[_label_path(l) for l in rules[kernels][1].get("hdrs", [])],
            binding=_label_path(binding["srcs"][0]),
            nvcc_flags=list(flags.pop()) if flags else []))

    listed = {s for f in result for s in f.cuda_sources}
    for sm, compiled in sorted(compiles.items()):
        if unknown := sorted(set(compiled) - listed):
            raise ValueError(f"bench: Bazel compiles {unknown} for sm{sm}, which no family's "
                             "kernels list")
        expected = {s for f in result for s in f.sources_for([sm])}
        if expected != set(compiled):
            raise ValueError(f"bench: the sources Bazel compiles for sm{sm} are not those from "
                             f"their lowest SM up: {sorted(expected ^ set(compiled))}")

    if families:
        if sorted(f.name for f in result if f.name in families) != sorted(families):
            raise SystemExit(f"bench: unknown families in {families}; "
                             f"the extension has {[l.split(':')[1] for l in family_labels]}")
        result = [f for f in result if f.name in families]
    return result, sorted(common)


def query_sources(workspace: pathlib.Path, bazel: list[str], families: list[str] | None,
                  sms: list[int], generated_dir: pathlib.Path) -> Sources:
    """The extension's families, from bazel query, their generated sources, built once here
    (template expansion only) and copied into `generated_dir`, and their nvcc flags and SMs,
    from bazel aquery for `sms` (every SM the bench builds for)."""
    sm_flags = [f"--//cuda:sms={sm}" for sm in sms]

    def bazel_out(*command: str) -> str:
        result = subprocess.run([*bazel, *command], cwd=workspace, capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise RuntimeError(f"bench: `bazel {' '.join(command)}` failed:\n"
                               f"{result.stderr[-3000:]}")
        return result.stdout

    family_labels = bazel_out("query", "labels(families, //python:ops)", "--output=label").split()
    rules, source_files = parse_query(
        bazel_out("query", "deps(labels(families, //python:ops), 2)", "--output=xml"))
    targets = generated_targets(family_labels, rules, source_files)
    generated, files = {}, {}
    if targets:
        # The same flags as the aquery below, so one analysis serves all three commands. At top
        # level (outside the per-SM transition) a cuda_instantiations writes every group; the
        # aquery says which of them Bazel compiles for which SM.
        bazel_out("build", *sm_flags, *targets)
        execroot = pathlib.Path(bazel_out("info", "execution_root").strip())
        for target in targets:
            # config(..., target): the top-level build's files only, not those of the other
            # configurations (per-SM, bindings') that cquery also knows the target in.
            outputs = bazel_out("cquery", f"config({target}, target)", "--output=files",
                                *sm_flags).split()
            generated[target] = [_checkout_path(p) for p in outputs]
            files.update({_checkout_path(p): execroot / p for p in outputs})
    compiles = parse_aquery(json.loads(bazel_out(
        "aquery", 'mnemonic("CudaCompile", deps(//python:ops))', "--output=jsonproto",
        *sm_flags)))
    result, common = resolve_families(family_labels, rules, source_files, generated, compiles,
                                      families)

    # Copies the bench owns (writable, independent of the query's Bazel output base).
    copies = {}
    for path in (s for f in result for s in f.cuda_sources if s in files):
        copies[path] = generated_dir / path
        copies[path].parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[path], copies[path])
    listed = {s for f in result for s in f.cuda_sources}
    return Sources(result, common, copies,
                   {sm: sorted(set(compiled) & listed) for sm, compiled in compiles.items()})


def _portable_nvcc_flags(args: list[str]) -> list[str]:
    """Bazel's nvcc arguments without includes, -ccbin, -gencode and Bazel-only flags."""
    flags, skip = [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in ("-I", "-isystem", "-ccbin"):
            skip = True
            continue
        if arg.startswith(("-I", "-gencode=")) or arg.startswith(_BAZEL_ONLY_NVCC_FLAGS):
            continue
        flags.append(arg)
    return flags


def _python_includes() -> list[str]:
    import nanobind

    return [nanobind.include_dir(),
            str(pathlib.Path(nanobind.source_dir()).parent / "ext/robin_map/include"),
            sysconfig.get_paths()["include"]]


def _nanobind_source() -> str:
    import nanobind

    return str(pathlib.Path(nanobind.source_dir()) / "nb_combined.cpp")


def _registration_source(families: list[Family]) -> str:
    """The module init of the comparison builds, as ops_extension generates it."""
    decls = "\n".join(f"void register_{f.name}(nanobind::module_& m);" for f in families)
    calls = "\n".join(f"  fdops::register_{f.name}(m);" for f in families)
    return (f"#include <nanobind/nanobind.h>\n\nnamespace fdops {{\n{decls}\n}}  // namespace fdops"
            f"\n\nNB_MODULE(_ops, m) {{\n{calls}\n}}\n")


class BuildSystem:
    """One build system over its own copy of the workspace (its checkout)."""

    name = ""
    # Whether the checkout needs copies of the generated kernel sources: the comparison builds
    # compile them as ordinary files; Bazel generates them itself from their templates.
    copies_generated = True

    def __init__(self, source: pathlib.Path, work: pathlib.Path, sources: Sources) -> None:
        self.work = work
        self.sources = sources
        self.checkout = work / "checkout"
        self.log = work / "build.log"
        work.mkdir(parents=True, exist_ok=True)
        self._copy(source, self.checkout)

    def _copy(self, source: pathlib.Path, dest: pathlib.Path) -> None:
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(source, dest, ignore=_IGNORED, symlinks=False)
        if self.copies_generated:
            for path, generated in self.sources.generated.items():
                (dest / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(generated, dest / path)
        self.prepare(dest)

    def second_checkout(self, source: pathlib.Path, index: int) -> pathlib.Path:
        dest = self.work / f"checkout{index + 2}"
        self._copy(source, dest)
        return dest

    def prepare(self, checkout: pathlib.Path) -> None:
        """Writes the build files into a fresh copy of the workspace."""

    def clear_cache(self) -> None:
        """Empties the build system's cache (none by default)."""

    def clean(self, checkout: pathlib.Path) -> None:
        """Removes the build outputs of `checkout` (not the cache)."""

    def build(self, checkout: pathlib.Path, sms: list[int]) -> float:
        raise NotImplementedError

    def finish(self, checkout: pathlib.Path) -> None:
        """Releases what the build system keeps running for `checkout`."""


class Bazel(BuildSystem):
    name = "bazel"
    copies_generated = False

    def prepare(self, checkout: pathlib.Path) -> None:
        families = ",\n".join(f'    "//{f.package}"' for f in self.sources.families)
        (checkout / "ops/families.bzl").write_text(
            f'"""Families of the bench build (tools/bench)."""\n\nFAMILIES = [\n{families},\n]\n')

    def _bazel(self, checkout: pathlib.Path) -> list[str]:
        return ["bazel", f"--output_user_root={checkout}.bazel"]

    def clear_cache(self) -> None:
        shutil.rmtree(self.work / "disk-cache", ignore_errors=True)

    def clean(self, checkout: pathlib.Path) -> None:
        _run([*self._bazel(checkout), "clean"], checkout, self.log)

    def build(self, checkout: pathlib.Path, sms: list[int]) -> float:
        return _run([*self._bazel(checkout), "build", "//python:ops", "--color=no", "--curses=no",
                     f"--disk_cache={self.work / 'disk-cache'}", "--noremote_accept_cached",
                     *[f"--//cuda:sms={sm}" for sm in sms]], checkout, self.log)

    def finish(self, checkout: pathlib.Path) -> None:
        subprocess.run([*self._bazel(checkout), "shutdown"], cwd=checkout, check=False,
                       capture_output=True)


def _cmake_sms_variable(family: Family, min_sm: int) -> str:
    """The CMake variable with the SMs of the build that `family`'s sources of `min_sm` get."""
    return f"OPS_SMS_{family.name}_{min_sm}"


def _cmake_list(flags: list[str]) -> str:
    """Flags as a CMake list inside a generator expression (commas must be $<COMMA>)."""
    return ";".join(flag.replace(",", "$<COMMA>") for flag in flags)


class CMake(BuildSystem):
    name = "cmake"

    def prepare(self, checkout: pathlib.Path) -> None:
        lines = [
            "# Generated by tools/bench: the bench's sources as CMake targets per family.",
            "cmake_minimum_required(VERSION 3.26)",
            "project(fastdeploy_ops_bench LANGUAGES CXX CUDA)",
            f"set(CXX_FLAGS {' '.join(_CXX_FLAGS)})",
            f"add_library(nanobind STATIC {_nanobind_source()})",
            f"target_include_directories(nanobind PUBLIC {' '.join(_python_includes())})",
            "target_compile_definitions(nanobind PUBLIC Py_LIMITED_API=0x030C0000)",
            "target_compile_options(nanobind PRIVATE ${CXX_FLAGS})",
        ]
        for f in self.sources.families:
            lines += [
                f"add_library(ops_{f.name} OBJECT {f.binding})",
                f"set_target_properties(ops_{f.name} PROPERTIES POSITION_INDEPENDENT_CODE ON)",
                f"target_compile_options(ops_{f.name} PRIVATE ${{CXX_FLAGS}})",
                f"target_include_directories(ops_{f.name} PRIVATE ${{CMAKE_SOURCE_DIR}})",
                f"target_link_libraries(ops_{f.name} PRIVATE nanobind)",
                f"list(APPEND OPS_OBJECTS $<TARGET_OBJECTS:ops_{f.name}>)",
            ]
            # The kernels by lowest SM, each group only if the build has an SM it allows
            # (CMake refuses CUDA targets without architectures): a family above the build's
            # SM contributes its binding only, and fp8 groups appear from SM89 on, as in Bazel.
            for min_sm, group in f.sources_by_min_sm().items():
                target, sms = f"ops_{f.name}_sm{min_sm}", _cmake_sms_variable(f, min_sm)
                lines += [
                    f"if({sms})",
                    f"  add_library({target} OBJECT {' '.join(group)})",
                    f"  set_target_properties({target} PROPERTIES CUDA_ARCHITECTURES "
                    f"\"${{{sms}}}\" POSITION_INDEPENDENT_CODE ON)",
                    f"  target_compile_options({target} PRIVATE "
                    f"\"$<$<COMPILE_LANGUAGE:CUDA>:{_cmake_list(f.nvcc_flags)}>\")",
                    f"  target_include_directories({target} PRIVATE ${{CMAKE_SOURCE_DIR}})",
                    f"  list(APPEND OPS_OBJECTS $<TARGET_OBJECTS:{target}>)",
                    "endif()",
                ]
        (checkout / "bench_registration.cc").write_text(_registration_source(self.sources.families))
        lines += [
            f"add_library(_ops MODULE bench_registration.cc {' '.join(self.sources.common_sources)}"
            " ${OPS_OBJECTS})",
            "set_target_properties(_ops PROPERTIES PREFIX \"\" LINKER_LANGUAGE CXX)",
            "target_include_directories(_ops PRIVATE ${CMAKE_SOURCE_DIR})",
            "target_compile_options(_ops PRIVATE ${CXX_FLAGS})",
            f"target_link_libraries(_ops PRIVATE nanobind {' '.join(_LINK_FLAGS)})",
        ]
        (checkout / "CMakeLists.txt").write_text("\n".join(lines) + "\n")

    def _env(self, checkout: pathlib.Path) -> dict:
        return {"CCACHE_DIR": str(self.work / "ccache"), "CCACHE_BASEDIR": str(checkout),
                "CCACHE_NOHASHDIR": "true", "CCACHE_MAXSIZE": "10G"}

    def clear_cache(self) -> None:
        shutil.rmtree(self.work / "ccache", ignore_errors=True)

    def clean(self, checkout: pathlib.Path) -> None:
        shutil.rmtree(checkout / "build", ignore_errors=True)

    def configure(self, checkout: pathlib.Path, sms: list[int]) -> float:
        """Configures `checkout`'s build folder for `sms` (no compiling but CMake's compiler
        checks); returns the wall time."""
        sm_lists = [
            f"-D{_cmake_sms_variable(f, min_sm)}={';'.join(str(sm) for sm in sms if sm >= min_sm)}"
            for f in self.sources.families for min_sm in f.sources_by_min_sm()]
        return _run([
            "cmake", "-G", "Ninja", "-S", str(checkout), "-B", str(checkout / "build"),
            "-DCMAKE_BUILD_TYPE=", f"-DCMAKE_CXX_COMPILER={_CXX}",
            f"-DCMAKE_CUDA_COMPILER={_NVCC}", f"-DCMAKE_CUDA_HOST_COMPILER={_CXX}",
            "-DCMAKE_CUDA_COMPILER_LAUNCHER=ccache", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache",
            *sm_lists], checkout, self.log, self._env(checkout))

    def build(self, checkout: pathlib.Path, sms: list[int]) -> float:
        build_dir = checkout / "build"
        env = self._env(checkout)
        elapsed = 0.0
        # Configure on the first build and whenever the SMs change, as a developer would.
        stamp = build_dir / "bench_sms.txt"
        if not stamp.exists() or stamp.read_text() != repr(sms):
            elapsed += self.configure(checkout, sms)
            stamp.write_text(repr(sms))
        return elapsed + _run(["ninja", "-C", str(build_dir)], checkout, self.log, env)


class Setuptools(BuildSystem):
    name = "setuptools"

    def prepare(self, checkout: pathlib.Path) -> None:
        families = self.sources.families
        (checkout / "bench_registration.cc").write_text(_registration_source(families))
        config = {
            "nvcc": _NVCC, "cxx": _CXX, "cxx_flags": _CXX_FLAGS, "link_flags": _LINK_FLAGS,
            "nvcc_flags": {s: ["-ccbin", _CXX, *f.nvcc_flags] for f in families
                           for s in f.cuda_sources},
            # setup.py leaves out the sources whose lowest SM is above every SM it builds for.
            "min_sm": {s: f.source_min_sm[s] for f in families for s in f.cuda_sources},
            "sources": [s for f in families for s in f.cuda_sources] +
                       [f.binding for f in families] + self.sources.common_sources +
                       ["bench_registration.cc", _nanobind_source()],
            "headers": sorted({h for f in families for h in f.headers} |
                              {str(p.relative_to(checkout))
                               for p in (checkout / "ops/common").glob("*.*h")}),
            "include_dirs": [".", *_python_includes()],
        }
        (checkout / "bench_setup.json").write_text(json.dumps(config, indent=1))
        shutil.copy(pathlib.Path(__file__).with_name("setup_template.py"), checkout / "setup.py")

    def clean(self, checkout: pathlib.Path) -> None:
        shutil.rmtree(checkout / "build", ignore_errors=True)

    def build(self, checkout: pathlib.Path, sms: list[int]) -> float:
        # setuptools cannot see a flag change: a new SM list needs --force (done by the caller
        # through clean(), as a developer would rm -rf build).
        return _run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", "build/lib",
                     "--build-temp", "build/temp"], checkout, self.log,
                    {"BENCH_SMS": ",".join(map(str, sms))})


def _edited_family(sources: Sources, sms: list[int]) -> Family:
    """The family with the most kernel sources compiled for `sms`: its edits are measured."""
    return max(sources.families, key=lambda f: len(f.sources_for(sms)))


def _kernel_to_edit(sources: Sources, sms: list[int]) -> str:
    """The first kernel source of the edited family that is a file in every checkout: a
    generated one exists in the comparison checkouts only (Bazel would regenerate it from its
    template), so editing it would not be the same edit for all three."""
    family = _edited_family(sources, sms)
    return next(s for s in family.sources_for(sms) if s not in sources.generated)


def _header_to_edit(sources: Sources, sms: list[int]) -> str:
    """The launch header (<family>.h) of the edited family."""
    family = _edited_family(sources, sms)
    header = f"{family.package}/{family.name}.h"
    if header not in family.headers:
        raise ValueError(f"bench: {header} is not among the headers of {family.name}")
    return header


def _append(path: pathlib.Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def measure(system: BuildSystem, source: pathlib.Path, sms: list[int], added: list[int],
            repeats: int) -> dict[str, list[float]]:
    """Every row of the table for one build system, `repeats` times each."""
    times = {key: [] for key, _ in ROWS}
    checkout = system.checkout
    kernel, header = _kernel_to_edit(system.sources, sms), _header_to_edit(system.sources, sms)
    for rep in range(repeats):
        system.clear_cache()
        system.clean(checkout)
        times["cold"].append(system.build(checkout, sms))
        times["noop"].append(system.build(checkout, sms))
        # New code, not a comment: the object really changes, so no cache can skip the work.
        _append(checkout / kernel, f'\nextern "C" void fdops_bench_kernel_{rep}() {{}}\n')
        times["kernel_edit"].append(system.build(checkout, sms))
        _append(checkout / header, f"\ninline int fdops_bench_header_{rep}() {{ return {rep}; }}\n")
        times["header_edit"].append(system.build(checkout, sms))
        system.clean(checkout)
        times["warm_clean"].append(system.build(checkout, sms))
        other = system.second_checkout(source, rep)
        # The second checkout has the original sources: bring it to the same edits.
        for path in (kernel, header):
            shutil.copy(checkout / path, other / path)
        try:
            times["second_checkout"].append(system.build(other, sms))
        finally:
            system.finish(other)
            shutil.rmtree(other, ignore_errors=True)
            shutil.rmtree(f"{other}.bazel", ignore_errors=True)
        # A new SM each repetition, so that no earlier repetition has built it.
        new_sm = added[rep % len(added)]
        if system.name == "setuptools":
            system.clean(checkout)  # it cannot see that the SM list changed
        times["add_sm"].append(system.build(checkout, sorted(sms + [new_sm])))
        print(f"bench: {system.name} repetition {rep + 1}/{repeats}: " +
              ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items()), flush=True)
    system.finish(checkout)
    return times


def _ratio_lines(med: dict[str, dict[str, float]]) -> list[str]:
    b, c, s = med["bazel"], med["cmake"], med["setuptools"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    lines = [
        f"- one-kernel edit, setuptools / Bazel: {s['kernel_edit'] / b['kernel_edit']:.1f}x "
        f"(target >= 10x: {verdict(s['kernel_edit'] >= 10 * b['kernel_edit'])})",
        f"- Bazel no-op build: {b['noop']:.2f} s (target < 2 s: {verdict(b['noop'] < 2)})",
        f"- Bazel cold / clean build from warm cache: {b['cold'] / b['warm_clean']:.1f}x "
        f"(target >= 5x: {verdict(b['cold'] >= 5 * b['warm_clean'])})",
    ]
    for key, title in ROWS:
        lines.append(f"- {title}, CMake+Ninja+ccache / Bazel: {c[key] / b[key]:.2f}x "
                     f"(target >= 1: {verdict(c[key] >= b[key])})")
    return lines


def write_results(out: pathlib.Path, times: dict[str, dict[str, list[float]]], meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "times": times}, indent=1) + "\n")
    med = {s: {k: statistics.median(v) for k, v in rows.items()} for s, rows in times.items()}
    lines = [
        "# Build speed: Bazel vs setuptools vs CMake+Ninja+ccache",
        "",
        "Written by `tools/bench` (one run; medians of the repetitions, min-max in brackets, "
        "seconds of wall time).",
        "",
        f"- date: {meta['date']}",
        f"- machine: {meta['cores']} CPU cores; load average before {meta['load_before']}, "
        f"after {meta['load_after']}",
        f"- families: {', '.join(meta['families'])} ({meta['cuda_sources']} CUDA sources)",
        f"- SMs: {meta['sms']}, second SM added: {meta['added_sms']} (a new one each repetition)",
        f"- repetitions: {meta['repeats']}",
        f"- edited: kernel `{meta['kernel']}`, header `{meta['header']}`",
        "",
        "| | " + " | ".join(SYSTEM_TITLES[s] for s in SYSTEMS) + " |",
        "|---|" + "---:|" * len(SYSTEMS),
    ]
    for key, title in ROWS:
        cells = [f"{med[s][key]:.1f} [{min(times[s][key]):.1f}-{max(times[s][key]):.1f}]"
                 for s in SYSTEMS]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines += ["", "## Targets", "", *_ratio_lines(med), "", "## How each row is measured", "",
              *meta["notes"], ""]
    if meta.get("busy"):
        lines.insert(3, f"\n**The machine was busy during this run** ({meta['busy']}); "
                        "absolute times and ratios are distorted.\n")
    (out / "results.md").write_text("\n".join(lines))
    _chart(out / "results.png", med, meta)


def _chart(path: pathlib.Path, med: dict[str, dict[str, float]], meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.27
    for i, system in enumerate(SYSTEMS):
        xs = [j + (i - 1) * width for j in range(len(ROWS))]
        ax.bar(xs, [max(med[system][k], 0.01) for k, _ in ROWS], width,
               label=SYSTEM_TITLES[system])
    ax.set_xticks(range(len(ROWS)), [textwrap.fill(t, 18) for _, t in ROWS], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("seconds (median, log scale)")
    ax.set_title(f"Build times, {len(meta['families'])} families, {meta['cores']} cores")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


_NOTES = [
    "- cold: build outputs removed and the build system's cache emptied (Bazel: `bazel clean` "
    "and an empty disk cache, its server already running; CMake: empty build folder and empty "
    "ccache, configure included; setuptools: empty build folder).",
    "- no-op: the same build again, nothing changed.",
    "- one kernel source edited: a new function appended to the .cu file (new code, so the "
    "object changes).",
    "- one family header edited: a new inline function appended to the family's launch header, "
    "included by its kernels and its binding. setuptools lists every header in `depends`, the "
    "only way it notices a header change: any change rebuilds everything.",
    "- clean build, warm cache: build outputs removed, cache kept (Bazel: disk cache; CMake: "
    "ccache).",
    "- second checkout elsewhere: a fresh copy of the sources at another absolute path, building "
    "from the same cache (Bazel: new output base and server, same disk cache; CMake: ccache with "
    "base_dir set to the checkout).",
    "- second SM added: from a build for the SMs above, the same build with one more SM. "
    "setuptools cannot see a flag change, so its build folder is removed first; CMake "
    "reconfigures and recompiles every CUDA source for both SMs (one nvcc call per source, as "
    "CMake and setuptools do); Bazel compiles only the new SM.",
    "- generated kernel sources (attention's instantiation groups): Bazel generates them in its "
    "own builds; the CMake and setuptools checkouts get copies that Bazel generated before the "
    "timing, and each build compiles, per SM, the sources Bazel compiles for it (fp8-cache "
    "groups and SM89 families from SM89 on).",
    "- CUDA flags are Bazel's own (from `bazel aquery`), less `--objdir-as-tempdir` and "
    "`-frandom-seed`; host flags of the bindings and nanobind are "
    f"`{' '.join(_CXX_FLAGS)}` in the comparison builds.",
]


def _ninja_cuda_objects(build_dir: pathlib.Path) -> list[str]:
    """The CUDA objects a configured CMake build folder's build.ninja compiles."""
    return sorted(line.split(":")[0].split()[-1]
                  for line in (build_dir / "build.ninja").read_text().splitlines()
                  if line.startswith("build ") and ".cu.o:" in line.split(" || ")[0])


def dry_run(systems: list[BuildSystem], sources: Sources, sm: int, added: list[int]) -> None:
    """Reports what each system's checkout (already written) would build for `sm` and with each
    added SM, checks that the comparison checkouts hold every file they list and that CMake
    configures (its compiler checks are all it compiles); builds nothing."""
    print(f"bench: families {', '.join(f.name for f in sources.families)}; "
          f"{len(sources.generated)} generated kernel sources in the comparison checkouts")
    for sms in [[sm], *(sorted([sm, a]) for a in added)]:
        bazel = sum(len(sources.bazel_compiles.get(x, [])) for x in sms)
        comparison = sum(len(sources.compiled([x])) for x in sms)
        print(f"bench: sm{'+'.join(map(str, sms))}: {len(sources.compiled(sms))} CUDA sources; "
              f"(source, SM) compiles: Bazel {bazel}, CMake and setuptools {comparison}")
        if bazel != comparison:
            raise SystemExit("bench: the comparison builds would not compile what Bazel does")
    print(f"bench: edits: kernel {_kernel_to_edit(sources, [sm])}, "
          f"header {_header_to_edit(sources, [sm])}")
    for system in systems:
        if isinstance(system, Bazel):
            print(f"bench: bazel: {system.checkout} (Bazel generates its sources itself)")
            continue
        files = [*sources.compiled([sm, *added]), *(f.binding for f in sources.families),
                 *sources.common_sources]
        if system.name == "setuptools":
            config = json.loads((system.checkout / "bench_setup.json").read_text())
            files = [s for s in config["sources"] + config["headers"]
                     if not pathlib.Path(s).is_absolute()]
        if missing := [f for f in files if not (system.checkout / f).is_file()]:
            raise SystemExit(f"bench: {system.name}: not in {system.checkout}: {missing}")
        print(f"bench: {system.name}: {system.checkout}: all {len(files)} listed files exist")
        if isinstance(system, CMake):
            system.configure(system.checkout, [sm])
            objects = _ninja_cuda_objects(system.checkout / "build")
            print(f"bench: cmake: configured for sm{sm} (log {system.log}): "
                  f"{len(objects)} CUDA objects in build.ninja")
            if len(objects) != len(sources.bazel_compiles.get(sm, [])):
                raise SystemExit("bench: CMake's build would not compile what Bazel does")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path,
                        help="folder for results.md, results.json and results.png")
    parser.add_argument("--work", type=pathlib.Path,
                        default=pathlib.Path("/tmp/fastdeploy-ops-bench"),
                        help="folder for the throwaway checkouts and caches (emptied first)")
    parser.add_argument("--families", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--sm", type=int, default=80, help="the SM of every build")
    parser.add_argument("--added-sms", default="90,86,89",
                        help="second SMs, one per repetition in turn")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--dry-run", action="store_true",
                        help="write the checkouts, check and print what they would build, "
                        "configure CMake; no build, no timing")
    args = parser.parse_args(argv)
    if not args.out and not args.dry_run:
        parser.error("--out is required (except with --dry-run)")

    workspace = pathlib.Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    base = pathlib.Path(os.environ.get("BUILD_WORKING_DIRECTORY", "."))
    out = args.out if not args.out or args.out.is_absolute() else base / args.out
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    source = args.work / "source"
    shutil.copytree(workspace, source, ignore=_IGNORED, symlinks=False)
    families = [f for f in args.families.split(",") if f]
    added = [int(sm) for sm in args.added_sms.split(",")]
    query_bazel = ["bazel", f"--output_user_root={args.work / 'query.bazel'}"]
    try:
        # Every SM the bench builds for: which kernel sources Bazel compiles depends on the SM.
        sources = query_sources(source, query_bazel, families, sorted({args.sm, *added}),
                                args.work / "generated")
    finally:
        subprocess.run([*query_bazel, "shutdown"], cwd=source, check=False)
    systems = {"bazel": Bazel, "cmake": CMake, "setuptools": Setuptools}
    if args.dry_run:
        dry_run([systems[name](source, args.work / name, sources)
                 for name in args.systems.split(",")], sources, args.sm, added)
        return 0
    times = {}
    for name in args.systems.split(","):
        print(f"bench: {name}", flush=True)
        system = systems[name](source, args.work / name, sources)
        times[name] = measure(system, source, [args.sm], added, args.repeats)
        # Kept as it goes, so an interrupted run still leaves what it measured.
        (args.work / "times.json").write_text(json.dumps(times, indent=1))
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    cores = os.cpu_count()
    busy = max(float(load_before.split()[1]), float(load_after.split()[1])) > 0.5 * cores
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": cores, "load_before": load_before, "load_after": load_after,
        "busy": (f"5-minute load average up to "
                 f"{max(float(load_before.split()[1]), float(load_after.split()[1])):.1f} "
                 f"on {cores} cores") if busy else "",
        "families": [f.name for f in sources.families],
        "cuda_sources": len(sources.compiled([args.sm])),
        "sms": [args.sm], "added_sms": added, "repeats": args.repeats,
        "kernel": _kernel_to_edit(sources, [args.sm]),
        "header": _header_to_edit(sources, [args.sm]),
        "notes": _NOTES,
    }
    if set(times) == set(SYSTEMS):
        write_results(out, times, meta)
        print((out / "results.md").read_text())
    else:
        print(json.dumps(times, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
