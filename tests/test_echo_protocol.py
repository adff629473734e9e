"""
Tests for L{twistsock.echo._protocol} and L{twistsock.echo._factory}: the OK-echo protocol
and factory on in-memory transports.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IAddress, ISSLTransport
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.test.iosim import connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import directlyProvides

from tests._sockets import WELCOME
from tests.test_echo_framing import split_at
from twistsock import OKEchoFactory, OKEchoProtocol
from twistsock.echo._protocol import format_address

PEER = IPv4Address("TCP", "127.0.0.1", 40000)


def connect(
    factory: OKEchoFactory, peer: IAddress = PEER, tls: bool = False
) -> tuple[OKEchoProtocol, StringTransport]:
    """
    Connect a new protocol from C{factory} to a L{StringTransport} from C{peer}.
    """
    protocol = factory.buildProtocol(peer)
    assert isinstance(protocol, OKEchoProtocol)
    transport = StringTransport(peerAddress=peer)
    if tls:
        directlyProvides(transport, ISSLTransport)
    protocol.makeConnection(transport)
    return protocol, transport


def lose(protocol: OKEchoProtocol, reason: Exception | None = None) -> None:
    """
    Tell C{protocol} its connection is gone, cleanly unless a C{reason} is given.
    """
    protocol.connectionLost(Failure(reason or ConnectionDone()))


class ConversationTests(SynchronousTestCase):
    """
    The default line mode greets, then answers every line, in order.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = OKEchoFactory(reactor=self.clock)

    def test_welcome(self) -> None:
        """
        A new client gets exactly the tutorial's welcome line.
        """
        _, transport = connect(self.factory)
        self.assertEqual(transport.value(), WELCOME)

    def test_custom_welcome(self) -> None:
        """
        The welcome text is configurable, as text or bytes; a newline is added.
        """
        _, transport = connect(OKEchoFactory(welcome="héllo", reactor=self.clock))
        self.assertEqual(transport.value(), "héllo\n".encode())

    def test_no_welcome(self) -> None:
        """
        C{welcome=None} sends no greeting at all.
        """
        _, transport = connect(OKEchoFactory(welcome=None, reactor=self.clock))
        self.assertEqual(transport.value(), b"")

    def test_tutorial_conversation(self) -> None:
        """
        C{hi\\r\\nasd\\n} gets C{OK...hi\\r\\n} and C{OK...asd\\n}.
        """
        protocol, transport = connect(self.factory)
        transport.clear()
        protocol.dataReceived(b"hi\r\nasd\n")
        self.assertEqual(transport.value(), b"OK...hi\r\nOK...asd\n")

    def test_split_across_segments(self) -> None:
        """
        A line that arrives in pieces is answered once, whole, when it ends.
        """
        protocol, transport = connect(self.factory)
        transport.clear()
        for piece in (b"h", b"el", b"lo\r", b"\n"):
            protocol.dataReceived(piece)
        self.assertEqual(transport.value(), b"OK...hello\r\n")

    def test_one_write_per_chunk(self) -> None:
        """
        All the replies to one chunk go out in a single write.
        """
        protocol, transport = connect(self.factory)
        writes: list[bytes] = []
        transport.write = writes.append  # type: ignore[method-assign]
        protocol.dataReceived(b"a\nb\nc\n")
        self.assertEqual(writes, [b"OK...a\nOK...b\nOK...c\n"])

    def test_prefix(self) -> None:
        """
        The prefix is configurable, and may be empty (a line-exact echo).
        """
        protocol, transport = connect(OKEchoFactory(prefix="", welcome=None, reactor=self.clock))
        protocol.dataReceived(b"same\n")
        self.assertEqual(transport.value(), b"same\n")

    def test_iosim_conversation(self) -> None:
        """
        Over an in-memory connection (C{iosim}), a client sees the welcome and its replies.
        """
        received: list[bytes] = []

        class Client(Protocol):
            def connectionMade(self) -> None:
                self.transport.write(b"one\ntwo\r\n")  # type: ignore[union-attr]

            def dataReceived(self, data: bytes) -> None:
                received.append(data)

        client, server, pump = connectedServerAndClient(
            lambda: self.factory.buildProtocol(PEER), Client, clock=self.clock
        )
        pump.flush()
        self.assertEqual(b"".join(received), WELCOME + b"OK...one\nOK...two\r\n")


