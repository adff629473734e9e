"""
The OK-echo server with the PROXY protocol over real sockets on 127.0.0.1, in this process:
the five defects of Twisted's C{haproxy:} wrapper, each checked where it showed.

Clients are blocking sockets in threads that send the header themselves, as a load
balancer would; C{tests/test_echo_haproxy.py} puts a real HAProxy in between.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString, wrapClientTLS
from twisted.internet.interfaces import IListeningPort, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from tests import test_echo_sockets
from tests._certificates import make_self_signed
from tests._sockets import WELCOME, recv_all, recv_exactly
from tests.test_echo_proxy import v1, v2
from twistsock import OKEchoFactory, OKEchoProtocol

reactor: Any = _reactor


@implementer(IStreamClientEndpoint)
class HeaderFirstEndpoint:
    """
    A client endpoint whose connections send a PROXY header before anything else, as
    HAProxy's C{send-proxy} does (under C{wrapClientTLS}: the header in clear, then TLS,
    as C{ssl send-proxy} does).
    """

    def __init__(self, endpoint: IStreamClientEndpoint, header: bytes) -> None:
        self.endpoint = endpoint
        self.header = header

    def connect(self, protocolFactory: Any) -> Deferred[Any]:
        header = self.header

        class HeaderFirst(Factory):
            def buildProtocol(self, addr: Any) -> Any:
                protocol = protocolFactory.buildProtocol(addr)
                make_connection = protocol.makeConnection

                def makeConnection(transport: Any) -> None:
                    transport.write(header)
                    make_connection(transport)

                protocol.makeConnection = makeConnection
                return protocol

        return self.endpoint.connect(HeaderFirst())


def tls_conversation(
    sock: socket.socket, cafile: str, first: bytes, send: bytes, expected: int
) -> bytes:
    """
    Send C{first} (a PROXY header) and the client's TLS hello in one segment, finish the
    handshake, send C{send}, and return the first C{expected} bytes received in clear
    (fewer if the server closes first).
    """
    context = ssl.create_default_context(cafile=cafile)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    pending = first
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(pending + outgoing.read())
            pending = b""
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the handshake") from None
            incoming.write(data)
    tls.write(send)
    sock.sendall(outgoing.read())
    received = bytearray()
    while len(received) < expected:
        try:
            received += tls.read(65536)
            continue
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
        data = sock.recv(65536)
        if not data:
            break
        incoming.write(data)
    return bytes(received)


class ProxySocketTests(TestCase):
    """
    PROXY headers, then conversations, over TCP and over TLS started after the header.
    """

    timeout = 120

    def setUp(self) -> None:
        self.factory = OKEchoFactory(proxy_protocol=True, reactor=reactor)
        self.directory = Path(tempfile.mkdtemp())
        self.lines: list[str] = []

        def observe(event: Any) -> None:
            if event.get("log_namespace") == "twistsock":
                self.lines.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    # What RealSocketTests does to listen, connect and flood, reused as it is.
    listen = test_echo_sockets.RealSocketTests.listen
    close_all = test_echo_sockets.RealSocketTests.close_all
    tcp_client = test_echo_sockets.RealSocketTests.tcp_client
    tcp_endpoint = test_echo_sockets.RealSocketTests.tcp_endpoint
    check_backpressure = test_echo_sockets.RealSocketTests.check_backpressure

    @inlineCallbacks
    def wait_for(self, condition: Any) -> Generator[Deferred[Any], Any, None]:
        for _ in range(1000):
            if condition():
                return
            yield deferLater(reactor, 0.01, lambda: None)
        self.fail("condition never met")

    @inlineCallbacks
    def tls_port(self) -> Generator[Deferred[Any], Any, IListeningPort]:
        """
        A plain TCP port whose connections start TLS after their header.
        """
        key, cert = make_self_signed(self.directory)
        context = PrivateCertificate.loadPEM(key.read_text() + cert.read_text()).options()
        port: IListeningPort = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
            self.factory.tls_after_header(context)
        )
        self.addCleanup(self.close_all, port)
        return port

    @inlineCallbacks
    def test_real_client_logged(self) -> Generator[Deferred[Any], Any, None]:
        """
        The C{Connected with} and C{Disconnected} lines name the client of the header.
        """
        port = yield self.listen("tcp:0:interface=127.0.0.1")
        sock = self.tcp_client(port)

        def talk() -> bytes:
            sock.sendall(v1("192.0.2.7", 5555) + b"hi\n")
            sock.shutdown(socket.SHUT_WR)
            return recv_all(sock)

        self.assertEqual((yield deferToThread(talk)), WELCOME + b"OK...hi\n")
        yield self.wait_for(lambda: not self.factory.connections)
        self.assertEqual(self.lines[0], "Connected with 192.0.2.7:5555")
        self.assertTrue(self.lines[1].startswith("Disconnected 192.0.2.7:5555 after"))

    @inlineCallbacks
    def test_per_ip(self) -> Generator[Deferred[Any], Any, None]:
        """
        With C{max_per_ip} 2, a third client from one address is refused and a client
        from another address is served, all through one proxy address.
        """
        self.factory = OKEchoFactory(proxy_protocol=True, max_per_ip=2, reactor=reactor)
        port = yield self.listen("tcp:0:interface=127.0.0.1")
        socks = [self.tcp_client(port) for _ in range(4)]
        sources = ["192.0.2.7", "192.0.2.7", "192.0.2.7", "192.0.2.8"]

        def talk() -> list[bytes]:
            received = []
            for sock, source in zip(socks, sources, strict=True):
                sock.sendall(v2(source))
                received.append(recv_exactly(sock, len(WELCOME)))
            return received

        received = yield deferToThread(talk)
        self.assertEqual(
            [r[:18] for r in received],
            [WELCOME[:18], WELCOME[:18], b"ERROR server busy\n", WELCOME[:18]],
        )

    @inlineCallbacks
    def test_half_close(self) -> Generator[Deferred[Any], Any, None]:
        """
        Header, C{one\\ntwo\\ntail}, SHUT_WR: every reply arrives, the tail's too, then the
        server closes.
        """
        port = yield self.listen("tcp:0:interface=127.0.0.1")
        sock = self.tcp_client(port)

        def talk() -> bytes:
            sock.sendall(v1() + b"one\ntwo\ntail")
            sock.shutdown(socket.SHUT_WR)
            return recv_all(sock)

        self.assertEqual((yield deferToThread(talk)), WELCOME + b"OK...one\nOK...two\nOK...tail")

    @inlineCallbacks
    def test_split_header(self) -> Generator[Deferred[Any], Any, None]:
        """
        C{PROX}, then the rest of the header in a later segment: the connection is served.
        """
        port = yield self.listen("tcp:0:interface=127.0.0.1")
        sock = self.tcp_client(port)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        header = v2()
        sock.sendall(header[:4])
        yield self.wait_for(lambda: self.factory._awaiting)
        (server,) = self.factory._awaiting
        yield self.wait_for(lambda: server._proxy is not None and server._proxy._buffer)

        def rest() -> bytes:
            sock.sendall(header[4:] + b"x\n")
            return recv_exactly(sock, len(WELCOME) + 7)

        self.assertEqual((yield deferToThread(rest)), WELCOME + b"OK...x\n")

    @inlineCallbacks
    def test_tls_after_header(self) -> Generator[Deferred[Any], Any, None]:
        """
        HAProxy's C{ssl send-proxy}: the header in clear, then TLS, with the client's
        hello in the same segment as the header.  The welcome comes after the handshake
        (C{handshakeCompleted} reaches the protocol after C{startTLS}).
        """
        port = yield self.tls_port()
        sock = self.tcp_client(port)
        cafile = str(self.directory / "cert.pem")
        expected = WELCOME + b"OK...one\nOK...two\n"
        received = yield deferToThread(
            tls_conversation, sock, cafile, v1("192.0.2.9", 4444), b"one\ntwo\n", len(expected)
        )
        self.assertEqual(received, expected)
        self.assertEqual(self.lines[0], "Connected with 192.0.2.9:4444")

    def test_backpressure_tls_after_header(self) -> Deferred[None]:
        """
        Over TLS started after the header, a client that sends without reading is
        paused and cannot grow the server's buffers (the wrapper lost flow control).
        """

        server_buffered = test_echo_sockets.server_buffered

        def buffered(protocol: OKEchoProtocol) -> int:
            # The TLS layer is the connection's protocol now: count what it holds too.
            tls_layer: Any = protocol.transport.protocol  # type: ignore[attr-defined]
            return server_buffered(protocol) + len(tls_layer._appSendBuffer or [])

        self.patch(test_echo_sockets, "server_buffered", buffered)

        def check(port: IListeningPort) -> Deferred[None]:
            cert = Certificate.loadPEM((self.directory / "cert.pem").read_bytes())
            options = optionsForClientTLS("localhost", trustRoot=cert)
            address: Any = port.getHost()
            endpoint = HeaderFirstEndpoint(
                TCP4ClientEndpoint(reactor, address.host, address.port), v1()
            )
            return self.check_backpressure(port, wrapClientTLS(options, endpoint))

        return self.tls_port().addCallback(check)

    def test_backpressure_tcp(self) -> Deferred[None]:
        """
        Over TCP after the header the same holds.
        """

        def check(port: IListeningPort) -> Deferred[None]:
            return self.check_backpressure(
                port, HeaderFirstEndpoint(self.tcp_endpoint(port), v2())
            )

        return self.listen("tcp:0:interface=127.0.0.1").addCallback(check)
