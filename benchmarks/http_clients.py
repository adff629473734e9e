"""
The HTTP client benchmark: C{twistsock.fetch()} and C{twistsock.Client} against C{treq.get()},
C{http.client}, aiohttp and httpx.

    .venv/bin/python benchmarks/http_clients.py            # about two minutes
    .venv/bin/python benchmarks/http_clients.py --quick    # a smoke run
    .venv/bin/python benchmarks/http_clients.py --rounds 3 # on a busy machine: medians

The server is nginx (C{apt-get install -y nginx}), run by this script on 127.0.0.1 as one
process pinned to its own CPU, serving a small file, a 1 MiB file and a sparse 1 GiB file.
Each client runs in a fresh process pinned to the other CPU and GETs one file in a loop,
sequentially and with 50 requests in flight, for a fixed window after a warm-up; every
response is checked (status 200, the whole body).  A new connection is made for every request
by C{http.client}, C{treq} and C{fetch}; treq pooled, C{Client}, aiohttp (a C{ClientSession}
whose connector keeps connections alive, limit 50) and httpx (an C{AsyncClient}, HTTP/1.1,
C{max_connections} 50) keep them alive.  aiohttp and httpx run on their own asyncio loop.

Memory: the peak RSS (C{VmHWM}) of each client's process over the 50 × 1 MiB run, and the RSS
of a process that streams the 1 GiB file with C{twistsock.fetch(url, stream_to=...)} into
C{/dev/null}, sampled over time by this process.  Results go to
C{benchmarks/results/http.json} and C{http.md}.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _load
import _servers

HERE = Path(__file__).resolve().parent

RESULTS = HERE / "results"
SMALL = b"Welcome to the server. Type something and hit enter\n" * 2
LARGE_SIZE = 1024 * 1024
STREAM_SIZE = 1024**3
STREAM_SIZE_QUICK = 64 * 1024**2
RSS_SAMPLE_S = 0.05
CLIENTS = ["http.client", "treq", "treq-pooled", "fetch", "client", "aiohttp", "httpx"]
ASYNCIO_CLIENTS = {"aiohttp", "httpx"}
CLIENT_LABELS = {
    "http.client": "http.client (new connection per request)",
    "treq": "treq.get, pool=HTTPConnectionPool(persistent=False)",
    "treq-pooled": "treq.get, persistent HTTPConnectionPool",
    "fetch": "twistsock.fetch (new connection per request)",
    "client": "twistsock.Client (persistent connections), client.get",
    "aiohttp": "aiohttp.ClientSession, TCPConnector(limit=50), keep-alive, asyncio",
    "httpx": "httpx.AsyncClient, HTTP/1.1, Limits(max_connections=50), asyncio",
}
# The ratios shown beside each table: (mine, theirs).
RATIOS = [
    ("fetch", "treq"),
    ("fetch", "treq-pooled"),
    ("fetch", "http.client"),
    ("client", "treq-pooled"),
    ("client", "aiohttp"),
    ("client", "httpx"),
    ("client", "http.client"),
]

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
    }}
}}
"""


class BadResponse(Exception):
    """
    A response other than C{200} with the whole expected body.
    """


def check(status: int, body: bytes, expected: bytes) -> None:
    """
    Raise L{BadResponse} unless the status is 200 and the body is exactly C{expected}.
    """
    if status != 200 or body != expected:
        raise BadResponse(f"status {status}, {len(body)} bytes (expected {len(expected)})")


def run_blocking(url: str, expected: bytes, concurrency: int, window: tuple[float, float]) -> int:
    """
    GET C{url} with C{http.client}, a new connection per request, from C{concurrency}
    threads.

    @param window: the C{time.monotonic()} instants that start and end the measurement.
    @return: the requests completed in the measured window.
    """
    host, _, rest = url.removeprefix("http://").partition("/")
    hostname, _, port = host.partition(":")
    path = "/" + rest
    counts = [0] * concurrency

    def loop(i: int) -> None:
        while True:
            conn = http.client.HTTPConnection(hostname, int(port), timeout=10)
            conn.request("GET", path)
            response = conn.getresponse()
            check(response.status, response.read(), expected)
            conn.close()
            now = time.monotonic()
            if now >= window[1]:
                return
            if now >= window[0]:
                counts[i] += 1

    if concurrency == 1:
        loop(0)
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            for f in [pool.submit(loop, i) for i in range(concurrency)]:
                f.result()
    return sum(counts)


