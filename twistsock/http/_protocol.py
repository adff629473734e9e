"""
L{HTTPGetProtocol}: one GET request over one connection, read by a
L{twistsock.http._reader.ResponseReader}.

The protocol only adapts the reader to a transport: C{connectionMade} writes the request,
C{dataReceived} feeds the reader, C{connectionLost} feeds the end of the stream (or reports
how the connection was lost), and the reader's outcome fires the C{response} Deferred.
Every decision about what the reply means is the reader's; every failure closes the
transport and fails the C{response} Deferred with a L{twistsock.http.FetchError}; nothing
is ever raised into the reactor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IConsumer,
    IHandshakeListener,
    IPushProducer,
    ISSLTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from twistsock._limits import DEFAULT_MAX_BODY_SIZE
from twistsock._twisted import can_read_directly, can_send_directly, read_directly, send_now
from twistsock.http._errors import (
    BodyWriteError,
    ConnectionReset,
    FetchError,
)
from twistsock.http._reader import BodyWriter, ResponseHead, ResponseReader
from twistsock.http._request import (
    GetRequest,
)
from twistsock.http._response import Response

__all__ = ["DEFAULT_MAX_BODY_SIZE", "HTTPGetProtocol", "TransferObserver"]


class TransferObserver:
    """
    Hooks called as a transfer progresses, for the command line's C{--verbose} output,
    progress bar and C{--write-out}, and for the timings of L{twistsock.http.fetch} (see
    L{twistsock.http._timings.TransferTimer}).  The default implementation does nothing;
    override what you need.
    """

    def request_sent(self, request: GetRequest, data: bytes) -> None:
        """C{data}, the bytes of C{request}, were written to the connection."""

    def response_head(self, head: bytes, content_length: int | None) -> None:
        """
        The status line and headers (C{head}, exactly as received) of a final response
        arrived; its body is C{content_length} bytes long, or of unknown length if C{None}
        (also C{None} for a 204 or 304, which have no body whatever their C{Content-Length}
        says).
        """

    def body_received(self, received: int) -> None:
        """C{received} body bytes in all have arrived so far."""

    def request_started(self, url: str) -> None:
        """A request for C{url} begins (the first, or one that follows a redirect)."""

    def name_resolved(self) -> None:
        """The host name of the request was resolved (not called for an IP address)."""

    def connected(self, transport: Any, reused: bool) -> None:
        """
        The request has its connection, C{transport}: a new TCP connection just
        established, or an idle persistent one, C{reused}.
        """

    def tls_handshake_done(self) -> None:
        """The TLS handshake of the request's new connection is complete."""

    def response_started(self) -> None:
        """The first byte of the response arrived."""

    def proxy_connect(self, request: bytes, head: bytes) -> None:
        """
        C{request}, a C{CONNECT} request, was sent to a proxy, which answered with C{head}
        (its status line and headers, as received; 2xx opened the tunnel).
        """


_NO_OBSERVER = TransferObserver()
"""The observer of a transfer nobody watches: it has no state, so one serves them all."""


def _tls_error(reason: BaseException | None, host: str) -> FetchError | None:
    """
    The TLS failure C{reason} is, classified (see L{twistsock.http._tls.tls_error}), or
    C{None}.  OpenSSL is imported only when C{reason} comes from it or from
    C{service_identity}: a plain HTTP transfer never loads it.
    """
    if type(reason).__module__.split(".")[0] not in ("OpenSSL", "service_identity"):
        return None
    from twistsock.http._tls import tls_error

    return tls_error(reason, host)


