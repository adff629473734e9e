"""
Tests for L{twistsock.echo._metrics}: the server's Prometheus metrics, in memory, over HTTP,
and from C{twistd -n twistsock --metrics} as a subprocess.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from typing import Any

import treq
from prometheus_client import CollectorRegistry
from twisted.internet import reactor as _reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests._sockets import WELCOME, recv_exactly
from tests._twistd import Twistd
from tests.test_echo_protocol import connect, lose
from twistsock import OKEchoFactory
from twistsock.echo._metrics import EchoMetrics, metrics_site

reactor: Any = _reactor


def conversation(factory: OKEchoFactory) -> None:
    """
    Two clients admitted, one refused, one line too long, three lines answered.
    """
    one, _ = connect(factory)
    two, _ = connect(factory)
    connect(factory)  # refused: max_connections=2
    one.dataReceived(b"a\nbb\nccc\n")
    two.dataReceived(b"x" * 9)
    lose(two)


def listening_ports(server: Twistd) -> tuple[int, int]:
    """
    The echo and metrics ports of C{server}, from its two "listening on" log lines.
    """
    deadline = time.monotonic() + 30
    while True:
        lines = [line for line in server.lines if "twistsock listening on" in line]
        if len(lines) >= 2:
            echo, metrics = (int(line.rsplit(":", 1)[1].rstrip(")")) for line in lines[:2])
            return echo, metrics
        if time.monotonic() > deadline or server.process.poll() is not None:
            raise AssertionError("the ports never listened:\n" + "\n".join(server.lines))
        time.sleep(0.05)


def sample(text: bytes, name: str) -> float:
    """
    The value of the sample C{name} (with its labels, if any) in C{text}.
    """
    match = re.search(rb"^" + re.escape(name.encode()) + rb" (\S+)$", text, re.M)
    if match is None:
        raise AssertionError(f"no sample {name} in:\n{text.decode()}")
    return float(match.group(1))


class EchoMetricsTests(SynchronousTestCase):
    """
    The factory's totals, as Prometheus metrics.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = OKEchoFactory(max_connections=2, max_line_length=8, reactor=self.clock)
        self.metrics = EchoMetrics(self.factory, self.clock, CollectorRegistry())

    def test_scrape(self) -> None:
        """
        A scrape shows every count after a known conversation, and a second scrape adds
        nothing twice.
        """
        conversation(self.factory)
        for _ in range(2):
            text = self.metrics.scrape()
            self.assertEqual(sample(text, "twistsock_connections_accepted_total"), 2)
            self.assertEqual(sample(text, "twistsock_connections_current"), 1)
            self.assertEqual(
                sample(text, 'twistsock_connections_refused_total{reason="max_connections"}'), 1
            )
            self.assertEqual(
                sample(text, 'twistsock_connections_refused_total{reason="max_per_ip"}'), 0
            )
            self.assertEqual(sample(text, 'twistsock_limits_hit_total{kind="line_too_long"}'), 1)
            self.assertEqual(sample(text, 'twistsock_limits_hit_total{kind="idle_timeout"}'), 0)
            self.assertEqual(sample(text, "twistsock_lines_total"), 3)
            self.assertEqual(sample(text, "twistsock_received_bytes_total"), 9 + 9)

    def test_updates_once_a_second(self) -> None:
        """
        Started, the metrics follow the server once a second, without a scrape; stopped,
        they take one last update.
        """
        registry = self.metrics.registry
        self.metrics.start()
        one, _ = connect(self.factory)
        one.dataReceived(b"a\n")
        self.assertEqual(registry.get_sample_value("twistsock_lines_total"), 0)
        self.clock.advance(1)
        self.assertEqual(registry.get_sample_value("twistsock_lines_total"), 1)
        one.dataReceived(b"b\n")
        self.metrics.stop()
        self.assertEqual(registry.get_sample_value("twistsock_lines_total"), 2)
        self.assertFalse(self.metrics._updates.running)


