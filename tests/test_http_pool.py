"""
Tests for L{twistsock.Client}: persistent connections, per-origin and total caps, the
queue, idle connections, the retry on a reused connection, and C{close()}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import error, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests._http_servers import listen_canned, listen_web, temporary_directory
from tests._memory import MemoryReactorClock
from twistsock import (
    Client,
    ConnectionRefused,
    OperationTimeout,
    PartialBody,
    Response,
    fetch,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
A = "http://127.0.0.1:8080/"
B = "http://127.0.0.2:8080/"


def connect(memory: MemoryReactorClock, index: int) -> StringTransport:
    """Complete connection attempt number C{index} onto a new L{StringTransport}."""
    factory = memory.tcpClients[index][2]
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 8080))
    transport = StringTransport()
    protocol.makeConnection(transport)
    transport.protocol = protocol  # type: ignore[attr-defined]
    return transport


def answer(transport: StringTransport, data: bytes = OK) -> None:
    """The server sends C{data} on C{transport}."""
    transport.protocol.dataReceived(data)  # type: ignore[attr-defined]


def lose(transport: StringTransport, reason: type[Exception] = error.ConnectionDone) -> None:
    """The connection of C{transport} ends."""
    transport.protocol.connectionLost(Failure(reason()))  # type: ignore[attr-defined]


def requests(transport: StringTransport) -> list[bytes]:
    """The requests written on C{transport}, in order."""
    return [r for r in transport.value().split(b"GET ")[1:]]


class PoolTests(SynchronousTestCase):
    """
    The client reuses connections within its caps.
    """

    def setUp(self) -> None:
        self.memory = MemoryReactorClock()

    def client(self, **kwargs: Any) -> Client:
        return Client(reactor=self.memory, **kwargs)

    def served_once(self, client: Client) -> Any:
        """GET C{A} on C{client}'s first connection and answer it; return that transport."""
        d = client.get(A)
        transport = connect(self.memory, 0)
        answer(transport)
        self.successResultOf(d)
        return transport

    def test_reuse(self) -> None:
        """
        Requests one after another to one origin share one connection, and the request
        does not ask to close it.
        """
        client = self.client()
        first = client.get(A + "1")
        transport = connect(self.memory, 0)
        self.assertNotIn(b"Connection: close", transport.value())
        answer(transport)
        self.assertEqual(self.successResultOf(first).body, b"ok")
        self.assertEqual((client.in_use, client.idle), (0, 1))
        second = client.get(A + "2")
        self.memory.advance(0)
        answer(transport, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo")
        self.assertEqual(self.successResultOf(second).body, b"two")
        self.assertEqual(len(self.memory.tcpClients), 1)
        self.assertEqual([r.split(b" ")[0] for r in requests(transport)], [b"/1", b"/2"])

    def test_fetch_with_client(self) -> None:
        """
        C{fetch(url, client=client)} uses the client's connections and reactor.
        """
        client = self.client()
        first = fetch(A, client=client)
        transport = connect(self.memory, 0)
        answer(transport)
        self.successResultOf(first)
        second = fetch(A, client=client)
        self.memory.advance(0)
        answer(transport)
        self.successResultOf(second)
        self.assertEqual(len(self.memory.tcpClients), 1)

    def test_not_reused(self) -> None:
        """
        A connection is closed, not reused, after C{Connection: close}, after an HTTP/1.0
        response without C{Connection: keep-alive}, and after a body delimited by the end
        of the stream; an HTTP/1.0 response with C{Connection: keep-alive} is reused.
        """
        cases = [
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
            (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
        ]
        for reply, reused in cases:
            client = self.client()
            d = client.get(A)
            transport = connect(self.memory, len(self.memory.tcpClients) - 1)
            answer(transport, reply)
            self.successResultOf(d)
            self.assertEqual((client.idle, transport.disconnecting), (int(reused), not reused))
        client = self.client()
        d = client.get(A)
        transport = connect(self.memory, len(self.memory.tcpClients) - 1)
        answer(transport, b"HTTP/1.1 200 OK\r\n\r\nbody")
        lose(transport)
        self.assertEqual((self.successResultOf(d).body, client.idle), (b"body", 0))

    def test_caps_and_queue(self) -> None:
        """
        No more connections than the per-origin cap are opened; the other requests wait
        and are served first in, first out, on the connections as they are freed.
        """
        client = self.client(max_connections_per_origin=2)
        results = [client.get(f"{A}{i}") for i in range(5)]
        self.assertEqual((len(self.memory.tcpClients), client.in_use), (2, 2))
        one, two = connect(self.memory, 0), connect(self.memory, 1)
        for transport in [one, two, one, two, one]:
            answer(transport)
            self.memory.advance(0)
        for d in results:
            self.successResultOf(d)
        self.assertEqual(len(self.memory.tcpClients), 2)
        paths = [[r.split(b" ")[0] for r in requests(t)] for t in (one, two)]
        self.assertEqual(paths, [[b"/0", b"/2", b"/4"], [b"/1", b"/3"]])

    def test_total_cap(self) -> None:
        """
        The total cap holds across origins.
        """
        client = self.client(max_connections=3, max_connections_per_origin=3)
        for url in [A, A, B, B, B]:
            client.get(url)
        self.assertEqual((len(self.memory.tcpClients), client.in_use), (3, 3))

    def test_idle_timeout_and_cap(self) -> None:
        """
        An idle connection is closed after C{idle_timeout}; beyond the idle cap, a
        connection is closed as soon as it is free.
        """
        client = self.client(idle_timeout=5, max_idle_per_origin=1)
        first, second = client.get(A), client.get(A)
        one, two = connect(self.memory, 0), connect(self.memory, 1)
        answer(one)
        answer(two)
        self.successResultOf(first)
        self.successResultOf(second)
        self.assertEqual((one.disconnecting, two.disconnecting, client.idle), (False, True, 1))
        self.memory.advance(4.9)
        self.assertFalse(one.disconnecting)
        self.memory.advance(0.1)
        self.assertEqual((one.disconnecting, client.idle), (True, 0))

    def test_idle_time_counts_from_last_use(self) -> None:
        """
        The idle timeout counts from the end of the connection's last exchange, however
        often it was used before, and a connection in use is never closed for idleness.
        """
        client = self.client(idle_timeout=5)
        transport = self.served_once(client)
        self.memory.advance(3)
        d = client.get(A)  # reused at 3 s, answered at 6 s
        self.memory.advance(3)
        self.assertFalse(transport.disconnecting)
        answer(transport)
        self.successResultOf(d)
        self.memory.advance(4.9)
        self.assertEqual((transport.disconnecting, client.idle), (False, 1))
        self.memory.advance(0.1)
        self.assertEqual((transport.disconnecting, client.idle), (True, 0))
        lose(transport)
        self.assertEqual(self.memory.getDelayedCalls(), [])

    def test_idle_connection_closed_by_server(self) -> None:
        """
        An idle connection the server closes is forgotten; the next request connects
        anew.
        """
        client = self.client()
        d = client.get(A)
        transport = connect(self.memory, 0)
        answer(transport)
        self.successResultOf(d)
        lose(transport)
        self.assertEqual(client.idle, 0)
        client.get(A)
        self.memory.advance(0)
        self.assertEqual(len(self.memory.tcpClients), 2)

    def test_retry_once_on_reused_connection(self) -> None:
        """
        A request whose reused connection fails before any byte of its response is
        retried once on a new connection; a failure after bytes arrived is not retried.
        """
        client = self.client()
        d = client.get(A)
        transport = connect(self.memory, 0)
        answer(transport)
        self.successResultOf(d)
        d = client.get(A)
        self.memory.advance(0)
        lose(transport)  # closed under the request, nothing received
        self.memory.advance(0)
        self.assertEqual(len(self.memory.tcpClients), 2)
        retry = connect(self.memory, 1)
        answer(retry)
        self.assertEqual(self.successResultOf(d).body, b"ok")
        d = client.get(A)
        self.memory.advance(0)
        answer(retry, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok")
        lose(retry)
        self.failureResultOf(d, PartialBody)
        self.assertEqual(len(self.memory.tcpClients), 2)

    def test_new_connection_not_retried(self) -> None:
        """
        A failure on a connection's first request is not retried.
        """
        client = self.client()
        d = client.get(A)
        lose(connect(self.memory, 0))
        self.failureResultOf(d)
        self.assertEqual(len(self.memory.tcpClients), 1)

    def test_refused(self) -> None:
        """
        A refused connection fails its request with L{ConnectionRefused} and frees its
        place for the next.
        """
        client = self.client(max_connections=1)
        first, second = client.get(A), client.get(A)
        factory = self.memory.tcpClients[0][2]
        factory.clientConnectionFailed(None, Failure(error.ConnectionRefusedError()))
        self.failureResultOf(first, ConnectionRefused)
        self.memory.advance(0)
        self.assertEqual(len(self.memory.tcpClients), 2)
        answer(connect(self.memory, 1))
        self.successResultOf(second)

    def test_deadline_while_waiting(self) -> None:
        """
        A request's deadline counts its wait in the queue: when it passes, the request
        fails with L{OperationTimeout} and leaves the queue.
        """
        client = self.client(max_connections=1)
        client.get(A, timeout=100)
        waiting = client.get(A, timeout=1)
        self.memory.advance(1)
        self.failureResultOf(waiting, OperationTimeout)
        self.assertEqual(client._waiting, {})

    def test_close(self) -> None:
        """
        C{close()} fails waiting and running requests with C{CancelledError}, closes idle
        connections, and fires once every connection is gone; later requests fail.
        """
        client = self.client(max_connections=2)
        idle = self.served_once(client)
        self.memory.advance(0)
        running, queued_behind = client.get(A), client.get(B)
        self.memory.advance(0)
        waiting = client.get(B)
        closed = client.close()
        for d in (running, waiting):
            self.failureResultOf(d, CancelledError)
        self.failureResultOf(queued_behind, CancelledError)
        self.assertNoResult(closed)
        self.assertTrue(idle.disconnecting or idle.disconnected)
        lose(idle)
        self.successResultOf(closed)
        self.failureResultOf(client.get(A), CancelledError)

    def stopping_fails(self, index: int) -> None:
        """
        Make the connector of attempt C{index} fail its attempt when stopped, as
        Twisted's connectors do (the memory reactor's do nothing).
        """
        connector = self.memory.connectors[index]
        factory = self.memory.tcpClients[index][2]

        def stop() -> None:
            factory.clientConnectionFailed(connector, Failure(error.UserError()))

        connector.stopConnecting = stop  # type: ignore[method-assign]

    def test_cancel_while_connecting(self) -> None:
        """
        A request cancelled while its connection is being made fails with
        C{CancelledError}, not with the error of the stopped attempt.
        """
        client = self.client()
        d = client.get(A)
        self.stopping_fails(-1)
        d.cancel()
        self.failureResultOf(d, CancelledError)

    def test_close_while_connecting(self) -> None:
        """
        C{close()} while a connection is being made fails its request with
        C{CancelledError}, and fires.
        """
        client = self.client()
        d = client.get(A)
        self.stopping_fails(-1)
        closed = client.close()
        self.failureResultOf(d, CancelledError)
        self.successResultOf(closed)


class RealSocketTests(TestCase):
    """
    The client against a twisted.web server on 127.0.0.1: several requests over one
    connection, and nothing left behind after C{close()}.
    """

    @inlineCallbacks
    def test_requests_and_close(self) -> Any:
        """
        Ten requests one after another use one connection; twenty at once use at most the
        per-origin cap; C{close()} leaves the reactor clean.
        """
        port = listen_web(self, reactor, temporary_directory(self))
        client = Client(reactor=reactor, max_connections_per_origin=4)
        url = f"http://127.0.0.1:{port}/static/hello.txt"
        for _ in range(10):
            response: Response = yield client.get(url)
            self.assertEqual(response.body, b"hello, world\n")
        self.assertEqual((client.in_use, client.idle), (0, 1))
        many = [client.get(url) for _ in range(20)]
        self.assertLessEqual(client.in_use, 4)
        for d in many:
            response = yield d
            self.assertEqual(response.code, 200)
        self.assertLessEqual(client.idle, 4)
        yield client.close()
        self.assertEqual(client.idle, 0)

    @inlineCallbacks
    def test_connection_close_honoured(self) -> Any:
        """
        A server that answers C{Connection: close} and closes gets a new connection for
        each request.
        """
        reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
        port, factory = listen_canned(self, reactor, reply, "close")
        client = Client(reactor=reactor)
        for _ in range(3):
            response = yield client.get(f"http://127.0.0.1:{port}/")
            self.assertEqual(response.body, b"ok")
        self.assertEqual(len(factory.requests), 3)
        closed: Deferred[None] = client.close()
        yield closed
