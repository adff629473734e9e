"""
The OK-echo benchmark: twistsock against reference peers, side by side, in one run.

    .venv/bin/python benchmarks/echo.py            # the full run, about 3 minutes
    .venv/bin/python benchmarks/echo.py --quick    # a smoke run of a few seconds per server
    .venv/bin/python benchmarks/echo.py --servers twistsock,asyncio-protocol

Each server runs in turn on 127.0.0.1, pinned to one CPU, while the load (L{_load}) runs in
separate processes pinned to another.  Scenarios:

  - ping-pong: 100 connections, one line in flight on each;
  - pipeline: 50 connections, 16 lines of 32 bytes in flight on each;
  - idle: 10,000 connections held, then one line on each (all must answer), with the
    server's RSS read before connecting, once connected and after the round.

Three twistsock rows need more than one process or a PROXY header:

  - C{twistsock-proxy}: C{--proxy-protocol}, the load sending a PROXY v1 header first on
    each connection;
  - C{twistsock-haproxy}: HAProxy (C{mode tcp}, C{send-proxy}, one thread, pinned to the
    load's CPU) in front of C{--proxy-protocol}; the load connects to HAProxy.  The
    server's figures are twistsock's; HAProxy's CPU per reply and RSS are reported apart;
  - C{twistsock-workers-2}: C{--workers 2}, not pinned (the workers may use both CPUs, one
    of them shared with the load); CPU and RSS are summed over the main process and its
    workers, and the log's C{Connected with} lines count each worker's connections.

The key figure is the server's CPU time per reply (user + system, from C{/proc/PID/stat}
over the measured window): it does not depend on how fast the load is.  Results go to
C{benchmarks/results/echo.json}, C{echo.md} and C{echo.png} (a C{--quick} run writes to
C{benchmarks/results/tmp/} instead).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _load
import _servers

HERE = Path(__file__).resolve().parent

REPO = HERE.parent
TWISTD = Path(sys.executable).with_name("twistd")
RESULTS = HERE / "results"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Server:
    """
    A server under test.

    @ivar name: the short name used in tables and on the command line.
    @ivar label: what it is, for the table.
    @ivar argv: the command, with C{{port}} and C{{tmp}} still to fill in.
    """

    name: str
    label: str
    argv: tuple[str, ...]
    #: The load sends a PROXY v1 header first on each connection.
    load_proxy: bool = False
    #: HAProxy (C{send-proxy}) runs in front of the server; the load connects to it.
    haproxy: bool = False
    #: Worker processes under the main one (C{--workers}); above 1 the server is not pinned.
    workers: int = 1

    def command(self, port: int, tmp: Path) -> list[str]:
        """
        The command line that starts this server on C{port}.
        """
        return [a.format(port=port, tmp=tmp) for a in self.argv]


def _peer(script: str, *extra: str) -> tuple[str, ...]:
    return (sys.executable, str(HERE / script), "--port", "{port}", *extra)


TWISTSOCK = (
    str(TWISTD),
    "-n",
    "--pidfile=",
    "twistsock",
    "--port",
    "tcp:{port}:interface=127.0.0.1",
)
SERVERS = [
    Server("twistsock", "twistsock (twistd -n twistsock)", TWISTSOCK),
    Server(
        "twistsock-proxy",
        "twistsock --proxy-protocol (the load sends a PROXY v1 header first)",
        (*TWISTSOCK, "--proxy-protocol"),
        load_proxy=True,
    ),
    Server(
        "twistsock-haproxy",
        "twistsock --proxy-protocol behind HAProxy (send-proxy)",
        (*TWISTSOCK, "--proxy-protocol"),
        haproxy=True,
    ),
    Server(
        "twistsock-workers-2",
        "twistsock --workers 2 (main + 2 workers, not pinned)",
        (*TWISTSOCK, "--workers", "2"),
        workers=2,
    ),
    Server(
        "twistsock-stock-epoll",
        "twistsock on Twisted's own epoll reactor (twistd -r epoll)",
        (str(TWISTD), "--reactor=epoll", *TWISTSOCK[1:]),
    ),
    Server(
        "twistsock-no-direct-write",
        "twistsock --no-direct-write (Twisted's buffered write; lean reactor)",
        (*TWISTSOCK, "--no-direct-write"),
    ),
    Server(
        "c-epoll", "C epoll server (the practical limit)", ("{tmp}/peer_epoll", "--port", "{port}")
    ),
    Server("uvloop-protocol", "uvloop Protocol", _peer("peer_asyncio_protocol.py", "--uvloop")),
    Server("asyncio-protocol", "asyncio Protocol", _peer("peer_asyncio_protocol.py")),
    Server("threads", "tutorial threads, line-correct", _peer("peer_threads.py")),
    Server("asyncio-streams", "asyncio streams (readline)", _peer("peer_asyncio_streams.py")),
    Server(
        "twisted-protocol",
        "Twisted Protocol, framing per chunk",
        _peer("peer_twisted_linereceiver.py", "--chunk"),
    ),
    Server("twisted-linereceiver", "Twisted LineReceiver", _peer("peer_twisted_linereceiver.py")),
]


@dataclass(frozen=True)
class Settings:
    """
    How long and how hard each scenario runs.
    """

    warmup: float
    duration: float
    pingpong_connections: int = 100
    pipeline_connections: int = 50
    pipeline_depth: int = 16
    idle_connections: int = 10_000
    load_processes: int = 1


FULL = Settings(warmup=1.0, duration=4.0)
QUICK = Settings(warmup=0.3, duration=1.0, idle_connections=1000)


def available(server: Server, tmp: Path) -> str | None:
    """
    Why C{server} cannot run here, or C{None} when it can.
    """
    if server.name.startswith("twistsock"):
        # Each twistsock variant needs what its command line uses.
        needs = {
            "twistsock": (("--help",), "twistsock", "twistd --help does not list twistsock"),
            "twistsock-stock-epoll": (
                ("twistsock", "--help"),
                "--line-timeout",
                "this twistsock does not choose its lean reactor by itself",
            ),
            "twistsock-no-direct-write": (
                ("twistsock", "--help"),
                "--no-direct-write",
                "this twistsock has no --no-direct-write option",
            ),
            "twistsock-proxy": (
                ("twistsock", "--help"),
                "--proxy-protocol",
                "this twistsock has no --proxy-protocol option",
            ),
            "twistsock-workers-2": (
                ("twistsock", "--help"),
                "--workers",
                "this twistsock has no --workers option",
            ),
        }
        needs["twistsock-haproxy"] = needs["twistsock-proxy"]
        for name in ("twistsock", server.name):
            arguments, needle, problem = needs[name]
            out = subprocess.run(
                [str(TWISTD), *arguments], capture_output=True, text=True, cwd=REPO, check=False
            ).stdout
            if needle not in out:
                return problem
    if server.haproxy and haproxy_command() is None:
        return "haproxy is not installed (apt-get install haproxy)"
    if server.name == "uvloop-protocol":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return "uvloop is not installed"
    if server.name == "c-epoll":
        gcc = shutil.which("gcc")
        if gcc is None:
            return "no gcc"
        build = subprocess.run(
            [gcc, "-O2", "-o", str(tmp / "peer_epoll"), str(HERE / "peer_epoll.c")],
            capture_output=True,
            text=True,
            check=False,
        )
        if build.returncode:
            return f"gcc failed: {build.stderr.strip()[:200]}"
    return None


def haproxy_command() -> str | None:
    """
    The C{haproxy} program, or C{None} when it is not installed.
    """
    return shutil.which("haproxy") or shutil.which("/usr/sbin/haproxy")


def haproxy_config(front: int, backend: int, maxconn: int) -> str:
    """
    HAProxy in front of the server: C{mode tcp}, one thread, C{send-proxy} (PROXY v1), on
    127.0.0.1 only.
    """
    return f"""global
    nbthread 1
    maxconn {maxconn}

