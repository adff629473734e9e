"""
Tests for L{twistsock.fetch}: in memory with a L{MemoryReactorClock} (resolution, refused
connections, timeouts, redirects), then over real sockets on 127.0.0.1 against
C{twisted.web} (compared with treq, the reference client) and raw servers that stall,
reset, or send garbage, and over TLS.
"""

from __future__ import annotations

from typing import Any

import treq
from twisted.internet import error
from twisted.internet import reactor as _reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import PrivateCertificate
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import HTTPConnectionPool
from twisted.web.server import Site
from zope.interface import implementer_only

from tests._certificates import make_self_signed
from tests._http_servers import (
    BINARY,
    Chunked,
    NeverResolves,
    closed_port,
    listen_canned,
    listen_web,
    temporary_directory,
)
from tests._memory import MemoryReactorClock
from twistsock import (
    CertificateError,
    ConnectionRefused,
    ConnectionReset,
    ConnectTimeout,
    CouldNotResolve,
    EmptyReply,
    InvalidHeader,
    MalformedResponse,
    MalformedURL,
    OperationTimeout,
    PartialBody,
    Response,
    TLSHandshakeError,
    TooManyRedirects,
    UnsupportedScheme,
    fetch,
)
from twistsock.http._reader import ResponseReader

reactor: Any = _reactor


class NoAddresses:
    """A name resolver that finds no address for any name (like NXDOMAIN)."""

    def resolveHostName(self, receiver: Any, hostName: str, *args: Any, **kwargs: Any) -> None:
        receiver.resolutionBegan(None)
        receiver.resolutionComplete()


class NoCloseNotify(Protocol):
    """
    Over TLS: answers the request with C{reply}, then closes the TCP connection under the
    TLS layer, without the TLS close_notify alert.
    """

    def __init__(self, reply: bytes) -> None:
        self.reply = reply

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(self.reply)  # type: ignore[union-attr]
        self.transport.transport.loseConnection()  # type: ignore[union-attr]


@implementer_only(IProtocolFactory)
class SiteWithoutALPN(Site):
    """
    A C{Site} that offers no ALPN protocols.  A C{Site} offers them, and Twisted before 26
    then sets the ALPN callback on the server's shared OpenSSL context for each connection,
    which pyOpenSSL 26.2 and later refuse ("Context has already been used to create a
    Connection").  twistsock's client offers no ALPN, so nothing else changes.
    """


def connect(memory: MemoryReactorClock, index: int = -1) -> StringTransport:
    """Complete the connection attempt number C{index} onto a new L{StringTransport}."""
    factory = memory.tcpClients[index][2]
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 80))
    transport = StringTransport()
    protocol.makeConnection(transport)
    transport.protocol = protocol  # type: ignore[attr-defined]
    return transport


def reply(transport: StringTransport, data: bytes) -> None:
    """Deliver C{data} from the server through C{transport}."""
    transport.protocol.dataReceived(data)  # type: ignore[attr-defined]