class SplitInvarianceTests(SynchronousTestCase):
    """
    What the protocol sends depends on the bytes received, never on how TCP split them.
    """

    @settings(max_examples=200, deadline=None)
    @given(
        stream=st.binary(max_size=200).map(lambda b: b.replace(b"\x00", b"\n")),
        cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=15),
        mode=st.sampled_from(["line", "once"]),
        eof=st.booleans(),
    )
    def test_any_split_same_replies(
        self, stream: bytes, cuts: list[int], mode: str, eof: bool
    ) -> None:
        """
        Any byte stream, split at arbitrary boundaries, yields the same replies, and the
        same limit error, as the stream sent whole; with or without a half-close at the end.
        """

        def run(pieces: list[bytes]) -> tuple[bytes, bool]:
            factory = OKEchoFactory(max_line_length=16, mode=mode, reactor=Clock())  # type: ignore[arg-type]
            protocol, transport = connect(factory)
            for piece in pieces:
                protocol.dataReceived(piece)
            if eof:
                protocol.readConnectionLost()
            return transport.value(), transport.disconnecting

        self.assertEqual(run(split_at(stream, cuts)), run([stream]))


class ModeTests(SynchronousTestCase):
    """
    The C{chunk} and C{once} modes behave like the tutorial's servers.
    """

    def setUp(self) -> None:
        self.clock = Clock()

    def test_chunk_mode(self) -> None:
        """
        In chunk mode every received chunk is answered as it came, framing or not.
        """
        protocol, transport = connect(OKEchoFactory(mode="chunk", reactor=self.clock))
        transport.clear()
        protocol.dataReceived(b"hel")
        protocol.dataReceived(b"lo\nworld\n")
        self.assertEqual(transport.value(), b"OK...helOK...lo\nworld\n")

    def test_once_mode(self) -> None:
        """
        In once mode the first line is answered, then the connection closes; the rest of
        the stream is ignored.
        """
        protocol, transport = connect(OKEchoFactory(mode="once", reactor=self.clock))
        transport.clear()
        protocol.dataReceived(b"fir")
        self.assertFalse(transport.disconnecting)
        protocol.dataReceived(b"st\nsecond\n")
        self.assertEqual(transport.value(), b"OK...first\n")
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(transport.producer)
        protocol.dataReceived(b"third\n")
        self.assertEqual(transport.value(), b"OK...first\n")

    def test_once_mode_half_close(self) -> None:
        """
        In once mode, a client that sends an unterminated line and shuts down its sending
        side gets that line answered, as the tutorial's loop server answered one recv.
        """
        protocol, transport = connect(
            OKEchoFactory(mode="once", welcome=None, prefix="", reactor=self.clock)
        )
        protocol.dataReceived(b"hi")
        protocol.readConnectionLost()
        self.assertEqual(transport.value(), b"hi")
        self.assertTrue(transport.disconnecting)

    def test_once_mode_too_long(self) -> None:
        """
        In once mode an over-long first line is an error too.
        """
        protocol, transport = connect(
            OKEchoFactory(mode="once", max_line_length=4, reactor=self.clock)
        )
        transport.clear()
        protocol.dataReceived(b"abcde")
        self.assertEqual(transport.value(), b"ERROR line too long (max 4 bytes)\n")
        self.assertTrue(transport.disconnecting)

    def test_invalid_mode(self) -> None:
        """
        An unknown mode is refused when the factory is made.
        """
        self.assertRaises(ValueError, OKEchoFactory, mode="lines")  # type: ignore[arg-type]


