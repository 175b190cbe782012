"""Build-time report: Bazel's --profile merged with the nvcc --time files of the CUDA actions.

    tools/bazel build //python:wheel --config=sm80 --config=build-report --profile=/tmp/build.profile.gz
    tools/bazel run //tools/report -- --profile /tmp/build.profile.gz --chart /tmp/build-report.png

Prints the slowest actions, the slowest nvcc phases (cicc, ptxas, host compile, ...) per source
and SM, the critical path and the CPU time per kernel family, and writes a PNG chart. Only the
actions that ran in the profiled build are reported: nvcc --time files of actions that were up to
date or came from a cache are left out (--config=build-report turns the caches off).
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import gzip
import json
import os
import pathlib
import re
import sys

_CUDA_ACTION = re.compile(r"Compiling CUDA (?P<source>\S+) for sm_(?P<sm>\d+)")
_SM = re.compile(r"(?:sm|compute)_(\d+)")
# nvcc names a generated source by its path under bazel-out; actions by its short path.
_OUTPUT_DIR = re.compile(r"^bazel-out/[^/]+/bin/")
_FAMILY_LABEL = re.compile(r"^@*//ops/(?P<family>[^:/]+)[:/]")
_FAMILY_SOURCE = re.compile(r"^ops/(?P<family>[^/]+)/")

# nvcc --time phase names, grouped into the phases the report shows, in chart order.
PHASE_GROUPS = ("cicc", "ptxas", "host compile", "front end", "other")


def phase_group(phase: str) -> str:
    """The report's group of one nvcc --time phase name, e.g. 'g++-13 (compiling)'."""
    if phase == "cicc":
        return "cicc"
    if phase == "ptxas":
        return "ptxas"
    if "(compiling)" in phase:
        return "host compile"
    if "(preprocessing" in phase or phase.startswith("cudafe"):
        return "front end"
    return "other"


@dataclasses.dataclass(frozen=True)
class Action:
    """One action that ran in the profiled build."""

    description: str
    mnemonic: str
    target: str
    start_us: int
    duration_us: int

    @property
    def cuda_key(self) -> tuple[str, str] | None:
        """(source, sm) for a CUDA compile, else None."""
        match = _CUDA_ACTION.fullmatch(self.description)
        return (match["source"], match["sm"]) if match else None

    @property
    def family(self) -> str:
        """The kernel family the action belongs to, or 'host and link' for shared work."""
        key = self.cuda_key
        match = _FAMILY_SOURCE.match(key[0]) if key else _FAMILY_LABEL.match(self.target)
        return match["family"] if match else "host and link"


@dataclasses.dataclass
class Profile:
    actions: list[Action]
    critical_path: list[tuple[str, int]]  # (description, duration in µs), in build order
    wall_us: int


