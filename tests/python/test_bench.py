"""The benchmark harness's GPU-free parts: statistics, tables, JSON, and its command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastdeploy_ops import _manifest
from fastdeploy_ops.bench import Measurement, summarize
from fastdeploy_ops.bench.__main__ import discover_ops
from fastdeploy_ops.bench.results import to_json, to_markdown


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
    for op, cases in ops.items():
        # bench/<family>.py holds the cases of that family's ops.
        family = cases.__module__.rpartition(".")[2]
        for manifest in _manifest.read_manifests(compiled_modules).values():
            declared = manifest.families.get(family) or manifest.skipped.get(family)
            assert declared is not None and op in declared.ops, (op, family)
