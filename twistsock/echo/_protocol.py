"""
L{OKEchoProtocol}: one client of the OK-echo server.

This is the tutorial's threaded server (greet each client, answer every message with
C{OK...} and the message) as a Twisted protocol, with what real software needs around it:
exact line framing (L{twistsock.echo._framing}), limits on line length and idle time, flow
control for clients that send without reading, half-close, TLS, and clean shutdown.
Admission and the timers shared by all clients live in L{twistsock.echo._factory}.

Data flows one way: transport -> L{OKEchoProtocol.dataReceived} -> L{LineFramer} -> one
C{write} of all the replies a chunk produced.  Limits and timers live here, at the protocol
layer; the framer knows nothing of them.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IHalfCloseableProtocol,
    IHandshakeListener,
    IOpenSSLServerConnectionCreator,
    IPushProducer,
    ISSLTransport,
    ITLSTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twistsock._twisted import can_send_directly, send_now, tls_received
from twistsock.echo._framing import LineFramer, LineTooLong
from twistsock.echo._proxy import InvalidProxyHeader, ProxyHeaderReader

if TYPE_CHECKING:
    from twisted.internet.interfaces import IOpenSSLContextFactory, ITransport

    from twistsock.echo._factory import OKEchoFactory

__all__ = ["OKEchoProtocol", "client_ip", "format_address"]

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


def client_ip(address: IAddress | None) -> str | None:
    """
    The IP address a per-IP limit counts a peer under, or C{None} when it has none.

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

    With L{EchoSettings.proxy_protocol<twistsock.echo.EchoSettings.proxy_protocol>} the
    connection starts with a PROXY header from a load balancer, read here from the
    transport itself (no wrapping protocol, so half-close, flow control and the TLS
    handshake reach this protocol as on any other connection).  Until the header is read
    the client is neither admitted, counted, logged nor greeted; then the client the
    header names is.
    """

    factory: OKEchoFactory
    transport: ITransport

    # Slots instead of an instance dict: 10,000 idle connections should cost little.  The
    # attributes Twisted sets (factory, transport, connected) are slots too, so that no
    # dict is ever made.
    __slots__ = (
        "factory", "transport", "connected",
        "_framer", "_ip", "_started", "_active", "_idle_since", "_bytes_in",
        "_bytes_out", "_chunks", "_direct", "_abort_call", "_producing", "_paused",
        "_closing", "_reason", "_lost", "_gone", "_once", "_lines_seen", "_line_since",
        # PROXY protocol: the header reader until the header is read, the client the
        # header names, and the TLS context to start after the header.
        "_proxy", "_peer", "_tls",
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
        self._lost: list[Deferred[None]] | None = None
        self._gone = False
        self._proxy: ProxyHeaderReader | None = None
        self._peer: IAddress | None = None
        self._tls: IOpenSSLContextFactory | None = None

    # -- connection lifecycle ----------------------------------------------------------

    def connectionMade(self) -> None:
        """
        Admit the client (or refuse it when a connection limit is reached), then greet it;
        with the PROXY protocol, wait for the header first.
        """
        factory = self.factory
        self._started = self._idle_since = factory.clock.seconds()
        if factory.settings.proxy_protocol:
            self._await_proxy_header()
            return
        self._begin()

    def _begin(self) -> None:
        """
        Admit the client, or refuse it when a connection limit is reached, then greet it.
        """
        factory = self.factory
        settings = factory.settings
        if settings.max_per_ip:
            self._ip = client_ip(self._peer or self.transport.getPeer())
        refusal = factory._admit(self)
        if refusal is not None:
            factory._log_refusal(self._peer_text(), refusal)
            self._reason = refusal
            self._write(b"ERROR server busy\n")
            self._close(settings.close_timeout)
            return
        if settings.connection_log:
            _log.info("Connected with {peer}", peer=self._peer_text())
        if settings.mode != "chunk":
            self._framer = LineFramer(settings.prefix, settings.max_line_length)
            self._once = settings.mode == "once"
        self._direct = settings.direct_write and can_send_directly(self.transport)
        if not ISSLTransport.providedBy(self.transport):
            self._greet()

    @property
    def lines(self) -> int:
        """
        The lines answered so far (in chunk mode, the chunks).
        """
        return self._framer.lines if self._framer is not None else self._chunks

    def _peer_text(self) -> str:
        """
        The client's address for log lines, computed when needed rather than stored.
        """
        return format_address(self._peer or self.transport.getPeer())

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
        welcome = self.factory.settings.welcome_line
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
        self._close(self.factory.settings.close_timeout)

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
        if self._proxy is not None:
            self.factory._awaiting.discard(self)
        if self._abort_call is not None and self._abort_call.active():
            self._abort_call.cancel()
        self._abort_call = None
        if self in self.factory._clients:  # admitted, not refused
            lines = self.lines
            self.factory._release(self, lines)
            why = self._reason
            if why is None and not reason.check(ConnectionDone):
                why = reason.getErrorMessage()
            if why is not None or self.factory.settings.connection_log:
                _log.info(
                    "Disconnected {peer} after {duration:.1f} s: {lines} lines, "
                    "{bytes_in} bytes in, {bytes_out} bytes out{why}",
                    peer=self._peer_text(),
                    duration=self.factory.clock.seconds() - self._started,
                    lines=lines,
                    bytes_in=self._bytes_in,
                    bytes_out=self._bytes_out,
                    why=f" ({why})" if why else "",
                )
        self._fire_lost()

    def _fire_lost(self) -> None:
        """
        Fire the Deferreds of every L{shutdown} waiting for this connection to go.
        """
        if self._lost is not None:
            waiting, self._lost = self._lost, None
            for lost in waiting:
                lost.callback(None)

    # -- receiving ---------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """
        Frame the bytes and answer every line they complete with one write.
        """
        if self._closing:
            return
        if self._proxy is not None:
            data = self._read_proxy_header(data)
            if not data:
                return
        self._bytes_in += len(data)
        self._active = True
        framer = self._framer
        if framer is None:
            self._chunks += 1
            self._write(self.factory.settings.prefix + data)
            return
        try:
            if self._once:
                reply = framer.feed_one(data)
                if reply is not None:
                    self._write(reply)
                    self._close(self.factory.settings.close_timeout)
                return
            replies = framer.feed(data)
        except LineTooLong as e:
            self._write(e.replies)
            self._fail(f"line too long (max {e.limit} bytes)", "line_too_long")
            return
        if replies:
            self._write(replies)

    def _write(self, data: bytes) -> None:
        """
        Send C{data}, straight to the socket when L{twistsock._twisted.send_now} allows it.
        """
        if data:
            self._bytes_out += len(data)
            if self._direct:
                send_now(self.transport, data)
            else:
                self.transport.write(data)

    # -- PROXY protocol ----------------------------------------------------------------

    def _await_proxy_header(self) -> None:
        """
        Refuse a connection from outside C{proxy_from}; otherwise start reading the header,
        with the factory's sweep as its deadline (see L{_proxy_header_check}).

        UNIX socket peers have no address to check: who may connect is decided by the
        socket file's permissions.
        """
        factory = self.factory
        ip = client_ip(self.transport.getPeer())
        if ip is not None and not factory._trusted_proxy(ip):
            self._refuse("untrusted_proxy", "not a trusted proxy (see --proxy-from)")
            return
        # A connection waiting for its header holds a descriptor like a client does, so
        # it counts toward max_connections: headers that never come cannot exhaust them.
        limit = factory.settings.max_connections
        if len(factory._clients) + len(factory._awaiting) >= limit:
            self._refuse("max_connections", f"server busy (max {limit} connections)")
            return
        self._proxy = ProxyHeaderReader()
        factory._await_header(self)

    def _read_proxy_header(self, data: bytes) -> bytes:
        """
        Feed received bytes to the header reader; once the header is complete, begin
        serving the client it names.

        @return: the client's own bytes that followed the header, to be handled as
            received; C{b""} when there are none to handle here (the header is still
            incomplete, was garbage, or TLS now decrypts them).
        """
        proxy = self._proxy
        assert proxy is not None
        try:
            parsed = proxy.feed(data)
        except InvalidProxyHeader as e:
            self._refuse("bad_proxy_header", f"bad PROXY header ({e.reason})")
            return b""
        if parsed is None:
            return b""
        header, rest = parsed
        self._proxy = None
        self.factory._awaiting.discard(self)
        # LOCAL (a health check) and UNKNOWN name no client: the socket's peer is it.
        self._peer = header.source
        tls = self._tls
        if tls is not None:
            self._tls = None
            # The bytes after the header are the client's TLS handshake: the TLS layer
            # is started first and decrypts them (the welcome waits for the handshake).
            # startTLS takes context factories too (converted by twisted.protocols.tls).
            cast(ITLSTransport, self.transport).startTLS(
                cast(IOpenSSLServerConnectionCreator, tls)
            )
            self._begin()
            if rest and not self._gone:
                tls_received(self.transport, rest)
            return b""
        self._begin()
        return b"" if self._closing else rest

    def _refuse(self, kind: str, why: str) -> None:
        """
        Close a connection that has not begun (no header yet): one log line, no reply,
        counted among the refusals as C{kind}.
        """
        self._proxy = None
        self.factory._awaiting.discard(self)
        self.factory.stats.refused[kind] += 1
        self.factory._log_refusal(self._peer_text(), why)
        self._reason = why
        self._close(self.factory.settings.close_timeout)

    def _proxy_header_check(self, now: float) -> None:
        """
        Called by the factory's sweep while the header is awaited: enforce its deadline.
        """
        timeout = self.factory.settings.proxy_header_timeout
        if not self._closing and now - self._started >= timeout:
            self._refuse("proxy_header_timeout", f"no PROXY header within {timeout:g} s")

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
        settings = self.factory.settings
        if self._active:
            self._active = False
            self._idle_since = now
        elif settings.idle_timeout and now - self._idle_since >= settings.idle_timeout:
            # A paused client is one the server stopped reading because it does not
            # read its replies; say so rather than blame it for silence.
            why = "idle timeout" if not self._paused else "idle timeout, replies unread"
            self._fail(why, "idle_timeout")
            return
        framer = self._framer
        if self._paused:
            # The rest of the line may be waiting, unread, in the kernel: the server
            # stopped reading, so the line's clock starts again when it resumes.
            self._line_since = now
        elif settings.line_timeout and framer is not None:
            if framer.buffered and framer.lines == self._lines_seen:
                if now - self._line_since >= settings.line_timeout:
                    self._fail(f"line timeout ({settings.line_timeout:g} s)", "line_timeout")
            else:
                # A new unfinished line (or none): start its clock.
                self._lines_seen = framer.lines if framer.buffered else -1
                self._line_since = now

    def _fail(self, problem: str, kind: str) -> None:
        """
        A limit was hit: tell the client in one C{ERROR} line, log it, count it (C{kind}
        names the limit in the factory's statistics), and close.
        """
        self.factory.stats.limits[kind] += 1
        _log.warn(
            "{peer}: {problem}; closing", peer=self._peer_text(), problem=problem, limit=True
        )
        self._reason = problem
        self._write(b"ERROR " + problem.encode("ascii") + b"\n")
        self._close(self.factory.settings.close_timeout)

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
        # Every caller gets a Deferred of its own: a second shutdown must not orphan the
        # first caller's.
        lost: Deferred[None] = Deferred()
        if self._lost is None:
            self._lost = []
        self._lost.append(lost)
        if self._closing:
            # Already closing: keep the earlier of the two deadlines.
            call = self._abort_call
            if call is not None and call.active():
                if call.getTime() - self.factory.clock.seconds() > timeout:
                    call.reset(timeout)
        else:
            self._reason = self._reason or "server shutting down"
            self._close(timeout)
        return lost
