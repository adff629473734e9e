"""
L{Client}: GET requests over persistent connections, pooled per origin, with caps and a
queue.

A connection serves one request at a time.  After a complete response it goes back to its
origin's idle list, unless the response or the request said C{Connection: close}, the
response was HTTP/1.0 without C{Connection: keep-alive}, or its body was delimited by the
end of the stream; it is closed after C{idle_timeout} seconds unused, and at once when the
idle lists are full.  Connections in use (connecting included) are capped per origin and
in total; a request that finds no free place waits in its origin's first-in, first-out
queue, so that a thousand requests never open a thousand sockets (Twisted's C{Agent} pool
does, Twisted #7614).

A request whose reused connection fails before any byte of its response arrived (the
server closed it while it sat idle: the race every persistent client has) is retried
once, on a new connection; a GET is idempotent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from twisted.internet import error
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.internet.protocol import ClientFactory, connectionDone
from twisted.python.failure import Failure

from twistsock._limits import DEFAULT_MAX_BODY_SIZE, DEFAULT_TIMEOUT
from twistsock._twisted import can_read_directly, read_directly
from twistsock.http._errors import ConnectionReset, EmptyReply, FetchError
from twistsock.http._factory import connect_error
from twistsock.http._protocol import HTTPGetProtocol, TransferObserver
from twistsock.http._proxy import Proxies, Proxy, route
from twistsock.http._reader import ResponseHead, ResponseReader
from twistsock.http._request import GetRequest, HeadersInput
from twistsock.http._response import Response

if TYPE_CHECKING:
    from twistsock.http._retry import RetryPolicy

__all__ = ["Client"]

_Origin = tuple[str, str, int, "Proxy | None"]
"""
Scheme, host, port and the proxy gone through: the connections of one origin and proxy
are interchangeable (a proxied one never serves a direct request, nor the reverse).
"""


class _Exchange:
    """
    One request waiting for, or using, a connection.

    @ivar result: the Deferred its caller holds.
    @ivar retried: whether it has been retried on a new connection already.
    @ivar connecting: the attempt to connect made for it, while it runs.
    @ivar protocol: the connection serving it, while it is served.
    """

    def __init__(
        self,
        client: Client,
        request: GetRequest,
        max_body_size: int,
        observer: TransferObserver | None,
        stream: Callable[[ResponseHead], object] | None,
        proxy: Proxy | None = None,
    ) -> None:
        url = request.url
        self.origin: _Origin = (url.scheme, url.host, url.port, proxy)
        self.proxy = proxy
        self.request = request
        self.max_body_size = max_body_size
        self.observer = observer
        self.stream = stream
        self.client = client
        self.result: Deferred[Response] = Deferred(self._cancel)
        self.retried = False
        self.connecting: Deferred[Any] | None = None
        self.protocol: _PooledProtocol | None = None

    def _cancel(self, result: Deferred[Response]) -> None:
        """Leave the queue, stop connecting, or abort the connection in use."""
        self.client._cancel(self)


class _PooledProtocol(HTTPGetProtocol):
    """
    A persistent connection of a L{Client}: one exchange after another, each read by a
    reader of its own, and the connection handed back to the pool after each.
    """

    def __init__(self, client: Client, origin: _Origin) -> None:
        self._client = client
        self.origin = origin
        self.served = 0  # exchanges begun on this connection
        self.exchange: _Exchange | None = None
        self.idle_timer: IDelayedCall | None = None
        self.idle_since: float | None = None  # when it went idle, while it is idle
        self.received_any = False
        self._reader = None
        self.response = succeed(None)  # type: ignore[arg-type]  # no exchange yet
        self.connected_deferred: Deferred[_PooledProtocol] | None = None

    def connectionMade(self) -> None:
        """Tell the pool the connection is ready (no request is written yet)."""
        self._client._opened.add(self)
        if can_read_directly(self.transport, self):
            read_directly(self.transport, self._body_window, self._body_filled)
        if self.connected_deferred is not None:
            waiting, self.connected_deferred = self.connected_deferred, None
            waiting.callback(self)

    def serve(self, exchange: _Exchange) -> None:
        """Send C{exchange}'s request and read its response."""
        self.exchange = exchange
        self.served += 1
        self.received_any = False
        response: Deferred[Response] = Deferred(self._cancel)
        self._begin(
            exchange.request,
            max_body_size=exchange.max_body_size,
            response=response,
            observer=exchange.observer,
            stream=exchange.stream,
            keep_extra=False,
        )
        response.addBoth(self._client._served, exchange, self)
        # A new connection (connectionMade has just run) serves its first exchange.
        self._observer.connected(self.transport, self.served > 1)
        self._send()

    def dataReceived(self, data: bytes) -> None:
        """Bytes on an idle connection are a protocol error: close it."""
        if self._reader is None:
            self.transport.abortConnection()
            return
        self.received_any = True
        super().dataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Fail the exchange in progress, if any; the pool forgets the connection."""
        super().connectionLost(reason)
        self._client._lost(self)

    def _complete(self, reader: ResponseReader) -> None:
        """Hand the connection back to the pool, or close it if it cannot be reused."""
        reusable = reader.keep_alive and not reader.extra and not self.request.asks_close
        if not reusable:
            self.transport.loseConnection()
        self._client._release(self, reusable)

    def _fail(self, reason: FetchError) -> None:
        """Abort the connection and fail the exchange."""
        self._client._release(self, False)
        super()._fail(reason)

    def _cancel(self, response: Deferred[Response]) -> None:
        self._client._release(self, False)
        super()._cancel(response)


class _PoolFactory(ClientFactory):
    """Builds the pooled connections of one origin; reports a connector's failures."""

    noisy = False

    def __init__(self, client: Client, origin: _Origin) -> None:
        self.client = client
        self.origin = origin
        self.waiting: Deferred[_PooledProtocol] | None = None

    def buildProtocol(self, addr: IAddress | None) -> _PooledProtocol:
        protocol = _PooledProtocol(self.client, self.origin)
        protocol.factory = self
        protocol.connected_deferred, self.waiting = self.waiting, None
        return protocol

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting.called:
            waiting.errback(reason)