class LimitTests(SynchronousTestCase):
    """
    Every limit is on by default, configurable, and reported with one ERROR line.
    """

    def setUp(self) -> None:
        self.clock = Clock()

    def test_defaults(self) -> None:
        """
        The defaults bound everything: 64 KiB lines, 300 s idle, 10000 connections.
        """
        settings = OKEchoFactory(reactor=self.clock).settings
        self.assertEqual(
            (settings.max_line_length, settings.idle_timeout, settings.max_connections),
            (65536, 300.0, 10000),
        )
        self.assertEqual((settings.max_per_ip, settings.close_timeout), (0, 10.0))
        self.assertEqual(settings.line_timeout, 60.0)

    def test_line_too_long(self) -> None:
        """
        A line over the limit gets one ERROR line after the replies owed, then the
        connection closes; later bytes are ignored.
        """
        protocol, transport = connect(OKEchoFactory(max_line_length=8, reactor=self.clock))
        transport.clear()
        with capturedLogs() as events:
            protocol.dataReceived(b"ok\n" + b"x" * 9)
        self.assertEqual(transport.value(), b"OK...ok\nERROR line too long (max 8 bytes)\n")
        self.assertTrue(transport.disconnecting)
        protocol.dataReceived(b"more\n")
        self.assertEqual(transport.value(), b"OK...ok\nERROR line too long (max 8 bytes)\n")
        self.assertEqual(
            [e["problem"] for e in events if e.get("limit")], ["line too long (max 8 bytes)"]
        )

    def test_default_line_limit(self) -> None:
        """
        By default 65536 bytes without a terminator are too many.
        """
        protocol, transport = connect(OKEchoFactory(reactor=self.clock))
        protocol.dataReceived(b"x" * 65535)
        self.assertFalse(transport.disconnecting)
        protocol.dataReceived(b"x")
        self.assertTrue(transport.value().endswith(b"ERROR line too long (max 65536 bytes)\n"))

    def test_idle_timeout(self) -> None:
        """
        A client that sends nothing for the idle timeout gets C{ERROR idle timeout} and
        is disconnected (checked by a sweep once a second).
        """
        protocol, transport = connect(OKEchoFactory(idle_timeout=30, reactor=self.clock))
        transport.clear()
        self.clock.pump([1] * 29)
        self.assertFalse(transport.disconnecting)
        self.clock.pump([1] * 2)
        self.assertEqual(transport.value(), b"ERROR idle timeout\n")
        self.assertTrue(transport.disconnecting)

    def test_activity_postpones_idle_timeout(self) -> None:
        """
        Input resets the idle clock.
        """
        protocol, transport = connect(OKEchoFactory(idle_timeout=30, reactor=self.clock))
        self.clock.pump([1] * 20)
        protocol.dataReceived(b"x\n")
        self.clock.pump([1] * 29)
        self.assertFalse(transport.disconnecting)
        self.clock.pump([1] * 3)
        self.assertTrue(transport.disconnecting)

    def test_short_idle_timeout(self) -> None:
        """
        An idle timeout under a second is swept four times per timeout.
        """
        factory = OKEchoFactory(idle_timeout=0.2, reactor=self.clock)
        self.assertEqual(factory.settings.sweep_interval, 0.05)
        self.assertEqual(OKEchoFactory(reactor=self.clock).settings.sweep_interval, 1.0)
        protocol, transport = connect(factory)
        self.clock.pump([0.05] * 3)
        self.assertFalse(transport.disconnecting)
        self.clock.pump([0.05] * 3)
        self.assertTrue(transport.disconnecting)

    def test_one_timer_for_all_clients(self) -> None:
        """
        Idle connections cost no timer each: one sweep serves them all, and it stops when
        the last client leaves.
        """
        factory = OKEchoFactory(reactor=self.clock)
        clients = [connect(factory)[0] for _ in range(3)]
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        for client in clients:
            lose(client)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_idle_timeout_disabled(self) -> None:
        """
        An idle timeout of 0 never disconnects a quiet client; with the line timeout off
        too, no timer is scheduled at all.
        """
        protocol, transport = connect(OKEchoFactory(idle_timeout=0, reactor=self.clock))
        self.clock.pump([100] * 10_000)
        self.assertFalse(transport.disconnecting)
        clock = Clock()
        connect(OKEchoFactory(idle_timeout=0, line_timeout=0, reactor=clock))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_slow_sender_line_timeout(self) -> None:
        """
        A client that trickles one byte a second never goes idle, but its line times
        out (slowloris).
        """
        protocol, transport = connect(OKEchoFactory(line_timeout=10, reactor=self.clock))
        transport.clear()
        for _ in range(10):
            protocol.dataReceived(b"x")
            self.clock.advance(1)
        self.assertFalse(transport.disconnecting)
        for _ in range(2):
            protocol.dataReceived(b"x")
            self.clock.advance(1)
        self.assertEqual(transport.value(), b"ERROR line timeout (10 s)\n")
        self.assertTrue(transport.disconnecting)

    def test_streaming_lines_no_line_timeout(self) -> None:
        """
        A client whose reads always end mid-line, but whose lines keep completing, is not
        a slow sender.
        """
        protocol, transport = connect(OKEchoFactory(line_timeout=2, reactor=self.clock))
        protocol.dataReceived(b"a")
        for _ in range(100):
            self.clock.advance(1)
            protocol.dataReceived(b"\na")
        self.assertFalse(transport.disconnecting)

    def test_paused_client_no_line_timeout(self) -> None:
        """
        While the server has stopped reading a client (it does not read its replies), the
        rest of its line may be waiting unread in the kernel: no line timeout then.
        """
        factory = OKEchoFactory(line_timeout=2, idle_timeout=100, reactor=self.clock)
        protocol, transport = connect(factory)
        protocol.dataReceived(b"line\npartial")
        protocol.pauseProducing()
        self.clock.pump([1] * 10)
        self.assertFalse(transport.disconnecting)
        protocol.resumeProducing()
        self.clock.pump([1] * 4)
        self.assertTrue(transport.disconnecting)

    def test_paused_client_idle_reason(self) -> None:
        """
        A paused client that stays silent is closed by the idle timeout, with a reason
        that says it does not read its replies.
        """
        factory = OKEchoFactory(idle_timeout=5, reactor=self.clock)
        protocol, transport = connect(factory)
        protocol.pauseProducing()
        self.clock.pump([1] * 7)
        self.assertEqual(protocol._reason, "idle timeout, replies unread")

    def test_line_timeout_disabled(self) -> None:
        """
        A line timeout of 0 lets a line take as long as the idle timeout allows.
        """
        protocol, transport = connect(OKEchoFactory(line_timeout=0, reactor=self.clock))
        for _ in range(200):
            protocol.dataReceived(b"x")
            self.clock.advance(1)
        self.assertFalse(transport.disconnecting)

    def test_close_deadline(self) -> None:
        """
        A closing connection whose peer never reads is aborted after C{close_timeout}.
        """
        protocol, transport = connect(
            OKEchoFactory(idle_timeout=5, close_timeout=2, reactor=self.clock)
        )
        self.clock.pump([1] * 5)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.disconnected)
        self.clock.advance(2)
        self.assertTrue(transport.disconnected)

    def test_close_deadline_cancelled(self) -> None:
        """
        A connection that closes in time leaves no timer behind.
        """
        protocol, transport = connect(OKEchoFactory(idle_timeout=5, reactor=self.clock))
        self.clock.pump([1] * 5)
        lose(protocol)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_max_connections(self) -> None:
        """
        Past C{max_connections} a client gets C{ERROR server busy} and is closed; the
        others are unaffected, and a freed slot is reused.
        """
        factory = OKEchoFactory(max_connections=2, reactor=self.clock)
        first, first_transport = connect(factory)
        connect(factory)
        with capturedLogs() as events:
            third, third_transport = connect(factory)
        self.assertEqual(third_transport.value(), b"ERROR server busy\n")
        self.assertTrue(third_transport.disconnecting)
        self.assertEqual(factory.connections, 2)
        self.assertIn("server busy (max 2 connections)", [e.get("refusal") for e in events])
        lose(third)
        self.assertEqual(factory.connections, 2)
        first_transport.clear()
        first.dataReceived(b"still here\n")
        self.assertEqual(first_transport.value(), b"OK...still here\n")
        lose(first)
        _, fourth_transport = connect(factory)
        self.assertEqual(fourth_transport.value(), WELCOME)

    def test_every_refusal_logged(self) -> None:
        """
        Each refused connection gets its own log line.
        """
        factory = OKEchoFactory(max_connections=1, reactor=self.clock)
        connect(factory)
        with capturedLogs() as events:
            for _ in range(3):
                connect(factory)
        self.assertEqual(
            [formatEvent(e) for e in events if e.get("refusal")],
            ["Refused 127.0.0.1:40000: server busy (max 1 connections)"] * 3,
        )

    def test_refusal_flood_summarized(self) -> None:
        """
        Past ten refusals in a second, the rest are counted instead of logged, and the
        next line logged says how many.
        """
        factory = OKEchoFactory(max_connections=1, reactor=self.clock)
        connect(factory)
        with capturedLogs() as events:
            for _ in range(15):
                connect(factory)
            self.clock.advance(1)
            connect(factory)
        refusals = [formatEvent(e) for e in events if e.get("refusal")]
        line = "Refused 127.0.0.1:40000: server busy (max 1 connections)"
        self.assertEqual(refusals, [line] * 10 + [line + " (and 5 more not logged)"])

    def test_max_per_ip(self) -> None:
        """
        Past C{max_per_ip} connections from one address a client is refused, while other
        addresses are served.
        """
        factory = OKEchoFactory(max_per_ip=2, reactor=self.clock)
        one, _ = connect(factory)
        connect(factory, IPv4Address("TCP", "127.0.0.1", 40001))
        _, refused = connect(factory, IPv4Address("TCP", "127.0.0.1", 40002))
        self.assertEqual(refused.value(), b"ERROR server busy\n")
        _, other = connect(factory, IPv4Address("TCP", "10.0.0.2", 40000))
        self.assertEqual(other.value(), WELCOME)
        lose(one)
        _, again = connect(factory, IPv4Address("TCP", "127.0.0.1", 40003))
        self.assertEqual(again.value(), WELCOME)

    def test_max_per_ip_mapped_addresses(self) -> None:
        """
        An IPv4-mapped IPv6 address counts as its IPv4 address.
        """
        factory = OKEchoFactory(max_per_ip=1, reactor=self.clock)
        connect(factory)
        _, refused = connect(factory, IPv6Address("TCP", "::ffff:127.0.0.1", 40001))
        self.assertEqual(refused.value(), b"ERROR server busy\n")

    def test_unix_peers_have_no_ip_limit(self) -> None:
        """
        UNIX socket clients have no IP address, so the per-IP limit does not apply.
        """
        factory = OKEchoFactory(max_per_ip=1, reactor=self.clock)
        connect(factory, UNIXAddress(None))
        _, second = connect(factory, UNIXAddress(None))
        self.assertEqual(second.value(), WELCOME)

    def test_invalid_limits(self) -> None:
        """
        Nonsensical limits are refused when the factory is made.
        """
        for kwargs in (
            {"max_line_length": 0},
            {"max_connections": 0},
            {"idle_timeout": -1},
            {"idle_timeout": float("inf")},
            {"line_timeout": -1},
            {"close_timeout": float("nan")},
            {"max_per_ip": -1},
            {"close_timeout": -1},
        ):
            self.assertRaises(ValueError, OKEchoFactory, **kwargs)


