"""What a cold build would take on a remote-execution farm, simulated from its execution log.

    tools/bazel build //python:wheel --config=sm70 ... --disk_cache= --noremote_accept_cached \\
        --execution_log_json_file=/tmp/exec.json
    tools/bazel run //tools/report:farm_simulation -- --log /tmp/exec.json --workers 1,4,16,64 \\
        --overhead 0.3 --fixed 25 [--json out.json]

The log lists every spawn with its inputs, outputs and measured execution time. The spawns form
a graph: B depends on A when B reads a file A wrote (by path, or by content digest for files that
reach B through Bazel's internal symlink and copy actions). From it:

- total action time: the sum of the spawns' execution times (the build's CPU-bound work);
- critical path: the longest chain of dependent spawns (no farm can beat it);
- projected wall time with N single-slot workers: an event-driven list schedule in which a free
  worker takes the ready spawn with the longest path to the end of the build (the order a good
  scheduler approaches), each spawn costing its measured time plus `--overhead` seconds (input
  upload, queueing and staging per remote action, measured on the loopback farm), plus `--fixed`
  seconds of work outside the spawns (loading, analysis, repository rules).

Assumptions, printed with the results: a worker runs a spawn as fast as the measured machine,
the farm's cache is cold, and the client's bandwidth and Bazel's own scheduling are not limits.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import pathlib
import sys

from execution_log import read_execution_log

_DURATION_KEYS = ("executionWallTime", "totalTime")


@dataclasses.dataclass
class Spawn:
    """One spawn of the log: its measured time and the spawns it waits for."""

    index: int
    mnemonic: str
    label: str
    seconds: float
    deps: set[int] = dataclasses.field(default_factory=set)


def _seconds(metrics: dict) -> float:
    for key in _DURATION_KEYS:
        if key in metrics:
            return float(metrics[key].rstrip("s"))
    raise ValueError(f"a spawn without {' or '.join(_DURATION_KEYS)} in its metrics")


def build_graph(entries: list[dict]) -> list[Spawn]:
    """The spawns that ran (cache hits cost nothing) and their dependencies."""
    ran = [e for e in entries if not e.get("cacheHit")]
    by_path: dict[str, int] = {}
    by_digest: dict[str, int] = {}
    spawns = []
    for i, entry in enumerate(ran):
        spawns.append(Spawn(i, entry.get("mnemonic", ""), entry.get("targetLabel", ""),
                            _seconds(entry.get("metrics", {}))))
        for output in entry.get("actualOutputs", []):
            by_path[output["path"]] = i
            digest = output.get("digest", {})
            if int(digest.get("sizeBytes", 0)) > 0:
                by_digest[digest["hash"]] = i
    for i, entry in enumerate(ran):
        for item in entry.get("inputs", []):
            producer = by_path.get(item["path"])
            if producer is None:
                producer = by_digest.get(item.get("digest", {}).get("hash", ""))
            if producer is not None and producer != i:
                spawns[i].deps.add(producer)
    return spawns


def _users(spawns: list[Spawn]) -> dict[int, list[int]]:
    """Per spawn: the spawns that wait for it."""
    users: dict[int, list[int]] = {s.index: [] for s in spawns}
    for s in spawns:
        for d in s.deps:
            users[d].append(s.index)
    return users


def _order(spawns: list[Spawn]) -> list[int]:
    """A topological order (dependencies first); raises ValueError on a cycle."""
    waiting = {s.index: len(s.deps) for s in spawns}
    users = _users(spawns)
    ready = [i for i, n in waiting.items() if n == 0]
    order = []
    while ready:
        i = ready.pop()
        order.append(i)
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.append(u)
    if len(order) != len(spawns):
        raise ValueError("the spawns' dependencies form a cycle")
    return order


def tail_lengths(spawns: list[Spawn], overhead: float = 0.0) -> dict[int, float]:
    """Per spawn: its own cost plus the longest chain of spawns that wait for it."""
    tail: dict[int, float] = {}
    users = _users(spawns)
    for i in reversed(_order(spawns)):
        tail[i] = spawns[i].seconds + overhead + max((tail[u] for u in users[i]), default=0.0)
    return tail


def critical_path(spawns: list[Spawn]) -> tuple[float, list[Spawn]]:
    """The longest chain of dependent spawns: its length in seconds and its spawns in order."""
    tail = tail_lengths(spawns)
    users = _users(spawns)
    if not spawns:
        return 0.0, []
    current = max((s.index for s in spawns if not s.deps), key=lambda i: tail[i])
    chain = [spawns[current]]
    while users[current]:
        current = max(users[current], key=lambda u: tail[u])
        chain.append(spawns[current])
    return tail[chain[0].index], chain


def makespan(spawns: list[Spawn], workers: int, overhead: float = 0.0) -> float:
    """Seconds until the last spawn ends when `workers` single-slot workers take the ready
    spawn with the longest tail first, each spawn costing its time plus `overhead`."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    tail = tail_lengths(spawns, overhead)
    waiting = {s.index: len(s.deps) for s in spawns}
    users = _users(spawns)
    ready = [(-tail[i], i) for i, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    running: list[tuple[float, int]] = []  # (end time, spawn)
    now, idle = 0.0, workers
    while ready or running:
        while ready and idle:
            _, i = heapq.heappop(ready)
            heapq.heappush(running, (now + spawns[i].seconds + overhead, i))
            idle -= 1
        now, done = heapq.heappop(running)
        idle += 1
        for u in users[done]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, (-tail[u], u))
    return now


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=pathlib.Path, required=True,
                        help="--execution_log_json_file of a cold build")
    parser.add_argument("--workers", default="1,4,16,64", help="comma-separated worker counts")
    parser.add_argument("--overhead", type=float, default=0.0,
                        help="seconds added to each spawn on a farm (upload, queue, staging)")
    parser.add_argument("--fixed", type=float, default=0.0,
                        help="seconds of the build outside its spawns (loading, analysis)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the numbers here")
    args = parser.parse_args(argv)

    spawns = build_graph(read_execution_log(args.log))
    total = sum(s.seconds for s in spawns)
    path_s, chain = critical_path(spawns)
    counts = [int(n) for n in args.workers.split(",")]
    projected = {n: args.fixed + makespan(spawns, n, args.overhead) for n in counts}
    print(f"{len(spawns)} spawns, total action time {total:.1f} s, critical path {path_s:.1f} s "
          f"over {len(chain)} spawns")
    for s in chain:
        print(f"  {s.seconds:7.1f} s  {s.mnemonic:12} {s.label}")
    print(f"projected wall time (fixed {args.fixed:.1f} s + list schedule, "
          f"{args.overhead:.2f} s overhead per spawn):")
    for n, seconds in projected.items():
        print(f"  {n:3} workers: {seconds:8.1f} s   (lower bound "
              f"{args.fixed + max(path_s, total / n):.1f} s)")
    if args.json:
        args.json.write_text(json.dumps({
            "spawns": len(spawns), "total_action_s": total, "critical_path_s": path_s,
            "critical_path": [[s.mnemonic, s.label, s.seconds] for s in chain],
            "overhead_s": args.overhead, "fixed_s": args.fixed,
            "projected_wall_s": {str(n): v for n, v in projected.items()},
        }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
