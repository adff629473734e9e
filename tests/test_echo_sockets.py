"""
The OK-echo server over real sockets on 127.0.0.1 (and a UNIX socket), in this process.

The server runs on the test's reactor; clients are plain blocking sockets in threads, the
way the tutorial's clients are written, so the server sees ordinary kernel sockets.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString, wrapClientTLS
from twisted.internet.interfaces import (
    IHandshakeListener,
    IListeningPort,
    IPullProducer,
    ISSLTransport,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from tests._certificates import make_self_signed
from tests._sockets import WELCOME, recv_all, recv_exactly
from twistsock import OKEchoFactory, OKEchoProtocol

reactor: Any = _reactor

#: A client that never reads must not make the server buffer more than this.
BUFFER_BOUND = 1024 * 1024
LINE = b"x" * 31 + b"\n"  # 32-byte lines
SEND_TOTAL = 64 * 1024 * 1024


def server_buffered(protocol: OKEchoProtocol) -> int:
    """
    Bytes the server holds for one client in user space: the TCP transport's write buffer
    (under the TLS layer, if any) plus the framer's partial line.
    """
    transport: Any = protocol.transport
    inner = getattr(transport, "transport", None)
    tcp = inner if inner is not None and hasattr(inner, "dataBuffer") else transport
    buffered = tcp._tempDataLen + len(tcp.dataBuffer) - tcp.offset
    buffered += len(getattr(transport, "_appSendBuffer", []) or [])
    framer = protocol._framer
    return int(buffered + (framer.buffered if framer is not None else 0))


@implementer(IPullProducer, IHandshakeListener)
class FloodClient(Protocol):
    """
    A client that writes 64 MiB of lines as fast as the connection takes them and reads
    nothing until told to; then it reads C{expected} bytes and fires L{done} with them.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.sent = 0
        self.received: list[bytes] = []
        self.count = 0
        self.done: Deferred[bytes] = Deferred()
        self.block = LINE * (65536 // len(LINE))

    def connectionMade(self) -> None:
        if not ISSLTransport.providedBy(self.transport):
            self.handshakeCompleted()

    def handshakeCompleted(self) -> None:
        # Over TLS, reading must go on until the handshake is complete.
        transport: Any = self.transport
        transport.pauseProducing()  # read nothing
        transport.registerProducer(self, False)

    def resumeProducing(self) -> None:
        transport: Any = self.transport
        if self.sent < SEND_TOTAL:
            self.sent += len(self.block)
            transport.write(self.block)
        else:
            transport.unregisterProducer()

    def stopProducing(self) -> None:
        pass

    def startReading(self) -> None:
        transport: Any = self.transport
        transport.resumeProducing()

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        self.count += len(data)
        if self.count >= self.expected and not self.done.called:
            transport: Any = self.transport
            transport.loseConnection()
            self.done.callback(b"".join(self.received))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.done.called:
            self.done.callback(b"".join(self.received))


class RealSocketTests(TestCase):
    """
    Conversations, half-close and backpressure over TCP, TLS and UNIX sockets.
    """

    timeout = 120

    def setUp(self) -> None:
        self.factory = OKEchoFactory(reactor=reactor)
        self.directory = Path(tempfile.mkdtemp())

    @inlineCallbacks
    def listen(self, description: str) -> Generator[Deferred[Any], Any, IListeningPort]:
        port: IListeningPort = yield serverFromString(reactor, description).listen(self.factory)
        self.addCleanup(self.close_all, port)
        return port

    @inlineCallbacks
    def close_all(self, port: IListeningPort) -> Generator[Deferred[Any], Any, None]:
        yield port.stopListening()
        yield self.factory.shutdown(1.0)

    def tcp_client(self, port: IListeningPort) -> socket.socket:
        address = port.getHost()
        sock = socket.create_connection((address.host, address.port), timeout=60)  # type: ignore[attr-defined]
        self.addCleanup(sock.close)
        return sock

    def tls_client(self, port: IListeningPort) -> socket.socket:
        context = ssl.create_default_context(cafile=str(self.directory / "cert.pem"))
        return context.wrap_socket(self.tcp_client(port), server_hostname="localhost")

    @inlineCallbacks
    def test_conversation(self) -> Generator[Deferred[Any], Any, None]:
        """
        A real client gets the welcome and one reply per line, with its own terminators.
        """
        port = yield self.listen("tcp:0:interface=127.0.0.1")
        sock = self.tcp_client(port)

        def talk() -> bytes:
            sock.sendall(b"hi\r\nasd\n")
            return recv_exactly(sock, len(WELCOME) + len(b"OK...hi\r\nOK...asd\n"))

        received = yield deferToThread(talk)
        self.assertEqual(received, WELCOME + b"OK...hi\r\nOK...asd\n")

    @inlineCallbacks
    def test_direct_write_on_plain_tcp_only(self) -> Generator[Deferred[Any], Any, None]:
        """
        Replies go straight to the socket on plain TCP, unless turned off; TLS and UNIX
        connections always use their transport's own C{write}.
        """
        key, cert = make_self_signed(self.directory)
        for description, direct_write, expected in [
            ("tcp:0:interface=127.0.0.1", True, True),
            ("tcp:0:interface=127.0.0.1", False, False),
            (f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}", True, False),
            (f"unix:{self.directory / 'direct.sock'}", True, False),
        ]:
            self.factory = OKEchoFactory(direct_write=direct_write, reactor=reactor)
            port = yield self.listen(description)
            address: Any = port.getHost()
            sock = (
                socket.socket(socket.AF_UNIX)
                if description.startswith("unix")
                else socket.socket(socket.AF_INET)
            )
            self.addCleanup(sock.close)
            sock.connect(
                address.name if description.startswith("unix") else (address.host, address.port)
            )
            while not self.factory._clients:
                yield deferLater(reactor, 0.01, lambda: None)
            (server,) = self.factory._clients
            self.assertEqual(server._direct, expected, description)

    @inlineCallbacks
    def test_unix_socket(self) -> Generator[Deferred[Any], Any, None]:
        """
        The factory serves a UNIX socket endpoint just the same.
        """
        path = self.directory / "echo.sock"
        yield self.listen(f"unix:{path}")
        sock = socket.socket(socket.AF_UNIX)
        self.addCleanup(sock.close)
        sock.settimeout(60)

        def talk() -> bytes:
            sock.connect(str(path))
            sock.sendall(b"over unix\n")
            return recv_exactly(sock, len(WELCOME) + len(b"OK...over unix\n"))

        self.assertEqual((yield deferToThread(talk)), WELCOME + b"OK...over unix\n")

    @inlineCallbacks
    def test_half_close(self) -> Generator[Deferred[Any], Any, None]:
        """
        A client that sends 200,000 lines and shuts down its write side receives every
        reply, then the server closes.
        """
        port = yield self.listen("tcp:0:interface=127.0.0.1")
        sock = self.tcp_client(port)
        count = 200_000
        payload = b"line\n" * count
        received: list[bytes] = []

        def reader() -> None:
            received.append(recv_all(sock))

        def writer() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        reading = deferToThread(reader)
        yield deferToThread(writer)
        yield reading
        self.assertEqual(received[0], WELCOME + b"OK...line\n" * count)

    @inlineCallbacks
    def check_backpressure(
        self, port: IListeningPort, endpoint: IStreamClientEndpoint
    ) -> Generator[Deferred[Any], Any, None]:
        """
        Send 64 MiB of lines without reading; check the server stops reading and keeps
        its buffers bounded; then read everything and check every reply arrived.

        The client is a Twisted protocol on the same reactor (a blocking TLS socket cannot
        be written and read from two threads at once).
        """
        lines = SEND_TOTAL // len(LINE)
        expected = len(WELCOME) + lines * (5 + len(LINE))
        client = yield endpoint.connect(Factory.forProtocol(lambda: FloodClient(expected)))
        while not self.factory._clients:
            yield deferLater(reactor, 0.01, lambda: None)
        (server,) = self.factory._clients
        peak = still = 0
        last = -1
        # Wait until the client's writes are stuck: the server has stopped reading.
        while still < 25 and client.sent < SEND_TOTAL:
            yield deferLater(reactor, 0.02, lambda: None)
            peak = max(peak, server_buffered(server))
            still = still + 1 if client.sent == last else 0
            last = client.sent
        self.assertLess(client.sent, SEND_TOTAL, "the server never pushed back")
        self.assertTrue(server._paused, "the server kept reading from a client that does not")
        client.startReading()
        while not client.done.called:
            peak = max(peak, server_buffered(server))
            yield deferLater(reactor, 0.01, lambda: None)
        self.assertLessEqual(peak, BUFFER_BOUND)
        data = yield client.done
        self.assertEqual(len(data), expected)
        # Compared as a flag: a diff of 70 MB would bury the failure.
        self.assertTrue(data == WELCOME + (b"OK..." + LINE) * lines, "replies differ")

    def tcp_endpoint(self, port: IListeningPort) -> IStreamClientEndpoint:
        address: Any = port.getHost()
        return TCP4ClientEndpoint(reactor, address.host, address.port)

    def test_backpressure_tcp(self) -> Deferred[None]:
        """
        Over TCP a client that sends without reading cannot grow the server's buffers.
        """
        listening = self.listen("tcp:0:interface=127.0.0.1")
        return listening.addCallback(
            lambda port: self.check_backpressure(port, self.tcp_endpoint(port))
        )

    def test_backpressure_tls(self) -> Deferred[None]:
        """
        Over TLS the same holds, and the handshake completes although the server has a
        welcome line to send (no deadlock between the greeting and flow control).
        """
        key, cert = make_self_signed(self.directory)
        listening = self.listen(f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}")
        trust = Certificate.loadPEM(cert.read_bytes())

        def check(port: IListeningPort) -> Deferred[None]:
            options = optionsForClientTLS("localhost", trustRoot=trust)
            return self.check_backpressure(port, wrapClientTLS(options, self.tcp_endpoint(port)))

        return listening.addCallback(check)

    @inlineCallbacks
    def test_tls_conversation(self) -> Generator[Deferred[Any], Any, None]:
        """
        A TLS client gets the welcome and its replies.
        """
        key, cert = make_self_signed(self.directory)
        port = yield self.listen(f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}")

        def talk() -> bytes:
            sock = self.tls_client(port)
            sock.sendall(b"secret\r\n")
            return recv_exactly(sock, len(WELCOME) + len(b"OK...secret\r\n"))

        self.assertEqual((yield deferToThread(talk)), WELCOME + b"OK...secret\r\n")

    @inlineCallbacks
    def test_peer_that_never_reads_is_aborted(self) -> Generator[Deferred[Any], Any, None]:
        """
        A client that sends without reading, then goes quiet, is closed by the idle
        timeout; since it never reads, the replies the server still holds can never be
        flushed, and the close timeout aborts the connection instead of waiting forever.
        """
        self.factory = OKEchoFactory(idle_timeout=0.5, close_timeout=0.5, reactor=reactor)
        port = yield self.listen("tcp:0:interface=127.0.0.1")
        sock = self.tcp_client(port)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        while not self.factory._clients:
            yield deferLater(reactor, 0.01, lambda: None)
        (server,) = self.factory._clients
        aborted: list[bool] = []
        transport: Any = server.transport
        real_abort = transport.abortConnection

        def abortConnection() -> None:
            aborted.append(bool(server_buffered(server)))
            real_abort()

        transport.abortConnection = abortConnection
        # Send until the server stops reading: it then holds replies it cannot flush.
        block = LINE * 2048
        stuck = 0
        while stuck < 20:
            try:
                sock.send(block)
                stuck = 0
            except BlockingIOError:
                stuck += 1
                yield deferLater(reactor, 0.01, lambda: None)
        self.assertTrue(server._paused)
        started = time.monotonic()
        while self.factory._clients and time.monotonic() - started < 10:
            yield deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(self.factory.connections, 0)
        self.assertEqual(server._reason, "idle timeout, replies unread")
        self.assertEqual(aborted, [True], "closed without an abort, or with nothing pending")