def read_profile(path: pathlib.Path) -> Profile:
    """Parses Bazel's JSON trace profile (--profile, gzipped or not)."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt") as f:
        events = json.load(f)["traceEvents"]
    actions, critical = [], []
    for e in events:
        if e.get("ph") != "X":
            continue
        if e.get("cat") == "action processing":
            args = e.get("args", {})
            actions.append(Action(e["name"], args.get("mnemonic", ""), args.get("target", ""),
                                  int(e["ts"]), int(e["dur"])))
        elif e.get("cat") == "critical path component":
            critical.append((int(e["ts"]), e["name"].removeprefix("action '").removesuffix("'"),
                             int(e["dur"])))
    timed = [e for e in events if e.get("ph") == "X" and "dur" in e]
    wall = (max(int(e["ts"]) + int(e["dur"]) for e in timed) - min(int(e["ts"]) for e in timed)
            if timed else 0)
    return Profile(actions, [(name, dur) for _, name, dur in sorted(critical)], wall)


def read_nvcc_time(path: pathlib.Path) -> tuple[tuple[str, str], dict[str, float]]:
    """((source, sm), {phase name: milliseconds}) of one nvcc --time CSV file."""
    source, sms, phases = "", set(), collections.defaultdict(float)
    with open(path, newline="") as f:
        rows = [[cell.strip() for cell in row] for row in csv.reader(f)]
    for row in rows[1:]:
        if len(row) < 8 or row[7] != "ms":
            continue
        file_name, phase, arch, value = row[0], row[1], row[4], float(row[6])
        source = source or _OUTPUT_DIR.sub("", file_name)
        sms.update(_SM.findall(arch))
        phases[phase] += value
    if not source or len(sms) != 1:
        raise ValueError(f"{path}: not the nvcc --time output of one source for one SM")
    return (source, sms.pop()), dict(phases)


def find_nvcc_time_files(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(root.rglob("*.nvcc_time.csv"))


@dataclasses.dataclass
class Report:
    profile: Profile
    # (source, sm) -> {phase group: ms}, for the CUDA actions that ran in the profiled build.
    phases: dict[tuple[str, str], dict[str, float]]
    # Individual nvcc phases: (ms, source, sm, phase name).
    phase_rows: list[tuple[float, str, str, str]]


def build_report(profile: Profile, timing_files: list[pathlib.Path]) -> Report:
    ran = {a.cuda_key for a in profile.actions if a.cuda_key}
    phases, rows = {}, []
    for path in timing_files:
        key, by_phase = read_nvcc_time(path)
        if key not in ran:
            continue  # up to date or cached in the profiled build: an older file
        groups = dict.fromkeys(PHASE_GROUPS, 0.0)
        for phase, ms in by_phase.items():
            groups[phase_group(phase)] += ms
            rows.append((ms, key[0], key[1], phase))
        phases[key] = groups
    return Report(profile, phases, sorted(rows, reverse=True))


def _seconds(us: float) -> str:
    return f"{us / 1e6:8.2f} s"


def format_report(report: Report, top: int) -> str:
    """The report as plain-text tables."""
    profile = report.profile
    lines = []
    total_cpu = sum(a.duration_us for a in profile.actions)
    lines.append(f"Build: {len(profile.actions)} actions ran, {total_cpu / 1e6:.1f} s of action "
                 f"time in {profile.wall_us / 1e6:.1f} s of wall time.")

    lines += ["", f"Slowest actions (top {top})", f"{'time':>10}  {'mnemonic':<14}  action"]
    for a in sorted(profile.actions, key=lambda a: -a.duration_us)[:top]:
        lines.append(f"{_seconds(a.duration_us)}  {a.mnemonic:<14}  {a.description}")

    if report.phases:
        lines += ["", f"Slowest nvcc phases (top {top})",
                  f"{'time':>10}  {'sm':>4}  {'phase':<26}  source"]
        for ms, source, sm, phase in report.phase_rows[:top]:
            lines.append(f"{_seconds(ms * 1e3)}  {sm:>4}  {phase:<26}  {source}")

        lines += ["", f"nvcc time per source and SM (top {top}, seconds)",
                  "".join(f"{g:>14}" for g in PHASE_GROUPS) + f"{'total':>10}  sm  source"]
        ranked = sorted(report.phases.items(), key=lambda kv: -sum(kv[1].values()))
        for (source, sm), groups in ranked[:top]:
            lines.append("".join(f"{groups[g] / 1e3:14.2f}" for g in PHASE_GROUPS) +
                         f"{sum(groups.values()) / 1e3:10.2f}  {sm}  {source}")
    else:
        lines += ["", "No nvcc --time data for the CUDA actions of this build: build with "
                  "--config=build-report."]

    lines += ["", "Critical path", f"{'time':>10}  action"]
    for name, dur in profile.critical_path:
        lines.append(f"{_seconds(dur)}  {name}")
    lines.append(f"{_seconds(sum(d for _, d in profile.critical_path))}  total")

    lines += ["", "CPU time per family (sum of action times)",
              f"{'time':>10}  {'actions':>7}  family"]
    for family, (dur, count) in family_totals(profile).items():
        lines.append(f"{_seconds(dur)}  {count:>7}  {family}")
    return "\n".join(lines) + "\n"


def family_totals(profile: Profile) -> dict[str, tuple[int, int]]:
    """family -> (total action µs, action count), largest first."""
    totals = collections.defaultdict(lambda: [0, 0])
    for a in profile.actions:
        totals[a.family][0] += a.duration_us
        totals[a.family][1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(totals.items(), key=lambda kv: -kv[1][0])}


def write_chart(report: Report, top: int, path: pathlib.Path) -> None:
    """Stacked nvcc phases of the slowest (source, SM) pairs, and CPU time per family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = sorted(report.phases.items(), key=lambda kv: sum(kv[1].values()))[-top:]
    families = list(family_totals(report.profile).items())[::-1]
    fig, (ax_phase, ax_family) = plt.subplots(
        2, 1, figsize=(11, 2.5 + 0.35 * (len(ranked) + len(families))),
        gridspec_kw={"height_ratios": [max(len(ranked), 1), max(len(families), 1)]})

    labels = [f"{source} (sm_{sm})" for (source, sm), _ in ranked]
    left = [0.0] * len(ranked)
    for group in PHASE_GROUPS:
        widths = [groups[group] / 1e3 for _, groups in ranked]
        ax_phase.barh(labels, widths, left=left, label=group)
        left = [a + b for a, b in zip(left, widths)]
    ax_phase.set_xlabel("seconds (nvcc --time)")
    ax_phase.set_title(f"nvcc phases of the {len(ranked)} slowest CUDA compiles")
    if ranked:
        ax_phase.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")

    ax_family.barh([f for f, _ in families], [dur / 1e6 for _, (dur, _) in families],
                   color="tab:gray")
    ax_family.set_xlabel("seconds (sum of action times)")
    ax_family.set_title("CPU time per family")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _default_output_root() -> pathlib.Path:
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    return pathlib.Path(workspace) / "bazel-out" if workspace else pathlib.Path("bazel-out")


def _user_path(path: pathlib.Path) -> pathlib.Path:
    """Relative paths are relative to where `bazel run` was called."""
    base = os.environ.get("BUILD_WORKING_DIRECTORY")
    return path if path.is_absolute() or not base else pathlib.Path(base) / path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=pathlib.Path, required=True,
                        help="the file of the build's --profile")
    parser.add_argument("--nvcc-time-dir", type=pathlib.Path, default=None,
                        help="where to look for *.nvcc_time.csv (default: the workspace's bazel-out)")
    parser.add_argument("--top", type=int, default=15, help="rows per table and chart")
    parser.add_argument("--chart", type=pathlib.Path, default=pathlib.Path("build-report.png"))
    args = parser.parse_args(argv)

    profile_path = _user_path(args.profile)
    if not profile_path.is_file():
        print(f"report: no profile at {profile_path}", file=sys.stderr)
        return 2
    timing_root = _user_path(args.nvcc_time_dir) if args.nvcc_time_dir else _default_output_root()
    report = build_report(read_profile(profile_path), find_nvcc_time_files(timing_root))
    sys.stdout.write(format_report(report, args.top))
    chart = _user_path(args.chart)
    write_chart(report, args.top, chart)
    print(f"\nchart: {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