@implementer(IPushProducer, IHandshakeListener)
class HTTPGetProtocol(Protocol):
    """
    Send one GET request and read one complete response.

    The body is held in memory (up to C{max_body_size}), or streamed where C{stream}
    says as it arrives.  Streamed to an C{IConsumer}, the protocol is its producer:
    pausing it stops reading from the connection, so that a slow consumer holds the
    server back instead of filling memory.

    The protocol has no timer of its own: a server that never answers, or stalls in the
    middle of the body, keeps it waiting for as long as the connection stays open.  Bound
    it: use L{HTTPGetFactory}'s C{timeout}, or L{twistsock.http.fetch} (one deadline for the
    whole transfer), or cancel C{response} yourself (C{reactor.callLater(30,
    protocol.response.cancel)}), which aborts the connection.

    @ivar request: the request to send.
    @ivar response: fires with the L{Response} once the response is complete, or fails with
        a L{FetchError}.  Cancelling it aborts the connection.
    @ivar max_body_size: the largest body accepted, in bytes; a larger one (announced or
        received) fails with L{BodyTooLarge} at once.
    @ivar framing_limit: the most bytes received that are not body bytes (see
        L{ResponseReader}): C{max_body_size}, or 1 MiB if that is more; more fails with
        L{MalformedResponse} (8).
    """

    # Any transport will do (TCP, TLS, StringTransport); zope interfaces do not type-check.
    transport: Any = None
    _observer = TransferObserver()  # until an exchange begins (a pooled connection's)

    def __init__(
        self,
        request: GetRequest,
        *,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        response: Deferred[Response] | None = None,
        observer: TransferObserver | None = None,
        stream: Callable[[ResponseHead], object] | None = None,
    ) -> None:
        """
        @param response: the Deferred to fire (L{HTTPGetFactory} passes its own); a new one
            is made when C{None}.
        @param observer: told about the request, the response head and body progress.
        @param stream: called with the final response's head before any of its body;
            returns where to stream the body, or C{None} to hold it: an C{IConsumer}
            (written to, with flow control: this protocol is registered as its streaming
            producer), an object with a C{write} method (a binary file), or a callable
            taking each piece.  A streamed body is not bounded by C{max_body_size}, and the
            L{Response}'s C{body} is empty.  A L{FetchError} it raises fails the response.
        """
        self._begin(
            request,
            max_body_size=max_body_size,
            response=response if response is not None else Deferred(self._cancel),
            observer=observer,
            stream=stream,
            keep_extra=True,  # the connection carries this response only: C{raw} keeps all
        )

    def _begin(
        self,
        request: GetRequest,
        *,
        max_body_size: int,
        response: Deferred[Response],
        observer: TransferObserver | None,
        stream: Callable[[ResponseHead], object] | None,
        keep_extra: bool,
    ) -> None:
        """Set up the exchange of C{request}: C{response} is what it fires."""
        self.request = request
        self.max_body_size = max_body_size
        self.response = response
        self._observer = observer if observer is not None else _NO_OBSERVER
        self._data = request.to_bytes()  # checked now, before any connection
        self._stream = stream
        self._consumer: IConsumer | None = None
        self._paused = False  # by the consumer: see _release_consumer
        reader = ResponseReader(
            request.url.url,
            max_body_size=max_body_size,
            keep_extra=keep_extra,
            on_head=None if stream is None else self._stream_to,
        )
        self.framing_limit = reader.framing_limit
        # Dropped once C{response} has fired: the protocol sits in reference cycles
        # (factory, transport, connector), so whatever it holds would otherwise live on
        # until the cyclic garbage collector runs.
        self._reader: ResponseReader | None = reader
        self._head_told = False
        self._started = False  # has the observer been told of the response's first byte?
        self._body_told = 0

    def connectionMade(self) -> None:
        """
        Write the whole request at once.  If C{response} has already fired (cancelled, or
        the factory's deadline passed, while an endpoint was still connecting), abort the
        connection instead: nothing is sent.
        """
        if self.response.called:
            self.transport.abortConnection()
            return
        self._observer.connected(self.transport, False)
        self._send()
        if can_read_directly(self.transport, self):
            read_directly(self.transport, self._body_window, self._body_filled)

    def _send(self) -> None:
        """
        Write the request: straight to the socket of a plain TCP connection with nothing
        queued (see L{send_now}), which saves the reactor a turn per request.
        """
        if can_send_directly(self.transport):
            send_now(self.transport, self._data)
        else:
            self.transport.write(self._data)
        self._observer.request_sent(self.request, self._data)

    def _stream_to(self, head: ResponseHead) -> BodyWriter | None:
        """Where the body of C{head} goes: see C{stream}."""
        assert self._stream is not None
        target = self._stream(head)
        if target is None:
            return None
        if IConsumer.providedBy(target):
            consumer = self._consumer = target
            try:
                consumer.registerProducer(self, True)
            except Exception as e:  # a consumer that has a producer already, say
                self._consumer = None
                raise BodyWriteError("the body", str(e) or type(e).__name__) from None
        return cast(BodyWriter, getattr(target, "write", target))

    def handshakeCompleted(self) -> None:
        """The TLS handshake is complete (C{IHandshakeListener}): tell the observer."""
        self._observer.tls_handshake_done()

    def pauseProducing(self) -> None:
        """The consumer of the body is full: stop reading from the connection."""
        self._paused = True
        if self.transport is not None:
            self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        """The consumer of the body can take more: read again."""
        self._paused = False
        if self.transport is not None:
            self.transport.resumeProducing()

    def stopProducing(self) -> None:
        """The consumer of the body is gone: the transfer fails (23)."""
        self._consumer = None  # gone: not to be unregistered from
        self._fail(BodyWriteError("the body", "its consumer stopped the transfer"))

    def _release_consumer(self) -> None:
        """The body is complete or failed: the consumer has no producer any more."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.unregisterProducer()
        if self._paused:
            # A connection that goes back to a pool must be reading again, or the next
            # response on it would never arrive.
            self._paused = False
            if self.transport is not None:
                self.transport.resumeProducing()

    def _body_window(self) -> memoryview | None:
        """Where the transport may write body bytes itself (see L{read_directly})."""
        if self._reader is None or self.response.called:
            return None
        return self._reader.body_window()

    def _body_filled(self, size: int) -> None:
        """The transport wrote C{size} body bytes into the reader's window."""
        if self._reader is not None:
            self._reader.body_filled(size)
            self._progress(self._reader)

    def dataReceived(self, data: bytes) -> None:
        """Feed C{data} to the reader and act on what it found."""
        if self._reader is None or self.response.called:
            return
        self._reader.feed(data)
        self._progress(self._reader)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Finish a close-delimited body, or fail: TLS errors (35, 60), a reset or a TLS close
        without close_notify (56), or a clean close before the end of the response (52, 8
        or 18).
        """
        reader = self._reader
        if reader is None or self.response.called:
            return
        tls = _tls_error(reason.value, self.request.url.host)
        if tls is not None:
            self._fail(tls)
        elif isinstance(reason.value, error.ConnectionDone):
            reader.feed_eof()
            self._progress(reader)
        else:
            secure = bool(ISSLTransport.providedBy(self.transport))
            self._fail(ConnectionReset(self.request.url.url, reader.received, tls=secure))

    def _progress(self, reader: ResponseReader) -> None:
        """Tell the observer what C{reader} found, and fire C{response} when it is done."""
        head = reader.head
        if head is not None:
            if not self._head_told:
                self._head_told = True
                self._observer.response_head(head.raw, head.content_length)
            if reader.body_length != self._body_told:
                self._body_told = reader.body_length
                self._observer.body_received(self._body_told)
        elif not self._started and reader.received:  # the head has only begun
            self._started = True
            self._observer.response_started()
        result = reader.result
        if isinstance(result, Response):
            self._reader = None
            self._release_consumer()
            response = self.response  # _complete may hand the connection to another request
            self._complete(reader)
            response.callback(result)
        elif result is not None:
            self._fail(result)

    def _complete(self, reader: ResponseReader) -> None:
        """The response read by C{reader} is complete: close the connection."""
        self.transport.loseConnection()

    def _fail(self, reason: FetchError) -> None:
        """Abort the connection (never wait on a peer) and fail C{response}."""
        self._reader = None
        self._release_consumer()
        if self.transport is not None:
            self.transport.abortConnection()
        if not self.response.called:
            self.response.errback(reason)

    def _cancel(self, response: Deferred[Response]) -> None:
        """Cancelling C{response} aborts the connection; the Deferred fails as cancelled."""
        self._reader = None
        self._release_consumer()
        if self.transport is not None:
            self.transport.abortConnection()
