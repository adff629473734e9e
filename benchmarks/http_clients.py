"""
The HTTP client benchmark: C{twistsock.fetch()} against C{treq.get()} and C{http.client}.

    .venv/bin/python benchmarks/http_clients.py            # about a minute
    .venv/bin/python benchmarks/http_clients.py --quick    # a smoke run

The server is nginx (C{apt-get install -y nginx}), run by this script on 127.0.0.1 as one
process pinned to its own CPU, serving a small file and a 1 MiB file.  Each client runs in a
fresh process pinned to the other CPU and GETs one file in a loop, sequentially and with 50
requests in flight, for a fixed window after a warm-up; every response is checked (status 200,
the whole body).  A new connection is made for every request, except by treq with a
persistent pool.  Results go to C{benchmarks/results/http.json} and C{http.md}.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
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
CLIENTS = ["http.client", "treq", "treq-pooled", "fetch", "client"]
CLIENT_LABELS = {
    "http.client": "http.client (new connection per request)",
    "treq": "treq.get, pool=HTTPConnectionPool(persistent=False)",
    "treq-pooled": "treq.get, persistent HTTPConnectionPool",
    "fetch": "twistsock.fetch",
    "client": "twistsock.Client (persistent connections), client.get",
}

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
        if client != "http.client":  # import before the clock starts
            import treq  # noqa: F401
            from twisted.internet import reactor  # noqa: F401

            import twistsock  # noqa: F401
        start = time.monotonic()
        window = (start + warmup, start + warmup + duration)
        # The process's CPU time (all threads) at both ends of the window.
        times: list[os.times_result] = []
        timers = [threading.Timer(t - start, lambda: times.append(os.times())) for t in window]
        for timer in timers:
            timer.start()
        if client == "http.client":
            count = run_blocking(url, expected, concurrency, window)
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
            }
        )
    except BaseException as e:  # reported to the runner
        results.put({"error": f"{type(e).__name__}: {e}"})


def fetch_available() -> str | None:
    """
    Why C{twistsock.fetch} cannot be benchmarked, or C{None}.
    """
    try:
        from twistsock import fetch  # noqa: F401
    except ImportError as e:
        return f"from twistsock import fetch failed: {e}"
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


def _table(report: dict[str, Any], key: str, note: str) -> list[str]:
    """
    One Markdown table of figure C{key} for every case and client, with fetch's ratios.
    """
    lines = [
        note,
        "",
        "| file | mode | " + " | ".join(CLIENTS) + " | fetch × treq | fetch × treq pooled "
        "| fetch × http.client | client × treq pooled |",
        "|---|---|" + "---:|" * (len(CLIENTS) + 4),
    ]
    for case in report["cases"]:
        figures = case["clients"]

        def value(name: str, figures: dict[str, Any] = figures) -> float | None:
            return figures.get(name, {}).get(key)

        def ratio(other: str, value: Any = value, mine_name: str = "fetch") -> str:
            mine, theirs = value(mine_name), value(other)
            return f"{mine / theirs:.2f}×" if mine and theirs else "n/a"

        cells = [
            f"{value(c):,}"
            if value(c) is not None
            else figures.get(c, {}).get("error", "n/a")[:50]
            for c in CLIENTS
        ]
        lines.append(
            f"| {case['file']} | {case['mode']} | "
            + " | ".join(cells)
            + f" | {ratio('treq')} | {ratio('treq-pooled')} | {ratio('http.client')}"
            + f" | {ratio('treq-pooled', mine_name='client')} |"
        )
    return lines


def markdown(report: dict[str, Any]) -> str:
    """
    The results as Markdown: requests per second, then client CPU per request.
    """
    lines = [
        "HTTP GET benchmark against nginx on 127.0.0.1, "
        f"{_servers.stamp_line(report['machine'])}; {report['server']}.",
        "",
    ]
    lines += _table(
        report,
        "requests_per_s",
        "Requests per second (higher is better); × = fetch's figure / the other client's:",
    )
    lines += [""]
    lines += _table(
        report,
        "client_cpu_us_per_request",
        "Client CPU µs per request over the same window (lower is better; the figure that a "
        "busy machine disturbs least):",
    )
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
    if "fetch" in clients and (why := fetch_available()):
        skipped["fetch"] = why
        clients.remove("fetch")
    cpus = _servers.cpu_layout()
    ctx = multiprocessing.get_context("fork")
    large = os.urandom(LARGE_SIZE)
    report: dict[str, Any] = {
        "machine": _servers.machine_stamp(),
        "server": "nginx, one process, "
        + ("pinned to its own CPU" if cpus[0] is not None else "not pinned"),
        "window": {"warmup_s": warmup, "duration_s": duration},
        "cases": [],
        "skipped": skipped,
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="twistsock-http-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "www").mkdir()
        (tmp / "www" / "small.txt").write_bytes(SMALL)
        (tmp / "www" / "large.bin").write_bytes(large)
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
                    for client in clients:
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
                        case["clients"][client] = figures
                        failed |= "error" in figures
                        print(
                            f"{file} {mode} {client}: "
                            f"{figures.get('requests_per_s', figures.get('error'))}",
                            flush=True,
                        )
                    report["cases"].append(case)
    table = markdown(report)
    print()
    print(table)
    (output / "http.json").write_text(json.dumps(report, indent=2) + "\n")
    (output / "http.md").write_text(table)
    print(f"wrote {output / 'http.json'} and http.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