class FlowControlTests(SynchronousTestCase):
    """
    Backpressure, half-close, TLS ordering and shutdown.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = OKEchoFactory(reactor=self.clock)

    def test_registered_as_streaming_producer(self) -> None:
        """
        The protocol registers itself as a streaming producer of its transport.
        """
        protocol, transport = connect(self.factory)
        self.assertIs(transport.producer, protocol)
        self.assertTrue(transport.streaming)

    def test_pause_stops_reading(self) -> None:
        """
        When the transport's buffer is full, the protocol stops reading the client, and
        reads again once it drained.
        """
        protocol, transport = connect(self.factory)
        protocol.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        protocol.resumeProducing()
        self.assertEqual(transport.producerState, "producing")

    def test_no_resume_while_closing(self) -> None:
        """
        A drained buffer does not restart reading on a connection that is closing.
        """
        protocol, transport = connect(OKEchoFactory(idle_timeout=1, reactor=self.clock))
        protocol.pauseProducing()
        self.clock.pump([0.25] * 4)
        protocol.resumeProducing()
        self.assertEqual(transport.producerState, "paused")

    def test_half_close(self) -> None:
        """
        When the client shuts down its sending side, it still gets every reply, including
        one for an unterminated last line, and then the server closes.
        """
        protocol, transport = connect(self.factory)
        transport.clear()
        protocol.dataReceived(b"a\nb\nlast")
        protocol.readConnectionLost()
        self.assertEqual(transport.value(), b"OK...a\nOK...b\nOK...last")
        self.assertIsNone(transport.producer)
        self.assertTrue(transport.disconnecting)

    def test_write_side_lost(self) -> None:
        """
        When nothing more can be sent, the connection is aborted at once.
        """
        protocol, transport = connect(self.factory)
        protocol.writeConnectionLost()
        self.assertTrue(transport.disconnected)

    def test_tls_waits_for_handshake(self) -> None:
        """
        On a TLS transport the welcome and the producer wait for the handshake: writing
        earlier would pause the producer and stall the handshake.
        """
        protocol, transport = connect(self.factory, tls=True)
        self.assertEqual(transport.value(), b"")
        self.assertIsNone(transport.producer)
        protocol.handshakeCompleted()
        self.assertEqual(transport.value(), WELCOME)
        self.assertIs(transport.producer, protocol)

    def test_shutdown(self) -> None:
        """
        L{OKEchoFactory.shutdown} closes every client, aborts the ones that have not gone
        after the timeout, and fires once all are gone.
        """
        one, one_transport = connect(self.factory)
        two, two_transport = connect(self.factory)
        done = self.factory.shutdown(1.0)
        self.assertTrue(one_transport.disconnecting and two_transport.disconnecting)
        lose(one)
        self.assertNoResult(done)
        self.clock.advance(1.0)
        self.assertTrue(two_transport.disconnected)
        lose(two, ConnectionLost())
        self.successResultOf(done)
        self.assertEqual(self.factory.connections, 0)

    def test_shutdown_shortens_deadline(self) -> None:
        """
        A connection already closing on the longer close timeout is aborted on the
        shutdown deadline instead.
        """
        factory = OKEchoFactory(idle_timeout=1, close_timeout=60, reactor=self.clock)
        protocol, transport = connect(factory)
        self.clock.pump([0.25] * 4)
        factory.shutdown(0.5)
        self.clock.advance(0.5)
        self.assertTrue(transport.disconnected)

    def test_shutdown_twice(self) -> None:
        """
        A second shutdown of the same connection gets a Deferred of its own, and both
        fire once the connection is gone.
        """
        protocol, transport = connect(self.factory)
        first = protocol.shutdown(1.0)
        second = protocol.shutdown(1.0)
        self.assertNoResult(first)
        self.assertNoResult(second)
        lose(protocol)
        self.successResultOf(first)
        self.successResultOf(second)

    def test_shutdown_keeps_earlier_deadline(self) -> None:
        """
        A later shutdown with a longer timeout does not postpone the abort.
        """
        protocol, transport = connect(self.factory)
        protocol.shutdown(1.0)
        protocol.shutdown(30.0)
        self.clock.advance(1.0)
        self.assertTrue(transport.disconnected)

    def test_factory_shutdown_twice(self) -> None:
        """
        Two factory shutdowns in a row both fire once every client is gone.
        """
        protocol, _ = connect(self.factory)
        first = self.factory.shutdown(1.0)
        second = self.factory.shutdown(1.0)
        lose(protocol)
        self.successResultOf(first)
        self.successResultOf(second)


class LoggingTests(SynchronousTestCase):
    """
    Connections are logged as the tutorial printed them, with a summary on leaving.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = OKEchoFactory(reactor=self.clock)

    def messages(self, events: list[dict[str, object]]) -> list[str]:
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in events]

    def test_connect_and_leave(self) -> None:
        """
        One line names the client on connect; one line sums up its visit when it leaves.
        """
        with capturedLogs() as events:
            protocol, _ = connect(self.factory)
            protocol.dataReceived(b"hi\n")
            self.clock.advance(2.5)
            lose(protocol)
        self.assertEqual(
            self.messages(list(events)),
            [
                "Connected with 127.0.0.1:40000",
                "Disconnected 127.0.0.1:40000 after 2.5 s: 1 lines, 3 bytes in, "
                f"{len(WELCOME) + 8} bytes out",
            ],
        )

    def test_no_connection_log(self) -> None:
        """
        Without the connection log a clean visit logs nothing, while limit hits, the
        connections they close, and refusals are still logged.
        """
        factory = OKEchoFactory(
            connection_log=False, max_line_length=4, max_connections=1, reactor=self.clock
        )
        with capturedLogs() as events:
            protocol, _ = connect(factory)
            protocol.dataReceived(b"hi\n")
            lose(protocol)
        self.assertEqual(self.messages(list(events)), [])
        with capturedLogs() as events:
            protocol, _ = connect(factory)
            connect(factory)
            protocol.dataReceived(b"toolong\n")
            lose(protocol)
        self.assertEqual(
            [m.split(":")[0] for m in self.messages(list(events))],
            ["Refused 127.0.0.1", "127.0.0.1", "Disconnected 127.0.0.1"],
        )

    def test_unclean(self) -> None:
        """
        A connection that did not end cleanly says why, without a traceback.
        """
        with capturedLogs() as events:
            protocol, _ = connect(self.factory)
            lose(protocol, ConnectionLost("Connection reset by peer"))
        last = self.messages(list(events))[-1]
        self.assertIn("Connection reset by peer", last)
        self.assertFalse([e for e in events if e.get("log_failure")])

    def test_format_address(self) -> None:
        """
        Addresses print as HOST:PORT, IPv6 bracketed, UNIX sockets by path.
        """
        self.assertEqual(format_address(IPv6Address("TCP", "::1", 80)), "[::1]:80")
        self.assertEqual(format_address(UNIXAddress(b"/tmp/s")), "unix:/tmp/s")
        self.assertEqual(format_address(UNIXAddress(None)), "unix:")