defaults
    mode tcp
    timeout connect 5s
    timeout client 5m
    timeout server 5m

frontend echo
    bind 127.0.0.1:{front}
    maxconn {maxconn}
    default_backend twistsock

backend twistsock
    server echo 127.0.0.1:{backend} send-proxy
"""


def _send_proxy(sock: Any) -> bytes:
    return _load.proxy_v1_header(sock.getsockname(), sock.getpeername())


_CONNECTED = re.compile(rb"\[twistsock worker (\d+)#info\] Connected with ")


def worker_connections(log: bytes) -> dict[str, int]:
    """
    How many connections each worker logged (C{Connected with} lines), by pid.
    """
    counts: dict[str, int] = {}
    for m in _CONNECTED.finditer(log):
        pid = m.group(1).decode()
        counts[pid] = counts.get(pid, 0) + 1
    return counts


def balance(counts: dict[str, int], workers: int) -> dict[str, Any]:
    """
    Each worker's connections, and how far the busiest or idlest one is from an even share.

    @return: C{by_worker}, C{total}, C{max_deviation} (a fraction of the even share) and
        C{within_15_percent}.
    """
    values = list(counts.values()) + [0] * max(0, workers - len(counts))
    total = sum(values)
    even = total / workers if workers else 0
    deviation = max(abs(v - even) / even for v in values) if even else None
    return {
        "by_worker": dict(sorted(counts.items())),
        "total": total,
        "max_deviation": None if deviation is None else round(deviation, 3),
        "within_15_percent": None if deviation is None else deviation <= 0.15,
    }


def wait_workers(root: int, workers: int, timeout: float = 20.0) -> list[int]:
    """
    The server's processes: C{root} alone, or C{root} and its C{workers} workers once they
    have all started.
    """
    deadline = time.monotonic() + timeout
    while True:
        tree = _load.process_tree(root)
        if workers <= 1 or len(tree) >= workers + 1 or time.monotonic() > deadline:
            return tree
        time.sleep(0.1)


def weighted_percentiles(
    latencies: list[float], weights: list[int], qs: tuple[float, ...]
) -> list[float]:
    """
    Percentiles of latencies where each value stands for C{weight} replies.
    """
    if not latencies:
        return [float("nan")] * len(qs)
    pairs = sorted(zip(latencies, weights, strict=True))
    total = sum(weights)
    out = []
    for q in qs:
        rank = q * total
        seen = 0
        for value, weight in pairs:
            seen += weight
            if seen >= rank:
                out.append(value)
                break
    return out


def measure_traffic(
    ctx: Any,
    port: int,
    pids: list[int],
    connections: int,
    depth: int,
    settings: Settings,
    load_cpu: int | None,
    others: dict[str, list[int]] | None = None,
    proxy: bool = False,
) -> dict[str, Any]:
    """
    Run one traffic scenario against the server and return its figures.

    @param pids: the server's processes, whose CPU time is summed.
    @param others: other processes (HAProxy) whose CPU per reply is reported apart.
    @param proxy: the load sends a PROXY v1 header first on each connection.
    """
    procs = max(1, min(settings.load_processes, connections))
    ready = ctx.Barrier(procs)
    results = ctx.Queue()
    workers = []
    for i in range(procs):
        share = connections // procs + (1 if i < connections % procs else 0)
        args = (_servers.HOST, port, share, depth, settings.warmup, settings.duration)
        workers.append(
            ctx.Process(
                target=_load.run_traffic,
                args=(
                    *args,
                    pids if i == 0 else None,
                    load_cpu,
                    ready,
                    results,
                    others if i == 0 else None,
                    proxy,
                ),
            )
        )
    for w in workers:
        w.start()
    try:
        parts = [results.get(timeout=60 + settings.warmup + settings.duration) for _ in workers]
    finally:
        for w in workers:
            w.join(10)
            if w.is_alive():
                w.kill()
                w.join()
    errors = [p["error"] for p in parts if p["error"]]
    if errors:
        return {"error": "; ".join(errors)}
    replies = sum(p["replies"] for p in parts)
    seconds = max(p["seconds"] for p in parts)
    measured = next(p for p in parts if p["cpu_ticks"] is not None)
    ticks, user_ticks = measured["cpu_ticks"], measured["user_ticks"]
    latencies = [x for p in parts for x in p["latencies"]]
    weights = [x for p in parts for x in p["weights"]]
    p50, p99 = weighted_percentiles(latencies, weights, (0.50, 0.99))
    cpu_seconds = ticks / TICKS
    apart = {
        f"{name}_cpu_us_per_reply": round(t / TICKS * 1e6 / replies, 3) if replies else None
        for name, t in measured["other_cpu_ticks"].items()
    }
    return {
        **apart,
        "connections": connections,
        "in_flight": depth,
        "replies": replies,
        "seconds": round(seconds, 3),
        "replies_per_s": round(replies / seconds),
        "p50_us": round(p50 * 1e6, 1),
        "p99_us": round(p99 * 1e6, 1),
        "server_cpu_s": round(cpu_seconds, 3),
        "server_cpu_share": round(cpu_seconds / seconds, 3),
        "cpu_us_per_reply": round(cpu_seconds * 1e6 / replies, 3) if replies else None,
        "user_share_of_cpu": round(user_ticks / ticks, 3) if ticks else None,
    }


def _rss(pids: list[int]) -> int:
    return sum(_load.rss_kib(p) for p in pids)


def measure_idle(
    ctx: Any,
    port: int,
    pids: list[int],
    settings: Settings,
    load_cpu: int | None,
    others: dict[str, list[int]] | None = None,
    proxy: bool = False,
) -> dict[str, Any]:
    """
    Hold many idle connections, read the server's RSS, then send one line on each.

    @param pids: the server's processes, whose RSS is summed; with workers (more than one
        process) each worker's open sockets are counted while the connections are held.
    @param others: other processes (HAProxy) whose RSS per connection is reported apart.
    """
    timeout = 60.0
    others = others or {}
    here, there = ctx.Pipe()
    rss_before = _rss(pids)
    others_before = {name: _rss(p) for name, p in others.items()}
    sockets_before = {p: _load.socket_count(p) for p in pids[1:]}
    worker = ctx.Process(
        target=_load.run_idle,
        args=(_servers.HOST, port, settings.idle_connections, load_cpu, there, timeout, proxy),
    )
    worker.start()
    out: dict[str, Any] = {"connections": settings.idle_connections, "rss_before_kib": rss_before}
    try:
        if not here.poll(timeout + 5):
            return {**out, "error": "no answer from the load process"}
        msg = here.recv()
        if msg[0] == "error":
            return {**out, "error": msg[1]}
        out["connect_s"] = round(msg[1], 2)
        time.sleep(0.5)  # let the server settle
        out["rss_connected_kib"] = _rss(pids)
        n = settings.idle_connections
        for name, p in others.items():
            out[f"{name}_kb_per_conn"] = round((_rss(p) - others_before[name]) * 1.024 / n, 2)
        if sockets_before:
            out["sockets_by_worker"] = {
                str(p): _load.socket_count(p) - before for p, before in sockets_before.items()
            }
        here.send("go")
        if not here.poll(timeout + 5):
            return {**out, "error": "no answer from the load process"}
        msg = here.recv()
        if msg[0] == "error":
            return {**out, "error": msg[1]}
        out["answered"] = msg[1]
        out["round_s"] = round(msg[2], 3)
        out["rss_after_kib"] = _rss(pids)
        out["kb_per_conn"] = round((out["rss_connected_kib"] - rss_before) * 1.024 / n, 2)
        out["kb_per_conn_after_round"] = round((out["rss_after_kib"] - rss_before) * 1.024 / n, 2)
        here.send("close")
    finally:
        worker.join(15)
        if worker.is_alive():
            worker.kill()
            worker.join()
    return out


def wait_quiet(pids: list[int], timeout: float = 10.0) -> None:
    """
    Wait until the server uses less than a tenth of a CPU (closing 10,000 connections takes
    it a while), or C{timeout} passes.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = sum(_load.group_ticks(pids))
        time.sleep(0.2)
        if sum(_load.group_ticks(pids)) - before < 0.02 * TICKS:
            return