def run_twisted(
    client: str, url: str, expected: bytes, concurrency: int, window: tuple[float, float]
) -> int:
    """
    GET C{url} with treq or twistsock's C{fetch} on the reactor, C{concurrency} at a time.

    @param window: the C{time.monotonic()} instants that start and end the measurement.
    @return: the requests completed in the measured window.
    """
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    if client == "fetch":
        from twistsock import fetch

        def get() -> Deferred[tuple[int, bytes]]:
            return fetch(url, reactor=reactor).addCallback(lambda r: (r.code, r.body))

    elif client == "client":
        from twistsock import Client

        pooled = Client(reactor=reactor, max_connections_per_origin=concurrency)

        def get() -> Deferred[tuple[int, bytes]]:
            return pooled.get(url).addCallback(lambda r: (r.code, r.body))

    else:
        import treq
        from twisted.web.client import HTTPConnectionPool

        pool = HTTPConnectionPool(reactor, persistent=client == "treq-pooled")
        pool.maxPersistentPerHost = concurrency

        def get() -> Deferred[tuple[int, bytes]]:
            def body(response: Any) -> Deferred[tuple[int, bytes]]:
                return treq.content(response).addCallback(lambda b: (response.code, b))

            return treq.get(url, pool=pool, reactor=reactor).addCallback(body)

    state: dict[str, Any] = {"count": 0, "running": concurrency, "error": None}

    def done(result: tuple[int, bytes]) -> None:
        check(*result, expected)
        now = time.monotonic()
        if window[0] <= now < window[1]:
            state["count"] += 1
        if now < window[1] and state["error"] is None:
            get().addCallbacks(done, failed)
            return
        state["running"] -= 1
        if not state["running"]:
            reactor.stop()  # type: ignore[attr-defined]

    def failed(failure: Any) -> None:
        state["error"] = failure
        state["running"] -= 1
        if not state["running"]:
            reactor.stop()  # type: ignore[attr-defined]

    for _ in range(concurrency):
        reactor.callWhenRunning(lambda: get().addCallback(done).addErrback(failed))  # type: ignore[attr-defined]
    reactor.callLater(window[1] - time.monotonic() + 60, reactor.stop)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    if state["error"] is not None:
        state["error"].raiseException()
    if state["running"]:
        raise TimeoutError("requests still running a minute after the window")
    return state["count"]


def run_asyncio(
    client: str, url: str, expected: bytes, concurrency: int, window: tuple[float, float]
) -> int:
    """
    GET C{url} with aiohttp or httpx on a new asyncio loop, C{concurrency} at a time, over
    persistent connections (at most 50).

    @param window: the C{time.monotonic()} instants that start and end the measurement.
    @return: the requests completed in the measured window.
    """
    import asyncio

    async def main() -> int:
        count = 0

        async def loop(get: Any) -> None:
            nonlocal count
            while True:
                check(*await get(), expected)
                now = time.monotonic()
                if now >= window[1]:
                    return
                if now >= window[0]:
                    count += 1

        async def run_all(get: Any) -> None:
            await asyncio.wait_for(
                asyncio.gather(*(loop(get) for _ in range(concurrency))),
                window[1] - time.monotonic() + 60,
            )

        if client == "aiohttp":
            import aiohttp

            connector = aiohttp.TCPConnector(limit=50, limit_per_host=50, force_close=False)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def get_aiohttp() -> tuple[int, bytes]:
                    async with session.get(url) as response:
                        return response.status, await response.read()

                await run_all(get_aiohttp)
        else:
            import httpx

            limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
            async with httpx.AsyncClient(
                http1=True, http2=False, limits=limits, trust_env=False
            ) as session:

                async def get_httpx() -> tuple[int, bytes]:
                    response = await session.get(url)
                    return response.status_code, response.content

                await run_all(get_httpx)
        return count

    return asyncio.run(main())


