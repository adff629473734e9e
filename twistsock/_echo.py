"""
The OK-echo server: L{OKEchoProtocol} and L{OKEchoFactory}.

This is the tutorial's threaded server (greet each client, answer every message with
C{OK...} and the message) on one reactor, with what real software needs around it: exact line
framing (L{twistsock._framing}), limits on line length, idle time and connections, flow control
for clients that send without reading, half-close, TLS, and clean shutdown.

Data flows one way: transport -> L{OKEchoProtocol.dataReceived} -> L{LineFramer} -> one
C{write} of all the replies a chunk produced.  Limits and timers live here, at the protocol
layer; the framer knows nothing of them.
"""

from __future__ import annotations

import ipaddress
import math
from typing import TYPE_CHECKING, Any, Literal, cast

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IHalfCloseableProtocol,
    IHandshakeListener,
    IPushProducer,
    IReactorTime,
    ISSLTransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twistsock._directwrite import can_send_directly, send_now
from twistsock._framing import LineFramer, LineTooLong

if TYPE_CHECKING:
    from twisted.internet.interfaces import ITransport

__all__ = ["Mode", "OKEchoFactory", "OKEchoProtocol", "format_address"]

Mode = Literal["line", "chunk", "once"]
MODES: tuple[Mode, ...] = ("line", "chunk", "once")

DEFAULT_WELCOME = b"Welcome to the server. Type something and hit enter"
DEFAULT_PREFIX = b"OK..."
DEFAULT_MAX_LINE_LENGTH = 65536
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_LINE_TIMEOUT = 60.0
DEFAULT_MAX_CONNECTIONS = 10000
DEFAULT_MAX_PER_IP = 0
DEFAULT_CLOSE_TIMEOUT = 10.0
#: Refused connections logged one by one in any second; more are counted, not logged.
REFUSALS_LOGGED_PER_SECOND = 10

_log = Logger(namespace="twistsock")


