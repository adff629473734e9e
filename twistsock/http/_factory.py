"""
L{HTTPGetFactory}: builds the L{HTTPGetProtocol} of one GET, bounds it with a deadline,
and turns connection failures into the typed errors of L{twistsock.http}.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any, cast

from twisted.internet import error
from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.interfaces import (
    IAddress,
    IConnector,
    IProtocol,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import ClientFactory
from twisted.python.failure import Failure

from twistsock._deadline import with_deadline
from twistsock._limits import DEFAULT_MAX_BODY_SIZE, DEFAULT_TIMEOUT
from twistsock.http._errors import (
    ConnectionRefused,
    ConnectTimeout,
    CouldNotConnect,
    CouldNotResolve,
    FetchError,
    OperationTimeout,
)
from twistsock.http._protocol import HTTPGetProtocol, TransferObserver
from twistsock.http._reader import ResponseHead
from twistsock.http._request import (
    GetRequest,
    HeadersInput,
    build_request,
    parse_url,
    validate_headers,
)
from twistsock.http._response import Response

__all__ = ["HTTPGetFactory", "connect_error"]


def connect_error(
    reason: BaseException | None, host: str, port: int, timeout: float | None
) -> BaseException:
    """
    Translate an exception from connecting (an endpoint or a connector) into the matching
    L{FetchError}: unresolvable host (6), refused (7), other connect errors (7), timeout
    (28).  Anything else, a L{FetchError} included, is returned unchanged.
    """
    if reason is None:
        return CouldNotConnect(host, port, "unknown error")
    if isinstance(reason, error.DNSLookupError):
        return CouldNotResolve(host)
    if isinstance(reason, error.ConnectionRefusedError):
        return ConnectionRefused(host, port)
    if isinstance(reason, error.TimeoutError):
        return ConnectTimeout(host, port, timeout)
    if isinstance(reason, error.ConnectError):
        return CouldNotConnect(host, port, str(reason))
    return reason


class HTTPGetFactory(ClientFactory):
    """
    Build an L{HTTPGetProtocol} for one URL, for use with any client endpoint::

        factory = HTTPGetFactory("http://127.0.0.1:8080/", reactor=reactor)
        factory.connect(endpoint)            # returns factory.response
        factory.response.addCallback(...)    # the Response, or a FetchError

    C{response} is the one Deferred to watch: it fires with the L{Response}, or fails with
    a L{twistsock.http.FetchError}, connection failures included (L{ConnectionRefused},
    L{CouldNotResolve}, L{ConnectTimeout}, ...), when the factory is connected with
    L{connect} or with a connector (C{reactor.connectTCP(host, port, factory)}).  An
    endpoint used directly (C{endpoint.connect(factory)}) reports a failure to connect
    only through the Deferred it returns, never to the factory; C{response} then fails
    only when the deadline passes.

    Cancelling C{response} aborts the connection, or stops the attempt to connect.

    @ivar request: the request every protocol built sends.
    @ivar response: the Deferred of the response.
    """

    protocol = HTTPGetProtocol
    noisy = False
    """
    No "Starting factory" / "Stopping factory" log lines: a factory serves one request, so
    Twisted's default would log twice per fetch (and format the events) for nothing.
    """

    def __init__(
        self,
        url: str | GetRequest,
        *,
        headers: HeadersInput | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        observer: TransferObserver | None = None,
        stream: Callable[[ResponseHead], object] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        reactor: IReactorTime | None = None,
    ) -> None:
        """
        @param url: the URL to get (checked now: L{MalformedURL}, L{UnsupportedScheme} or
            L{InvalidHeader} are raised here, before anything connects), or a prepared
            L{GetRequest} (then C{headers} is ignored).
        @param headers: extra request headers.
        @param max_body_size: see L{HTTPGetProtocol}.
        @param observer: see L{HTTPGetProtocol}.
        @param stream: see L{HTTPGetProtocol}.
        @param timeout: seconds for the whole exchange, counted from now, connecting
            included (30 by default).  When they pass, C{response} fails with
            L{OperationTimeout} (28) and the connection is aborted, or the attempt to
            connect is stopped.  C{None} sets no deadline: then nothing bounds the
            exchange but cancelling C{response}.
        @param reactor: the C{IReactorTime} for C{timeout}; the global reactor when
            C{None}.
        """
        if isinstance(url, str):
            url = build_request(parse_url(url), validate_headers(headers))
        self.request = url
        self.max_body_size = max_body_size
        self.response: Deferred[Response] = Deferred(self._cancel)
        self._observer = observer
        self._stream = stream
        self._protocol: HTTPGetProtocol | None = None
        self._connector: IConnector | None = None
        self._connecting: Deferred[IProtocol] | None = None
        if timeout is not None:
            if reactor is None:
                from twisted.internet import reactor as global_reactor

                reactor = cast(IReactorTime, global_reactor)
            url = self.request.url.url
            with_deadline(self.response, timeout, reactor, lambda t: OperationTimeout(url, t))

    def connect(
        self, endpoint: IStreamClientEndpoint, *, connect_timeout: float | None = None
    ) -> Deferred[Response]:
        """
        Connect through C{endpoint} and send the request.

        @param connect_timeout: the endpoint's own connect timeout, if known, for the
            message of L{ConnectTimeout}.
        @return: C{response}, which also fails with the typed error when the endpoint
            cannot connect: L{CouldNotResolve} (6), L{ConnectionRefused} (7),
            L{CouldNotConnect} (7) or L{ConnectTimeout} (28).
        """
        try:
            connecting = endpoint.connect(self)
        except Exception:  # an endpoint that raises instead of failing its Deferred
            connecting = fail()
        # Kept until it fires, even if it looks called: a Deferred waiting on another one
        # (HostnameEndpoint's, once the name is resolved) is "called" and still pending.
        self._connecting = connecting
        connecting.addBoth(self._connected, connect_timeout)
        return self.response

    def _connected(self, outcome: IProtocol | Failure, connect_timeout: float | None) -> None:
        """
        The endpoint connected, or could not: a failure fails C{response}.
        """
        self._connecting = None
        if isinstance(outcome, Failure) and not self.response.called:
            url = self.request.url
            reason = connect_error(outcome.value, url.host, url.port, connect_timeout)
            if not isinstance(reason, FetchError):
                reason = CouldNotConnect(
                    url.host, url.port, str(outcome.value) or repr(outcome.value)
                )
            self.response.errback(reason)

    def buildProtocol(self, addr: IAddress | None) -> HTTPGetProtocol:
        """Build the protocol, which will fire this factory's C{response}."""
        self._protocol = HTTPGetProtocol(
            self.request,
            max_body_size=self.max_body_size,
            response=self.response,
            observer=self._observer,
            stream=self._stream,
        )
        self._protocol.factory = self
        return self._protocol

    def startedConnecting(self, connector: IConnector) -> None:
        """A connector (C{reactor.connectTCP}) started: cancelling stops it from now on."""
        self._connector = connector

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        """A connector could not connect: fail C{response} with the matching error."""
        if not self.response.called:
            url = self.request.url
            timeout = getattr(connector, "timeout", None)
            self.response.errback(connect_error(reason.value, url.host, url.port, timeout))

    def _cancel(self, response: Deferred[Any]) -> None:
        """
        Abort the protocol's connection, or stop the attempt to connect.
        """
        if self._protocol is not None:
            self._protocol._cancel(response)
        elif self._connecting is not None:
            response.errback(CancelledError())  # first: stopping reports a failure too
            self._connecting.cancel()
        elif self._connector is not None:  # no protocol yet, no failure: still connecting
            response.errback(CancelledError())
            with suppress(error.NotConnectingError):
                self._connector.stopConnecting()