def status_kib(field: str) -> int:
    """
    A figure of this process's C{/proc/self/status} in KiB (C{VmRSS}, C{VmHWM}).
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def client_process(
    client: str,
    url: str,
    expected: bytes,
    concurrency: int,
    warmup: float,
    duration: float,
    cpu: int | None,
    results: Any,
) -> None:
    """
    Process target: run one client in a fresh process (and reactor), put the figures on
    C{results}.
    """
    _load.pin_to_cpu(cpu)
    _load.raise_nofile_limit(4096)
    try:
        # Import before the clock starts.
        if client == "aiohttp":
            import aiohttp  # noqa: F401
        elif client == "httpx":
            import httpx  # noqa: F401
        elif client != "http.client":
            import treq  # noqa: F401
            from twisted.internet import reactor  # noqa: F401

            import twistsock  # noqa: F401
        rss_start = status_kib("VmRSS")
        start = time.monotonic()
        window = (start + warmup, start + warmup + duration)
        # The process's CPU time (all threads) at both ends of the window.
        times: list[os.times_result] = []
        timers = [threading.Timer(t - start, lambda: times.append(os.times())) for t in window]
        for timer in timers:
            timer.start()
        if client == "http.client":
            count = run_blocking(url, expected, concurrency, window)
        elif client in ASYNCIO_CLIENTS:
            count = run_asyncio(client, url, expected, concurrency, window)
        else:
            count = run_twisted(client, url, expected, concurrency, window)
        for timer in timers:
            timer.join()
        cpu_s = sum(times[1][:2]) - sum(times[0][:2])
        results.put(
            {
                "requests": count,
                "seconds": duration,
                "client_cpu_us_per_request": round(cpu_s * 1e6 / count, 1) if count else None,
                "rss_start_kib": rss_start,
                "rss_peak_kib": status_kib("VmHWM"),
            }
        )
    except BaseException as e:  # reported to the runner
        results.put({"error": f"{type(e).__name__}: {e}"})


def stream_process(url: str, size: int, cpu: int | None, results: Any) -> None:
    """
    Process target: stream C{url} with C{twistsock.fetch(url, stream_to=...)} into
    C{/dev/null}, counting the bytes; put C{"started"}, then the figures, on C{results}.
    """
    _load.pin_to_cpu(cpu)
    try:
        from twisted.internet import reactor

        from twistsock import fetch

        received = 0
        outcome: list[Any] = []
        with open(os.devnull, "wb") as devnull:

            def write(piece: bytes) -> None:
                nonlocal received
                received += len(piece)
                devnull.write(piece)

            def finished(result: Any) -> None:
                outcome.append(result)
                reactor.stop()  # type: ignore[attr-defined]

            rss_start = status_kib("VmRSS")
            start = time.monotonic()
            results.put({"started": start})

            def go() -> None:
                fetch(url, reactor=reactor, timeout=600, stream_to=write).addBoth(finished)

            reactor.callWhenRunning(go)  # type: ignore[attr-defined]
            reactor.run()  # type: ignore[attr-defined]
            seconds = time.monotonic() - start
        result = outcome[0] if outcome else None
        if result is None or hasattr(result, "raiseException"):
            raise RuntimeError(f"the streamed GET failed: {result}")
        if result.code != 200 or received != size or result.body:
            raise BadResponse(f"status {result.code}, {received} bytes streamed (expected {size})")
        results.put(
            {
                "bytes": received,
                "seconds": round(seconds, 3),
                "mib_per_s": round(received / 2**20 / seconds),
                "rss_start_kib": rss_start,
                "rss_peak_kib": status_kib("VmHWM"),
            }
        )
    except BaseException as e:  # reported to the runner
        results.put({"error": f"{type(e).__name__}: {e}"})


def measure_stream(ctx: Any, url: str, size: int, cpu: int | None) -> dict[str, Any]:
    """
    Stream C{url} (C{size} bytes) in a fresh process, sampling its RSS every
    L{RSS_SAMPLE_S} from this one; return the figures with the samples.
    """
    import queue

    results = ctx.Queue()
    proc = ctx.Process(target=stream_process, args=(url, size, cpu, results))
    proc.start()
    samples: list[tuple[float, int]] = []
    try:
        first: dict[str, Any] = results.get(timeout=60)
        if "error" in first:
            return first
        deadline = time.monotonic() + 600
        while True:
            try:
                samples.append(
                    (round(time.monotonic() - first["started"], 3), _load.rss_kib(proc.pid))
                )
            except (OSError, RuntimeError):
                pass  # the process is exiting
            try:
                out: dict[str, Any] = results.get(timeout=RSS_SAMPLE_S)
                break
            except queue.Empty:
                if time.monotonic() > deadline or not proc.is_alive():
                    return {"error": "the streaming process ended without figures"}
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if "error" not in out:
        out["rss_samples"] = samples
        out.update(rss_summary(samples))
    return out


def rss_summary(samples: list[tuple[float, int]]) -> dict[str, Any]:
    """
    What the RSS samples C{(seconds, KiB)} of a download say: the lowest and highest, the
    first and last, and the spread over the second half (flat when the download's memory
    does not grow with its size).
    """
    if not samples:
        return {}
    rss = [kib for _, kib in samples]
    second_half = rss[len(rss) // 2 :]
    return {
        "rss_sample_count": len(rss),
        "rss_first_kib": rss[0],
        "rss_last_kib": rss[-1],
        "rss_min_kib": min(rss),
        "rss_max_kib": max(rss),
        "rss_second_half_spread_kib": max(second_half) - min(second_half),
    }


def client_available(client: str) -> str | None:
    """
    Why C{client} cannot be benchmarked (a missing package), or C{None}.
    """
    module = {"fetch": "twistsock", "client": "twistsock", "treq": "treq"}.get(
        client.removesuffix("-pooled"), client
    )
    if module == "http.client":
        return None
    try:
        __import__(module)
        if module == "twistsock":
            from twistsock import Client, fetch  # noqa: F401
    except ImportError as e:
        return f"import {module} failed: {e} (pip install -e '.[bench]')"
    return None


def measure(
    ctx: Any,
    client: str,
    url: str,
    expected: bytes,
    concurrency: int,
    warmup: float,
    duration: float,
    cpus: tuple[int | None, int | None],
    server_pid: int,
) -> dict[str, Any]:
    """
    Run one client against one file at one concurrency; return its figures.
    """
    results = ctx.Queue()
    proc = ctx.Process(
        target=client_process,
        args=(client, url, expected, concurrency, warmup, duration, cpus[1], results),
    )
    ticks = sum(_load.cpu_ticks(server_pid))
    proc.start()
    try:
        out: dict[str, Any] = results.get(timeout=warmup + duration + 90)
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if "error" in out:
        return out
    server_cpu = (sum(_load.cpu_ticks(server_pid)) - ticks) / os.sysconf("SC_CLK_TCK")
    out["requests_per_s"] = round(out["requests"] / out["seconds"])
    out["server_cpu_share"] = round(server_cpu / (warmup + duration), 3)
    return out


def median_figures(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """
    One client's figures over interleaved rounds: the median of each (the highest peak
    RSS), with every round's requests per second kept; a failed round fails the whole.
    """
    for figures in rounds:
        if "error" in figures:
            return figures
    if len(rounds) == 1:
        return rounds[0]
    combined: dict[str, Any] = {}
    for key in rounds[0]:
        values = [figures[key] for figures in rounds]
        if key == "rss_peak_kib":
            combined[key] = max(values)
        elif all(isinstance(v, (int, float)) for v in values):
            combined[key] = statistics.median(values)
        else:
            combined[key] = values[0]
    combined["requests_per_s"] = round(combined["requests_per_s"])
    combined["rounds_requests_per_s"] = [figures["requests_per_s"] for figures in rounds]
    return combined


def _figure(report: dict[str, Any], file: str, mode: str, client: str, key: str) -> Any:
    """
    Figure C{key} of C{client} in the case whose file starts with C{file} and whose mode is
    C{mode}, or C{None}.
    """
    for case in report["cases"]:
        if case["file"].startswith(file) and case["mode"] == mode:
            return case["clients"].get(client, {}).get(key)
    return None


def _ratio(mine: Any, theirs: Any) -> float | None:
    return mine / theirs if mine and theirs else None


def _table(report: dict[str, Any], key: str, note: str) -> list[str]:
    """
    One Markdown table of figure C{key} for every case and client, with the L{RATIOS}.
    """
    clients = [c for c in CLIENTS if any(c in case["clients"] for case in report["cases"])]
    ratios = [(a, b) for a, b in RATIOS if a in clients and b in clients]
    lines = [
        note,
        "",
        "| file | mode | "
        + " | ".join(clients)
        + "".join(f" | {a} × {b}" for a, b in ratios)
        + " |",
        "|---|---|" + "---:|" * (len(clients) + len(ratios)),
    ]
    for case in report["cases"]:
        figures = case["clients"]

        def value(name: str, figures: dict[str, Any] = figures) -> Any:
            return figures.get(name, {}).get(key)

        cells = [
            f"{value(c):,}"
            if value(c) is not None
            else figures.get(c, {}).get("error", "n/a")[:50]
            for c in clients
        ]
        for a, b in ratios:
            r = _ratio(value(a), value(b))
            cells.append("n/a" if r is None else f"{r:.2f}×")
        lines.append(f"| {case['file']} | {case['mode']} | " + " | ".join(cells) + " |")
    return lines


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    """
    Issue 9's performance goals, each with its figure, its bound and whether this run met it
    (C{None} when a figure is missing).
    """
    out: list[dict[str, Any]] = []

    def goal(
        name: str,
        file: str,
        mode: str,
        key: str,
        mine: str,
        theirs: str,
        bound: float,
        higher: bool,
    ) -> None:
        r = _ratio(
            _figure(report, file, mode, mine, key), _figure(report, file, mode, theirs, key)
        )
        met = None if r is None else (r >= bound if higher else r <= bound)
        out.append(
            {
                "goal": name,
                "ratio": None if r is None else round(r, 2),
                "bound": f"{'≥' if higher else '≤'} {bound:g}×",
                "met": met,
            }
        )

    rps, cpu = "requests_per_s", "client_cpu_us_per_request"
    for mode in ("sequential", "50 concurrent"):
        goal(
            f"104 B {mode}: Client req/s × treq pooled",
            "small",
            mode,
            rps,
            "client",
            "treq-pooled",
            2,
            True,
        )
        goal(
            f"104 B {mode}: Client req/s × aiohttp",
            "small",
            mode,
            rps,
            "client",
            "aiohttp",
            1,
            True,
        )
    for mode in ("sequential", "50 concurrent"):
        goal(
            f"1 MiB {mode}: Client CPU/request × http.client",
            "large",
            mode,
            cpu,
            "client",
            "http.client",
            1.3,
            False,
        )
        goal(
            f"1 MiB {mode}: Client req/s × treq pooled",
            "large",
            mode,
            rps,
            "client",
            "treq-pooled",
            1,
            True,
        )
    for file, label in (("small", "104 B"), ("large", "1 MiB")):
        for mode in ("sequential", "50 concurrent"):
            goal(
                f"{label} {mode}: fetch req/s × treq pooled",
                file,
                mode,
                rps,
                "fetch",
                "treq-pooled",
                1,
                True,
            )
    return out


def _mib(kib: Any) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


def markdown(report: dict[str, Any]) -> str:
    """
    The results as Markdown: requests per second, client CPU per request, memory, goals.
    """
    lines = [
        "HTTP GET benchmark against nginx on 127.0.0.1, "
        f"{_servers.stamp_line(report['machine'])}; {report['server']}.",
        "",
    ]
    rounds = report.get("window", {}).get("rounds", 1)
    if rounds > 1:
        lines += [
            f"Each figure is the median of {rounds} rounds, the clients taking turns (forwards, "
            "then backwards), so that a change in the machine's load falls on every client "
            "alike; compare the ratios, not the absolute figures.",
            "",
        ]
    if "load_average_before" in report:
        before = ", ".join(f"{x:g}" for x in report["load_average_before"])
        after = ", ".join(f"{x:g}" for x in report.get("load_average_after", []))
        lines += [
            f"Load average (1, 5, 15 min) before the run: {before}; after: {after}.",
            "",
        ]
    lines += _table(
        report,
        "requests_per_s",
        "Requests per second (higher is better); a × b = a's figure / b's:",
    )
    lines += [""]
    lines += _table(
        report,
        "client_cpu_us_per_request",
        "Client CPU µs per request over the same window (lower is better; the figure that a "
        "busy machine disturbs least):",
    )
    many = next(
        (c for c in report["cases"] if c["file"].startswith("large") and c["concurrency"] > 1),
        None,
    )
    if many is not None:
        lines += [
            "",
            "Memory of each client's process over the 1 MiB, 50 in flight run (RSS after its "
            "imports, its peak `VmHWM`, MiB):",
            "",
            "| client | RSS at start | peak RSS | peak − start |",
            "|---|---:|---:|---:|",
        ]
        for client, figures in many["clients"].items():
            start, peak = figures.get("rss_start_kib"), figures.get("rss_peak_kib")
            growth = None if start is None or peak is None else peak - start
            lines.append(f"| {client} | {_mib(start)} | {_mib(peak)} | {_mib(growth)} |")
    stream = report.get("stream")
    if stream is not None:
        lines += [
            "",
            f"Streamed download of {stream['size']:,} bytes (a sparse file) with "
            "`twistsock.fetch(url, stream_to=write)` into `/dev/null`, the process's RSS "
            f"sampled every {RSS_SAMPLE_S * 1000:g} ms:",
            "",
        ]
        if "error" in stream:
            lines.append(f"Failed: {stream['error']}")
        else:
            lines += [
                f"- {stream['seconds']} s, {stream['mib_per_s']:,} MiB/s; "
                f"{stream['rss_sample_count']} samples",
                f"- RSS before the request {_mib(stream['rss_start_kib'])} MiB; first sample "
                f"{_mib(stream['rss_first_kib'])}, last {_mib(stream['rss_last_kib'])}, "
                f"lowest {_mib(stream['rss_min_kib'])}, highest {_mib(stream['rss_max_kib'])}, "
                f"peak (`VmHWM`) {_mib(stream['rss_peak_kib'])} MiB",
                f"- spread over the second half of the download: "
                f"{stream['rss_second_half_spread_kib']:,} KiB",
            ]
            samples = stream["rss_samples"]
            step = max(1, len(samples) // 10)
            lines += [
                "- samples (s: MiB): "
                + ", ".join(f"{t:.2f}: {_mib(kib)}" for t, kib in samples[::step])
            ]
    lines += [
        "",
        "Goals (issue 9), this run:",
        "",
        "| goal | ratio | bound | met |",
        "|---|---:|---:|---|",
    ]
    for g in report.get("goals", []):
        met = {True: "met", False: "missed", None: "n/a"}[g["met"]]
        ratio = "n/a" if g["ratio"] is None else f"{g['ratio']:.2f}×"
        lines.append(f"| {g['goal']} | {ratio} | {g['bound']} | {met} |")
    lines += ["", "Clients:", ""] + [f"- `{c}`: {CLIENT_LABELS[c]}" for c in CLIENTS]
    if report["skipped"]:
        lines += ["", "Skipped: " + "; ".join(f"{k}: {v}" for k, v in report["skipped"].items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """
    Run the benchmark; return the exit status (1 when a client failed).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="subset of %(default)s")
    parser.add_argument("--output", type=Path, help="directory for http.json/.md")
    parser.add_argument("--no-stream", action="store_true", help="skip the streamed download")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="rounds per case, the clients interleaved (in turn forwards and backwards); "
        "each figure is the median of the rounds (default %(default)s)",
    )
    args = parser.parse_args(argv)
    warmup, duration = (0.2, 0.6) if args.quick else (0.5, 2.5)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    output = args.output or (RESULTS / "tmp" if args.quick else RESULTS)
    output.mkdir(parents=True, exist_ok=True)
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if nginx is None:
        print("nginx is needed: apt-get install -y nginx", file=sys.stderr)
        return 2
    skipped: dict[str, str] = {}
    for client in list(clients):
        if why := client_available(client):
            skipped[client] = why
            clients.remove(client)
    stream_size = STREAM_SIZE_QUICK if args.quick else STREAM_SIZE
    cpus = _servers.cpu_layout()
    ctx = multiprocessing.get_context("fork")
    large = os.urandom(LARGE_SIZE)
    report: dict[str, Any] = {
        "machine": _servers.machine_stamp(),
        "server": "nginx, one process, "
        + ("pinned to its own CPU" if cpus[0] is not None else "not pinned"),
        "window": {"warmup_s": warmup, "duration_s": duration, "rounds": args.rounds},
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "cases": [],
        "skipped": skipped,
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="twistsock-http-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "www").mkdir()
        (tmp / "www" / "small.txt").write_bytes(SMALL)
        (tmp / "www" / "large.bin").write_bytes(large)
        # Sparse: nginx sends zeros the kernel makes, nothing is written to disk.
        subprocess.run(
            ["truncate", "-s", str(stream_size), str(tmp / "www" / "huge.bin")], check=True
        )
        port = _servers.free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
        with (
            open(tmp / "nginx.out", "wb") as log,
            _servers.running_server(
                [nginx, "-c", str(conf), "-p", str(tmp)], cpus[0], log
            ) as proc,
        ):
            _servers.wait_listening(port, proc, 10)
            for file, expected in (("small.txt", SMALL), ("large.bin", large)):
                url = f"http://127.0.0.1:{port}/{file}"
                for mode, concurrency in (("sequential", 1), ("50 concurrent", 50)):
                    case: dict[str, Any] = {
                        "file": f"{file} ({len(expected):,} bytes)",
                        "mode": mode,
                        "concurrency": concurrency,
                        "clients": {},
                    }
                    rounds: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
                    for turn in range(args.rounds):
                        for client in clients if turn % 2 == 0 else clients[::-1]:
                            figures = measure(
                                ctx,
                                client,
                                url,
                                expected,
                                concurrency,
                                warmup,
                                duration,
                                cpus,
                                proc.pid,
                            )
                            rounds[client].append(figures)
                            failed |= "error" in figures
                            print(
                                f"{file} {mode} {client}: "
                                f"{figures.get('requests_per_s', figures.get('error'))}",
                                flush=True,
                            )
                    for client in clients:
                        case["clients"][client] = median_figures(rounds[client])
                    report["cases"].append(case)
            if not args.no_stream and "fetch" in clients:
                stream = measure_stream(
                    ctx, f"http://127.0.0.1:{port}/huge.bin", stream_size, cpus[1]
                )
                stream["size"] = stream_size
                report["stream"] = stream
                failed |= "error" in stream
                print(
                    f"stream {stream_size}: {stream.get('error') or stream['rss_max_kib']} KiB",
                    flush=True,
                )
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["goals"] = goals(report)
    table = markdown(report)
    print()
    print(table)
    (output / "http.json").write_text(json.dumps(report, indent=2) + "\n")
    (output / "http.md").write_text(table)
    print(f"wrote {output / 'http.json'} and http.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