def bench_server(
    server: Server, tmp: Path, settings: Settings, cpus: tuple[int | None, int | None]
) -> dict[str, Any]:
    """
    Start one server (and HAProxy in front of it, if it has one), run every scenario
    against it, stop it.
    """
    ctx = multiprocessing.get_context("fork")
    server_cpu, load_cpu = cpus
    port = _servers.free_port()
    log_path = tmp / f"{server.name}.log"
    result: dict[str, Any] = {"label": server.label}
    proxied = server.load_proxy or server.haproxy
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open(log_path, "wb"))
        proc = stack.enter_context(
            _servers.running_server(
                server.command(port, tmp),
                server_cpu if server.workers <= 1 else None,
                log,
                cwd=tmp,
            )
        )
        _servers.wait_welcome(port, proc, 20, _load.WELCOME, _send_proxy if proxied else None)
        pids = wait_workers(proc.pid, server.workers)
        if server.workers > 1:
            result["processes"] = len(pids)
        target, others = port, {}
        if server.haproxy:
            haproxy = haproxy_command()
            assert haproxy is not None
            target = _servers.free_port()
            config = tmp / f"{server.name}.haproxy.cfg"
            # HAProxy holds two descriptors per connection, and may not raise its hard
            # limit (NOFILE here): the idle scenario holds fewer connections through it.
            idle = min(settings.idle_connections, _servers.NOFILE // 2 - 600)
            settings = dataclasses.replace(settings, idle_connections=idle)
            config.write_text(haproxy_config(target, port, idle + 400))
            front = stack.enter_context(
                _servers.running_server(
                    [haproxy, "-db", "-f", str(config)],
                    load_cpu,
                    stack.enter_context(open(tmp / f"{server.name}.haproxy.log", "wb")),
                    cwd=tmp,
                )
            )
            _servers.wait_welcome(target, front, 20, _load.WELCOME)
            others = {"haproxy": [front.pid]}
        load_proxy = server.load_proxy

        def logged() -> int:
            time.sleep(0.3)  # the workers' log lines pass through the main process
            return log_path.stat().st_size

        marks = [logged()]
        # Idle first, on the fresh server, so that the RSS baseline is not memory that the
        # other scenarios left free for reuse.
        result["idle"] = measure_idle(ctx, target, pids, settings, load_cpu, others, load_proxy)
        wait_quiet(pids)
        marks.append(logged())
        result["pingpong"] = measure_traffic(
            ctx, target, pids, settings.pingpong_connections, 1, settings, load_cpu,
            others, load_proxy,
        )  # fmt: skip
        marks.append(logged())
        result["pipeline"] = measure_traffic(
            ctx,
            target,
            pids,
            settings.pipeline_connections,
            settings.pipeline_depth,
            settings,
            load_cpu,
            others,
            load_proxy,
        )
        marks.append(logged())
        if server.workers > 1:
            text = log_path.read_bytes()
            result["balance"] = {
                scenario: balance(worker_connections(text[a:b]), server.workers)
                for scenario, a, b in zip(
                    ("idle", "pingpong", "pipeline"), marks[:-1], marks[1:], strict=True
                )
            }
            now = _load.process_tree(proc.pid)
            if now != pids:
                result["error"] = f"the server's processes changed: {pids} became {now}"
        if proc.poll() is not None:
            result["error"] = f"the server exited with status {proc.returncode}"
    return result


# -- reporting ---------------------------------------------------------------------------


def _get(result: dict[str, Any], scenario: str, key: str) -> float | None:
    value = result.get(scenario, {}).get(key)
    return value if isinstance(value, (int, float)) else None


def add_ratios(servers: dict[str, dict[str, Any]], base: str = "twistsock") -> None:
    """
    Add, for every figure, its ratio to the same figure of C{base} (when C{base} ran).
    """
    ref = servers.get(base)
    if ref is None:
        return
    figures = [
        ("pingpong", "cpu_us_per_reply"),
        ("pingpong", "replies_per_s"),
        ("pingpong", "p50_us"),
        ("pingpong", "p99_us"),
        ("pipeline", "cpu_us_per_reply"),
        ("pipeline", "replies_per_s"),
        ("pipeline", "p50_us"),
        ("pipeline", "p99_us"),
        ("idle", "kb_per_conn"),
    ]
    for result in servers.values():
        ratios = {}
        for scenario, key in figures:
            mine, theirs = _get(result, scenario, key), _get(ref, scenario, key)
            if mine is not None and theirs:
                ratios[f"{scenario}.{key}"] = round(mine / theirs, 2)
        result["ratio_to_twistsock"] = ratios


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _ratio(result: dict[str, Any], key: str) -> str:
    value = result.get("ratio_to_twistsock", {}).get(key)
    return "n/a" if value is None else f"{value:.2f}×"


def markdown(report: dict[str, Any]) -> str:
    """
    The results as Markdown: the CPU-per-reply table, then throughput and latency.
    """
    servers = report["servers"]
    idle_n = report["settings"]["idle_connections"]
    lines = [
        f"OK-echo benchmark, {_servers.stamp_line(report['machine'])}.",
        "Server and load pinned to different CPUs"
        if report["pinned"]
        else "Server and load not pinned (fewer than two CPUs).",
        "",
        "Server CPU per reply (lower is better; × = this server's figure / twistsock's):",
        "",
        "| server | ping-pong c=100 µs/reply | × | pipeline 50×16 µs/reply | × "
        f"| kB per idle conn | × | {idle_n:,} idle: answered |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in servers.values():
        idle = r.get("idle", {})
        answered = f"{idle['answered']:,}" if "answered" in idle else idle.get("error", "n/a")[:60]
        lines.append(
            f"| {r['label']} | {_fmt(_get(r, 'pingpong', 'cpu_us_per_reply'), 2)} "
            f"| {_ratio(r, 'pingpong.cpu_us_per_reply')} "
            f"| {_fmt(_get(r, 'pipeline', 'cpu_us_per_reply'), 2)} "
            f"| {_ratio(r, 'pipeline.cpu_us_per_reply')} "
            f"| {_fmt(_get(r, 'idle', 'kb_per_conn'), 2)} | {_ratio(r, 'idle.kb_per_conn')} "
            f"| {answered} |"
        )
    lines += [
        "",
        "Throughput and latency (the load is one Python process on one CPU: for the fastest "
        "servers replies/s is the load's limit, not the server's):",
        "",
        "| server | ping-pong replies/s | × | p50 µs | p99 µs | server CPU "
        "| pipeline replies/s | × | p50 µs | p99 µs | server CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in servers.values():
        row = [r["label"]]
        for scenario in ("pingpong", "pipeline"):
            share = _get(r, scenario, "server_cpu_share")
            row += [
                _fmt(_get(r, scenario, "replies_per_s")),
                _ratio(r, f"{scenario}.replies_per_s"),
                _fmt(_get(r, scenario, "p50_us")),
                _fmt(_get(r, scenario, "p99_us")),
                "n/a" if share is None else f"{share:.0%}",
            ]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        f"Idle connections: the server's RSS before connecting, with {idle_n:,} connections "
        "held, and after one line was answered on each:",
        "",
        "| server | RSS before MiB | connected MiB | after the round MiB | connect s "
        "| round s | kB/conn after the round |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in servers.values():
        row = [r["label"]]
        for key, scale in (
            ("rss_before_kib", 1024),
            ("rss_connected_kib", 1024),
            ("rss_after_kib", 1024),
            ("connect_s", 1),
            ("round_s", 1),
            ("kb_per_conn_after_round", 1),
        ):
            value = _get(r, "idle", key)
            row.append("n/a" if value is None else f"{value / scale:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    apart = [
        (r["label"], scenario, _get(r, scenario, "haproxy_cpu_us_per_reply"))
        for r in servers.values()
        for scenario in ("pingpong", "pipeline")
        if _get(r, scenario, "haproxy_cpu_us_per_reply") is not None
    ]
    if apart:
        lines += ["", "HAProxy in front (its own process, pinned to the load's CPU):", ""]
        lines += [
            f"- {label}, {scenario}: HAProxy {v:.2f} µs/reply" for label, scenario, v in apart
        ]
        lines += [
            f"- {r['label']}, idle: HAProxy {_get(r, 'idle', 'haproxy_kb_per_conn'):.2f} kB "
            "per idle connection"
            for r in servers.values()
            if _get(r, "idle", "haproxy_kb_per_conn") is not None
        ]
    for r in servers.values():
        if "balance" not in r:
            continue
        lines += [
            "",
            f"Connections served by each worker ({r['label']}; goal: each within ±15% of an "
            "even share):",
            "",
            "| scenario | connections by worker pid | largest deviation from an even share |",
            "|---|---|---:|",
        ]
        for scenario, b in r["balance"].items():
            by = ", ".join(f"{pid}: {n:,}" for pid, n in b["by_worker"].items())
            dev = "n/a" if b["max_deviation"] is None else f"{b['max_deviation']:.0%}"
            lines.append(f"| {scenario} | {by} | {dev} |")
        sockets = r.get("idle", {}).get("sockets_by_worker")
        if sockets:
            by = ", ".join(f"{pid}: {n:,}" for pid, n in sockets.items())
            lines += ["", f"Open sockets per worker with the idle connections held: {by}."]
    goals = report.get("issue8_goals") or {}
    if goals:
        lines += ["", "Issue-8 performance goals in this run:", ""]
        for name, g in goals.items():
            verdict = {True: "met", False: "missed", None: "n/a"}[g["met"]]
            lines.append(f"- {name}: {verdict} ({g['figure']})")
    errors = [
        f"- {r['label']}, {scenario}: {r[scenario]['error']}"
        for r in servers.values()
        for scenario in ("pingpong", "pipeline", "idle")
        if isinstance(r.get(scenario), dict) and "error" in r[scenario]
    ]
    errors += [f"- {r['label']}: {r['error']}" for r in servers.values() if "error" in r]
    errors += [f"- {name}: skipped, {why}" for name, why in report["skipped"].items()]
    if errors:
        lines += ["", "Errors and skipped servers:", "", *errors]
    return "\n".join(lines) + "\n"


#: The reference line of each chart panel: issue 8's goal for twistsock (ping-pong and
#: pipeline at or below the uvloop Protocol peer, memory per idle connection at or below
#: Twisted's LineReceiver), measured in the same run.
TARGETS = {
    "pingpong": lambda servers: _get(
        servers.get("uvloop-protocol", {}), "pingpong", "cpu_us_per_reply"
    ),
    "pipeline": lambda servers: _get(
        servers.get("uvloop-protocol", {}), "pipeline", "cpu_us_per_reply"
    ),
    "idle": lambda servers: _get(servers.get("twisted-linereceiver", {}), "idle", "kb_per_conn"),
}


def _goal(mine: float | None, theirs: float | None, limit: float, what: str) -> dict[str, Any]:
    if mine is None or not theirs:
        return {"figure": f"{what}: not measured", "ratio": None, "limit": limit, "met": None}
    ratio = round(mine / theirs, 3)
    return {
        "figure": f"{what}: {mine:g} against {theirs:g}, {ratio:.2f}× (goal ≤ {limit:.2f}×)",
        "ratio": ratio,
        "limit": limit,
        "met": ratio <= limit,
    }


def issue8_goals(servers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """
    Issue 8's performance goals, as ratios of figures of this run: C{met} is C{None} when a
    server they need did not run.
    """
    ts = servers.get("twistsock", {})
    out = {}
    for scenario in ("pingpong", "pipeline"):
        out[f"{scenario}_cpu_per_reply_vs_uvloop"] = _goal(
            _get(ts, scenario, "cpu_us_per_reply"),
            _get(servers.get("uvloop-protocol", {}), scenario, "cpu_us_per_reply"),
            1.0,
            "µs/reply, twistsock against uvloop Protocol",
        )
    out["idle_kb_per_conn_vs_linereceiver"] = _goal(
        _get(ts, "idle", "kb_per_conn"),
        _get(servers.get("twisted-linereceiver", {}), "idle", "kb_per_conn"),
        1.0,
        "kB per idle connection, twistsock against Twisted LineReceiver",
    )
    for scenario in ("pingpong", "pipeline"):
        out[f"proxy_{scenario}_cost"] = _goal(
            _get(servers.get("twistsock-proxy", {}), scenario, "cpu_us_per_reply"),
            _get(ts, scenario, "cpu_us_per_reply"),
            1.05,
            "µs/reply, --proxy-protocol against plain TCP",
        )
    for name, result in servers.items():
        for scenario, b in result.get("balance", {}).items():
            dev = b["max_deviation"]
            out[f"{name}_balance_{scenario}"] = {
                "figure": f"connections by worker {b['by_worker']}, largest deviation "
                + ("n/a" if dev is None else f"{dev:.0%}")
                + " (goal ≤ 15%)",
                "ratio": dev,
                "limit": 0.15,
                "met": b["within_15_percent"],
            }
    return out


def chart(report: dict[str, Any], path: Path) -> None:
    """
    Bar charts of CPU per reply (both scenarios) and memory per idle connection.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = report["servers"]
    names = list(servers)
    panels = [
        ("pingpong", "cpu_us_per_reply", "ping-pong c=100: server µs per reply"),
        ("pipeline", "cpu_us_per_reply", "pipeline 50×16: server µs per reply"),
        ("idle", "kb_per_conn", "kB of server RSS per idle connection"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.45 * len(names) + 2.2))
    for ax, (scenario, key, title) in zip(axes, panels, strict=True):
        values = [_get(servers[n], scenario, key) or 0.0 for n in names]
        colors = ["tab:orange" if n.startswith("twistsock") else "tab:blue" for n in names]
        bars = ax.barh(names, values, color=colors)
        ax.bar_label(bars, labels=[f"{v:.2f}" if v else "n/a" for v in values], padding=2)
        ax.set_title(title, fontsize=10)
        ax.invert_yaxis()
        target = TARGETS[scenario](servers)
        if target:
            ax.axvline(target, color="tab:red", linestyle="--", linewidth=1)
            ax.annotate(
                "issue-8 goal",
                (target, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -12),
                textcoords="offset points",
                color="tab:red",
                fontsize=8,
            )
        ax.set_xlim(0, max(values + [target or 0, 1e-9]) * 1.25)
        ax.tick_params(axis="y", labelsize=9)
    fig.suptitle(
        f"OK-echo servers, lower is better ({_servers.stamp_line(report['machine'])})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """
    Run the benchmark; return the exit status (1 when a server failed a scenario).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--servers",
        default=",".join(s.name for s in SERVERS),
        help="comma-separated subset of: %(default)s",
    )
    parser.add_argument("--duration", type=float, help="measured seconds per scenario")
    parser.add_argument("--load-processes", type=int, default=1, help="load processes")
    parser.add_argument("--output", type=Path, help="directory for echo.json/.md/.png")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.duration:
        settings = Settings(**{**settings.__dict__, "duration": args.duration})
    if args.load_processes != 1:
        settings = Settings(**{**settings.__dict__, "load_processes": args.load_processes})
    by_name = {s.name: s for s in SERVERS}
    chosen = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in by_name]
    if unknown:
        parser.error(f"unknown servers: {', '.join(unknown)}")
    output = args.output or (RESULTS / "tmp" if args.quick else RESULTS)
    output.mkdir(parents=True, exist_ok=True)
    _load.raise_nofile_limit(_servers.NOFILE)
    cpus = _servers.cpu_layout()
    report: dict[str, Any] = {
        "machine": _servers.machine_stamp(),
        "pinned": cpus[0] is not None,
        "cpus": {"server": cpus[0], "load": cpus[1]},
        "settings": settings.__dict__,
        "servers": {},
        "skipped": {},
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="twistsock-bench-") as tmpdir:
        tmp = Path(tmpdir)
        for name in chosen:
            server = by_name[name]
            why = available(server, tmp)
            if why:
                print(f"{name}: skipped ({why})", flush=True)
                report["skipped"][name] = why
                continue
            began = time.monotonic()
            print(f"{name}: running ...", end=" ", flush=True)
            try:
                result = bench_server(server, tmp, settings, cpus)
            except Exception as e:
                result = {"label": server.label, "error": f"{type(e).__name__}: {e}"}
            report["servers"][name] = result
            bad = "error" in result or any(
                "error" in result.get(s, {}) for s in ("pingpong", "pipeline", "idle")
            )
            failed |= bad
            print(
                f"{'FAILED' if bad else 'done'} in {time.monotonic() - began:.1f} s "
                f"(ping-pong {_get(result, 'pingpong', 'cpu_us_per_reply')} µs/reply, "
                f"pipeline {_get(result, 'pipeline', 'cpu_us_per_reply')} µs/reply, "
                f"idle {_get(result, 'idle', 'kb_per_conn')} kB/conn)",
                flush=True,
            )
            if bad:
                log = (tmp / f"{name}.log").read_bytes()[-2000:].decode(errors="replace")
                print(f"  last server output:\n{log}", flush=True)
    add_ratios(report["servers"])
    report["issue8_goals"] = issue8_goals(report["servers"])
    table = markdown(report)
    print()
    print(table)
    (output / "echo.json").write_text(json.dumps(report, indent=2) + "\n")
    (output / "echo.md").write_text(table)
    if report["servers"]:
        chart(report, output / "echo.png")
    print(f"wrote {output / 'echo.json'}, echo.md and echo.png")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