class Client:
    """
    Get URLs over persistent connections, kept in a pool.

    C{client.get(url)} takes the same options as L{twistsock.http.fetch} (which is
    C{fetch(url, client=client)}); C{close()} closes every connection, fails the requests
    still waiting or in progress with C{CancelledError}, and returns a Deferred that fires
    when every connection is gone (no dirty reactor in a test).

    @ivar max_connections: the most connections in use (connecting included) at once.
    @ivar max_connections_per_origin: the most in use at once to one origin.
    @ivar max_idle: the most idle connections kept in all.
    @ivar max_idle_per_origin: the most idle connections kept per origin.
    @ivar idle_timeout: seconds an idle connection is kept.
    """

    def __init__(
        self,
        *,
        reactor: Any = None,
        max_connections: int = 100,
        max_connections_per_origin: int = 10,
        max_idle: int = 100,
        max_idle_per_origin: int = 10,
        idle_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        tls_verify: bool = True,
        proxy: str | Proxies | None = None,
    ) -> None:
        """
        @param reactor: the reactor; the global one when C{None}.
        @param connect_timeout: seconds for each TCP connection attempt.
        @param tls_verify: check servers' certificates and host names (C{https}).
        @param proxy: the HTTP proxy (a URL) or L{Proxies} every request goes through,
            as L{twistsock.http.fetch}'s C{proxy}; C{None} connects directly.  A
            C{CONNECT} tunnel serves one origin.
        @raise InvalidProxyURL: (5) for a proxy URL that cannot be parsed.
        @raise UnsupportedProxyScheme: (7) for a proxy URL whose scheme is not C{http}.
        """
        if min(max_connections, max_connections_per_origin) < 1:
            raise ValueError("a Client needs at least one connection")
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.max_connections = max_connections
        self.max_connections_per_origin = max_connections_per_origin
        self.max_idle = max_idle
        self.max_idle_per_origin = max_idle_per_origin
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.tls_verify = tls_verify
        self.proxies = Proxies.of(proxy)
        self._waiting: dict[_Origin, deque[_Exchange]] = {}
        self._idle: dict[_Origin, list[_PooledProtocol]] = {}
        self._idle_count = 0
        self._in_use: dict[_Origin, int] = {}
        self._in_use_count = 0
        self._opened: set[_PooledProtocol] = set()
        self._connecting: set[Deferred[Any]] = set()
        self._closing: list[Deferred[None]] | None = None

    @property
    def in_use(self) -> int:
        """Connections in use or connecting now."""
        return self._in_use_count

    @property
    def idle(self) -> int:
        """Idle connections kept now."""
        return self._idle_count

    def get(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        headers: HeadersInput | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        follow_redirects: bool = False,
        max_redirects: int = 10,
        stream_to: object = None,
        retries: int | RetryPolicy = 0,
        auth: tuple[str, str] | None = None,
        compressed: bool = False,
        resume_from: int = 0,
    ) -> Deferred[Response]:
        """
        GET C{url} over this client's connections: L{twistsock.http.fetch}'s options and
        outcome (its C{timeout} counts the wait for a connection too; C{compressed} and
        C{resume_from} are as there).
        """
        from twistsock.http._fetch import fetch

        return fetch(
            url,
            reactor=self.reactor,
            timeout=timeout,
            connect_timeout=self.connect_timeout,
            headers=headers,
            max_body_size=max_body_size,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
            tls_verify=self.tls_verify,
            stream_to=stream_to,
            client=self,
            retries=retries,
            auth=auth,
            compressed=compressed,
            resume_from=resume_from,
        )

    def request(
        self,
        request: GetRequest,
        *,
        max_body_size: int,
        observer: TransferObserver | None = None,
        stream: Callable[[ResponseHead], object] | None = None,
    ) -> Deferred[Response]:
        """
        Send C{request} over a pooled connection (waiting in its origin's queue if the caps
        are reached) and return the Deferred of its response.  For L{twistsock.http.fetch}.
        """
        request, proxy = route(self.proxies, request)
        exchange = _Exchange(self, request, max_body_size, observer, stream, proxy)
        if self._closing is not None:
            exchange.result.errback(CancelledError("the client is closed"))
            return exchange.result
        self._waiting.setdefault(exchange.origin, deque()).append(exchange)
        self._dispatch()
        return exchange.result

    def close(self) -> Deferred[None]:
        """
        Close every connection and fail every request still waiting or in progress with
        C{CancelledError}; the Deferred fires once every connection is gone.
        """
        closed: Deferred[None] = Deferred()
        if self._closing is None:
            self._closing = []
            for queue in list(self._waiting.values()):
                for exchange in list(queue):
                    exchange.result.cancel()
            self._waiting.clear()
            for attempt in list(self._connecting):
                attempt.cancel()
            for protocol in list(self._opened):
                if protocol.exchange is not None and not protocol.response.called:
                    protocol.response.cancel()
                elif protocol.transport is not None:
                    protocol.transport.loseConnection()
        self._closing.append(closed)
        self._check_closed()
        return closed

    def _check_closed(self) -> None:
        """Fire C{close()}'s Deferreds once nothing is open or connecting."""
        if self._closing and not self._opened and not self._connecting:
            waiting, self._closing = self._closing, []
            for closed in waiting:
                closed.callback(None)

    def _can_use(self, origin: _Origin) -> bool:
        return (
            self._in_use_count < self.max_connections
            and self._in_use.get(origin, 0) < self.max_connections_per_origin
        )

    def _dispatch(self) -> None:
        """Start every waiting request that the caps allow, oldest first per origin."""
        for origin in list(self._waiting):
            if self._in_use_count >= self.max_connections:
                return
            queue = self._waiting[origin]
            while queue and self._can_use(origin):
                exchange = queue.popleft()
                self._in_use[origin] = self._in_use.get(origin, 0) + 1
                self._in_use_count += 1
                idle = self._idle.get(origin)
                if idle and not exchange.retried:
                    protocol = idle.pop()
                    self._idle_count -= 1
                    protocol.idle_since = None  # its idle timer, if any, finds it in use
                    exchange.protocol = protocol
                    protocol.serve(exchange)
                else:
                    self._connect(exchange)
            if not queue and self._waiting.get(origin) is queue:
                del self._waiting[origin]

    def _connect(self, exchange: _Exchange) -> None:
        """Open a new connection for C{exchange} (its place is already counted)."""
        from twisted.internet.abstract import isIPAddress, isIPv6Address

        from twistsock.http._fetch import _endpoint

        factory = _PoolFactory(self, exchange.origin)
        url = exchange.request.url
        direct = exchange.proxy is None and url.scheme == "http"
        if direct and (isIPAddress(url.host) or isIPv6Address(url.host)):
            connector = None

            def stop(attempt: Deferred[Any]) -> None:
                if connector is not None:
                    with suppress(error.NotConnectingError):
                        connector.stopConnecting()

            attempt: Deferred[Any] = Deferred(stop)
            factory.waiting = attempt
            connector = self.reactor.connectTCP(
                url.host, url.port, factory, timeout=self.connect_timeout
            )
        else:
            resolved = None if exchange.observer is None else exchange.observer.name_resolved
            endpoint = _endpoint(
                self.reactor,
                url,
                self.connect_timeout,
                self.tls_verify,
                on_resolved=resolved,
                proxy=exchange.proxy,
                observer=exchange.observer,
            )
            attempt = endpoint.connect(factory)
        exchange.connecting = attempt
        self._connecting.add(attempt)
        attempt.addBoth(self._connected, exchange, attempt)

    def _connected(
        self, outcome: _PooledProtocol | Failure, exchange: _Exchange, attempt: Deferred[Any]
    ) -> None:
        self._connecting.discard(attempt)
        exchange.connecting = None
        if isinstance(outcome, Failure):
            self._free(exchange.origin)
            if not exchange.result.called:
                url = exchange.request.url
                reason = connect_error(outcome.value, url.host, url.port, self.connect_timeout)
                if self._closing is not None:  # close() stopped the attempt
                    reason = CancelledError()
                exchange.result.errback(reason)
            self._check_closed()
            self.reactor.callLater(0, self._dispatch)  # not within a running _dispatch
            return
        if exchange.result.called:  # cancelled while connecting
            self._free(exchange.origin)
            outcome.transport.loseConnection()
            self.reactor.callLater(0, self._dispatch)
            return
        exchange.protocol = outcome
        outcome.serve(exchange)

    def _free(self, origin: _Origin) -> None:
        """A place in use for C{origin} is free again."""
        self._in_use[origin] -= 1
        if not self._in_use[origin]:
            del self._in_use[origin]
        self._in_use_count -= 1

    def _release(self, protocol: _PooledProtocol, reusable: bool) -> None:
        """
        The exchange on C{protocol} is over: keep the connection idle if it is
        C{reusable} and there is room, close it otherwise, and let waiting requests go.
        """
        if protocol.exchange is None:
            return
        protocol.exchange = None
        self._free(protocol.origin)
        idle = self._idle.setdefault(protocol.origin, [])
        if (
            reusable
            and self._closing is None
            and len(idle) < self.max_idle_per_origin
            and self._idle_count < self.max_idle
        ):
            idle.append(protocol)
            self._idle_count += 1
            protocol.idle_since = self.reactor.seconds()
            if protocol.idle_timer is None:
                protocol.idle_timer = self.reactor.callLater(
                    self.idle_timeout, self._expire, protocol
                )
        elif reusable:  # no room: close it politely
            protocol.transport.loseConnection()
        if not idle:
            del self._idle[protocol.origin]
        if self._waiting:
            self.reactor.callLater(0, self._dispatch)  # not within a running _dispatch

    def _expire(self, protocol: _PooledProtocol) -> None:
        """
        A connection's idle timer fired: close it if it has been idle for C{idle_timeout}.

        The timer is set when the connection first goes idle and is left running while the
        connection is used again (a timer per request would cost more than the rest of
        the pool's work): when it fires early, it is set again for the rest of the current
        idle time, or, for a connection in use, when the connection next goes idle.
        """
        protocol.idle_timer = None
        if protocol.idle_since is None:  # in use
            return
        left = protocol.idle_since + self.idle_timeout - self.reactor.seconds()
        if left > 0:
            protocol.idle_timer = self.reactor.callLater(left, self._expire, protocol)
            return
        self._forget_idle(protocol)
        protocol.transport.loseConnection()

    def _forget_idle(self, protocol: _PooledProtocol) -> None:
        idle = self._idle.get(protocol.origin)
        if idle is not None and protocol in idle:
            idle.remove(protocol)
            self._idle_count -= 1
            if not idle:
                del self._idle[protocol.origin]
        if protocol.idle_timer is not None and protocol.idle_timer.active():
            protocol.idle_timer.cancel()
        protocol.idle_timer = None
        protocol.idle_since = None

    def _lost(self, protocol: _PooledProtocol) -> None:
        """C{protocol}'s connection is gone."""
        self._release(protocol, False)
        self._forget_idle(protocol)
        self._opened.discard(protocol)
        self._check_closed()

    def _served(
        self, outcome: Response | Failure, exchange: _Exchange, protocol: _PooledProtocol
    ) -> None:
        """
        The exchange on C{protocol} ended: pass the outcome on, or retry once on a new
        connection when a reused one failed before any byte of the response.
        """
        exchange.protocol = None
        if exchange.result.called:
            return None
        if isinstance(outcome, Failure):
            retry = (
                protocol.served > 1
                and not protocol.received_any
                and not exchange.retried
                and self._closing is None
                and isinstance(outcome.value, (ConnectionReset, EmptyReply))
            )
            if retry:
                exchange.retried = True
                self._waiting.setdefault(exchange.origin, deque()).appendleft(exchange)
                self.reactor.callLater(0, self._dispatch)
                return None
            exchange.result.errback(outcome)
        else:
            exchange.result.callback(outcome)
        return None

    def _cancel(self, exchange: _Exchange) -> None:
        """C{exchange}'s caller cancelled it (or its deadline passed)."""
        queue = self._waiting.get(exchange.origin)
        if queue is not None and exchange in queue:
            queue.remove(exchange)
            if not queue:
                del self._waiting[exchange.origin]
        elif exchange.connecting is not None:
            # Failed first: stopping the attempt fails it too, with a connection error.
            exchange.result.errback(CancelledError())
            exchange.connecting.cancel()
        elif exchange.protocol is not None:
            exchange.protocol.response.cancel()
