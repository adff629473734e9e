"""
Smoke tests for the benchmark suite in C{benchmarks/}: the load generator's reply checker on
in-memory bytes and the PROXY header it sends, two reference peers on in-memory or socket-pair
connections, the /proc readings that sum a server's processes, and the runner's worker
balance and HAProxy configuration.

No timing is asserted: these only keep the benchmark's pieces honest (a checker that accepted
wrong replies, or a peer that framed lines wrongly, would make every figure meaningless).
"""

from __future__ import annotations

import http.server
import importlib.util
import os
import socket
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_module(name: str) -> ModuleType:
    """
    Import C{benchmarks/<name>.py} by path (C{benchmarks/} is not a package).
    """
    spec = importlib.util.spec_from_file_location(
        f"_twistsock_bench_{name}", BENCHMARKS / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def expected_replies(lines: list[bytes]) -> bytes:
    """
    The OK-echo replies to C{lines}, computed the obvious way.
    """
    return b"".join(b"OK..." + line for line in lines)


class ReplyCheckerTests(SynchronousTestCase):
    """
    The load generator's checker accepts exactly the protocol's bytes.
    """

    def setUp(self) -> None:
        self.load = load_module("_load")
        self.lines, self.period = self.load.make_lines()

    def test_lines(self) -> None:
        """
        The request lines are 32 bytes each, distinct, and some end in CRLF.
        """
        self.assertEqual({len(line) for line in self.lines}, {32})
        self.assertEqual(len(set(self.lines)), len(self.lines))
        self.assertTrue(any(line.endswith(b"\r\n") for line in self.lines))
        self.assertEqual(self.period, expected_replies(self.lines))

    def test_accepts_split_stream(self) -> None:
        """
        The welcome and two periods of replies, split at every few bytes, are accepted and
        counted.
        """
        stream = self.load.WELCOME + expected_replies(self.lines * 2)
        checker = self.load.ReplyChecker()
        total = 0
        for i in range(0, len(stream), 7):
            total += checker.feed(stream[i : i + 7])
        self.assertTrue(checker.welcomed)
        self.assertEqual(total, 2 * len(self.lines))

    def test_accepts_large_chunk(self) -> None:
        """
        A chunk longer than the receive size is checked piece by piece.
        """
        count = (self.load.RECV_SIZE // len(self.period) + 3) * len(self.lines)
        stream = self.load.WELCOME + expected_replies(self.lines * (count // len(self.lines)))
        self.assertEqual(self.load.ReplyChecker().feed(stream), count)

    def test_rejects_wrong_welcome(self) -> None:
        """
        A different welcome line is a mismatch.
        """
        checker = self.load.ReplyChecker()
        self.assertRaises(self.load.ReplyMismatch, checker.feed, b"Hello\n")

    def test_rejects_reordered_replies(self) -> None:
        """
        Replies out of order, or with a wrong terminator, are mismatches.
        """
        swapped = [self.lines[1], self.lines[0]]
        checker = self.load.ReplyChecker()
        checker.feed(self.load.WELCOME)
        self.assertRaises(self.load.ReplyMismatch, checker.feed, expected_replies(swapped))
        crlf = self.lines[3]
        checker = self.load.ReplyChecker()
        stream = (
            self.load.WELCOME + expected_replies(self.lines[:3]) + b"OK..." + crlf[:-2] + b"\n"
        )
        self.assertRaises(self.load.ReplyMismatch, checker.feed, stream)


class PeerTests(SynchronousTestCase):
    """
    The reference peers speak the protocol byte for byte.
    """

    conversation = [b"hi\r\n", b"as", b"d\n\n", b"x\xff\x00y\r", b"\n", b"tail"]
    replies = b"OK...hi\r\nOK...asd\nOK...\nOK...x\xff\x00y\r\n"

    def test_twisted_line_receiver(self) -> None:
        """
        The LineReceiver peer and the chunk-framing peer answer split lines with their own
        terminators.
        """
        peer = load_module("peer_twisted_linereceiver")
        for cls in (peer.OKEchoLine, peer.OKEchoChunk):
            proto = cls()
            transport = StringTransport()
            proto.makeConnection(transport)
            for piece in self.conversation:
                proto.dataReceived(piece)
            self.assertEqual(transport.value(), peer.WELCOME + self.replies, cls.__name__)

    def test_threads(self) -> None:
        """
        The thread-per-client peer answers a conversation over a socket pair.
        """
        peer = load_module("peer_threads")
        server, client = socket.socketpair()
        thread = threading.Thread(target=peer.client_thread, args=(server,), daemon=True)
        thread.start()
        with client:
            client.settimeout(10)
            for piece in self.conversation:
                client.sendall(piece)
            client.shutdown(socket.SHUT_WR)
            received = b""
            while True:
                data = client.recv(4096)
                if not data:
                    break
                received += data
        thread.join(10)
        self.assertEqual(received, peer.WELCOME + self.replies)


class ProxyHeaderTests(SynchronousTestCase):
    """
    The PROXY v1 header the load generator sends first on each connection of the
    C{twistsock-proxy} row.
    """

    def test_header_bytes(self) -> None:
        """
        The header is HAProxy's C{send-proxy} text for the connection's own addresses.
        """
        load = load_module("_load")
        header = load.proxy_v1_header(("127.0.0.2", 40000), ("127.0.0.1", 8888))
        self.assertEqual(header, b"PROXY TCP4 127.0.0.2 127.0.0.1 40000 8888\r\n")

    def test_server_parses_header(self) -> None:
        """
        twistsock's own parser reads the header whole, with the addresses it names, and
        leaves the line behind it to be answered.
        """
        from twistsock.echo._proxy import parse_proxy_header

        load = load_module("_load")
        lines, _period = load.make_lines()
        header = load.proxy_v1_header(("127.0.0.2", 40000), ("127.0.0.1", 8888))
        parsed = parse_proxy_header(header + lines[0])
        assert parsed is not None
        found, length = parsed
        self.assertEqual(length, len(header))
        self.assertEqual((found.version, found.kind), (1, "PROXY"))
        assert found.source is not None and found.destination is not None
        self.assertEqual((found.source.host, found.source.port), ("127.0.0.2", 40000))
        self.assertEqual((found.destination.host, found.destination.port), ("127.0.0.1", 8888))


class ProcessTests(SynchronousTestCase):
    """
    Reading C{/proc}: the process tree whose CPU the C{--workers} row sums, and sockets.
    """

    def setUp(self) -> None:
        if not Path("/proc/self/stat").exists():
            raise self.skipTest("no /proc")
        self.load = load_module("_load")

    def test_parent_pid(self) -> None:
        """
        The parent's pid is read after the command name, even one holding spaces and
        parentheses.
        """
        stat = b"123 (a (b) c) S 45 123 123 0 -1 4194560 0 0 0 0 7 8 0 0"
        self.assertEqual(self.load.parent_pid(stat), 45)

    def test_tree_holds_children(self) -> None:
        """
        A child process is in its parent's tree, after the parent; the tree's CPU ticks
        are counted.
        """
        import subprocess

        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        tree = self.load.process_tree(os.getpid())
        self.assertEqual(tree[0], os.getpid())
        self.assertIn(child.pid, tree[1:])
        user, system = self.load.group_ticks(tree)
        self.assertGreaterEqual(user + system, 0)

    def test_socket_count(self) -> None:
        """
        Two more open sockets are two more in the count.
        """
        before = self.load.socket_count(os.getpid())
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        self.assertEqual(self.load.socket_count(os.getpid()), before + 2)


class RunnerTests(SynchronousTestCase):
    """
    The pieces of C{echo.py} that count worker connections and write HAProxy's
    configuration.
    """

    def setUp(self) -> None:
        self.patch(sys, "path", [str(BENCHMARKS), *sys.path])
        self.echo = load_module("echo")

    def test_worker_connections(self) -> None:
        """
        Each worker's C{Connected with} lines are counted by pid; other lines are not.
        """
        log = (
            b"2026-12-02T05:40:09+0000 [twistsock worker 11#info] Connected with "
            b"127.0.0.1:1\n"
            b"2026-12-02T05:40:09+0000 [twistsock worker 12#info] Connected with "
            b"127.0.0.1:2\n"
            b"2026-12-02T05:40:09+0000 [twistsock worker 11#info] Connected with "
            b"127.0.0.1:3\n"
            b"2026-12-02T05:40:09+0000 [twistsock worker 11#info] Disconnected "
            b"127.0.0.1:3 after 1.0 s\n"
            b"2026-12-02T05:40:09+0000 [twistsock#info] Connected with 127.0.0.1:4\n"
        )
        self.assertEqual(self.echo.worker_connections(log), {"11": 2, "12": 1})

    def test_balance(self) -> None:
        """
        The largest deviation from an even share decides; a worker that served nothing
        counts as 0.
        """
        even = self.echo.balance({"1": 54, "2": 46}, 2)
        self.assertEqual((even["max_deviation"], even["within_15_percent"]), (0.08, True))
        uneven = self.echo.balance({"1": 100}, 2)
        self.assertEqual((uneven["max_deviation"], uneven["within_15_percent"]), (1.0, False))
        self.assertIsNone(self.echo.balance({}, 2)["within_15_percent"])

    def test_haproxy_config(self) -> None:
        """
        The configuration relays with C{send-proxy} on one thread, on 127.0.0.1, and
        HAProxy accepts it when installed.
        """
        import subprocess
        import tempfile

        config = self.echo.haproxy_config(9000, 8888, 10_500)
        self.assertIn("nbthread 1", config)
        self.assertIn("bind 127.0.0.1:9000", config)
        self.assertIn("server echo 127.0.0.1:8888 send-proxy", config)
        haproxy = self.echo.haproxy_command()
        if haproxy is None:
            raise self.skipTest("haproxy is not installed")
        with tempfile.NamedTemporaryFile("w", suffix=".cfg") as f:
            f.write(config)
            f.flush()
            check = subprocess.run(
                [haproxy, "-c", "-q", "-f", f.name], capture_output=True, text=True, timeout=30
            )
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_goals(self) -> None:
        """
        The PROXY goal is at most 5% more per reply than plain TCP.
        """
        servers = {
            "twistsock": {"pipeline": {"cpu_us_per_reply": 1.0}},
            "twistsock-proxy": {"pipeline": {"cpu_us_per_reply": 1.04}},
        }
        goals = self.echo.issue8_goals(servers)
        self.assertIs(goals["proxy_pipeline_cost"]["met"], True)
        servers["twistsock-proxy"]["pipeline"]["cpu_us_per_reply"] = 1.06
        self.assertIs(self.echo.issue8_goals(servers)["proxy_pipeline_cost"]["met"], False)
        self.assertIsNone(goals["pingpong_cpu_per_reply_vs_uvloop"]["met"])


class ParserBenchmarkTests(SynchronousTestCase):
    """
    The parser benchmark feeds every parser the same bytes and checks their answers.
    """

    def test_cases_read_the_same(self) -> None:
        """
        twistsock's reader and h11 agree on every timed case, read as a socket delivers
        it; the behaviours table says what the README says twistsock does.
        """
        parsers = load_module("http_parsers")
        for data in (parsers.small(), parsers.large(), parsers.chunked()):
            pieces = parsers.reads(data)
            self.assertEqual(parsers.with_twistsock(pieces), parsers.with_h11(pieces))
        behaviours = {
            what: parsers.outcome(parsers.with_twistsock, pieces)
            for what, pieces in parsers.BEHAVIOURS.items()
        }
        self.assertTrue(behaviours["LF-only line endings"].startswith("accepted"))
        self.assertTrue(behaviours["obs-fold header"].startswith("accepted"))
        self.assertTrue(behaviours["Transfer-Encoding and Content-Length"].startswith("refused"))
        self.assertEqual(
            behaviours["20 kB head in one read"], behaviours["20 kB head split in two reads"]
        )


class _SmallFileHandler(http.server.BaseHTTPRequestHandler):
    """
    Serves C{body} at every path over HTTP/1.1 persistent connections.
    """

    protocol_version = "HTTP/1.1"
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class HTTPClientsTests(SynchronousTestCase):
    """
    The pieces of C{http_clients.py} that check bodies, run the asyncio peers, summarise the
    RSS samples and judge the goals.
    """

    def setUp(self) -> None:
        self.patch(sys, "path", [str(BENCHMARKS), *sys.path])
        self.http = load_module("http_clients")

    def serve(self, body: bytes) -> str:
        """
        Serve C{body} on 127.0.0.1 from a thread for the length of the test; return its URL.
        """
        handler = type("Handler", (_SmallFileHandler,), {"body": body})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join()

        self.addCleanup(stop)
        return f"http://127.0.0.1:{server.server_address[1]}/small.txt"

    def test_check(self) -> None:
        """
        A body of another length, or another status, is refused.
        """
        self.http.check(200, b"abc", b"abc")
        with self.assertRaises(self.http.BadResponse):
            self.http.check(200, b"ab", b"abc")
        with self.assertRaises(self.http.BadResponse):
            self.http.check(404, b"abc", b"abc")

    def test_median_figures(self) -> None:
        """
        Interleaved rounds give each figure's median, the highest peak RSS and every
        round's requests per second; a failed round fails the whole.
        """
        rounds = [
            {"requests_per_s": 10, "client_cpu_us_per_request": 5.0, "rss_peak_kib": 7},
            {"requests_per_s": 30, "client_cpu_us_per_request": 1.0, "rss_peak_kib": 9},
            {"requests_per_s": 20, "client_cpu_us_per_request": 3.0, "rss_peak_kib": 8},
        ]
        self.assertEqual(
            self.http.median_figures(rounds),
            {
                "requests_per_s": 20,
                "client_cpu_us_per_request": 3.0,
                "rss_peak_kib": 9,
                "rounds_requests_per_s": [10, 30, 20],
            },
        )
        self.assertIs(self.http.median_figures(rounds[:1]), rounds[0])
        failed = {"error": "BadResponse: x"}
        self.assertIs(self.http.median_figures([rounds[0], failed]), failed)

    def test_client_available(self) -> None:
        """
        The standard library's client is always available; a missing package is reported.
        """
        self.assertIsNone(self.http.client_available("http.client"))
        self.assertIsNone(self.http.client_available("treq-pooled"))
        self.assertIn("no_such_client", self.http.client_available("no_such_client"))
        self.assertEqual(set(self.http.CLIENT_LABELS), set(self.http.CLIENTS))

    def _asyncio_peer(self, client: str) -> None:
        """
        C{client} GETs the body with 3 requests in flight; a window already over counts none.
        """
        try:
            __import__(client)
        except ImportError:
            raise self.skipTest(f"{client} is not installed (the bench extra)") from None
        url = self.serve(self.http.SMALL)
        now = time.monotonic()
        self.assertEqual(self.http.run_asyncio(client, url, self.http.SMALL, 3, (now, now)), 0)
        with self.assertRaises(self.http.BadResponse):
            self.http.run_asyncio(client, url, b"other", 1, (now, now))

    def test_aiohttp(self) -> None:
        self._asyncio_peer("aiohttp")

    def test_httpx(self) -> None:
        self._asyncio_peer("httpx")

    def test_rss_summary(self) -> None:
        """
        The summary gives the extremes and the spread over the second half.
        """
        summary = self.http.rss_summary([(0.0, 100), (0.1, 140), (0.2, 130), (0.3, 131)])
        self.assertEqual(summary["rss_min_kib"], 100)
        self.assertEqual(summary["rss_max_kib"], 140)
        self.assertEqual(summary["rss_first_kib"], 100)
        self.assertEqual(summary["rss_last_kib"], 131)
        self.assertEqual(summary["rss_second_half_spread_kib"], 1)
        self.assertEqual(self.http.rss_summary([]), {})

    def report(self) -> dict[str, object]:
        """
        A report whose every figure is 100 except twistsock's.
        """

        def figures(**mine: float) -> dict[str, dict[str, float]]:
            clients = {
                c: {"requests_per_s": 100, "client_cpu_us_per_request": 100.0}
                for c in self.http.CLIENTS
            }
            clients["client"] = {
                "requests_per_s": mine["rps"],
                "client_cpu_us_per_request": mine["cpu"],
                "rss_start_kib": 1024,
                "rss_peak_kib": 4096,
            }
            clients["fetch"] = {"requests_per_s": 99}
            return clients

        cases = []
        for file, rps, cpu in (("small.txt (104 bytes)", 250, 50), ("large.bin (1 MiB)", 90, 140)):
            for mode, concurrency in (("sequential", 1), ("50 concurrent", 50)):
                cases.append(
                    {
                        "file": file,
                        "mode": mode,
                        "concurrency": concurrency,
                        "clients": figures(rps=rps, cpu=cpu),
                    }
                )
        return {
            "machine": {
                "date": "2026-12-02T00:00:00+00:00",
                "cpu": "x",
                "cores": 2,
                "python": "3",
                "twisted": "t",
            },
            "server": "nginx",
            "cases": cases,
            "skipped": {},
            "stream": {
                "size": 1024,
                "seconds": 1.0,
                "mib_per_s": 1,
                "rss_start_kib": 1024,
                "rss_peak_kib": 2048,
                "rss_samples": [(0.0, 1024), (0.5, 2048)],
                **self.http.rss_summary([(0.0, 1024), (0.5, 2048)]),
            },
        }

    def test_goals(self) -> None:
        """
        Each goal is judged against its bound: 2.5× treq pooled is met, 1.4× http.client's CPU
        and fetch at 0.99× treq pooled are missed; a missing figure is neither.
        """
        report = self.report()
        judged = {g["goal"]: g for g in self.http.goals(report)}
        self.assertEqual(len(judged), 12)
        self.assertIs(judged["104 B sequential: Client req/s × treq pooled"]["met"], True)
        self.assertEqual(judged["104 B sequential: Client req/s × treq pooled"]["ratio"], 2.5)
        self.assertIs(judged["104 B 50 concurrent: Client req/s × aiohttp"]["met"], True)
        self.assertIs(judged["1 MiB sequential: Client CPU/request × http.client"]["met"], False)
        self.assertIs(judged["1 MiB sequential: Client req/s × treq pooled"]["met"], False)
        self.assertIs(judged["1 MiB sequential: fetch req/s × treq pooled"]["met"], False)
        del report["cases"][0]["clients"]["aiohttp"]  # type: ignore[index]
        judged = {g["goal"]: g for g in self.http.goals(report)}
        self.assertIsNone(judged["104 B sequential: Client req/s × aiohttp"]["met"])

    def test_markdown(self) -> None:
        """
        The Markdown has a column for each peer, the memory rows, the stream and the goals.
        """
        report = self.report()
        report["goals"] = self.http.goals(report)
        text = self.http.markdown(report)
        self.assertIn("| aiohttp | httpx |", text)
        self.assertIn("client × aiohttp", text)
        self.assertIn("| client | 1.0 | 4.0 | 3.0 |", text)
        self.assertIn("Streamed download of 1,024 bytes", text)
        self.assertIn(
            "| 1 MiB sequential: Client CPU/request × http.client | 1.40× | ≤ 1.3× | missed |",
            text,
        )
        self.assertNotIn("median of", text)
        report["window"] = {"warmup_s": 0.5, "duration_s": 2.5, "rounds": 3}
        report["load_average_before"] = [1.5, 2.0, 2.5]
        report["load_average_after"] = [3.0, 2.0, 1.0]
        text = self.http.markdown(report)
        self.assertIn("Each figure is the median of 3 rounds", text)
        self.assertIn("before the run: 1.5, 2, 2.5; after: 3, 2, 1.", text)