def format_address(address: IAddress | None) -> str:
    """
    Format a peer address the way the tutorial printed it: C{HOST:PORT}.

    IPv6 hosts are bracketed (C{[::1]:40000}); UNIX socket peers, which have no host or
    port, are shown as C{unix:PATH} (C{unix:} alone for an unnamed client socket).
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        if ":" in host:
            return f"[{host}]:{port}"
        return f"{host}:{port}"
    if hasattr(address, "name"):
        name = getattr(address, "name", None)
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return f"unix:{name or ''}"
    return str(address)


def _client_ip(address: IAddress | None) -> str | None:
    """
    The IP address a per-IP limit counts a peer under, or L{None} when it has none.

    IPv4-mapped IPv6 addresses (C{::ffff:192.0.2.1}, seen on dual-stack listeners) count as
    their IPv4 address, so one client cannot double its allowance by changing socket family.
    """
    host = getattr(address, "host", None)
    if not isinstance(host, str):
        return None
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _as_bytes(value: bytes | str, name: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    raise TypeError(f"{name} must be bytes or str, not {type(value).__name__}")


@implementer(IHalfCloseableProtocol, IHandshakeListener, IPushProducer)
class OKEchoProtocol(Protocol):
    """
    One client of the OK-echo server.

    Greets the client, then answers according to the factory's mode:
      - C{line}: every line gets prefix + the line + its own terminator;
      - C{chunk}: every received chunk gets prefix + the chunk (the tutorial's framing,
        which depends on how TCP happened to split the stream);
      - C{once}: the first line is answered, then the connection closes.

    The protocol registers itself as a streaming producer on its transport: when the client
    stops reading and the transport's write buffer passes its high-water mark, Twisted calls
    L{pauseProducing} and the protocol stops reading from the client, so a client that sends
    without reading cannot grow the server's memory.  On TLS transports the greeting and the
    producer wait for the handshake (see L{handshakeCompleted}).
    """

    factory: OKEchoFactory
    transport: ITransport

    # Slots instead of an instance dict: 10,000 idle connections should cost little.  The
    # attributes Twisted sets (factory, transport, connected) are slots too, so that no
    # dict is ever made (about 230 bytes less per connection).
    __slots__ = (
        "factory", "transport", "connected",
        "_framer", "_ip", "_started", "_active", "_idle_since", "_bytes_in",
        "_bytes_out", "_chunks", "_direct", "_abort_call", "_producing", "_paused",
        "_closing", "_reason", "_lost", "_gone", "_once", "_lines_seen", "_line_since",
    )  # fmt: skip

    def __init__(self) -> None:
        self.connected = 0
        self.factory = None  # type: ignore[assignment]
        self.transport = None  # type: ignore[assignment]
        self._framer: LineFramer | None = None
        self._ip: str | None = None
        self._started = 0.0
        self._active = False
        self._idle_since = 0.0
        self._lines_seen = -1
        self._line_since = 0.0
        self._bytes_in = 0
        self._bytes_out = 0
        self._chunks = 0
        self._direct = False
        self._once = False
        self._abort_call: IDelayedCall | None = None
        self._producing = False
        self._paused = False
        self._closing = False
        self._reason: str | None = None
        self._lost: Deferred[None] | None = None
        self._gone = False

    # -- connection lifecycle ----------------------------------------------------------

    def connectionMade(self) -> None:
        """
        Admit the client (or refuse it when a connection limit is reached), then greet it.
        """
        factory = self.factory
        clock = factory.clock
        self._started = self._idle_since = clock.seconds()
        if factory.max_per_ip:
            self._ip = _client_ip(self.transport.getPeer())
        refusal = factory._admit(self)
        if refusal is not None:
            factory._log_refusal(self._peer_text(), refusal)
            self._reason = refusal
            self._write(b"ERROR server busy\n")
            self._close(factory.close_timeout)
            return
        _log.info("Connected with {peer}", peer=self._peer_text())
        if factory.mode != "chunk":
            self._framer = LineFramer(factory.prefix, factory.max_line_length)
            self._once = factory.mode == "once"
        self._direct = factory.direct_write and can_send_directly(self.transport)
        if not ISSLTransport.providedBy(self.transport):
            self._greet()

    def _peer_text(self) -> str:
        """
        The client's address for log lines, computed when needed rather than stored.
        """
        return format_address(self.transport.getPeer())

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake finished: greet the client and start flow control now.

        Writing before the handshake makes the TLS layer buffer the bytes and pause the
        producer, which would stop reading the client's handshake: a deadlock.
        """
        if not self._closing:
            self._greet()

    def _greet(self) -> None:
        """
        Start flow control and send the welcome line.
        """
        cast(IConsumer, self.transport).registerProducer(self, True)
        self._producing = True
        welcome = self.factory.welcome
        if welcome is not None:
            self._write(welcome)

    def readConnectionLost(self) -> None:
        """
        The client shut down its sending side: answer what it sent, flush, then close.
        """
        if self._closing:
            return
        if self._framer is not None:
            # An unterminated last line is answered in once mode too, as the
            # tutorial's loop server answered whatever one recv returned.
            tail = self._framer.finish()
            if tail:
                self._write(tail)
        self._close(self.factory.close_timeout)

    def writeConnectionLost(self) -> None:
        """
        Our sending side is gone: nothing more can be answered, so close.
        """
        self._close(0)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Release the connection's slot and timers and log how it went.
        """
        self._gone = True
        if self._abort_call is not None and self._abort_call.active():
            self._abort_call.cancel()
        self._abort_call = None
        if self in self.factory._clients:  # admitted, not refused
            self.factory._release(self)
            duration = self.factory.clock.seconds() - self._started
            lines = self._framer.lines if self._framer is not None else self._chunks
            why = self._reason
            if why is None and not reason.check(ConnectionDone):
                why = reason.getErrorMessage()
            _log.info(
                "Disconnected {peer} after {duration:.1f} s: {lines} lines, "
                "{bytes_in} bytes in, {bytes_out} bytes out{why}",
                peer=self._peer_text(),
                duration=duration,
                lines=lines,
                bytes_in=self._bytes_in,
                bytes_out=self._bytes_out,
                why=f" ({why})" if why else "",
            )
        if self._lost is not None:
            lost, self._lost = self._lost, None
            lost.callback(None)

    # -- receiving ---------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """
        Frame the bytes and answer every line they complete with one write.
        """
        if self._closing:
            return
        self._bytes_in += len(data)
        self._active = True
        framer = self._framer
        if framer is None:
            self._chunks += 1
            self._write(self.factory.prefix + data)
            return
        try:
            if self._once:
                reply = framer.feed_one(data)
                if reply is not None:
                    self._write(reply)
                    self._close(self.factory.close_timeout)
                return
            replies = framer.feed(data)
        except LineTooLong as e:
            self._write(e.replies)
            self._fail(f"line too long (max {e.limit} bytes)")
            return
        if replies:
            self._write(replies)

    def _write(self, data: bytes) -> None:
        """
        Send C{data}, straight to the socket when L{twistsock._directwrite} allows it.
        """
        if data:
            self._bytes_out += len(data)
            if self._direct:
                send_now(self.transport, data)
            else:
                self.transport.write(data)

    # -- flow control (IPushProducer) --------------------------------------------------

    def pauseProducing(self) -> None:
        """
        The client is not reading its replies fast enough: stop reading its requests.
        """
        self._paused = True
        cast(IPushProducer, self.transport).pauseProducing()

    def resumeProducing(self) -> None:
        """
        The replies drained: read requests again.
        """
        self._paused = False
        if not self._closing:
            cast(IPushProducer, self.transport).resumeProducing()

    def stopProducing(self) -> None:
        """
        The transport is going away; L{connectionLost} does the cleanup.
        """

    # -- timeouts and closing ----------------------------------------------------------

    def _sweep_check(self, now: float) -> None:
        """
        Called by the factory's sweep: enforce the idle timeout and the line timeout.

        Reading only sets a flag; the sweep turns the flag into a timestamp.  That keeps
        both the clock and a timer per connection off the path of every read, and a
        timer object out of every idle connection's memory.

        The line timeout stops a slow sender (slowloris): a client that trickles one
        byte at a time never goes idle, but its line never ends either.  A line is
        "the same line" while the framer holds a partial line and no line has completed
        since the last sweep.
        """
        if self._closing:
            return
        factory = self.factory
        if self._active:
            self._active = False
            self._idle_since = now
        elif factory.idle_timeout and now - self._idle_since >= factory.idle_timeout:
            # A paused client is one the server stopped reading because it does not
            # read its replies; say so rather than blame it for silence.
            self._fail("idle timeout" if not self._paused else "idle timeout, replies unread")
            return
        framer = self._framer
        if self._paused:
            # The rest of the line may be waiting, unread, in the kernel: the server
            # stopped reading, so the line's clock starts again when it resumes.
            self._line_since = now
        elif factory.line_timeout and framer is not None:
            if framer.buffered and framer.lines == self._lines_seen:
                if now - self._line_since >= factory.line_timeout:
                    self._fail(f"line timeout ({factory.line_timeout:g} s)")
            else:
                # A new unfinished line (or none): start its clock.
                self._lines_seen = framer.lines if framer.buffered else -1
                self._line_since = now

    def _fail(self, problem: str) -> None:
        """
        A limit was hit: tell the client in one C{ERROR} line, log it, and close.
        """
        _log.warn(
            "{peer}: {problem}; closing", peer=self._peer_text(), problem=problem, limit=True
        )
        self._reason = problem
        self._write(b"ERROR " + problem.encode("ascii") + b"\n")
        self._close(self.factory.close_timeout)

    def _close(self, timeout: float) -> None:
        """
        Close after the pending replies are flushed, but abort after C{timeout} seconds.

        C{loseConnection} waits for the write buffer to drain, forever if the peer never
        reads (Twisted #5619), so every close has a deadline.  The producer is unregistered
        first: with a producer registered, or over TLS (Twisted #8992), the transport
        would never finish closing.
        """
        if self._closing:
            return
        self._closing = True
        if self._producing:
            self._producing = False
            cast(IConsumer, self.transport).unregisterProducer()
        if timeout <= 0:
            self._abort()
            return
        self.transport.loseConnection()
        if not self._gone:
            self._abort_call = self.factory.clock.callLater(timeout, self._abort)

    def _abort(self) -> None:
        """
        The close deadline passed: drop the connection and whatever it still holds.
        """
        self._abort_call = None
        if not self._gone:
            abort = getattr(self.transport, "abortConnection", None)
            if abort is not None:
                abort()
            else:
                self.transport.loseConnection()

    def shutdown(self, timeout: float) -> Deferred[None]:
        """
        Close this connection for a server shutdown: flush, close, abort after C{timeout}.

        @return: a L{Deferred} that fires once the connection is gone.
        """
        if self._gone:
            return succeed(None)
        self._lost = Deferred()
        lost = self._lost
        if self._closing:
            # Already closing on a longer deadline: shorten it.
            if self._abort_call is not None and self._abort_call.active():
                self._abort_call.reset(timeout)
        else:
            self._reason = self._reason or "server shutting down"
            self._close(timeout)
        return lost


class OKEchoFactory(Factory):
    """
    Builds L{OKEchoProtocol} instances and holds the limits they share.

    Works with any stream server endpoint (TCP, TLS, UNIX, HAProxy, systemd)::

        serverFromString(reactor, "tcp:8888").listen(OKEchoFactory())

    Every argument is keyword-only and every limit is on by default.

    @param welcome: the greeting sent on connect, without its terminator (a C{b"\\n"} is
        added); L{None} sends nothing.
    @param prefix: put before every reply.
    @param mode: C{"line"} (default), C{"chunk"} or C{"once"}; see L{OKEchoProtocol}.
    @param max_line_length: the longest line accepted, in bytes, terminator included.  A
        longer line gets C{ERROR line too long (max N bytes)} and the connection closes.
    @param idle_timeout: seconds without receiving anything before the connection is closed
        with C{ERROR idle timeout}; C{0} disables.
    @param line_timeout: seconds a line may take to arrive, from the sweep that first sees
        it unfinished; a longer one gets C{ERROR line timeout (N s)} and the connection
        closes.  This bounds slow senders, which the idle timeout cannot; C{0} disables.
    @param max_connections: connections served at once; more get C{ERROR server busy}.
    @param max_per_ip: connections from one client IP at once; C{0} means no limit.
    @param close_timeout: seconds a closing connection gets to flush its replies before it
        is aborted (a client that never reads cannot hold a connection open).
    @param direct_write: on plain TCP connections, send replies straight to the socket when
        nothing is queued instead of waiting for the next reactor turn (see
        L{twistsock._directwrite}); C{False} always uses C{transport.write}.
    @param reactor: the clock for the timers (any L{IReactorTime}, such as
        L{twisted.internet.task.Clock} in tests); the global reactor by default.
    """

    protocol = OKEchoProtocol  # type: ignore[assignment]
    noisy = False

    def __init__(
        self,
        *,
        welcome: bytes | str | None = DEFAULT_WELCOME,
        prefix: bytes | str = DEFAULT_PREFIX,
        mode: Mode = "line",
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        line_timeout: float = DEFAULT_LINE_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_per_ip: int = DEFAULT_MAX_PER_IP,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        direct_write: bool = True,
        reactor: IReactorTime | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        for name, value in (
            ("max_line_length", max_line_length),
            ("max_connections", max_connections),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        for name, number in (
            ("idle_timeout", idle_timeout),
            ("line_timeout", line_timeout),
            ("max_per_ip", max_per_ip),
            ("close_timeout", close_timeout),
        ):
            if not math.isfinite(number) or number < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {number}")
        self.welcome = None if welcome is None else _as_bytes(welcome, "welcome") + b"\n"
        self.prefix = _as_bytes(prefix, "prefix")
        self.mode: Mode = mode
        self.max_line_length = max_line_length
        self.idle_timeout = float(idle_timeout)
        self.line_timeout = float(line_timeout)
        #: How often connections are checked for the idle and line timeouts: once a
        #: second, or four times per timeout when that is shorter.  A client is
        #: disconnected between the timeout and the timeout plus two intervals after it
        #: last made progress.
        self.sweep_interval = min(
            [1.0] + [t / 4 for t in (self.idle_timeout, self.line_timeout) if t > 0]
        )
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.close_timeout = float(close_timeout)
        self.direct_write = direct_write
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = cast(IReactorTime, globalReactor)
        self.clock: IReactorTime = reactor
        self._clients: set[OKEchoProtocol] = set()
        self._per_ip: dict[str, int] = {}
        self._sweep_call: IDelayedCall | None = None
        self._refusal_window = -math.inf
        self._refusals_in_window = 0
        self._refusals_unlogged = 0

    @property
    def connections(self) -> int:
        """
        The number of clients being served now (refused connections are not counted).
        """
        return len(self._clients)

    def _admit(self, protocol: OKEchoProtocol) -> str | None:
        """
        Count a new client in, or return why it is refused.
        """
        if len(self._clients) >= self.max_connections:
            return f"server busy (max {self.max_connections} connections)"
        ip = protocol._ip
        if ip is not None and self.max_per_ip:
            if self._per_ip.get(ip, 0) >= self.max_per_ip:
                return f"server busy (max {self.max_per_ip} connections per IP)"
            self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        self._clients.add(protocol)
        if (self.idle_timeout or self.line_timeout) and self._sweep_call is None:
            self._sweep_call = self.clock.callLater(self.sweep_interval, self._sweep)
        return None

    def _sweep(self) -> None:
        """
        Check every client for idleness; one timer for the whole server.
        """
        self._sweep_call = None
        if not self._clients:
            return
        now = self.clock.seconds()
        for client in list(self._clients):
            client._sweep_check(now)
        if self._clients:
            self._sweep_call = self.clock.callLater(self.sweep_interval, self._sweep)

    def _log_refusal(self, peer: str, refusal: str) -> None:
        """
        Log a refused connection: one line each, up to L{REFUSALS_LOGGED_PER_SECOND} in a
        second; past that a flood of connections must not become a flood of log lines,
        so the rest are counted, and the next line logged says how many were not.
        """
        now = self.clock.seconds()
        if now - self._refusal_window >= 1.0:
            self._refusal_window = now
            self._refusals_in_window = 0
        if self._refusals_in_window >= REFUSALS_LOGGED_PER_SECOND:
            self._refusals_unlogged += 1
            return
        self._refusals_in_window += 1
        unlogged, self._refusals_unlogged = self._refusals_unlogged, 0
        _log.warn(
            "Refused {peer}: {refusal}{more}",
            peer=peer,
            refusal=refusal,
            more=f" (and {unlogged} more not logged)" if unlogged else "",
            limit=True,
        )

    def _release(self, protocol: OKEchoProtocol) -> None:
        self._clients.discard(protocol)
        if not self._clients and self._sweep_call is not None:
            self._sweep_call.cancel()
            self._sweep_call = None
        ip = protocol._ip
        if ip is not None and self.max_per_ip:
            left = self._per_ip.get(ip, 0) - 1
            if left > 0:
                self._per_ip[ip] = left
            else:
                self._per_ip.pop(ip, None)

    def shutdown(self, timeout: float = 1.0) -> Deferred[Any]:
        """
        Close every client: pending replies are flushed, stragglers aborted after C{timeout}.

        @return: a L{Deferred} that fires when every connection is gone.
        """
        waiting = [client.shutdown(timeout) for client in list(self._clients)]
        return DeferredList(waiting, consumeErrors=True)
