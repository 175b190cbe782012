"""The benchmark harness's GPU-free parts: statistics, tables, JSON, and its command line."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import fastdeploy_ops
import pytest
from fastdeploy_ops import _manifest
from fastdeploy_ops.bench import Measurement, summarize
from fastdeploy_ops.bench.__main__ import discover_ops
from fastdeploy_ops.bench.common import UNTIMED_OPS
from fastdeploy_ops.bench.results import summary, to_json, to_markdown
from fastdeploy_ops.bench.targets import TARGETS, Target


def test_summarize_gives_median_and_quartiles() -> None:
    stats = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (stats.median_us, stats.q1_us, stats.q3_us, stats.iqr_us) == (3.0, 2.0, 4.0, 2.0)
    assert stats.repetitions == 5
    with pytest.raises(ValueError, match="at least 2 samples"):
        summarize([1.0])


def _row(impl: str, graph_us: float) -> Measurement:
    stats = summarize([graph_us, graph_us])
    warm = summarize([graph_us / 2, graph_us / 2])
    return Measurement("grouped_topk", "DeepSeek-V3", 128, impl, stats, stats, warm, 1000, 0.25)


def test_markdown_has_one_row_per_shape_with_ratios(tmp_path) -> None:
    rows = [_row("fastdeploy_ops", 2.0), _row("unfused", 5.0), _row("torch", 30.0)]
    text = to_markdown({"device": "test GPU"}, rows)
    table = [line for line in text.splitlines() if line.startswith("| DeepSeek-V3")]
    assert table == ["| DeepSeek-V3 | 128 | 2.00 [0.00] | 1.00 [0.00] | 2.00 [0.00] "
                     "| 5.00 [0.00] | 2.50 [0.00] | 5.00 [0.00] "
                     "| 30.00 [0.00] | 15.00 [0.00] | 30.00 [0.00] | 25% | 2.50× / 2.50× | 15.00× / 15.00× |"]
    assert "- device: test GPU" in text
    to_json(tmp_path / "r.json", {"device": "test GPU"}, rows)
    data = json.loads((tmp_path / "r.json").read_text())
    assert [r["implementation"] for r in data["results"]] == ["fastdeploy_ops", "unfused", "torch"]
    assert data["results"][1]["cold"]["median_us"] == 5.0
    assert data["results"][1]["warm"]["median_us"] == 2.5


def test_command_line_help_needs_no_gpu() -> None:
    done = subprocess.run([sys.executable, "-m", "fastdeploy_ops.bench", "--help"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    for op in ("grouped_topk", "gelu_tanh", "rebuild_padding", "fused_rotary_position_encoding",
               "get_token_penalty_multi_scores", "top_k_renorm_probs",
               "top_k_top_p_sampling_from_probs", "speculate_update", "per_token_quant"):
        assert op in done.stdout


def test_cases_are_found_per_family_and_are_ops_of_the_wheel(compiled_modules: Path) -> None:
    ops = discover_ops()
    assert {"grouped_topk", "paged_decode_attention", "per_token_quant"} <= set(ops)
    manifests = _manifest.read_manifests(compiled_modules).values()
    for op, cases in ops.items():
        # bench/<family>.py holds the cases of that family's ops.
        family = cases.__module__.rpartition(".")[2]
        for manifest in manifests:
            declared = manifest.families.get(family) or manifest.skipped.get(family)
            assert declared is not None and op in declared.ops, (op, family)
    # And the other way: every op a module declares has cases (or runs nothing on the GPU).
    declared_ops = {op for manifest in manifests
                    for family in (*manifest.families.values(), *manifest.skipped.values())
                    for op in family.ops}
    without_cases = declared_ops - set(ops) - set(UNTIMED_OPS)
    assert not without_cases, f"ops without a benchmark case: {sorted(without_cases)}"


def _exported_ops() -> set[str]:
    """The ops the package exports: the public functions of its family modules (those that
    ``fastdeploy_ops.__all__`` names and that declare ``FAMILY``), imported without a GPU."""
    ops = set()
    for name in fastdeploy_ops.__all__:
        module = getattr(fastdeploy_ops, name)
        if inspect.ismodule(module) and getattr(module, "FAMILY", None) == name:
            ops |= {op for op in module.__all__ if inspect.isfunction(getattr(module, op))}
    return ops


def test_every_op_the_package_exports_has_a_case() -> None:
    exported, cased = _exported_ops(), set(discover_ops())
    assert {"grouped_topk", "speculate_verify", "paged_attention_plan"} <= exported
    missing = exported - cased - set(UNTIMED_OPS)
    assert not missing, (f"ops without a benchmark case (add one to OPS in "
                         f"fastdeploy_ops/bench/<family>.py): {sorted(missing)}")
    assert not cased - exported, f"cases of ops the package does not export: {cased - exported}"
    # UNTIMED_OPS lists real ops that have no case.
    assert set(UNTIMED_OPS) <= exported - cased, sorted(set(UNTIMED_OPS) - (exported - cased))


def _measured(op: str, case: str, tokens: int, cold_us: float, bandwidth: float,
              warm_us: float | None = None, impl: str = "fastdeploy_ops") -> Measurement:
    cold = summarize([cold_us, cold_us])
    warm = summarize([warm_us, warm_us]) if warm_us is not None else cold
    return Measurement(op, case, tokens, impl, cold, cold, warm, 1000, bandwidth)


def test_summary_judges_each_target_on_its_worst_case_in_scope() -> None:
    targets = {
        "copy": (Target("bandwidth", 0.75, tokens=(1024, None)),
                 Target("bandwidth", 0.85, tokens=(1024, None))),
        "route": (Target("latency", 3.0, case="A", tokens=(None, 32), timing="warm"),
                  Target("latency", 9.0, case="A", tokens=(8192, 8192))),
        "decode": (Target("bandwidth", 0.8, case="c16", tokens=(64, 64)),),
    }
    rows = [
        _measured("copy", "wide", 1, 2.0, 0.05),  # below the target's sizes: not judged
        _measured("copy", "wide", 1024, 10.0, 0.80),
        _measured("copy", "wide", 4096, 30.0, 0.90),
        _measured("copy", "wide", 1024, 9.0, 0.99, impl="torch"),  # not ours: not judged
        _measured("route", "A", 1, 3.5, 0.01, warm_us=2.0),
        _measured("route", "A", 32, 3.9, 0.01, warm_us=2.5),
        _measured("route", "B", 8, 9.0, 0.01, warm_us=8.0),  # another config: not judged
        _measured("route", "A", 8192, 12.0, 0.30, warm_us=10.0),
        _measured("plain", "x", 16, 5.0, 0.40),
        _measured("plain", "x", 256, 9.0, 0.60),
        _measured("decode", "c16", 1, 40.0, 0.50),  # no case at batch 64 was run
    ]
    assert summary(rows, targets) == [
        ("copy", "BW 80% (wide, tokens 1024)", "tokens ≥ 1024", "BW ≥ 75%", "met"),
        ("copy", "BW 80% (wide, tokens 1024)", "tokens ≥ 1024", "BW ≥ 85%", "missed"),
        ("route", "2.50 µs warm (A, tokens 32)", "A, tokens ≤ 32", "≤ 3.00 µs warm", "met"),
        ("route", "12.00 µs cold (A, tokens 8192)", "A, tokens = 8192", "≤ 9.00 µs cold",
         "missed"),
        ("plain", "best BW 60% (x, tokens 256)", "all cases", "—", ""),
        ("decode", "no case measured", "c16, tokens = 64", "BW ≥ 80%", ""),
    ]


def test_markdown_puts_the_summary_after_the_device_header() -> None:
    rows = [_measured("plain", "x", 16, 5.0, 0.40), _measured("copy", "wide", 4096, 30.0, 0.9)]
    text = to_markdown({"device": "test GPU"}, rows,
                       {"copy": (Target("bandwidth", 0.75, tokens=(1024, None)),)})
    lines = text.splitlines()
    first_table_row = lines.index("| op | measured | cases | target | verdict |")
    assert lines.index("- device: test GPU") < first_table_row
    assert lines[first_table_row + 2:first_table_row + 4] == [
        "| plain | best BW 40% (x, tokens 16) | all cases | — |  |",
        "| copy | BW 90% (wide, tokens 4096) | tokens ≥ 1024 | BW ≥ 75% | met |",
    ]
    assert first_table_row < lines.index("## plain")


def test_targets_are_of_ops_with_cases_and_well_formed() -> None:
    assert set(TARGETS) <= set(discover_ops())
    for op, targets in TARGETS.items():
        assert targets, op
        for target in targets:
            low, high = target.tokens
            assert low is None or high is None or low <= high, (op, target)
    with pytest.raises(ValueError, match="kind"):
        Target("throughput", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not allowed for bandwidth"):
        Target("bandwidth", 0.8, timing="warm")
    with pytest.raises(ValueError, match="value"):
        Target("latency", 0.0)


def test_markdown_prints_an_ops_note_under_its_heading() -> None:
    rows = [_measured("plain", "x", 16, 5.0, 0.40), _measured("copy", "wide", 64, 3.0, 0.2)]
    lines = to_markdown({}, rows, {}, notes={"plain": "*BW* is the share of a floor."}
                        ).splitlines()
    heading = lines.index("## plain")
    assert lines[heading + 1:heading + 4] == ["", "*BW* is the share of a floor.", ""]
    assert lines[heading + 4].startswith("| case | tokens |")
    copy = lines.index("## copy")
    assert lines[copy + 2].startswith("| case | tokens |")


def test_markdown_reports_tflops_for_ops_that_count_flops() -> None:
    """A compute-bound op (flops > 0) gets a TFLOP/s column from our cold time: 2e9 FLOPs in
    1000 µs are 2 TFLOP/s; ops without flops keep their columns."""
    cold = summarize([1000.0, 1000.0])
    ours = Measurement("prefill", "8k", 8192, "fastdeploy_ops", cold, cold, cold, 10, 0.1,
                       flops=2 * 10**9)
    theirs = Measurement("prefill", "8k", 8192, "sdpa", cold, summarize([500.0, 500.0]),
                         summarize([250.0, 250.0]), 10, 0.1, flops=2 * 10**9)
    assert ours.tflops == pytest.approx(2.0)
    lines = to_markdown({}, [ours, theirs, _measured("plain", "x", 16, 5.0, 0.40)], {}
                        ).splitlines()
    header = lines[lines.index("## prefill") + 2]
    assert header.endswith("| BW | TFLOP/s | vs sdpa |")
    row = next(line for line in lines if line.startswith("| 8k |"))
    assert row.endswith("| 10% | 2 | 0.50× / 0.25× |")  # sdpa: 500 µs cold, 250 µs warm
    plain = lines[lines.index("## plain") + 2]
    assert "TFLOP/s" not in plain


def test_call_overhead_table_judges_each_target() -> None:
    from fastdeploy_ops.bench.overhead import Overhead, to_markdown as overhead_markdown

    rows = [
        Overhead("fast", typed_torch_us=7.5, operator_us=5.0, cupy_us=10.0,
                 reference="torch.add", reference_us=5.0, add_us=5.0, cupy_add_us=9.0),
        Overhead("slow", typed_torch_us=7.6, operator_us=5.0, cupy_us=10.1,
                 reference="torch.add", reference_us=5.0),
        Overhead("no-cupy", typed_torch_us=4.0, operator_us=3.0, cupy_us=None,
                 reference="torch.topk", reference_us=8.0),
    ]
    lines = {line.split(" | ")[0][2:]: line for line in overhead_markdown(rows).splitlines()
             if line.startswith("| ") and not line.startswith("| op")}
    assert lines["fast"].endswith("| 1.50x | met | met | 5.0 | 9.0 |")  # both bounds are inclusive
    assert lines["slow"].endswith("| 1.52x | missed | missed | n/a | n/a |")
    assert lines["no-cupy"].endswith("| n/a | torch.topk | 8.0 | 0.50x | met | n/a | n/a | n/a |")
