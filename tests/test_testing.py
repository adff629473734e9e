"""
Tests for L{twistsock.testing}: the in-memory network that users (and twistsock's own
tests) run the HTTP client against, with injected faults.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.static import Data

from twistsock import (
    Client,
    ConnectionRefused,
    ConnectionReset,
    ConnectTimeout,
    CouldNotResolve,
    OperationTimeout,
    TLSHandshakeError,
    fetch,
)
from twistsock.testing import FakeHTTP, Fault, StubRequest, StubResponse


def echo(request: StubRequest) -> StubResponse:
    """Answers with the request's target."""
    return StubResponse(body=request.target.encode(), headers=(("X-Echo", "1"),))


async def page_title(url: str, reactor: Any) -> str:
    """A user's function under test: the title of the page at C{url}."""
    response = await fetch(url, reactor=reactor)
    body = response.body.decode()
    return body[body.index("<title>") + 7 : body.index("</title>")]


class FakeHTTPTests(SynchronousTestCase):
    """
    Code that uses C{fetch} or a L{Client} runs against the fake network in a
    C{SynchronousTestCase}, with its clock.
    """

    def test_users_function(self) -> None:
        """
        The README's example: a user's function tested without a socket.
        """
        network = FakeHTTP(lambda request: StubResponse(body=b"<title>Hi</title>"))
        d = Deferred.fromCoroutine(page_title("http://example.com/", network.reactor))
        network.flush()
        self.assertEqual(self.successResultOf(d), "Hi")

    def test_function_and_requests(self) -> None:
        """
        A handler function answers; each request is recorded.
        """
        network = FakeHTTP(echo)
        d = fetch("http://example.com/a?b=c", reactor=network.reactor)
        network.flush()
        response = self.successResultOf(d)
        self.assertEqual((response.code, response.body), (200, b"/a?b=c"))
        self.assertEqual(response.headers.get("x-echo"), "1")
        [request] = network.requests
        self.assertEqual((request.method, request.url), ("GET", "http://example.com/a?b=c"))
        self.assertEqual(request.headers.get("host"), "example.com")

    def test_resource(self) -> None:
        """
        A C{twisted.web} resource answers, 404s included.
        """
        root = Resource()
        root.putChild(b"page", Data(b"content", "text/plain"))
        network = FakeHTTP(root)
        found = fetch("http://example.com/page", reactor=network.reactor)
        missing = fetch("http://example.com/missing", reactor=network.reactor)
        network.flush()
        self.assertEqual(self.successResultOf(found).body, b"content")
        self.assertEqual(self.successResultOf(missing).code, 404)

    def test_client(self) -> None:
        """
        A L{Client} reuses its connection on the fake network, and closes cleanly.
        """
        network = FakeHTTP(echo)
        client = Client(reactor=network.reactor)
        for path in ("/1", "/2", "/3"):
            d = client.get("http://example.com" + path)
            network.flush()
            self.assertEqual(self.successResultOf(d).body, path.encode())
        self.assertEqual(len(network.reactor.tcpClients), 1)
        closed = client.close()
        network.flush()
        self.successResultOf(closed)

    def test_cancelled_before_connecting(self) -> None:
        """
        A request cancelled before its connection is made is not connected afterwards,
        and a client closed then closes cleanly.
        """
        network = FakeHTTP(echo)
        client = Client(reactor=network.reactor)
        d = client.get("http://127.0.0.5/")
        d.cancel()
        self.failureResultOf(d, CancelledError)
        network.flush()
        self.assertEqual(network.requests, [])
        closed = client.close()
        network.flush()
        self.successResultOf(closed)

    def failure_of(self, network: FakeHTTP, url: str, kind: type[Exception]) -> Any:
        d = fetch(url, reactor=network.reactor, timeout=30, connect_timeout=5)
        for _ in range(100):
            network.advance(0.5)
        return self.failureResultOf(d, kind).value

    def test_connection_faults(self) -> None:
        """
        An unresolvable name (6), a refused connection (7) and a connection that never
        completes (28, after the connect timeout) fail as they would on a network.
        """
        network = FakeHTTP(echo)
        network.fault("nowhere.example", Fault.unresolvable())
        network.fault("closed.example", Fault.refused())
        network.fault("slow.example", Fault.connect_timeout())
        self.failure_of(network, "http://nowhere.example/", CouldNotResolve)
        self.failure_of(network, "http://closed.example/", ConnectionRefused)
        error = self.failure_of(network, "http://slow.example/", ConnectTimeout)
        self.assertEqual(error.timeout, 5)

    def test_reply_faults(self) -> None:
        """
        A reply that stalls times out (28); one reset after some bytes is a reset (56);
        a TLS handshake answered in plain bytes is a TLS error (35).
        """
        network = FakeHTTP(echo)
        network.fault("stall.example", Fault.stall_after(10))
        network.fault("reset.example", Fault.reset_after(10))
        network.fault("tls.example", Fault.tls_failure())
        self.failure_of(network, "http://stall.example/", OperationTimeout)
        error = self.failure_of(network, "http://reset.example/", ConnectionReset)
        self.assertEqual(error.received, 10)
        self.failure_of(network, "https://tls.example/", TLSHandshakeError)

    def test_trickle(self) -> None:
        """
        A trickled reply arrives piece by piece as time passes, complete in the end.
        """
        network = FakeHTTP(echo)
        network.fault("slow.example", Fault.trickle(1.0, size=10))
        d = fetch("http://slow.example/path", reactor=network.reactor, timeout=100)
        network.flush()
        network.advance(5)
        self.assertNoResult(d)
        for _ in range(30):
            network.advance(1)
        self.assertEqual(self.successResultOf(d).body, b"/path")
