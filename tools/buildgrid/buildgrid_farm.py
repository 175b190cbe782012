"""A remote-execution farm on loopback: BuildGrid, its database and buildbox workers.

Everything runs inside the build root, so a worker executes each action with the root's own
toolchain: buildbox-casd stages the action's inputs, and buildbox-run-hosttools runs the command
in them with the root's /usr and /opt (the paths Bazel's actions name). The bubblewrap runner is
not used: it makes the action's input tree the sandbox's whole file system, so the 7 GB root
would have to be an input of every action; the root's mount namespace already pins the tools.

Each worker advertises the root's pins hash as the platform property `fastdeploy-ops-root`, and
the server serves only that hash (execution.yml), so an action never runs with another toolchain.

    python3 buildgrid_farm.py start --workers 2 [--port 50052] --state-dir DIR  # prints the URL
    python3 buildgrid_farm.py stop|status --state-dir DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from buildgrid_server import BuildGridServer, free_port, process_alive, wait_until_listening

EXECUTION_CONFIG = pathlib.Path(__file__).with_name("execution.yml")
ROOT_STAMP = pathlib.Path("/etc/fastdeploy-ops-buildroot.stamp")
ROOT_PROPERTY = "fastdeploy-ops-root"
_RUNNER = "/usr/bin/buildbox-run-hosttools"
# How long BuildGrid waits for a silent worker before it gives the worker's action to another
# (the worker polls every _WORKER_POLL_S), and for a queued action before it fails it.
_WORKER_POLL_S = 5
WORKER_TIMEOUT_S = 20
QUEUE_TIMEOUT_S = 600


def buildroot_hash(stamp: pathlib.Path = ROOT_STAMP) -> str:
    """The pins hash of the build root this process runs in (the stamp's `hash X` line)."""
    try:
        first_line = stamp.read_text().splitlines()[0]
    except (FileNotFoundError, IndexError):
        raise RuntimeError(f"remote-exec: {stamp} is missing or empty; run inside the build root "
                           "(tools/buildroot/enter.sh)") from None
    key, _, value = first_line.partition(" ")
    if key != "hash" or not value:
        raise RuntimeError(f"remote-exec: {stamp} starts with {first_line!r}, not 'hash <pins>'")
    return value


def _kill_group(pid: int | None) -> None:
    """SIGKILL to the process group of `pid` (the process and what it started)."""
    if pid:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def _children(pid: int | None) -> list[int]:
    """The processes whose parent is `pid`."""
    children = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            # After the parenthesised command: state, ppid.
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
        if ppid == pid:
            children.append(int(stat.parent.name))
    return children


class Database:
    """A private PostgreSQL cluster for BuildGrid's scheduler, reached over its Unix socket.

    PostgreSQL refuses to run as root, so it runs as the root's `postgres` user in a folder under
    /tmp (the state folder may sit below a home that user cannot enter).
    """

    def __init__(self, data_dir: pathlib.Path | None = None) -> None:
        self.data_dir = data_dir

    @property
    def url(self) -> str:
        return f"postgresql://buildgrid@/buildgrid?host={self.data_dir}"

    @staticmethod
    def _bin(name: str) -> str:
        found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
        if not found:
            raise RuntimeError(f"remote-exec: PostgreSQL's {name} is not in the build root; "
                               "tools/buildroot/pins.txt pins postgresql")
        return found[-1]

    def _as_postgres(self, *command: str) -> None:
        result = subprocess.run(command, user="postgres", group="postgres", cwd="/tmp",
                                capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"remote-exec: {' '.join(command)} failed "
                               f"({result.returncode}):\n{result.stdout}{result.stderr}")

    def start(self) -> None:
        self.data_dir = pathlib.Path(tempfile.mkdtemp(prefix="fastdeploy-ops-pg-", dir="/tmp"))
        shutil.chown(self.data_dir, "postgres", "postgres")
        self._as_postgres(self._bin("initdb"), "--auth=trust", "--username=buildgrid",
                          "--encoding=UTF8", "--no-instructions", f"--pgdata={self.data_dir}/data")
        self._as_postgres(
            self._bin("pg_ctl"), "start", "--wait", f"--pgdata={self.data_dir}/data",
            f"--log={self.data_dir}/postgresql.log",
            f"--options=-c listen_addresses='' -k {self.data_dir} -c fsync=off")
        self._as_postgres(self._bin("createdb"), f"--host={self.data_dir}",
                          "--username=buildgrid", "buildgrid")
        # BuildGrid's own schema migrations create the scheduler's tables.
        subprocess.run([sys.executable, "-c", "from buildgrid.server.app import cli; cli()",
                        "migrate", "apply", self.url], check=True, capture_output=True)

    def stop(self) -> None:
        if self.data_dir and (self.data_dir / "data").exists():
            subprocess.run([self._bin("pg_ctl"), "stop", "--mode=immediate",
                            f"--pgdata={self.data_dir}/data"], user="postgres",
                           group="postgres", cwd="/tmp", capture_output=True)
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclasses.dataclass
class Worker:
    """One buildbox-worker with its own buildbox-casd (local CAS), polling `server_url`."""

    name: str
    state_dir: pathlib.Path
    server_url: str
    root_hash: str
    worker_pid: int | None = None
    casd_pid: int | None = None
    _processes: list[subprocess.Popen] = dataclasses.field(default_factory=list, repr=False)

    @property
    def log_path(self) -> pathlib.Path:
        return self.state_dir / f"{self.name}.log"

    def start(self) -> None:
        """Starts casd, waits until it listens, then starts the worker (both detached)."""
        cache = self.state_dir / self.name
        cache.mkdir(parents=True, exist_ok=True)
        casd_port = free_port()
        with open(self.log_path, "ab") as log:
            casd = subprocess.Popen(
                ["buildbox-casd", f"--cas-remote={self.server_url}",
                 f"--bind=127.0.0.1:{casd_port}", "--log-level=warning", str(cache)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
            self.casd_pid = casd.pid
            self._processes.append(casd)
            wait_until_listening(casd_port, casd, f"buildbox-casd of {self.name}", self.log_path)
            worker = subprocess.Popen(
                ["buildbox-worker", f"--bots-remote={self.server_url}",
                 f"--cas-remote=grpc://127.0.0.1:{casd_port}", f"--buildbox-run={_RUNNER}",
                 # Hard links from casd's cache, not a FUSE mount: a killed casd leaves its FUSE
                 # mounts behind, and Bazel then cannot read the folder that holds them.
                 "--runner-arg=--staging-mode=copy-or-link",
                 "--platform", "OSFamily=linux", "--platform", f"{ROOT_PROPERTY}={self.root_hash}",
                 f"--max-wait-time={_WORKER_POLL_S}", self.name],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=cache, start_new_session=True)
            self.worker_pid = worker.pid
            self._processes.append(worker)

    def exited(self) -> int | None:
        """The worker's exit code once it has ended (it ends when the server refuses it)."""
        return self._processes[-1].poll()

    def actions_run(self) -> int:
        """How many actions this worker has run to completion, from its log."""
        return self.log_path.read_text().count("Runner exited with code")

    def running_action(self) -> bool:
        """Whether the worker is running an action now: a runner is its child."""
        return bool(_children(self.worker_pid))

    def kill(self) -> None:
        """Ends the worker, the action it runs and its casd at once, as a crash would."""
        runners = _children(self.worker_pid)
        _kill_group(self.worker_pid)
        for runner in runners:
            _kill_group(runner)
        _kill_group(self.casd_pid)
        for process in self._processes:
            process.wait()

    def state(self) -> dict:
        return {"name": self.name, "worker_pid": self.worker_pid, "casd_pid": self.casd_pid}


class Farm:
    """BuildGrid with execution, its database, and workers; all on loopback."""

    def __init__(self, state_dir: pathlib.Path, port: int = 0, cas_size: str = "4G",
                 queue_timeout_s: int = QUEUE_TIMEOUT_S) -> None:
        self.state_dir = state_dir
        self.root_hash = buildroot_hash()
        self.database = Database()
        self.server = BuildGridServer(state_dir, port=port, cas_size=cas_size,
                                      config=EXECUTION_CONFIG)
        self.queue_timeout_s = queue_timeout_s
        self.workers: list[Worker] = []
        self._workers_started = 0

    @property
    def url(self) -> str:
        return self.server.url

    def start(self, workers: int, detach: bool = False) -> None:
        """Starts the database, the server and `workers` workers for this build root."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.database.start()
        self.server.substitutions.update(
            DATABASE=self.database.url, ROOT_HASH=self.root_hash,
            WORKER_TIMEOUT_S=str(WORKER_TIMEOUT_S), QUEUE_TIMEOUT_S=str(self.queue_timeout_s))
        try:
            self.server.start(detach=detach)
            for _ in range(workers):
                self.add_worker()
            # A worker the server refuses exits at once; say so rather than serve without it.
            time.sleep(_WORKER_POLL_S / 2)
            for worker in self.workers:
                if worker.exited() is not None:
                    raise RuntimeError(f"remote-exec: {worker.name} exited with code "
                                       f"{worker.exited()}; see {worker.log_path}")
        except BaseException:
            self.stop()
            raise

    def add_worker(self, root_hash: str | None = None) -> Worker:
        """Starts one more worker; `root_hash` makes it advertise another build root."""
        # Names are never reused: a replacement worker gets its own bot id, log and cache.
        self._workers_started += 1
        worker = Worker(f"worker-{self._workers_started}", self.state_dir, self.url,
                        root_hash or self.root_hash)
        self.workers.append(worker)
        worker.start()
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.kill()
        self.server.stop()
        self.database.stop()

    def save(self) -> None:
        """Writes what `stop` and `status` of another process need."""
        state = {"url": self.url, "server_pid": self.server.process.pid,
                 "database": str(self.database.data_dir), "root_hash": self.root_hash,
                 "workers": [w.state() for w in self.workers]}
        (self.state_dir / "farm.json").write_text(json.dumps(state, indent=1))


def _load(state_dir: pathlib.Path) -> dict | None:
    try:
        return json.loads((state_dir / "farm.json").read_text())
    except FileNotFoundError:
        return None


def _stop_saved(state: dict) -> None:
    for worker in state["workers"]:
        _kill_group(worker["worker_pid"])
        _kill_group(worker["casd_pid"])
    if pid := state["server_pid"]:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    Database(pathlib.Path(state["database"])).stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--state-dir", type=pathlib.Path, required=True,
                        help="folder for the config, the logs and the workers' caches")
    parser.add_argument("--port", type=int, default=50052, help="0 picks a free port")
    parser.add_argument("--workers", type=int, default=2, help="number of workers to start")
    parser.add_argument("--cas-size", default="4G", help="in-memory CAS size, e.g. 4G")
    parser.add_argument("--queue-timeout", type=int, default=QUEUE_TIMEOUT_S, metavar="S",
                        help="an action no worker takes within S seconds fails")
    args = parser.parse_args(argv)

    state = _load(args.state_dir)
    server_pid = state and process_alive(state["server_pid"]) and state["server_pid"]
    if args.command == "status":
        if not server_pid:
            print("remote-exec: not running")
            return 1
        alive = [w["name"] for w in state["workers"] if process_alive(w["worker_pid"])]
        print(f"remote-exec: BuildGrid {state['url']} (pid {server_pid}), root "
              f"{state['root_hash']}, {len(alive)} of {len(state['workers'])} workers alive"
              + (f": {', '.join(alive)}" if alive else ""))
        return 0 if alive else 1
    if args.command == "stop":
        if state:
            _stop_saved(state)
            (args.state_dir / "farm.json").unlink()
            print("remote-exec: stopped", file=sys.stderr)
        return 0
    if server_pid:
        print(f"remote-exec: already running (pid {server_pid}); see {args.state_dir}",
              file=sys.stderr)
        return 1
    if args.workers < 0:
        parser.error("--workers must be 0 or more")
    farm = Farm(args.state_dir, port=args.port, cas_size=args.cas_size,
                queue_timeout_s=args.queue_timeout)
    try:
        farm.start(args.workers, detach=True)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print(e, file=sys.stderr)
        return 1
    farm.save()
    print(f"remote-exec: BuildGrid serving {farm.url} with {args.workers} workers for build "
          f"root {farm.root_hash} (logs in {args.state_dir})", file=sys.stderr)
    print(farm.url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
