"""
Starting, pinning, probing and stopping the servers that the benchmarks measure.

Every server is a child process in a session of its own, started with its open-files limit
raised and pinned to its own CPU, and stopped (SIGTERM, then SIGKILL) by L{running_server}
whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"
NOFILE = 20_000


def cpu_layout() -> tuple[int | None, int | None]:
    """
    Choose the CPU of the server and the CPU of the load: the first two this process may use.

    @return: C{(server_cpu, load_cpu)}, both C{None} when there are fewer than two CPUs.
    """
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def free_port() -> int:
    """
    A TCP port on 127.0.0.1 that nothing listens on right now.
    """
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _child_setup(cpu: int | None) -> Callable[[], None]:
    """
    The C{preexec_fn} of a server: pin it to C{cpu} and raise its open-files limit.
    """

    def setup() -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return setup


def wait_welcome(
    port: int,
    proc: subprocess.Popen[bytes],
    timeout: float,
    banner: bytes,
    preamble: Callable[[socket.socket], bytes] | None = None,
) -> None:
    """
    Wait until the server on C{port} accepts a connection and sends C{banner} first.

    @param preamble: when given, what to send first on the connected socket (a PROXY
        header), computed from that socket.
    @raise RuntimeError: when the server exits, or does not answer in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=2) as s:
                if preamble is not None:
                    s.sendall(preamble(s))
                got = b""
                while len(got) < len(banner):
                    data = s.recv(4096)
                    if not data:
                        break
                    got += data
                if got != banner:
                    raise RuntimeError(f"expected the welcome line, got {got!r}")
                return
        except (TimeoutError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listening on port {port} after {timeout} s") from None
            time.sleep(0.05)


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """
    Wait until something accepts TCP connections on C{port}.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listening on port {port} after {timeout} s") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """
    Stop a server started by L{running_server}: SIGTERM to its session, SIGKILL if it lingers.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(grace)
    # Children the server left behind in its session (none expected).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_server(
    argv: Sequence[str], cpu: int | None, log: IO[bytes], cwd: str | Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """
    Run C{argv} as a pinned server process for the duration of the C{with} block.
    """
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        preexec_fn=_child_setup(cpu),
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        stop(proc)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_stamp() -> dict[str, Any]:
    """
    The date, the machine and the software versions that a result file is stamped with.
    """
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
        check=False,
    ).stdout.strip()
    return {
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "twisted": _version("twisted"),
        "twistsock": _version("twistsock"),
        "git_commit": commit or None,
        "executable": sys.executable,
    }


def stamp_line(stamp: dict[str, Any]) -> str:
    """
    The stamp as one line, for tables and charts.
    """
    return (
        f"{stamp['date'][:10]}, {stamp['cpu']}, {stamp['cores']} cores, "
        f"Python {stamp['python']}, Twisted {stamp['twisted']}"
    )
