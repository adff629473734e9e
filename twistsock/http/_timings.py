"""
The timing of a fetch: L{TransferTimer}, an observer of the transfer, notes when each
step of each request of a redirect chain was over and adds them up as curl does;
L{timed_resolution} tells when a C{HostnameEndpoint} has resolved its
name, a step that the endpoint otherwise hides inside its connection attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import (
    IHostnameResolver,
    IReactorPluggableNameResolver,
    IResolutionReceiver,
)
from zope.interface import implementer

from twistsock.http._protocol import TransferObserver
from twistsock.http._request import GetRequest
from twistsock.http._response import Timings

__all__ = ["TransferTimer", "timed_observer", "timed_resolution"]


class TransferTimer(TransferObserver):
    """
    When each step of a transfer was over, read on a clock (C{reactor.seconds}): the
    observer L{twistsock.http.fetch} gives every transfer (see L{timed_observer}).

    Sans-IO: it is told when a step is over and reads the clock once.  Each request of a
    redirect chain is timed from its own start, and each step's times are added up over
    the chain (curl's C{Curl_pgrsTime}): a step that a request skips (the name lookup of
    an IP address, the connection of a reused one) adds nothing.

    @ivar start: when the transfer began.
    @ivar requests: the requests begun so far.
    @ivar redirect: when the last request began, from the start (0 for the first).
    """

    def __init__(self, seconds: Callable[[], float]) -> None:
        """@param seconds: the clock, such as C{reactor.seconds}."""
        self._seconds = seconds
        self.start = self._begun = seconds()
        self.redirect = 0.0
        self.requests = 0
        self._total: float | None = None
        self._sums = [0.0, 0.0, 0.0, 0.0, 0.0]
        self._namelookup: float | None = None
        self._connect: float | None = None
        self._appconnect: float | None = None
        self._pretransfer: float | None = None
        self._starttransfer: float | None = None

    def _chain_times(self) -> list[float]:
        """
        Each step's time, added up over the requests before this one and this one (timed
        from its own start; 0 for a step it has not taken).
        """
        begun = self._begun
        pretransfer = self._pretransfer
        if pretransfer is not None and self._appconnect is not None:
            # Over TLS the request is written before the handshake, but it leaves only
            # after it.
            pretransfer = max(pretransfer, self._appconnect)
        steps = (
            self._namelookup,
            self._connect,
            self._appconnect,
            pretransfer,
            self._starttransfer,
        )
        return [s if t is None else s + t - begun for s, t in zip(self._sums, steps, strict=True)]

    def request_started(self, url: str) -> None:
        """A request begins; the one before it (a redirect), if any, is over."""
        now = self._seconds()
        if self.requests:
            self._sums = self._chain_times()
            self.redirect = now - self.start
            self._namelookup = self._connect = self._appconnect = None
            self._pretransfer = self._starttransfer = None
        self.requests += 1
        self._begun = now

    def name_resolved(self) -> None:
        self._namelookup = self._seconds()

    def connected(self, transport: Any, reused: bool) -> None:
        if not reused:
            self._connect = self._seconds()

    def tls_handshake_done(self) -> None:
        self._appconnect = self._seconds()

    def request_sent(self, request: GetRequest, data: bytes) -> None:
        if self._pretransfer is None:
            self._pretransfer = self._seconds()

    def response_started(self) -> None:
        if self._starttransfer is None:
            self._starttransfer = self._seconds()

    def response_head(self, head: bytes, content_length: int | None) -> None:
        if self._starttransfer is None:  # the head arrived whole: its first byte too
            self._starttransfer = self._seconds()

    def finish(self) -> None:
        """The transfer is over now (the first call counts)."""
        if self._total is None:
            self._total = self._seconds() - self.start

    def finished(self) -> Timings:
        """The L{Timings} of the whole transfer, over now if L{finish} was not called."""
        self.finish()
        assert self._total is not None
        namelookup, connect, appconnect, pretransfer, starttransfer = self._chain_times()
        return Timings(
            namelookup=namelookup,
            connect=connect,
            appconnect=appconnect,
            pretransfer=pretransfer,
            starttransfer=starttransfer,
            total=self._total,
            redirect=self.redirect,
        )


class _ForwardingTimer(TransferTimer):
    """
    A L{TransferTimer} that passes every event on to another observer (the command
    line's).  C{body_received}, called for every piece of a body, is that observer's own
    bound method: timing adds no call per piece.
    """

    def __init__(self, seconds: Callable[[], float], inner: TransferObserver) -> None:
        super().__init__(seconds)
        self._inner = inner
        self.body_received = inner.body_received  # type: ignore[method-assign]

    def request_started(self, url: str) -> None:
        super().request_started(url)
        self._inner.request_started(url)

    def name_resolved(self) -> None:
        super().name_resolved()
        self._inner.name_resolved()

    def connected(self, transport: Any, reused: bool) -> None:
        super().connected(transport, reused)
        self._inner.connected(transport, reused)

    def tls_handshake_done(self) -> None:
        super().tls_handshake_done()
        self._inner.tls_handshake_done()

    def request_sent(self, request: GetRequest, data: bytes) -> None:
        super().request_sent(request, data)
        self._inner.request_sent(request, data)

    def response_started(self) -> None:
        super().response_started()
        self._inner.response_started()

    def response_head(self, head: bytes, content_length: int | None) -> None:
        super().response_head(head, content_length)
        self._inner.response_head(head, content_length)

    def proxy_connect(self, request: bytes, head: bytes) -> None:
        super().proxy_connect(request, head)
        self._inner.proxy_connect(request, head)


def timed_observer(seconds: Callable[[], float], inner: TransferObserver | None) -> TransferTimer:
    """A L{TransferTimer} on the clock C{seconds}, passing events on to C{inner}, if any."""
    if inner is None:
        return TransferTimer(seconds)
    return _ForwardingTimer(seconds, inner)


@implementer(IResolutionReceiver)
class _Receiver:
    """
    Passes a resolution's results on, and calls C{on_resolved} when it is complete with
    an address (a name that does not resolve has no lookup time, as in curl).
    """

    def __init__(self, receiver: Any, on_resolved: Callable[[], None]) -> None:
        self._receiver = receiver
        self._on_resolved = on_resolved
        self._resolved = False

    def resolutionBegan(self, resolutionInProgress: Any) -> None:
        self._receiver.resolutionBegan(resolutionInProgress)

    def addressResolved(self, address: Any) -> None:
        self._resolved = True
        self._receiver.addressResolved(address)

    def resolutionComplete(self) -> None:
        if self._resolved:
            self._on_resolved()
        self._receiver.resolutionComplete()


@implementer(IHostnameResolver)
class _Resolver:
    """The reactor's resolver, with each resolution's completion reported."""

    def __init__(self, resolver: Any, on_resolved: Callable[[], None]) -> None:
        self._resolver = resolver
        self._on_resolved = on_resolved

    def resolveHostName(
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        return self._resolver.resolveHostName(
            _Receiver(resolutionReceiver, self._on_resolved),
            hostName,
            portNumber,
            addressTypes,
            transportSemantics,
        )


@implementer(IReactorPluggableNameResolver)
class _TimedResolutionReactor:
    """A reactor whose name resolver reports completion; everything else is its own."""

    def __init__(self, reactor: Any, on_resolved: Callable[[], None]) -> None:
        self._reactor = reactor
        self.nameResolver = _Resolver(reactor.nameResolver, on_resolved)

    def installNameResolver(self, resolver: Any) -> Any:  # pragma: no cover - IReactor...
        return self._reactor.installNameResolver(resolver)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)


def timed_resolution(reactor: Any, on_resolved: Callable[[], None] | None) -> Any:
    """
    C{reactor} as a C{HostnameEndpoint} should see it so that C{on_resolved} is called
    once the endpoint's name is resolved: the same reactor, with a name resolver that
    reports completion.  (C{HostnameEndpoint} resolves and connects in one C{connect}
    call, and says nothing of the resolution on its own.)  C{reactor} itself when there
    is nothing to report or it has no pluggable name resolver.
    """
    if on_resolved is None or not IReactorPluggableNameResolver.providedBy(reactor):
        return reactor
    return _TimedResolutionReactor(reactor, on_resolved)
