"""
L{OKEchoFactory}: admission of clients, the timers they share, and shutdown.

One factory serves any number of listening endpoints.  It counts clients (in all and per
IP address), refuses those over a limit with one C{ERROR server busy} line, sweeps every
client for the idle and line timeouts with one timer for the whole server, and closes
them all on shutdown.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections import Counter
from typing import Any, cast

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IOpenSSLContextFactory,
    IProtocolFactory,
    IReactorTime,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import implementer

from twistsock.echo._protocol import OKEchoProtocol
from twistsock.echo._settings import DEFAULT_SHUTDOWN_TIMEOUT, EchoSettings

__all__ = ["EchoStats", "EchoTotals", "OKEchoFactory", "REFUSALS_LOGGED_PER_SECOND"]

REFUSALS_LOGGED_PER_SECOND = 10
"""Refused connections logged one by one in any second; more are counted, not logged."""

_log = Logger(namespace="twistsock")


@dataclasses.dataclass(frozen=True)
class EchoTotals:
    """
    What a server has done since it started: a snapshot of L{EchoStats}.

    @ivar accepted: connections admitted.
    @ivar current: connections being served now.
    @ivar refused: connections refused, by reason (C{"max_connections"}, C{"max_per_ip"};
        with the PROXY protocol C{"untrusted_proxy"}, C{"bad_proxy_header"} and
        C{"proxy_header_timeout"}).
    @ivar limits: limits hit, by kind (C{"line_too_long"}, C{"idle_timeout"},
        C{"line_timeout"}).
    @ivar lines: lines (or, in chunk mode, chunks) answered.
    @ivar bytes_in: bytes received from clients.
    @ivar bytes_out: bytes sent to clients.
    """

    accepted: int
    current: int
    refused: dict[str, int]
    limits: dict[str, int]
    lines: int
    bytes_in: int
    bytes_out: int


class EchoStats:
    """
    The server's running counts, kept as plain integers so that counting costs nothing on
    the path of a reply: lines and bytes are added up from the connections themselves when
    a snapshot is taken (L{OKEchoFactory.totals}), and from each connection once, as it
    closes.
    """

    def __init__(self) -> None:
        self.accepted = 0
        self.refused: Counter[str] = Counter()
        self.limits: Counter[str] = Counter()
        self.closed_lines = 0
        self.closed_bytes_in = 0
        self.closed_bytes_out = 0


class OKEchoFactory(Factory):
    """
    Builds L{OKEchoProtocol} instances and holds the limits they share.

    Works with any stream server endpoint (TCP, TLS, UNIX, systemd)::

        serverFromString(reactor, "tcp:8888").listen(OKEchoFactory())

    Behind a load balancer, use C{proxy_protocol=True} rather than Twisted's C{haproxy:}
    endpoint, whose wrapper greets and counts the proxy instead of the client and loses
    half-close, flow control and the TLS handshake; for TLS behind HAProxy's
    C{ssl send-proxy}, see L{tls_after_header}.

    Every limit is on by default.  The settings come from an L{EchoSettings}, from
    keyword arguments named like its fields (C{OKEchoFactory(max_connections=100)}), or
    from both (the keywords then override the settings given).

    @ivar settings: the L{EchoSettings} in force.
    @ivar clock: the L{IReactorTime} the timers run on.
    """

    protocol = OKEchoProtocol  # type: ignore[assignment]
    noisy = False

    def __init__(
        self,
        settings: EchoSettings | None = None,
        *,
        reactor: IReactorTime | None = None,
        **changes: Any,
    ) -> None:
        """
        @param settings: the server's settings; L{EchoSettings()} (every default) if
            C{None}.
        @param reactor: the clock for the timers (any L{IReactorTime}, such as
            L{twisted.internet.task.Clock} in tests); the global reactor by default.
        @param changes: settings to change, by the names of L{EchoSettings}' fields.
        @raise twistsock.echo.InvalidSetting: when a value is out of its range.
        @raise TypeError: when a keyword names no setting.
        """
        if settings is None:
            settings = EchoSettings(**changes)
        elif changes:
            settings = dataclasses.replace(settings, **changes)
        self.settings = settings
        self._sweep_interval = settings.sweep_interval  # computed once
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = cast(IReactorTime, global_reactor)
        self.clock: IReactorTime = reactor
        self._clients: set[OKEchoProtocol] = set()
        #: What the server has done: see L{totals}.
        self.stats = EchoStats()
        self._per_ip: dict[str, int] = {}
        self._sweep_call: IDelayedCall | None = None
        self._refusal_window = -math.inf
        self._refusals_in_window = 0
        self._refusals_unlogged = 0
        # PROXY protocol: connections whose header is awaited (not admitted yet), and
        # the networks trusted to send headers.
        self._awaiting: set[OKEchoProtocol] = set()
        self._proxy_networks = tuple(ipaddress.ip_network(n) for n in settings.proxy_from)

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
        settings = self.settings
        if len(self._clients) + len(self._awaiting) >= settings.max_connections:
            self.stats.refused["max_connections"] += 1
            return f"server busy (max {settings.max_connections} connections)"
        ip = protocol._ip
        if ip is not None and settings.max_per_ip:
            if self._per_ip.get(ip, 0) >= settings.max_per_ip:
                self.stats.refused["max_per_ip"] += 1
                return f"server busy (max {settings.max_per_ip} connections per IP)"
            self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        self._clients.add(protocol)
        self.stats.accepted += 1
        if (settings.idle_timeout or settings.line_timeout) and self._sweep_call is None:
            self._sweep_call = self.clock.callLater(self._sweep_interval, self._sweep)
        return None

    # -- PROXY protocol ----------------------------------------------------------------

    def _trusted_proxy(self, ip: str) -> bool:
        """
        May a connection from C{ip} send a PROXY header (is it in C{proxy_from})?
        """
        address = ipaddress.ip_address(ip)
        return any(address in network for network in self._proxy_networks)

    def _await_header(self, protocol: OKEchoProtocol) -> None:
        """
        Put a connection on the sweep's list until its PROXY header arrives.
        """
        self._awaiting.add(protocol)
        if self._sweep_call is None:
            self._sweep_call = self.clock.callLater(self._sweep_interval, self._sweep)

    def tls_after_header(self, context: IOpenSSLContextFactory) -> IProtocolFactory:
        """
        A factory for a plain TCP port whose connections start TLS after their PROXY
        header, as HAProxy's C{server ... ssl send-proxy} sends it (the header in clear,
        then the TLS handshake).  Its connections are this factory's clients, under the
        same limits::

            port = serverFromString(reactor, "tcp:8443").listen(
                factory.tls_after_header(contextFactory)
            )

        @param context: the server's TLS settings (certificate and key), such as a
            L{twisted.internet.ssl.CertificateOptions}.
        @raise ValueError: when this factory does not expect PROXY headers.
        """
        if not self.settings.proxy_protocol:
            raise ValueError("tls_after_header needs proxy_protocol=True")
        return _TLSAfterHeader(self, context)

    def _sweep(self) -> None:
        """
        Check every client for idleness; one timer for the whole server.
        """
        self._sweep_call = None
        if not self._clients and not self._awaiting:
            return
        now = self.clock.seconds()
        for client in list(self._clients):
            client._sweep_check(now)
        for waiting in list(self._awaiting):
            waiting._proxy_header_check(now)
        if self._clients or self._awaiting:
            self._sweep_call = self.clock.callLater(self._sweep_interval, self._sweep)

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

    def totals(self) -> EchoTotals:
        """
        What the server has done so far, the connections still open included.
        """
        stats = self.stats
        lines, bytes_in, bytes_out = (
            stats.closed_lines,
            stats.closed_bytes_in,
            stats.closed_bytes_out,
        )
        for client in self._clients:
            lines += client.lines
            bytes_in += client._bytes_in
            bytes_out += client._bytes_out
        return EchoTotals(
            accepted=stats.accepted,
            current=len(self._clients),
            refused=dict(stats.refused),
            limits=dict(stats.limits),
            lines=lines,
            bytes_in=bytes_in,
            bytes_out=bytes_out,
        )

    def _release(self, protocol: OKEchoProtocol, lines: int) -> None:
        """
        Count a client out: it is gone, having answered C{lines} lines.
        """
        self._clients.discard(protocol)
        stats = self.stats
        stats.closed_lines += lines
        stats.closed_bytes_in += protocol._bytes_in
        stats.closed_bytes_out += protocol._bytes_out
        if not self._clients and not self._awaiting and self._sweep_call is not None:
            self._sweep_call.cancel()
            self._sweep_call = None
        ip = protocol._ip
        if ip is not None and self.settings.max_per_ip:
            left = self._per_ip.get(ip, 0) - 1
            if left > 0:
                self._per_ip[ip] = left
            else:
                self._per_ip.pop(ip, None)

    def shutdown(self, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> Deferred[Any]:
        """
        Close every client: pending replies are flushed, stragglers aborted after C{timeout}.

        @return: a L{Deferred} that fires when every connection is gone.
        """
        waiting = [client.shutdown(timeout) for client in [*self._clients, *self._awaiting]]
        return DeferredList(waiting, consumeErrors=True)


@implementer(IProtocolFactory)
class _TLSAfterHeader:
    """
    The factory of one port whose connections start TLS after their PROXY header: the
    protocols of an L{OKEchoFactory}, told which TLS context to start.
    """

    def __init__(self, factory: OKEchoFactory, context: IOpenSSLContextFactory) -> None:
        self.factory = factory
        self.context = context

    def buildProtocol(self, addr: IAddress) -> Protocol | None:
        protocol = cast("Protocol | None", self.factory.buildProtocol(addr))
        if isinstance(protocol, OKEchoProtocol):
            protocol._tls = self.context
        return protocol

    def doStart(self) -> None:
        self.factory.doStart()

    def doStop(self) -> None:
        self.factory.doStop()

    def logPrefix(self) -> str:
        return str(self.factory.logPrefix())
