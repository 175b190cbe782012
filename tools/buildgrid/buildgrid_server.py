"""A BuildGrid server on loopback: start it, wait until it serves, stop it.

The server is BuildGrid from the build root's virtual environment, configured from a template
beside this file: cache.yml (CAS, ByteStream, ActionCache, in memory) for tools/remote-cache and
the remote-cache tests; execution.yml (the same plus Execution and Bots) for tools/remote-exec,
through buildgrid_farm.py. As a program this file is tools/remote-cache:

    python3 buildgrid_server.py start --port 50051 --state-dir DIR   # detached; prints its URL
    python3 buildgrid_server.py stop --state-dir DIR
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

CACHE_CONFIG = pathlib.Path(__file__).with_name("cache.yml")
_HOST = "127.0.0.1"
_READY_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_HOST, 0))
        return s.getsockname()[1]


def _accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex((_HOST, port)) == 0


def wait_until_listening(port: int, process: subprocess.Popen, what: str,
                         log: pathlib.Path) -> None:
    """Returns once `process` accepts connections on `port`.

    Raises RuntimeError naming `what`, the port and the log when the process exits first or
    does not listen within a minute (it is then killed).
    """
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while not _accepts_connections(port):
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before listening "
                               f"on port {port}; see {log}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"{what} did not listen on port {port} within "
                               f"{_READY_TIMEOUT_S:.0f} s; see {log}")
        time.sleep(0.2)


def process_alive(pid: int | None) -> bool:
    """Whether process `pid` exists (a zombie counts: reap your own children first)."""
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, TypeError):
        return False


class BuildGridServer:
    """One BuildGrid process serving REAPI at grpc://127.0.0.1:<port>.

    `config` is a template whose @ADDRESS@ and @CAS_SIZE@, and every @KEY@ of `substitutions`,
    are filled in.
    """

    def __init__(self, state_dir: pathlib.Path, port: int = 0, cas_size: str = "2G",
                 config: pathlib.Path = CACHE_CONFIG,
                 substitutions: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.port = port or free_port()
        self.cas_size = cas_size
        self.config = config
        self.substitutions = {"ADDRESS": f"{_HOST}:{self.port}", "CAS_SIZE": cas_size,
                              **(substitutions or {})}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"grpc://{_HOST}:{self.port}"

    @property
    def log_path(self) -> pathlib.Path:
        return self.state_dir / "buildgrid.log"

    def start(self, detach: bool = False) -> None:
        """Starts the server and returns once it accepts connections.

        Raises RuntimeError naming the port and the log when the port is taken, the server
        exits, or it does not listen within a minute.
        """
        if _accepts_connections(self.port):
            raise RuntimeError(f"BuildGrid: port {self.port} on {_HOST} is already in use")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "buildgrid.yml"
        text = self.config.read_text()
        for key, value in self.substitutions.items():
            text = text.replace(f"@{key}@", value)
        config.write_text(text)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from buildgrid.server.app import cli; cli()",
                 "server", "start", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.state_dir, start_new_session=detach)
        wait_until_listening(self.port, self.process, "BuildGrid", self.log_path)

    def kill(self) -> None:
        """Ends the server at once (SIGKILL), as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """Ends the server cleanly (SIGTERM), or kills it after 10 s."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def _pid_file(state_dir: pathlib.Path) -> pathlib.Path:
    return state_dir / "buildgrid.pid"


def running_pid(pid_file: pathlib.Path) -> int | None:
    """The pid written in `pid_file` if that process is alive, else None."""
    try:
        pid = int(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if process_alive(pid) else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--state-dir", type=pathlib.Path, required=True,
                        help="folder for the config, the log and the pid file")
    parser.add_argument("--port", type=int, default=50051, help="0 picks a free port")
    parser.add_argument("--cas-size", default="4G", help="in-memory CAS size, e.g. 4G")
    args = parser.parse_args(argv)

    pid = running_pid(_pid_file(args.state_dir))
    if args.command == "status":
        print(f"running, pid {pid}" if pid else "not running")
        return 0 if pid else 1
    if args.command == "stop":
        if pid:
            os.kill(pid, signal.SIGTERM)
            print(f"remote cache: stopped pid {pid}")
        _pid_file(args.state_dir).unlink(missing_ok=True)
        return 0
    if pid:
        print(f"remote cache: already running (pid {pid}); see {args.state_dir}", file=sys.stderr)
        return 1
    server = BuildGridServer(args.state_dir, port=args.port, cas_size=args.cas_size)
    try:
        server.start(detach=True)
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    _pid_file(args.state_dir).write_text(f"{server.process.pid}\n")
    print(f"remote cache: BuildGrid serving {server.url} (pid {server.process.pid}, "
          f"log {server.log_path})", file=sys.stderr)
    print(server.url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