class StatsTests(SynchronousTestCase):
    """
    The factory counts what the server does, at no cost per reply.
    """

    def test_totals(self) -> None:
        """
        L{OKEchoFactory.totals} adds up connections open and closed: admitted, refused by
        reason, limits hit by kind, lines, bytes in and out.
        """
        clock = Clock()
        factory = OKEchoFactory(max_connections=2, max_line_length=8, reactor=clock)
        one, _ = connect(factory)
        two, _ = connect(factory)
        connect(factory)  # refused: max_connections
        one.dataReceived(b"a\nbb\n")
        two.dataReceived(b"x" * 9)  # line too long
        lose(two)
        totals = factory.totals()
        self.assertEqual(
            (totals.accepted, totals.current, totals.refused, totals.limits),
            (2, 1, {"max_connections": 1}, {"line_too_long": 1}),
        )
        self.assertEqual((totals.lines, totals.bytes_in), (2, 5 + 9))
        welcomes = 2 * len(WELCOME)
        error = len(b"ERROR line too long (max 8 bytes)\n")
        busy = len(b"ERROR server busy\n")
        self.assertEqual(totals.bytes_out, welcomes + len(b"OK...a\nOK...bb\n") + error)
        self.assertNotEqual(busy, 0)  # a refused connection's bytes are not counted
        lose(one)
        after = factory.totals()
        self.assertEqual((after.current, after.lines, after.bytes_in), (0, 2, 14))

    def test_timeouts_counted(self) -> None:
        """
        Idle and line timeouts are counted by kind.
        """
        clock = Clock()
        factory = OKEchoFactory(idle_timeout=1, line_timeout=1, reactor=clock)
        idle, _ = connect(factory)
        slow, _ = connect(factory)
        slow.dataReceived(b"partial")
        for _ in range(12):
            clock.advance(0.25)
            slow.dataReceived(b"x")
        self.assertEqual(factory.totals().limits, {"idle_timeout": 1, "line_timeout": 1})