class MemoryFetchTests(SynchronousTestCase):
    """
    L{fetch} against a memory reactor: no sockets, no real time.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def test_success(self) -> None:
        """
        C{fetch} connects to the URL's host and port with the connect timeout, sends the
        request and fires with the response; the deadline is then cancelled.
        """
        d = fetch("http://example.com:8080/x", reactor=self.reactor, connect_timeout=4)
        host, port, _, timeout, _ = self.reactor.tcpClients[0]
        self.assertEqual((host, port, timeout), ("127.0.0.1", 8080, 4))
        transport = connect(self.reactor)
        self.assertTrue(transport.value().startswith(b"GET /x HTTP/1.1\r\nHost: example.com:8080"))
        reply(transport, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        response = self.successResultOf(d)
        self.assertEqual((response.code, response.body, response.history), (200, b"ok", ()))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_unresolvable(self) -> None:
        """
        A name without addresses fails with L{CouldNotResolve} (6) naming the host.
        """
        self.reactor.installNameResolver(NoAddresses())  # type: ignore[arg-type]
        d = fetch("http://nonexistent.invalid/", reactor=self.reactor)
        failure = self.failureResultOf(d, CouldNotResolve)
        self.assertEqual(str(failure.value), "Could not resolve host: nonexistent.invalid")
        self.assertEqual(failure.value.curl_exit_code, 6)  # type: ignore[union-attr]

    def test_refused(self) -> None:
        """
        A refused connection fails with L{ConnectionRefused} (7) naming host and port.
        """
        d = fetch("http://example.com:8080/", reactor=self.reactor)
        factory = self.reactor.tcpClients[0][2]
        factory.clientConnectionFailed(None, Failure(error.ConnectionRefusedError()))
        self.reactor.advance(1)  # HostnameEndpoint notices its last attempt failed
        failure = self.failureResultOf(d, ConnectionRefused)
        self.assertEqual((failure.value.host, failure.value.port), ("example.com", 8080))  # type: ignore[union-attr]

    def test_connect_timeout(self) -> None:
        """
        A connection attempt that times out fails with L{ConnectTimeout} (28).
        """
        d = fetch("http://example.com/", reactor=self.reactor, connect_timeout=3)
        factory = self.reactor.tcpClients[0][2]
        factory.clientConnectionFailed(None, Failure(error.TimeoutError()))
        self.reactor.advance(1)
        failure = self.failureResultOf(d, ConnectTimeout)
        self.assertEqual(failure.value.curl_exit_code, 28)  # type: ignore[union-attr]

    def test_stall_mid_body(self) -> None:
        """
        A server that stalls in the middle of the body makes the fetch fail with
        L{OperationTimeout} (28) when C{timeout} passes, not before, and the connection is
        aborted.
        """
        d = fetch("http://example.com/", reactor=self.reactor, timeout=5)
        transport = connect(self.reactor)
        reply(transport, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal")
        self.reactor.advance(4.9)
        self.assertNoResult(d)
        self.reactor.advance(0.1)
        failure = self.failureResultOf(d, OperationTimeout)
        self.assertEqual(failure.value.curl_exit_code, 28)  # type: ignore[union-attr]
        self.assertTrue(transport.disconnected)

    def test_timeout_while_resolving(self) -> None:
        """
        The deadline also covers name resolution: a resolver that never answers gives
        L{OperationTimeout}, not a resolution error.
        """
        self.reactor.installNameResolver(NeverResolves())  # type: ignore[arg-type]
        d = fetch("http://example.com/", reactor=self.reactor, timeout=2)
        self.reactor.advance(2)
        self.failureResultOf(d, OperationTimeout)

    def test_cancel(self) -> None:
        """
        Cancelling the fetch aborts the connection and fails with L{CancelledError}.
        """
        d = fetch("http://example.com/", reactor=self.reactor)
        transport = connect(self.reactor)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(transport.disconnected)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_cancel_while_connecting(self) -> None:
        """
        Cancelling the fetch of an IP literal while it connects stops the connection
        attempt and fails with L{CancelledError}.
        """
        d = fetch("http://127.0.0.1:8080/", reactor=self.reactor)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(self.reactor.connectors[0].stoppedConnecting)  # type: ignore[attr-defined]
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_connect_raising_fails_the_deferred(self) -> None:
        """
        A reactor whose C{connectTCP} raises makes the returned Deferred fail (nothing
        raises out of C{fetch}), with or without redirects to follow, and the deadline
        is cancelled.
        """

        class Refusing(MemoryReactorClock):
            def connectTCP(self, *args: Any, **kwargs: Any) -> Any:
                raise OSError("no sockets left")

        for follow in [False, True]:
            reactor = Refusing()
            d = fetch("http://127.0.0.1:8080/", reactor=reactor, follow_redirects=follow)
            self.assertEqual(str(self.failureResultOf(d, OSError).value), "no sockets left")
            self.assertEqual(reactor.getDelayedCalls(), [])

    def test_bad_arguments_fail_the_deferred(self) -> None:
        """
        A malformed URL, an unsupported scheme or an injected header fail the returned
        Deferred (nothing raises) and nothing connects.
        """
        self.failureResultOf(fetch("http://a b/", reactor=self.reactor), MalformedURL)
        self.failureResultOf(fetch("gopher://a/", reactor=self.reactor), UnsupportedScheme)
        bad = fetch("http://a/", reactor=self.reactor, headers={"X": "1\r\nY: 2"})
        self.failureResultOf(bad, InvalidHeader)
        self.assertEqual(self.reactor.tcpClients, [])

    def test_redirects_not_followed_by_default(self) -> None:
        """
        Without C{follow_redirects}, a redirect is the response.
        """
        d = fetch("http://example.com/", reactor=self.reactor)
        reply(
            connect(self.reactor),
            b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n",
        )
        self.assertEqual(self.successResultOf(d).code, 302)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_redirects_followed(self) -> None:
        """
        With C{follow_redirects}, 301, 302, 303, 307 and 308 are followed, each Location
        resolved against the current URL, and the redirects are kept in C{history}.
        """
        d = fetch("http://example.com/a/b", reactor=self.reactor, follow_redirects=True)
        hops = [
            (301, "c", "/a/c"),
            (302, "/d?x=1", "/d?x=1"),
            (303, "../e", "/e"),
            (307, "http://other.example:81/f", "/f"),
            (308, "//third.example/g", "/g"),
        ]
        for index, (code, location, _) in enumerate(hops):
            reply(
                connect(self.reactor, index),
                f"HTTP/1.1 {code} X\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode(),
            )
        final = connect(self.reactor, len(hops))
        reply(final, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!")
        response = self.successResultOf(d)
        self.assertEqual([r.code for r in response.history], [301, 302, 303, 307, 308])
        self.assertEqual(
            [r.url for r in response.history],
            [
                "http://example.com/a/b",
                "http://example.com/a/c",
                "http://example.com/d?x=1",
                "http://example.com/e",
                "http://other.example:81/f",
            ],
        )
        self.assertEqual(response.url, "http://third.example/g")
        self.assertTrue(final.value().startswith(b"GET /g HTTP/1.1\r\nHost: third.example\r\n"))
        self.assertEqual(self.reactor.tcpClients[4][1], 81)

    def test_credentials_dropped_across_origins(self) -> None:
        """
        C{Authorization} and C{Cookie} follow a redirect on the same origin but are not
        sent to another host; other extra headers are.
        """
        headers = {"Authorization": "secret", "Cookie": "c=1", "X-Other": "kept"}
        d = fetch(
            "http://a.example/", reactor=self.reactor, follow_redirects=True, headers=headers
        )
        reply(
            connect(self.reactor, 0),
            b"HTTP/1.1 302 F\r\nLocation: /same\r\nContent-Length: 0\r\n\r\n",
        )
        same = connect(self.reactor, 1)
        self.assertIn(b"Authorization: secret", same.value())
        reply(same, b"HTTP/1.1 302 F\r\nLocation: http://b.example/\r\nContent-Length: 0\r\n\r\n")
        other = connect(self.reactor, 2)
        self.assertNotIn(b"secret", other.value())
        self.assertNotIn(b"c=1", other.value())
        self.assertIn(b"X-Other: kept", other.value())
        reply(other, b"HTTP/1.1 204 No Content\r\n\r\n")
        self.assertEqual(self.successResultOf(d).code, 204)

    def test_too_many_redirects(self) -> None:
        """
        More than C{max_redirects} redirects fail with L{TooManyRedirects} (47).
        """
        d = fetch(
            "http://a.example/", reactor=self.reactor, follow_redirects=True, max_redirects=2
        )
        for index in range(3):
            reply(
                connect(self.reactor, index),
                b"HTTP/1.1 302 F\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n",
            )
        failure = self.failureResultOf(d, TooManyRedirects)
        self.assertEqual((failure.value.limit, failure.value.curl_exit_code), (2, 47))  # type: ignore[union-attr]
        self.assertEqual(len(self.reactor.tcpClients), 3)

    def test_redirect_to_unsupported_scheme(self) -> None:
        """
        A redirect to a scheme other than http or https fails with L{UnsupportedScheme}.
        """
        d = fetch("http://a.example/", reactor=self.reactor, follow_redirects=True)
        reply(
            connect(self.reactor),
            b"HTTP/1.1 302 F\r\nLocation: ftp://a.example/\r\nContent-Length: 0\r\n\r\n",
        )
        self.failureResultOf(d, UnsupportedScheme)

    def redirect_once(
        self, header: bytes, body: bytes
    ) -> tuple[MemoryReactorClock, Deferred[Response]]:
        """
        Fetch with C{follow_redirects} on a new memory reactor, whose first connection
        answers a 302 with the header line C{header} and C{body}.
        """
        reactor = MemoryReactorClock()
        d = fetch("http://a.example/", reactor=reactor, follow_redirects=True)
        head = b"HTTP/1.1 302 F\r\n%s\r\nContent-Length: %d\r\n\r\n" % (header, len(body))
        reply(connect(reactor), head + body)
        return reactor, d

    def test_redirect_to_malformed_url(self) -> None:
        """
        A C{Location} that is not a valid URL fails with L{MalformedURL} (3, as curl's
        "The redirect target URL could not be parsed"), not with the C{ValueError} that
        C{urljoin} raises, and nothing more is connected.
        """
        for location in [b"http://[::1", b"http://a.example:99999/", b"http://[zz]/"]:
            reactor, d = self.redirect_once(b"Location: " + location, b"")
            failure = self.failureResultOf(d, MalformedURL)
            self.assertEqual(failure.value.curl_exit_code, 3)  # type: ignore[union-attr]
            self.assertEqual(failure.value.url, location.decode())  # type: ignore[union-attr]
            self.assertEqual(len(reactor.tcpClients), 1)
            self.assertEqual(reactor.getDelayedCalls(), [])

    def test_empty_location_is_final(self) -> None:
        """
        A redirect with an empty C{Location} is the final response, as one without any
        C{Location} is (curl ignores an empty one): it is not a redirect to itself.
        """
        for head in [b"Location:", b"Location:   ", b"X-No-Location: 1"]:
            reactor, d = self.redirect_once(head, b"hi")
            response = self.successResultOf(d)
            self.assertEqual((response.code, response.body, response.history), (302, b"hi", ()))
            self.assertEqual(len(reactor.tcpClients), 1)

    def test_ip_literals_skip_the_resolver(self) -> None:
        """
        An IPv4 or IPv6 literal is connected to at once, to that address and port with the
        connect timeout: the name resolver is never asked (here it would never answer).
        """
        self.reactor.installNameResolver(NeverResolves())  # type: ignore[arg-type]
        fetch("http://127.0.0.1:8080/", reactor=self.reactor, connect_timeout=4)
        fetch("http://[::1]:8081/", reactor=self.reactor, connect_timeout=5)
        self.assertEqual(
            [client[:2] + (client[3],) for client in self.reactor.tcpClients],
            [("127.0.0.1", 8080, 4), ("::1", 8081, 5)],
        )
        transport = connect(self.reactor, 0)
        reply(transport, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def test_ip_literal_refused_at_once(self) -> None:
        """
        A refused connection to an IP literal fails at once with L{ConnectionRefused}, with
        no attempt delay (C{HostnameEndpoint} waits for its next 0.3 s attempt tick).
        """
        d = fetch("http://127.0.0.1:8080/", reactor=self.reactor)
        factory = self.reactor.tcpClients[0][2]
        factory.clientConnectionFailed(None, Failure(error.ConnectionRefusedError()))
        failure = self.failureResultOf(d, ConnectionRefused)
        self.assertEqual((failure.value.host, failure.value.port), ("127.0.0.1", 8080))  # type: ignore[union-attr]
        self.assertEqual(self.reactor.getDelayedCalls(), [])


class WebServerTests(TestCase):
    """
    Over real sockets, C{fetch()} and C{treq.get()} agree on status, headers and body.
    """

    def setUp(self) -> None:
        directory = temporary_directory(self)
        self.port = listen_web(self, reactor, directory)
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(self.pool.closeCachedConnections)

    @inlineCallbacks
    def agree(self, path: str, follow: bool) -> Any:
        """Fetch C{path} with both clients and compare; return twistsock's response."""
        url = f"http://127.0.0.1:{self.port}{path}"
        ours: Response = yield fetch(url, reactor=reactor, follow_redirects=follow)
        theirs = yield treq.get(url, reactor=reactor, pool=self.pool, allow_redirects=follow)
        body = yield treq.content(theirs)
        self.assertEqual((ours.code, ours.phrase.encode()), (theirs.code, theirs.phrase))
        self.assertEqual(ours.body, body)
        # Per-request values, and the framing headers that Twisted's client keeps apart.
        skip = {"date", "connection", "content-length", "transfer-encoding"}
        mine = sorted((n.lower(), v) for n, v in ours.headers if n.lower() not in skip)
        reference = sorted(
            (n.decode().lower(), v.decode("latin-1"))
            for n, values in theirs.headers.getAllRawHeaders()
            for v in values
            if n.decode().lower() not in skip
            # twisted.web.client.ContentDecoderAgent leaves an empty Content-Encoding.
            and (n.lower(), v) != (b"content-encoding", b"")
        )
        self.assertEqual(mine, reference)
        length = ours.headers.get("content-length")
        if length is not None:
            self.assertEqual(int(length), theirs.length)
        return ours

    @inlineCallbacks
    def test_static_file(self) -> Any:
        """
        A static file: same status, headers and body as treq.
        """
        response = yield self.agree("/static/hello.txt", follow=False)
        self.assertEqual(response.body, b"hello, world\n")

    @inlineCallbacks
    def test_large_body_read_directly(self) -> Any:
        """
        A large Content-Length body over plain TCP is received straight into its buffer
        (most of it never passes through C{dataReceived}) and arrives intact.
        """
        body = bytes(range(256)) * 12288  # 3 MiB
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        port, _ = listen_canned(self, reactor, reply)
        direct: list[int] = []
        filled = ResponseReader.body_filled

        def record(reader: ResponseReader, size: int) -> None:
            direct.append(size)
            filled(reader, size)

        self.patch(ResponseReader, "body_filled", record)
        response = yield fetch(f"http://127.0.0.1:{port}/", reactor=reactor)
        self.assertEqual(response.body, body)
        self.assertGreater(sum(direct), len(body) // 2)

    @inlineCallbacks
    def test_binary_file(self) -> Any:
        """
        A binary file (every byte value) arrives intact.
        """
        response = yield self.agree("/static/binary.bin", follow=False)
        self.assertEqual(response.body, BINARY)

    @inlineCallbacks
    def test_chunked(self) -> Any:
        """
        A chunked response: same body as treq, and the chunk framing is in C{raw}.
        """
        response = yield self.agree("/chunked", follow=False)
        self.assertEqual(response.body, b"first second third")
        self.assertEqual(response.headers.get("transfer-encoding"), "chunked")
        self.assertIn(b"6\r\nfirst \r\n", response.raw)

    @inlineCallbacks
    def test_not_found(self) -> Any:
        """
        A 404 is a response like any other, not a failure.
        """
        response = yield self.agree("/missing", follow=False)
        self.assertEqual(response.code, 404)

    @inlineCallbacks
    def test_redirect_not_followed(self) -> Any:
        """
        Without following, both clients return the 302 itself.
        """
        response = yield self.agree("/redirect", follow=False)
        self.assertEqual(response.code, 302)
        self.assertEqual(response.headers.get("location"), "static/hello.txt")

    @inlineCallbacks
    def test_redirects_followed(self) -> Any:
        """
        Following redirects (relative and absolute), both clients end on the same response.
        """
        response = yield self.agree("/redirect", follow=True)
        self.assertEqual(response.body, b"hello, world\n")
        self.assertEqual([r.code for r in response.history], [302])
        response = yield self.agree("/absolute", follow=True)
        self.assertEqual(response.body, b"first second third")

    @inlineCallbacks
    def test_redirect_loop(self) -> Any:
        """
        A redirect loop ends with L{TooManyRedirects}.
        """
        url = f"http://127.0.0.1:{self.port}/loop"
        d = fetch(url, reactor=reactor, follow_redirects=True, max_redirects=3)
        yield self.assertFailure(d, TooManyRedirects)


class RawServerTests(TestCase):
    """
    Over real sockets, misbehaving servers give the right typed failure, quickly.
    """

    @inlineCallbacks
    def fails_with(self, kind: type[Exception], reply: bytes, after: str, **kw: Any) -> Any:
        """Fetch from a canned server and expect C{kind}; return the exception."""
        port, factory = listen_canned(self, reactor, reply, after)
        e = yield self.assertFailure(
            fetch(f"http://127.0.0.1:{port}/", reactor=reactor, **kw), kind
        )
        self.assertEqual(len(factory.requests), 1)
        return e

    def test_stall_mid_body(self) -> Any:
        """
        A server that stops sending in the middle of the body: L{OperationTimeout} at the
        deadline, and the connection is closed.
        """
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"
        return self.fails_with(OperationTimeout, reply, "stall", timeout=0.5)

    def test_never_answers(self) -> Any:
        """
        A server that accepts and never answers: L{OperationTimeout}.
        """
        return self.fails_with(OperationTimeout, b"", "stall", timeout=0.5)

    @inlineCallbacks
    def test_reset(self) -> Any:
        """
        A connection reset in the middle of the body: L{ConnectionReset} (56), said so.
        """
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"
        e = yield self.fails_with(ConnectionReset, reply, "reset")
        self.assertEqual(
            str(e), f"Recv failure: Connection reset by peer after {len(reply)} bytes"
        )

    def test_close_mid_body(self) -> Any:
        """
        A clean close in the middle of the body: L{PartialBody} (18).
        """
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"
        return self.fails_with(PartialBody, reply, "close")

    def test_garbage(self) -> Any:
        """
        A reply that is not HTTP: L{MalformedResponse} (8).
        """
        return self.fails_with(MalformedResponse, b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "close")

    def test_empty_reply(self) -> Any:
        """
        A server that closes without a byte: L{EmptyReply} (52).
        """
        return self.fails_with(EmptyReply, b"", "close")

    def test_transfer_encoding_with_content_length(self) -> Any:
        """
        C{Transfer-Encoding} with C{Content-Length}: L{MalformedResponse} (8).
        """
        reply = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"
        )
        return self.fails_with(MalformedResponse, reply, "stall")

    @inlineCallbacks
    def test_close_delimited(self) -> Any:
        """
        A body delimited by the server's close arrives complete.
        """
        port, _ = listen_canned(self, reactor, b"HTTP/1.0 200 OK\r\n\r\nto the end", "close")
        response = yield fetch(f"http://127.0.0.1:{port}/", reactor=reactor)
        self.assertEqual(response.body, b"to the end")

    def test_refused(self) -> Any:
        """
        A closed port: L{ConnectionRefused} (7).
        """
        d = fetch(f"http://127.0.0.1:{closed_port(reactor)}/", reactor=reactor)
        return self.assertFailure(d, ConnectionRefused)

    @inlineCallbacks
    def test_ipv6_literal(self) -> Any:
        """
        An IPv6 literal URL connects over IPv6 and sends C{Host: [::1]:PORT}.
        """
        try:
            port = reactor.listenTCP(0, Site(Chunked()), interface="::1")
        except error.CannotListenError:
            self.skipTest("no IPv6 loopback here")
        self.addCleanup(port.stopListening)
        number = port.getHost().port
        response = yield fetch(f"http://[::1]:{number}/", reactor=reactor)
        self.assertEqual(response.body, b"first second third")


