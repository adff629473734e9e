"""
Where an OK-echo server's CPU time per reply goes, under the benchmark's load.

    .venv/bin/python benchmarks/profile_echo.py                       # twistsock, both loads
    .venv/bin/python benchmarks/profile_echo.py --server twisted-linereceiver --seconds 3

For each scenario (ping-pong, pipeline) the server runs under the same load as in
C{echo.py}, and over the measured window this script takes:

  - the server's user and system CPU time per reply (C{/proc/PID/stat});
  - its system calls per reply, by kind (C{perf stat} on syscall tracepoints, when
    C{perf} is installed and allowed);
  - a py-spy sample of its Python stacks (when C{py-spy} is installed; C{pip install py-spy}),
    summarised as the functions where the samples land (self) and the ones they pass
    through (total).

The raw py-spy stacks are kept in C{benchmarks/results/tmp/} for flame graphs.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _load
import _servers
import echo

HERE = Path(__file__).resolve().parent

SYSCALLS = ("epoll_wait", "epoll_ctl", "recvfrom", "sendto", "read", "write")


def perf_syscalls(pid: int, seconds: float) -> subprocess.Popen[str] | None:
    """
    Start counting the system calls of C{pid} for C{seconds}, or return C{None} without perf.
    """
    perf = shutil.which("perf")
    if perf is None:
        return None
    events = ",".join(["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{s}" for s in SYSCALLS])
    return subprocess.Popen(
        [perf, "stat", "-x", ",", "-e", events, "-p", str(pid), "--", "sleep", str(seconds)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def parse_perf(stderr: str) -> dict[str, int]:
    """
    Counts by syscall name from C{perf stat -x ,} output.
    """
    counts = {}
    for line in stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].isdigit():
            name = fields[2].removeprefix("syscalls:sys_enter_")
            counts["all" if name == "raw_syscalls:sys_enter" else name] = int(fields[0])
    return counts


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[str] | None:
    """
    Start sampling the Python stacks of C{pid}, or return C{None} without py-spy.
    """
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return None
    return subprocess.Popen(
        [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "250", "-f", "raw"]
        + ["-o", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _function(frame: str) -> str:
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1].split(':')[0].rstrip(')')})"


def summarise_stacks(path: Path, top: int) -> list[str]:
    """
    The functions where most samples land (self) and that most samples pass through.
    """
    own: collections.Counter[str] = collections.Counter()
    through: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        # "func (path/to/file.py:123)" -> "func (file.py)": the lines of a function add up.
        frames = [_function(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ")]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for frame in set(frames):  # a recursive frame counts once
            through[frame] += n
    if not total:
        return ["  (no samples)"]
    lines = [f"  {total} samples; self:"]
    lines += [f"    {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["  total (self + callees):"]
    lines += [f"    {n / total:6.1%}  {f}" for f, n in through.most_common(top)]
    return lines


def profile(server: echo.Server, depth: int, connections: int, seconds: float, top: int) -> None:
    """
    Run one scenario against a fresh server and print where its time goes.
    """
    ctx = multiprocessing.get_context("fork")
    server_cpu, load_cpu = _servers.cpu_layout()
    out_dir = echo.RESULTS / "tmp"
    out_dir.mkdir(parents=True, exist_ok=True)
    warmup = 1.0
    with tempfile.TemporaryDirectory(prefix="twistsock-profile-") as tmpdir:
        tmp = Path(tmpdir)
        why = echo.available(server, tmp)
        if why:
            print(f"{server.name}: skipped ({why})")
            return
        port = _servers.free_port()
        with (
            open(tmp / "server.log", "wb") as log,
            _servers.running_server(server.command(port, tmp), server_cpu, log, cwd=tmp) as proc,
        ):
            _servers.wait_welcome(port, proc, 20, _load.WELCOME)
            ready, results = ctx.Barrier(1), ctx.Queue()
            args = (_servers.HOST, port, connections, depth, warmup, seconds, proc.pid, load_cpu)
            worker = ctx.Process(target=_load.run_traffic, args=(*args, ready, results))
            worker.start()
            time.sleep(warmup + 0.3)  # connected and warmed up (connecting takes ~0.1 s)
            stacks = out_dir / f"profile-{server.name}-{depth}.txt"
            tools = [
                perf_syscalls(proc.pid, seconds - 0.6),
                py_spy(proc.pid, seconds - 0.6, stacks),
            ]
            outputs = [t.communicate(timeout=seconds + 30)[1] if t else None for t in tools]
            result: dict[str, Any] = results.get(timeout=seconds + 60)
            worker.join(10)
    if result["error"]:
        print(f"  load failed: {result['error']}")
        return
    rate = result["replies"] / result["seconds"]
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_us = result["cpu_ticks"] / ticks * 1e6 / result["replies"]
    user_us = result["user_ticks"] / ticks * 1e6 / result["replies"]
    print(
        f"  {rate:,.0f} replies/s; server {cpu_us:.3f} µs/reply: "
        f"{user_us:.3f} user (Python, libc), {cpu_us - user_us:.3f} system (kernel, TCP)"
    )
    if outputs[0] is not None:
        counts = parse_perf(outputs[0])
        replies = rate * (seconds - 0.6)
        if counts:
            print(
                "  syscalls per reply: "
                + ", ".join(f"{k} {v / replies:.3f}" for k, v in counts.items() if v)
            )
        else:
            print(f"  perf stat gave nothing: {outputs[0].strip()[:200]}")
    if outputs[1] is not None:
        if stacks.exists():
            print(f"  py-spy stacks in {stacks}:")
            print("\n".join(summarise_stacks(stacks, top)))
        else:
            print(f"  py-spy failed: {outputs[1].strip()[:300]}")


def main(argv: list[str] | None = None) -> int:
    """
    Profile one server under the ping-pong and pipeline loads.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--server", default="twistsock", choices=[s.name for s in echo.SERVERS])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per load")
    parser.add_argument("--top", type=int, default=15, help="functions to list")
    parser.add_argument("--scenario", choices=["pingpong", "pipeline", "both"], default="both")
    args = parser.parse_args(argv)
    _load.raise_nofile_limit(_servers.NOFILE)
    server = next(s for s in echo.SERVERS if s.name == args.server)
    scenarios = {"pingpong": (1, echo.FULL.pingpong_connections)}
    scenarios["pipeline"] = (echo.FULL.pipeline_depth, echo.FULL.pipeline_connections)
    for name, (depth, connections) in scenarios.items():
        if args.scenario in (name, "both"):
            print(f"{server.name}, {name} ({connections} connections x {depth} in flight):")
            profile(server, depth, connections, args.seconds, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
