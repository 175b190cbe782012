"""The farm simulation of tools/report on a hand-made execution log with known answers."""

from __future__ import annotations

import json
import pathlib

import pytest

from execution_log import read_execution_log
from farm_simulation import build_graph, critical_path, main, makespan


def _spawn(mnemonic: str, seconds: float, inputs: list[tuple[str, str]],
           outputs: list[tuple[str, str]], cache_hit: bool = False) -> dict:
    def files(pairs):
        return [{"path": p, "digest": {"hash": h, "sizeBytes": "10"}} for p, h in pairs]
    return {"mnemonic": mnemonic, "targetLabel": f"//x:{mnemonic}", "cacheHit": cache_hit,
            "inputs": files(inputs), "actualOutputs": files(outputs),
            "metrics": {"executionWallTime": f"{seconds}s", "totalTime": "99s"}}


def _log(tmp_path: pathlib.Path) -> pathlib.Path:
    """a (2 s) -> b (3 s) -> d (1 s) <- c (4 s); d reads b's output through a symlink (another
    path, same digest), as Bazel's internal actions hand it on; a cache hit costs nothing."""
    entries = [
        _spawn("a", 2, [("src/a.cc", "s1")], [("out/a.o", "h1")]),
        _spawn("b", 3, [("out/a.o", "h1")], [("out/b.so", "h2")]),
        _spawn("c", 4, [("src/c.cc", "s2")], [("out/c.o", "h3")]),
        _spawn("d", 1, [("out/link/b.so", "h2"), ("out/c.o", "h3")], [("out/wheel", "h4")]),
        _spawn("cached", 50, [("src/e.cc", "s3")], [("out/e.o", "h5")], cache_hit=True),
    ]
    path = tmp_path / "exec.json"
    path.write_text("".join(json.dumps(e, indent=1) for e in entries))
    return path


def test_graph_critical_path_and_schedules(tmp_path: pathlib.Path) -> None:
    spawns = build_graph(read_execution_log(_log(tmp_path)))
    assert [s.mnemonic for s in spawns] == ["a", "b", "c", "d"]
    assert [sorted(s.deps) for s in spawns] == [[], [0], [], [1, 2]]
    length, chain = critical_path(spawns)
    assert (length, [s.mnemonic for s in chain]) == (6.0, ["a", "b", "d"])
    assert makespan(spawns, 1) == 10.0
    # a and c start together; b after a; d after b and c.
    assert makespan(spawns, 2) == 6.0
    assert makespan(spawns, 64) == 6.0
    # 0.5 s per spawn: a 0-2.5, c 0-4.5, b 2.5-6, d 6-7.5.
    assert makespan(spawns, 2, overhead=0.5) == 7.5
    with pytest.raises(ValueError, match="workers must be >= 1"):
        makespan(spawns, 0)


def test_longest_tail_goes_first(tmp_path: pathlib.Path) -> None:
    # x and y (1 s each, nothing waits for them) are listed before a (1 s), which b (5 s) waits
    # for. Two workers in log order would run x, y, then a, then b: 7 s. Longest tail first
    # starts a at once: 6 s.
    path = tmp_path / "exec.json"
    path.write_text("".join(json.dumps(e) for e in [
        _spawn("x", 1, [], [("x", "hx")]),
        _spawn("y", 1, [], [("y", "hy")]),
        _spawn("a", 1, [], [("a", "ha")]),
        _spawn("b", 5, [("a", "ha")], [("b", "hb")]),
    ]))
    assert makespan(build_graph(read_execution_log(path)), 2) == 6.0


def test_cycle_is_an_error(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "cycle.json"
    path.write_text(json.dumps(_spawn("p", 1, [("q", "hq")], [("p", "hp")]))
                    + json.dumps(_spawn("q", 1, [("p", "hp")], [("q", "hq")])))
    with pytest.raises(ValueError, match="cycle"):
        critical_path(build_graph(read_execution_log(path)))


def test_command_line_writes_json(tmp_path: pathlib.Path, capsys) -> None:
    out = tmp_path / "sim.json"
    assert main(["--log", str(_log(tmp_path)), "--workers", "1,2", "--overhead", "0.5",
                 "--fixed", "10", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["projected_wall_s"] == {"1": 22.0, "2": 17.5}
    assert data["total_action_s"] == 10.0 and data["critical_path_s"] == 6.0
    assert "4 spawns" in capsys.readouterr().out