class TLSTests(TestCase):
    """
    https: certificate and host name verification, the explicit opt-out, and handshake
    failures.
    """

    def setUp(self) -> None:
        directory = temporary_directory(self)
        key_path, cert_path = make_self_signed(directory)
        pem = key_path.read_bytes() + cert_path.read_bytes()
        options = self.options = PrivateCertificate.loadPEM(pem).options()
        port = reactor.listenSSL(0, SiteWithoutALPN(Chunked()), options, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.url = f"https://127.0.0.1:{port.getHost().port}/"

    def test_untrusted(self) -> Any:
        """
        A self-signed certificate is not trusted: L{CertificateError} (60).
        """
        return self.assertFailure(fetch(self.url, reactor=reactor), CertificateError)

    @inlineCallbacks
    def test_insecure(self) -> Any:
        """
        With C{tls_verify=False} the same server is fetched over TLS.
        """
        response = yield fetch(self.url, reactor=reactor, tls_verify=False)
        self.assertEqual(response.body, b"first second third")

    @inlineCallbacks
    def test_no_close_notify(self) -> Any:
        """
        A close-delimited body ended by a TCP close without the TLS close_notify alert
        (a possible truncation) is L{ConnectionReset} (56), saying that, not "reset by
        peer".
        """
        reply = b"HTTP/1.1 200 OK\r\n\r\nmaybe all"
        factory = Factory.forProtocol(lambda: NoCloseNotify(reply))
        port = reactor.listenSSL(0, factory, self.options, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = f"https://127.0.0.1:{port.getHost().port}/"
        e = yield self.assertFailure(
            fetch(url, reactor=reactor, tls_verify=False), ConnectionReset
        )
        self.assertEqual(
            (str(e), e.tls),
            (f"TLS connection closed without close_notify after {len(reply)} bytes", True),
        )

    @inlineCallbacks
    def test_not_tls(self) -> Any:
        """
        A server that answers a TLS hello in plain HTTP: L{TLSHandshakeError} (35).
        """
        port, _ = listen_canned(self, reactor, b"HTTP/1.1 400 Bad Request\r\n\r\n", "close")
        d = fetch(f"https://127.0.0.1:{port}/", reactor=reactor)
        e = yield self.assertFailure(d, TLSHandshakeError)
        self.assertEqual(e.curl_exit_code, 35)