class MetricsSiteTests(TestCase):
    """
    The metrics served over HTTP.
    """

    @inlineCallbacks
    def test_http(self) -> Any:
        """
        C{GET /metrics} answers in Prometheus' text format.
        """
        factory = OKEchoFactory(max_connections=2, max_line_length=8, reactor=Clock())
        conversation(factory)
        metrics = EchoMetrics(factory, Clock(), CollectorRegistry())
        port = reactor.listenTCP(0, metrics_site(metrics), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = f"http://127.0.0.1:{port.getHost().port}/metrics"
        response = yield treq.get(url, persistent=False)
        body = yield response.content()
        self.assertEqual(response.code, 200)
        self.assertTrue(response.headers.getRawHeaders("content-type")[0].startswith("text/plain"))
        self.assertEqual(sample(body, "twistsock_lines_total"), 3)


class MetricsProcessTests(SynchronousTestCase):
    """
    C{twistd -n twistsock --metrics} serves the metrics of the running server.
    """

    def test_scrape_after_conversation(self) -> None:
        """
        After a client's conversation, a scrape shows its connection, lines and bytes.
        """
        server = Twistd(
            "--port", "tcp:0:interface=127.0.0.1", "--metrics", "tcp:0:interface=127.0.0.1"
        )
        self.addCleanup(server.stop)
        echo, metrics = listening_ports(server)
        with socket.create_connection(("127.0.0.1", echo), timeout=10) as sock:
            self.assertEqual(recv_exactly(sock, len(WELCOME)), WELCOME)
            sock.sendall(b"one\ntwo\n")
            self.assertEqual(recv_exactly(sock, 18), b"OK...one\nOK...two\n")
        server.wait_for_line("Disconnected")
        with socket.create_connection(("127.0.0.1", metrics), timeout=10) as sock:
            sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        self.assertTrue(reply.startswith(b"HTTP/1.0 200"), reply[:100])
        self.assertEqual(sample(reply, "twistsock_connections_accepted_total"), 1)
        self.assertEqual(sample(reply, "twistsock_connections_current"), 0)
        self.assertEqual(sample(reply, "twistsock_lines_total"), 2)
        self.assertEqual(sample(reply, "twistsock_received_bytes_total"), 8)


def scrape(port: int) -> bytes:
    """
    The body of C{GET /metrics} from 127.0.0.1:C{port}.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


class WorkersMetricsProcessTests(SynchronousTestCase):
    """
    With C{--workers}, the main process serves every worker's counts, added up.
    """

    def test_workers_add_up(self) -> None:
        """
        Connections served by either worker all count; a worker killed and restarted
        counts as a restart, and its counts are kept.
        """
        server = Twistd(
            "--port", "tcp:0:interface=127.0.0.1", "--metrics", "tcp:0:interface=127.0.0.1",
            "--workers", "2",
        )  # fmt: skip
        self.addCleanup(server.stop)
        echo, metrics = listening_ports(server)
        server.wait_for_line("worker serving")
        for _ in range(6):
            with socket.create_connection(("127.0.0.1", echo), timeout=10) as sock:
                self.assertEqual(recv_exactly(sock, len(WELCOME)), WELCOME)
                sock.sendall(b"one\ntwo\n")
                self.assertEqual(recv_exactly(sock, 18), b"OK...one\nOK...two\n")

        def settled(name: str, value: float) -> bytes:
            # Each worker adds its counts once a second: wait, within bounds, for them.
            limit = time.monotonic() + 15
            while True:
                reply = scrape(metrics)
                try:
                    if sample(reply, name) == value:
                        return reply
                except AssertionError:
                    pass
                if time.monotonic() > limit:
                    raise AssertionError(f"{name} never reached {value}:\n{reply.decode()}")
                time.sleep(0.2)

        reply = settled("twistsock_lines_total", 12)
        self.assertEqual(sample(reply, "twistsock_connections_accepted_total"), 6)
        self.assertEqual(sample(reply, "twistsock_worker_restarts_total"), 0)
        settled("twistsock_connections_current", 0)
        pid = int(server.wait_for_line(r"started worker (\d+)").group(1))
        os.kill(pid, signal.SIGKILL)
        settled("twistsock_worker_restarts_total", 1)
        reply = settled("twistsock_lines_total", 12)  # the dead worker's counts are kept
        self.assertEqual(sample(reply, "twistsock_connections_accepted_total"), 6)
