"""tools/report over a profile and nvcc --time files in the formats Bazel 7 and nvcc 12.4 write."""

from __future__ import annotations

import gzip
import json
import pathlib

import report

_HEADER = ("source file name , phase name , phase input files , phase output file , arch , tool, "
           "metric , unit\n")


def _nvcc_time(path: pathlib.Path, source: str, sm: str, cicc_ms: float, ptxas_ms: float,
               host_ms: float) -> None:
    path.write_text(_HEADER + "".join(
        f"{source} , {phase} , in  , out , {arch} , nvcc , {ms:.4f} , ms\n"
        for phase, arch, ms in [
            ("g++-13 (preprocessing 4)", "", 100.0),
            ("cudafe++", f"compute_{sm}", 200.0),
            ("cicc", f"compute_{sm}", cicc_ms),
            ("ptxas", f"sm_{sm}", ptxas_ms),
            ("fatbinary", "", 10.0),
            ("g++-13 (compiling)", f"compute_{sm}", host_ms),
        ]) + f" , nvcc (driver) ,  , out ,  , nvcc , 1.0000 , ms\n")


def _action(name: str, mnemonic: str, target: str, ts: int, dur: int) -> dict:
    return {"cat": "action processing", "name": name, "ph": "X", "ts": ts, "dur": dur,
            "args": {"mnemonic": mnemonic, "target": target}}


def _write_profile(path: pathlib.Path) -> None:
    events = [
        _action("Compiling CUDA ops/rotary/rope.cu for sm_80", "CudaCompile",
                "//ops/rotary:rotary_kernels", 0, 9_000_000),
        _action("Compiling CUDA ops/activation/gelu.cu for sm_80", "CudaCompile",
                "//ops/activation:activation_kernels", 0, 4_000_000),
        _action("Compiling CUDA ops/attention/paged_attention_bf16_c16_hd128.cu for sm_80",
                "CudaCompile", "//ops/attention:attention_kernels", 0, 3_000_000),
        _action("Compiling ops/rotary/rotary_binding.cc", "CppCompile",
                "//ops/rotary:rotary_binding", 4_000_000, 2_000_000),
        _action("Linking python/_ops/lib_ops_sm80.so", "CppLink", "//python:ops",
                9_000_000, 1_000_000),
        {"cat": "critical path component", "name": "action 'Linking python/_ops/lib_ops_sm80.so'",
         "ph": "X", "ts": 9_000_000, "dur": 1_000_000},
        {"cat": "critical path component",
         "name": "action 'Compiling CUDA ops/rotary/rope.cu for sm_80'",
         "ph": "X", "ts": 0, "dur": 9_000_000},
    ]
    with gzip.open(path, "wt") as f:
        json.dump({"otherData": {}, "traceEvents": events}, f)


def test_report_joins_profile_and_nvcc_phases(tmp_path: pathlib.Path) -> None:
    profile = tmp_path / "build.profile.gz"
    _write_profile(profile)
    timing = tmp_path / "bazel-out"
    timing.mkdir()
    _nvcc_time(timing / "rope.cu.o.nvcc_time.csv", "ops/rotary/rope.cu", "80", 5000, 1500, 1000)
    _nvcc_time(timing / "gelu.cu.o.nvcc_time.csv", "ops/activation/gelu.cu", "80", 1000, 200, 800)
    # A generated source (one instantiation group): nvcc names it by its bazel-out path.
    _nvcc_time(timing / "group.cu.o.nvcc_time.csv",
               "bazel-out/k8-opt-ST-939dc8451070/bin/ops/attention/paged_attention_bf16_c16_hd128.cu",
               "80", 2000, 300, 200)
    # Left over from an sm90 build that the profiled build did not run: must be ignored.
    _nvcc_time(timing / "old.cu.o.nvcc_time.csv", "ops/rotary/rope.cu", "90", 9999, 9999, 9999)

    result = report.build_report(report.read_profile(profile), report.find_nvcc_time_files(timing))

    assert set(result.phases) == {("ops/rotary/rope.cu", "80"), ("ops/activation/gelu.cu", "80"),
                                  ("ops/attention/paged_attention_bf16_c16_hd128.cu", "80")}
    rope = result.phases[("ops/rotary/rope.cu", "80")]
    assert (rope["cicc"], rope["ptxas"], rope["host compile"]) == (5000, 1500, 1000)
    assert rope["front end"] == 300 and rope["other"] == 11
    assert result.phase_rows[0] == (5000, "ops/rotary/rope.cu", "80", "cicc")
    assert [name for name, _ in result.profile.critical_path] == [
        "Compiling CUDA ops/rotary/rope.cu for sm_80", "Linking python/_ops/lib_ops_sm80.so"]
    assert report.family_totals(result.profile) == {
        "rotary": (11_000_000, 2), "activation": (4_000_000, 1), "attention": (3_000_000, 1),
        "host and link": (1_000_000, 1)}

    text = report.format_report(result, top=5)
    assert "    9.00 s  CudaCompile     Compiling CUDA ops/rotary/rope.cu for sm_80" in text
    assert "   10.00 s  total" in text
    chart = tmp_path / "chart.png"
    report.write_chart(result, 5, chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_cli_without_nvcc_time_data(tmp_path: pathlib.Path, capsys) -> None:
    profile = tmp_path / "build.profile.gz"
    _write_profile(profile)
    empty = tmp_path / "empty"
    empty.mkdir()
    chart = tmp_path / "chart.png"
    assert report.main(["--profile", str(profile), "--nvcc-time-dir", str(empty),
                        "--chart", str(chart)]) == 0
    assert "build with --config=build-report" in capsys.readouterr().out
    assert chart.is_file()
