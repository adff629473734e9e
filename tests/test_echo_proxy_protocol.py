"""
The OK-echo protocol with C{proxy_protocol}: the PROXY header read by the protocol itself,
on in-memory transports (the five defects of Twisted's C{haproxy:} wrapper, each in
memory; over real sockets in C{tests/test_echo_proxy_sockets.py}).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress, ISSLTransport
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import alsoProvides

from tests._sockets import WELCOME
from tests.test_echo_framing import split_at
from tests.test_echo_protocol import connect, lose
from tests.test_echo_proxy import v1, v2
from twistsock import OKEchoFactory, OKEchoProtocol

#: The load balancer's address: the socket peer of every proxied connection.
PROXY = IPv4Address("TCP", "127.0.0.1", 40000)


def messages(events: Any) -> list[str]:
    """
    The text of every captured log event.
    """
    return [formatEvent(e) for e in events]


class StartTLSTransport(StringTransport):
    """
    A L{StringTransport} that records C{startTLS} the way a TCP connection does it: it
    then provides L{ISSLTransport}, and what it reads goes to a new C{protocol}.
    """

    def __init__(self, peerAddress: IAddress) -> None:
        super().__init__(peerAddress=peerAddress)
        self.tls_context: object = None
        self.protocol: Any = None
        self.tls_received: list[bytes] = []

    def startTLS(self, context: object, normal: bool = True) -> None:
        self.tls_context = context
        alsoProvides(self, ISSLTransport)
        received = self.tls_received

        class TLSLayer(Protocol):
            def dataReceived(self, data: bytes) -> None:
                received.append(data)

        self.protocol = TLSLayer()


class ProxyProtocolTests(SynchronousTestCase):
    """
    Nothing happens before the header; then the client it names is served.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = OKEchoFactory(proxy_protocol=True, reactor=self.clock)

    def test_nothing_before_header(self) -> None:
        """
        Before the header the client is neither admitted, counted, logged nor greeted
        (the C{haproxy:} wrapper logs and greets the proxy).
        """
        with capturedLogs() as events:
            protocol, transport = connect(self.factory, PROXY)
            protocol.dataReceived(v1()[:-1])
        self.assertEqual((transport.value(), messages(events)), (b"", []))
        self.assertEqual(self.factory.connections, 0)
        self.assertIsNone(transport.producer)

    def test_real_client_everywhere(self) -> None:
        """
        The header's source is the peer of the C{Connected with} and C{Disconnected} lines.
        """
        with capturedLogs() as events:
            protocol, transport = connect(self.factory, PROXY)
            protocol.dataReceived(v1("192.0.2.7", 5555))
            protocol.dataReceived(b"hi\n")
            lose(protocol)
        self.assertEqual(transport.value(), WELCOME + b"OK...hi\n")
        self.assertEqual(
            messages(events),
            [
                "Connected with 192.0.2.7:5555",
                "Disconnected 192.0.2.7:5555 after 0.0 s: 1 lines, 3 bytes in, "
                f"{len(WELCOME) + 8} bytes out",
            ],
        )

    def test_v2_ipv6(self) -> None:
        """
        A version 2 header over IPv6 names the client the same way.
        """
        with capturedLogs() as events:
            protocol, _ = connect(self.factory, PROXY)
            protocol.dataReceived(v2("2001:db8::7", 6666))
        self.assertEqual(messages(events), ["Connected with [2001:db8::7]:6666"])

    def test_data_after_header(self) -> None:
        """
        The client's bytes behind the header in the same segment are answered, after the
        welcome; they alone count as bytes in.
        """
        protocol, transport = connect(self.factory, PROXY)
        protocol.dataReceived(v2() + b"one\ntwo\n")
        self.assertEqual(transport.value(), WELCOME + b"OK...one\nOK...two\n")
        self.assertEqual(protocol._bytes_in, 8)

    def test_local_and_unknown_use_socket_peer(self) -> None:
        """
        A v2 LOCAL header (HAProxy's health check) and UNKNOWN headers name no client:
        the socket's own peer is logged, counted and greeted.
        """
        for header in (v2(command=0), v2(family=0x00), v2(family=0x31), b"PROXY UNKNOWN\r\n"):
            with capturedLogs() as events:
                protocol, transport = connect(self.factory, PROXY)
                protocol.dataReceived(header + b"x\n")
            self.assertEqual(messages(events), ["Connected with 127.0.0.1:40000"], header)
            self.assertEqual(transport.value(), WELCOME + b"OK...x\n")

    def test_per_ip_counts_real_clients(self) -> None:
        """
        C{max_per_ip} counts the clients the headers name, not the proxy: two from
        192.0.2.7 are served, a third is refused, and one from 192.0.2.8 is served.
        """
        factory = OKEchoFactory(proxy_protocol=True, max_per_ip=2, reactor=self.clock)
        transports = []
        with capturedLogs() as events:
            for source in ("192.0.2.7", "192.0.2.7", "192.0.2.7", "192.0.2.8"):
                protocol, transport = connect(factory, PROXY)
                protocol.dataReceived(v1(source, 1000 + len(transports)))
                transports.append(transport)
        self.assertEqual(
            [t.value() for t in transports], [WELCOME, WELCOME, b"ERROR server busy\n", WELCOME]
        )
        self.assertIn(
            "Refused 192.0.2.7:1002: server busy (max 2 connections per IP)", messages(events)
        )
        self.assertEqual(factory._per_ip, {"192.0.2.7": 2, "192.0.2.8": 1})

    def test_half_close(self) -> None:
        """
        Header, C{one\\ntwo\\ntail}, then the client's EOF: every reply is sent, the
        unterminated tail too, then the connection closes (the wrapper drops them).
        """
        protocol, transport = connect(self.factory, PROXY)
        protocol.dataReceived(v1() + b"one\ntwo\ntail")
        protocol.readConnectionLost()
        self.assertEqual(transport.value(), WELCOME + b"OK...one\nOK...two\nOK...tail")
        self.assertTrue(transport.disconnecting)

    @settings(max_examples=200, deadline=None)
    @given(
        header=st.sampled_from([v1(), v1("2001:db8::1", family="TCP6"), v2(), v2(command=0)]),
        cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=8),
    )
    def test_split_header(self, header: bytes, cuts: list[int]) -> None:
        """
        A header split anywhere, even into single bytes, works as when it arrives whole
        (the wrapper drops a first read under 8 or 16 bytes).
        """

        def run(pieces: list[bytes]) -> tuple[bytes, list[str]]:
            factory = OKEchoFactory(proxy_protocol=True, reactor=Clock())
            with capturedLogs() as events:
                protocol, transport = connect(factory, PROXY)
                for piece in pieces:
                    protocol.dataReceived(piece)
            return transport.value(), messages(events)

        stream = header + b"a\nb"
        whole = run([stream])
        self.assertEqual(whole[0], WELCOME + b"OK...a\n")
        self.assertEqual(run(split_at(stream, cuts)), whole)
        self.assertEqual(run([bytes([b]) for b in stream]), whole)

    def test_flow_control_after_header(self) -> None:
        """
        Once the header is read the protocol is its transport's streaming producer, as on
        any connection (the wrapper loses flow control under TLS).
        """
        protocol, transport = connect(self.factory, PROXY)
        protocol.dataReceived(v1())
        self.assertIs(transport.producer, protocol)
        protocol.pauseProducing()
        self.assertEqual(transport.producerState, "paused")

    def test_untrusted_proxy(self) -> None:
        """
        A connection from outside C{proxy_from} is refused before any header is read:
        one log line, nothing sent, closed.
        """
        with capturedLogs() as events:
            protocol, transport = connect(self.factory, IPv4Address("TCP", "192.0.2.1", 7))
            protocol.dataReceived(v1())
        self.assertEqual(
            messages(events), ["Refused 192.0.2.1:7: not a trusted proxy (see --proxy-from)"]
        )
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.factory._awaiting, set())
        self.assertEqual(self.factory.totals().refused, {"untrusted_proxy": 1})

    def test_trusted_networks(self) -> None:
        """
        C{proxy_from} networks are trusted (IPv4-mapped addresses as IPv4), and UNIX
        socket peers are (the socket file's permissions decide who connects).
        """
        factory = OKEchoFactory(
            proxy_protocol=True, proxy_from=("10.0.0.0/8", "2001:db8::/32"), reactor=self.clock
        )
        for peer, trusted in [
            (IPv4Address("TCP", "10.1.2.3", 1), True),
            (IPv6Address("TCP", "::ffff:10.1.2.3", 1), True),
            (IPv6Address("TCP", "2001:db8::5", 1), True),
            (IPv4Address("TCP", "127.0.0.1", 1), False),
            (IPv6Address("TCP", "::1", 1), False),
            (UNIXAddress(b"/run/echo.sock"), True),
        ]:
            protocol, transport = connect(factory, peer)
            protocol.dataReceived(v1())
            self.assertEqual(transport.value() == WELCOME, trusted, peer)

    def test_garbage(self) -> None:
        """
        A client that sends no header is closed with one log line and no welcome.
        """
        with capturedLogs() as events:
            protocol, transport = connect(self.factory, PROXY)
            protocol.dataReceived(b"hello\n")
            lose(protocol)
        self.assertEqual(
            messages(events), ["Refused 127.0.0.1:40000: bad PROXY header (not a PROXY header)"]
        )
        self.assertEqual(self.factory.totals().refused, {"bad_proxy_header": 1})
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)

    def test_waiting_count_toward_max_connections(self) -> None:
        """
        Connections still waiting for their header count toward C{max_connections}: past
        it, another is refused at once, and a client that then sends its header is
        refused too, so headers that never come cannot exhaust the server.
        """
        factory = OKEchoFactory(proxy_protocol=True, max_connections=2, reactor=self.clock)
        first, _ = connect(factory, PROXY)
        second, _ = connect(factory, PROXY)
        with capturedLogs() as events:
            third, transport = connect(factory, PROXY)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(
            messages(events), ["Refused 127.0.0.1:40000: server busy (max 2 connections)"]
        )
        self.assertEqual(factory.totals().refused, {"max_connections": 1})
        first.dataReceived(v1("192.0.2.7", 5555))
        self.assertEqual(factory.connections, 1)
        lose(second)
        fourth, transport = connect(factory, PROXY)
        fourth.dataReceived(v1("192.0.2.8", 5555))
        self.assertEqual(factory.connections, 2)
        self.assertEqual(transport.value(), WELCOME)

    def test_header_timeout(self) -> None:
        """
        A header that does not arrive within C{proxy_header_timeout} (checked by the
        factory's sweep, not a timer per connection) closes the connection, with one log
        line and no welcome.
        """
        factory = OKEchoFactory(proxy_protocol=True, proxy_header_timeout=2, reactor=self.clock)
        with capturedLogs() as events:
            protocol, transport = connect(factory, PROXY)
            connect(factory, PROXY)
            self.assertEqual(len(self.clock.getDelayedCalls()), 1)
            protocol.dataReceived(b"PROXY TCP4")
            self.clock.pump([0.5] * 3)
            self.assertFalse(transport.disconnecting)
            self.clock.pump([0.5] * 2)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(
            messages(events), ["Refused 127.0.0.1:40000: no PROXY header within 2 s"] * 2
        )
        self.assertEqual(factory.totals().refused, {"proxy_header_timeout": 2})
        self.assertEqual(factory.totals().accepted, 0)

    def test_sweep_stops(self) -> None:
        """
        The sweep stops once no connection awaits its header and none is served.
        """
        protocol, _ = connect(self.factory, PROXY)
        lose(protocol)
        self.assertEqual(self.factory._awaiting, set())
        self.clock.advance(1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_gone_before_header(self) -> None:
        """
        A connection that goes away before its header (a port scan, a TCP health check)
        is forgotten without a log line; one that half-closes is closed.
        """
        with capturedLogs() as events:
            protocol, _ = connect(self.factory, PROXY)
            lose(protocol)
            protocol, transport = connect(self.factory, PROXY)
            protocol.dataReceived(b"PRO")
            protocol.readConnectionLost()
        self.assertEqual(messages(events), [])
        self.assertTrue(transport.disconnecting)

    def test_shutdown_closes_waiting(self) -> None:
        """
        A server shutdown closes connections still waiting for their header.
        """
        protocol, transport = connect(self.factory, PROXY)
        done = self.factory.shutdown(1.0)
        self.assertTrue(transport.disconnecting)
        lose(protocol)
        self.successResultOf(done)

    def test_tls_after_header(self) -> None:
        """
        On a port made by L{OKEchoFactory.tls_after_header} TLS starts right after the
        header; the bytes behind the header go to the TLS layer, and the welcome and flow
        control wait for the handshake.
        """
        context = object()
        port_factory = self.factory.tls_after_header(context)  # type: ignore[arg-type]
        protocol = port_factory.buildProtocol(PROXY)
        assert isinstance(protocol, OKEchoProtocol)
        transport = StartTLSTransport(PROXY)
        with capturedLogs() as events:
            protocol.makeConnection(transport)
            protocol.dataReceived(v1() + b"\x16\x03\x01hello")
        self.assertIs(transport.tls_context, context)
        self.assertEqual(transport.tls_received, [b"\x16\x03\x01hello"])
        self.assertEqual(messages(events), ["Connected with 192.0.2.7:5555"])
        self.assertEqual((transport.value(), transport.producer), (b"", None))
        protocol.handshakeCompleted()
        self.assertEqual(transport.value(), WELCOME)
        self.assertIs(transport.producer, protocol)

    def test_tls_after_header_needs_proxy_protocol(self) -> None:
        """
        TLS after a header makes no sense without headers.
        """
        factory = OKEchoFactory(reactor=self.clock)
        self.assertRaises(ValueError, factory.tls_after_header, object())

    def test_plain_unchanged(self) -> None:
        """
        Without C{proxy_protocol} a header is just a line, echoed.
        """
        protocol, transport = connect(OKEchoFactory(reactor=self.clock), PROXY)
        protocol.dataReceived(v1())
        self.assertEqual(transport.value(), WELCOME + b"OK..." + v1())
