"""
Tests for L{twistsock.http.Timings}: L{TransferTimer} alone, then L{fetch} and L{Client}
in memory, where a clock gives every step an exact time, and over real sockets (plain and
TLS), where the steps come in order.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import error
from twisted.internet import reactor as _reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import inlineCallbacks
from twisted.internet.ssl import PrivateCertificate
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests._certificates import make_self_signed
from tests._http_servers import Chunked, closed_port, listen_web, temporary_directory
from tests._memory import MemoryReactorClock
from tests.test_http_fetch import SiteWithoutALPN, connect, reply
from twistsock import (
    Client,
    ConnectionRefused,
    CouldNotResolve,
    OperationTimeout,
    PartialBody,
    Response,
    Timings,
    fetch,
)
from twistsock.http import Timings as HTTPTimings
from twistsock.http._protocol import TransferObserver
from twistsock.http._request import build_request, parse_url
from twistsock.http._response import Headers, _with_timings
from twistsock.http._timings import TransferTimer, timed_observer, timed_resolution

reactor: Any = _reactor

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
REQUEST = build_request(parse_url("http://x/"), [])


class Resolutions:
    """A name resolver that answers (127.0.0.1) only when the test says so."""

    def __init__(self) -> None:
        self.pending: list[tuple[Any, int]] = []

    def resolveHostName(
        self, receiver: Any, hostName: str, portNumber: int = 0, *args: Any, **kwargs: Any
    ) -> None:
        receiver.resolutionBegan(None)
        self.pending.append((receiver, portNumber))

    def fail(self) -> None:
        """Complete the oldest pending resolution with no address: the name is unknown."""
        receiver, _ = self.pending.pop(0)
        receiver.resolutionComplete()

    def complete(self) -> None:
        """Resolve the oldest pending name."""
        receiver, port = self.pending.pop(0)
        receiver.addressResolved(IPv4Address("TCP", "127.0.0.1", port))
        receiver.resolutionComplete()


class Ticks:
    """A clock that reads the next of the given times at each reading."""

    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0)


class TransferTimerTests(SynchronousTestCase):
    """
    L{TransferTimer} reads the clock once per step and adds the steps of a redirect chain
    up as curl does.
    """

    def test_one_request(self) -> None:
        """
        Each step is its time from the start; a step not taken (the TLS handshake of
        plain http) is 0.
        """
        timer = TransferTimer(Ticks(10, 10, 11, 13, 13, 16, 20))
        timer.request_started("http://x/")
        timer.name_resolved()
        timer.connected(None, False)
        timer.request_sent(REQUEST, b"")
        timer.response_started()
        self.assertEqual(
            timer.finished(),
            Timings(namelookup=1, connect=3, pretransfer=3, starttransfer=6, total=10),
        )

    def test_tls(self) -> None:
        """
        Over TLS the request, written before the handshake is over, counts as sent when
        the handshake is over.
        """
        timer = TransferTimer(Ticks(0, 0, 1, 1, 4, 5, 6))
        timer.request_started("http://x/")
        timer.connected(None, False)
        timer.request_sent(REQUEST, b"")
        timer.tls_handshake_done()
        timer.response_started()
        timer.response_started()  # the first byte counts; later ones do not
        self.assertEqual(
            timer.finished(),
            Timings(connect=1, appconnect=4, pretransfer=4, starttransfer=5, total=6),
        )

    def test_redirects(self) -> None:
        """
        With a redirect, each step adds its time from its own request's start, and
        C{redirect} is when the last request began; a reused connection adds no connect.
        """
        timer = TransferTimer(Ticks(0, 0, 1, 2, 3, 5, 6, 8, 9))
        timer.request_started("http://x/")  # 0
        timer.connected(None, False)  # 1
        timer.request_sent(REQUEST, b"")  # 2
        timer.response_started()  # 3
        timer.request_started("http://x/")  # 5: a redirect, on the same connection
        timer.connected(None, True)  # reused: no connect time
        timer.request_sent(REQUEST, b"")  # 6
        timer.response_started()  # 8
        self.assertEqual(
            timer.finished(),
            Timings(connect=1, pretransfer=2 + 1, starttransfer=3 + 3, total=9, redirect=5),
        )
        self.assertEqual(timer.requests, 2)

    def test_finished_once(self) -> None:
        """The total is fixed by the first call of C{finished}."""
        timer = TransferTimer(Ticks(0, 0, 2))
        timer.request_started("http://x/")
        self.assertEqual(timer.finished().total, 2)
        self.assertEqual(timer.finished().total, 2)

    def test_observer(self) -> None:
        """
        L{timed_observer} with another observer times the events and passes each on to
        it; C{body_received} is that observer's own method; a whole head is the first
        byte.  Without one, the timer alone.
        """
        seen: list[object] = []

        class Inner(TransferObserver):
            def request_started(self, url: str) -> None:
                seen.append(("start", url))

            def name_resolved(self) -> None:
                seen.append("resolved")

            def connected(self, transport: Any, reused: bool) -> None:
                seen.append(("connected", transport, reused))

            def tls_handshake_done(self) -> None:
                seen.append("handshake")

            def request_sent(self, request: Any, data: bytes) -> None:
                seen.append(data)

            def response_started(self) -> None:
                seen.append("started")

            def response_head(self, head: bytes, content_length: int | None) -> None:
                seen.append(head)

            def body_received(self, received: int) -> None:
                seen.append(received)

        inner = Inner()
        observer = timed_observer(Ticks(0, 0, 1, 2, 3, 4, 5, 6, 7), inner)
        self.assertEqual(observer.body_received, inner.body_received)
        observer.request_started("http://x/")
        observer.name_resolved()
        observer.connected("transport", False)
        observer.request_sent(REQUEST, b"GET")
        observer.tls_handshake_done()
        observer.response_head(b"HTTP/1.1 200 OK\r\n\r\n", None)
        observer.response_started()
        observer.body_received(3)
        self.assertEqual(
            seen,
            [
                ("start", "http://x/"),
                "resolved",
                ("connected", "transport", False),
                b"GET",
                "handshake",
                b"HTTP/1.1 200 OK\r\n\r\n",
                "started",
                3,
            ],
        )
        self.assertEqual(
            observer.finished(),
            Timings(
                namelookup=1, connect=2, appconnect=4, pretransfer=4, starttransfer=5, total=6
            ),
        )

    def test_timer_alone(self) -> None:
        """Without another observer, L{timed_observer} is a plain L{TransferTimer}."""
        self.assertIs(type(timed_observer(Ticks(0), None)), TransferTimer)

    def test_timings_value(self) -> None:
        """
        L{Timings} is a frozen value, all 0 by default, the same class from both facades;
        a L{Response} built by hand has those.
        """
        self.assertIs(Timings, HTTPTimings)
        self.assertEqual(Timings(), Timings(0, 0, 0, 0, 0, 0, 0))
        self.assertRaises(AttributeError, setattr, Timings(), "total", 1)
        response = Response("http://x/", "1.1", 200, "OK", Headers(), b"", raw=b"")
        self.assertEqual(response.timings, Timings())


class ForwardingTests(SynchronousTestCase):
    """The timer of a watched transfer passes every event on to the watcher."""

    def test_every_hook_forwarded(self) -> None:
        """
        Each hook of L{TransferObserver} called on C{timed_observer(..., inner)} reaches
        C{inner} with the same arguments (C{-i} and C{-v} see everything the command's
        observer is told, a proxy's answer to C{CONNECT} included).
        """
        hooks = [
            name
            for name, value in vars(TransferObserver).items()
            if callable(value) and not name.startswith("_")
        ]
        calls: list[tuple[str, tuple[object, ...]]] = []

        class Inner(TransferObserver):
            pass

        inner = Inner()
        for name in hooks:
            setattr(inner, name, lambda *args, _name=name: calls.append((_name, args)))
        timer = timed_observer(lambda: 0.0, inner)
        for name in hooks:
            arguments = {
                "request_started": ("http://a/",),
                "connected": (None, False),
                "request_sent": (None, b"GET"),
                "response_head": (b"HTTP/1.1 200 OK\r\n\r\n", None),
                "body_received": (1,),
                "proxy_connect": (b"CONNECT", b"HTTP/1.0 200 OK\r\n\r\n"),
            }.get(name, ())
            getattr(timer, name)(*arguments)
        self.assertEqual(sorted(name for name, _ in calls), sorted(hooks))


class ResponseTimingsTests(SynchronousTestCase):
    """C{Response.timings} is data about the transfer, not about the response."""

    def test_not_compared(self) -> None:
        """
        Two responses that differ only in their timings are equal: the same bytes fetched
        twice give equal responses; a response made without timings has zeros.
        """
        fields: dict[str, Any] = dict(
            url="http://a/", http_version="1.1", code=200, phrase="OK", headers=Headers(),
            body=b"", raw=b"",
        )  # fmt: skip
        plain = Response(**fields)
        timed = _with_timings(Response(**fields), lambda: HTTPTimings(1, 2, 3, 4, 5, 6, 0))
        self.assertEqual(plain, timed)
        self.assertEqual(plain.timings, HTTPTimings(0, 0, 0, 0, 0, 0, 0))
        self.assertEqual(timed.timings.total, 6)


class MemoryTimingTests(SynchronousTestCase):
    """
    L{fetch} and L{Client} in memory: the reactor's clock times each step exactly.
    """

    def setUp(self) -> None:
        self.memory = MemoryReactorClock()
        self.resolutions = Resolutions()
        self.memory.installNameResolver(self.resolutions)

    def test_host_name(self) -> None:
        """
        A host name: its resolution, the connection, the request, the response's first
        byte and its end each get their time from the start.
        """
        d = fetch("http://example.com/", reactor=self.memory)
        self.memory.advance(1)
        self.resolutions.complete()
        self.memory.advance(2)
        transport = connect(self.memory)
        self.assertTrue(transport.value().startswith(b"GET / HTTP/1.1"))
        self.memory.advance(3)
        reply(transport, OK[:5])
        self.memory.advance(4)
        reply(transport, OK[5:])
        response = self.successResultOf(d)
        self.memory.advance(5)  # read later: the times are those of the transfer
        self.assertEqual(
            response.timings,
            Timings(namelookup=1, connect=3, pretransfer=3, starttransfer=6, total=10),
        )
        self.assertIs(response.timings, response.timings)  # built once, when first read

    def test_ip_address(self) -> None:
        """An IP address is not resolved: its name lookup takes no time."""
        d = fetch("http://127.0.0.1/", reactor=self.memory)
        self.memory.advance(0.5)
        transport = connect(self.memory)
        self.memory.advance(0.25)
        reply(transport, OK)
        self.assertEqual(
            self.successResultOf(d).timings,
            Timings(connect=0.5, pretransfer=0.5, starttransfer=0.75, total=0.75),
        )

    def test_handshake(self) -> None:
        """
        The end of the TLS handshake (C{IHandshakeListener}) is C{appconnect}, and the
        request leaves after it.
        """
        d = fetch("http://127.0.0.1/", reactor=self.memory)
        self.memory.advance(1)
        transport = connect(self.memory)
        self.memory.advance(1)
        transport.protocol.handshakeCompleted()  # type: ignore[attr-defined]
        self.memory.advance(1)
        reply(transport, OK)
        self.assertEqual(
            self.successResultOf(d).timings,
            Timings(connect=1, appconnect=2, pretransfer=2, starttransfer=3, total=3),
        )

    def test_redirects(self) -> None:
        """
        Following a redirect, each step adds up over the chain and C{redirect} is when
        the final request began.
        """
        d = fetch("http://127.0.0.1/a", reactor=self.memory, follow_redirects=True)
        self.memory.advance(1)
        first = connect(self.memory)
        self.memory.advance(1)
        reply(first, b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n")
        self.memory.advance(2)
        second = connect(self.memory)
        self.memory.advance(3)
        reply(second, OK)
        response = self.successResultOf(d)
        self.assertEqual(
            response.timings,
            Timings(
                connect=1 + 2,
                pretransfer=1 + 2,
                starttransfer=2 + 5,
                total=7,
                redirect=2,
            ),
        )
        self.assertEqual(response.history[0].timings, Timings())

    def test_refused(self) -> None:
        """
        A failure carries the timings of what was done: a refused connection has no
        connect time, and its total is when it failed.
        """
        d = fetch("http://127.0.0.1/", reactor=self.memory)
        self.memory.advance(2)
        factory = self.memory.tcpClients[0][2]
        refused = Failure(error.ConnectionRefusedError())
        factory.clientConnectionFailed(None, refused)  # type: ignore[arg-type]
        e = self.failureResultOf(d, ConnectionRefused).value
        self.assertEqual(e.timings, Timings(total=2))

    def test_unresolved(self) -> None:
        """
        A name that does not resolve has no name lookup time (the step was never over,
        as curl's C{time_namelookup} is 0 then); the total is when it failed.
        """
        d = fetch("http://example.com/", reactor=self.memory)
        self.memory.advance(2)
        self.resolutions.fail()
        e = self.failureResultOf(d, CouldNotResolve).value
        self.assertEqual(e.timings, Timings(total=2))

    def test_partial_body(self) -> None:
        """A transfer cut in the middle of its body carries the steps it went through."""
        d = fetch("http://127.0.0.1/", reactor=self.memory)
        transport = connect(self.memory)
        self.memory.advance(1)
        reply(transport, OK[:-1])
        self.memory.advance(1)
        transport.protocol.connectionLost(  # type: ignore[attr-defined]
            Failure(error.ConnectionDone())
        )
        e = self.failureResultOf(d, PartialBody).value
        self.assertEqual(e.timings, Timings(starttransfer=1, total=2))

    def test_timeout(self) -> None:
        """A transfer that times out carries the timeout as its total."""
        d = fetch("http://example.com/", reactor=self.memory, timeout=5)
        self.memory.advance(5)
        e = self.failureResultOf(d, OperationTimeout).value
        self.assertEqual(e.timings, Timings(total=5))

    def test_reused_connection(self) -> None:
        """
        A request on a reused connection of a L{Client} has no name lookup, connect or
        handshake time; the one that opened it has.
        """
        client = Client(reactor=self.memory)
        first = client.get("http://example.com/1")
        self.memory.advance(1)
        self.resolutions.complete()
        transport = connect(self.memory)
        self.memory.advance(1)
        reply(transport, OK)
        self.assertEqual(
            self.successResultOf(first).timings,
            Timings(namelookup=1, connect=1, pretransfer=1, starttransfer=2, total=2),
        )
        second = client.get("http://example.com/2")
        self.memory.advance(3)
        reply(transport, OK)
        self.assertEqual(self.successResultOf(second).timings, Timings(starttransfer=3, total=3))
        self.assertEqual(len(self.memory.tcpClients), 1)
        client.close()

    def test_timed_resolution(self) -> None:
        """
        L{timed_resolution} leaves a reactor alone when there is nothing to report, or
        when it has no pluggable name resolver.
        """
        self.assertIs(timed_resolution(self.memory, None), self.memory)
        plain = object()
        self.assertIs(timed_resolution(plain, lambda: None), plain)
        seen: list[str] = []
        wrapped = timed_resolution(self.memory, lambda: seen.append("resolved"))
        self.assertEqual(wrapped.seconds(), self.memory.seconds())

        class Receiver:
            def resolutionBegan(self, resolution: object) -> None:
                seen.append("began")

            def addressResolved(self, address: object) -> None:
                seen.append("address")

            def resolutionComplete(self) -> None:
                seen.append("complete")

        wrapped.nameResolver.resolveHostName(Receiver(), "example.com", 80)
        self.resolutions.complete()
        self.assertEqual(seen, ["began", "address", "resolved", "complete"])


class RealTimingTests(TestCase):
    """
    Over real sockets the steps come in order, and plain http has no handshake time.
    """

    def assert_ordered(self, timings: Timings, tls: bool) -> None:
        steps = [timings.namelookup, timings.connect]
        if tls:
            steps.append(timings.appconnect)
        else:
            self.assertEqual(timings.appconnect, 0)
        steps += [timings.pretransfer, timings.starttransfer, timings.total]
        self.assertEqual(steps, sorted(steps))
        self.assertGreater(timings.connect, 0)
        self.assertGreater(timings.total, 0)

    @inlineCallbacks
    def test_plain(self) -> Any:
        """http://localhost/: a name looked up, a connection, no handshake."""
        port = listen_web(self, reactor, temporary_directory(self))
        response = yield fetch(f"http://localhost:{port}/static/hello.txt", reactor=reactor)
        self.assertEqual(response.code, 200)
        self.assert_ordered(response.timings, tls=False)
        self.assertGreater(response.timings.namelookup, 0)

    @inlineCallbacks
    def test_redirects(self) -> Any:
        """A redirect chain: C{redirect} falls between the first steps and the total."""
        port = listen_web(self, reactor, temporary_directory(self))
        response = yield fetch(
            f"http://127.0.0.1:{port}/redirect", reactor=reactor, follow_redirects=True
        )
        timings = response.timings
        self.assert_ordered(timings, tls=False)
        self.assertTrue(0 < timings.redirect < timings.total)

    @inlineCallbacks
    def test_tls(self) -> Any:
        """https: the handshake ends after the connection and before the request."""
        key_path, cert_path = make_self_signed(temporary_directory(self))
        pem = key_path.read_bytes() + cert_path.read_bytes()
        options = PrivateCertificate.loadPEM(pem).options()
        port = reactor.listenSSL(0, SiteWithoutALPN(Chunked()), options, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = f"https://127.0.0.1:{port.getHost().port}/"
        response = yield fetch(url, reactor=reactor, tls_verify=False)
        self.assert_ordered(response.timings, tls=True)
        self.assertGreater(response.timings.appconnect, response.timings.connect)

    @inlineCallbacks
    def test_refused(self) -> Any:
        """A refused connection carries its total time."""
        url = f"http://127.0.0.1:{closed_port(reactor)}/"
        e = yield self.assertFailure(fetch(url, reactor=reactor), ConnectionRefused)
        self.assertGreater(e.timings.total, 0)
        self.assertEqual(e.timings.connect, 0)
