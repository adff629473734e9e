"""
The response reading of twistsock before L{twistsock.http._reader} (h11 driving
L{HTTPGetProtocol}), kept unchanged as the reference of the differential test
(C{tests/test_http_differential.py}): the new reader must agree with it on every response
of the corpus except where a difference is listed there, with its reason.
"""

from __future__ import annotations

import io
from typing import Any

import h11
from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    ISSLTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from twistsock._limits import DEFAULT_MAX_BODY_SIZE, MIN_FRAMING_LIMIT
from twistsock.http._errors import (
    BodyTooLarge,
    ConnectionReset,
    EmptyReply,
    FetchError,
    MalformedResponse,
    PartialBody,
)
from twistsock.http._request import (
    GetRequest,
)
from twistsock.http._response import Headers, Response, _with_raw_pieces

__all__ = ["HTTPGetProtocol"]

_NO_BODY = frozenset({204, 304})
"""Final status codes whose response has no body (the request is always a GET)."""


class _Body:
    """
    A body as h11 hands it over, piece by piece, then as one C{bytes}.

    When its length is announced (Content-Length), the pieces are copied into one buffer
    of that size, allocated at the first piece, and each h11 piece is freed at once;
    C{BytesIO.getvalue} then returns the buffer itself as C{bytes}, without a copy.
    Collecting the pieces and joining them would hold the body twice at the end and
    allocate a fresh body-sized block for every response: the allocator would return
    that memory to the system and fault it back in for the next response
    (C{benchmarks/http_clients.py} shows the cost).  Without a
    length (chunked, close-delimited), the pieces are joined once at the end.  The
    announced length is at most C{max_body_size} (checked with the head), the memory
    the caller agreed to.
    """

    def __init__(self, expected: int | None) -> None:
        self._expected = expected
        self._buffer: io.BytesIO | None = None
        self._pieces: list[bytes | bytearray] = []
        self.length = 0

    def add(self, data: bytes | bytearray) -> None:
        """Append C{data}."""
        if self._expected:
            if self._buffer is None:
                self._buffer = io.BytesIO()
                self._buffer.seek(self._expected - 1)
                self._buffer.write(b"\0")  # allocates the whole length at once
                self._buffer.seek(0)
            self._buffer.write(data)
        else:
            self._pieces.append(data)
        self.length += len(data)

    def value(self) -> bytes:
        """Everything added, as C{bytes}."""
        if self._buffer is None:
            return b"".join(self._pieces)
        self._buffer.truncate(self.length)  # a no-op once the announced length arrived
        return self._buffer.getvalue()


class TransferObserver:
    """
    Hooks called as a transfer progresses, for the command line's C{--verbose} output and
    progress bar.  The default implementation does nothing; override what you need.
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


class HTTPGetProtocol(Protocol):
    """
    Send one GET request and read one complete response.

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
    @ivar framing_limit: the most bytes received that are not body bytes: status lines
        and headers (interim 1xx responses included), chunk sizes, extensions and CRLFs,
        trailers.  This bounds the memory a server can make the protocol hold (a
        chunked response's C{raw} keeps its framing) independently of the body, so that
        a body within C{max_body_size} is never reported as too large however finely it
        is chunked; more framing fails with L{MalformedResponse} (8).  It is
        C{max_body_size}, or 1 MiB if that is more.
    """

    # Any transport will do (TCP, TLS, StringTransport); zope interfaces do not type-check.
    transport: Any = None

    def __init__(
        self,
        request: GetRequest,
        *,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        response: Deferred[Response] | None = None,
        observer: TransferObserver | None = None,
    ) -> None:
        """
        @param response: the Deferred to fire (L{HTTPGetFactory} passes its own); a new one
            is made when C{None}.
        @param observer: told about the request, the response head and body progress.
        """
        self.request = request
        self.max_body_size = max_body_size
        self.framing_limit = max(max_body_size, MIN_FRAMING_LIMIT)
        self.response: Deferred[Response] = (
            response if response is not None else Deferred(self._cancel)
        )
        self._observer = observer if observer is not None else TransferObserver()
        self._event = request.to_h11()  # h11 validates it now, before any connection
        self._h11 = h11.Connection(our_role=h11.CLIENT)
        # Received pieces are kept in a list (growing a bytearray copies and page-faults
        # over and over), and only as long as C{raw} needs them: see _response_head.
        # The body goes into a _Body.
        self._raw: list[bytes] | None = []
        self._raw_length = 0
        self._head_bytes = b""
        self._body = _Body(None)  # replaced when the final head says how long it is
        self._head: h11.Response | None = None
        self._head_length = 0

    def connectionMade(self) -> None:
        """
        Write the whole request at once: the headers and the (empty) end of message.  If
        C{response} has already fired (cancelled, or the factory's deadline passed, while
        an endpoint was still connecting), abort the connection instead: nothing is sent.
        """
        if self.response.called:
            self.transport.abortConnection()
            return
        data = self._h11.send(self._event) + self._h11.send(h11.EndOfMessage())
        self.transport.write(data)
        self._observer.request_sent(self.request, data)

    def dataReceived(self, data: bytes) -> None:
        """Record C{data} in C{raw} and feed it to h11."""
        if self.response.called or not data:  # to h11, b"" would mean end of stream
            return
        if self._raw is not None:
            self._raw.append(data)
        self._raw_length += len(data)
        self._h11.receive_data(data)
        self._process(at_eof=False)
        # Once h11 has taken what it can, what is neither body nor h11's unconsumed
        # remainder (at most its 16 KiB limit on an incomplete event) is framing.
        if self._raw_length - self._body.length > self.framing_limit:
            if not self.response.called:
                reason = f"over {self.framing_limit} bytes of headers and chunk framing"
                self._fail(MalformedResponse(self._url, reason))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Finish a close-delimited body, or fail: TLS errors (35, 60), a reset or a TLS close
        without close_notify (56), or a clean close before the end of the response (52, 8
        or 18).
        """
        if self.response.called:
            return
        tls = _tls_error(reason.value, self.request.url.host)
        if tls is not None:
            self._fail(tls)
        elif isinstance(reason.value, error.ConnectionDone):
            self._h11.receive_data(b"")
            self._process(at_eof=True)
        else:
            secure = bool(ISSLTransport.providedBy(self.transport))
            self._fail(ConnectionReset(self._url, self._raw_length, tls=secure))

    @property
    def _url(self) -> str:
        return self.request.url.url

    def _process(self, at_eof: bool) -> None:
        """Handle every event h11 can produce from what it has received so far."""
        while not self.response.called:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as e:
                self._fail(self._protocol_error(str(e), at_eof))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                if at_eof:  # h11 needs more, but nothing more will come
                    self._fail(self._protocol_error("connection closed", at_eof))
                return
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                self._response_head(event)
            elif isinstance(event, h11.Data):
                self._body.add(event.data)
                if self._body.length > self.max_body_size:
                    self._fail(BodyTooLarge(self._url, self.max_body_size))
                    return
                self._observer.body_received(self._body.length)
            elif isinstance(event, h11.EndOfMessage):
                self._succeed(Headers.from_raw(event.headers.raw_items()))
            else:  # ConnectionClosed before the end of the message
                self._fail(self._protocol_error("connection closed", at_eof))

    def _response_head(self, event: h11.Response) -> None:
        """
        Check the final response's framing headers, and keep the head's exact bytes.

        Unless the body is chunked, C{raw} will be exactly the head, then the body, then
        whatever h11 has not consumed: h11 hands over Content-Length and close-delimited
        bodies byte for byte.  So the received pieces are dropped here, and C{raw} is
        later joined from the head and the very C{body} object.  A 1 MiB response then
        holds 1 MiB, not 2, and the pieces are freed as h11 consumes them, which keeps
        the allocator reusing memory instead of returning it to the system and faulting
        it back in for the next response.  Chunked bodies keep every piece (C{raw} has
        the chunk framing).
        """
        self._head = event
        self._head_length = self._raw_length - len(self._h11.trailing_data[0])
        framing: dict[bytes, bytes] = {}  # one pass over the headers (h11 lower-cases names)
        for name, value in event.headers:
            if name == b"content-length" or name == b"transfer-encoding":
                framing.setdefault(name, value)
        if len(framing) == 2:
            self._fail(MalformedResponse(self._url, "both Transfer-Encoding and Content-Length"))
            return
        cl = framing.get(b"content-length")
        length = None
        # A 204 or 304 has no body whatever its Content-Length says (h11 reads none): the
        # length is not checked against the limit nor shown as the progress bar's total.
        # (Interim 1xx responses never get here.)
        if cl is not None and event.status_code not in _NO_BODY:
            length = int(cl)  # h11 has checked it is digits
            if length > self.max_body_size:
                self._fail(BodyTooLarge(self._url, self.max_body_size))
                return
        received = self._raw
        assert received is not None  # kept until now (the final head)
        first = received[0]  # usually holds the whole head: no need to join everything
        if len(first) < self._head_length:
            first = b"".join(received)
        self._head_bytes = first[: self._head_length]
        if b"transfer-encoding" not in framing:
            self._raw = None
            self._body = _Body(length)
        self._observer.response_head(self._head_bytes, length)

    def _protocol_error(self, detail: str, at_eof: bool) -> FetchError:
        """
        Choose the error for h11's complaint: nothing received (52), a cut after the
        headers (18), or a malformed or incomplete head (8).
        """
        if at_eof and not self._raw_length:
            return EmptyReply(self._url)
        if at_eof and self._head is not None:
            return PartialBody(self._url, self._body.length)
        return MalformedResponse(self._url, detail)

    def _succeed(self, trailers: Headers) -> None:
        """Close the connection and fire C{response} with the complete L{Response}."""
        head = self._head
        assert head is not None  # h11 gives EndOfMessage only after Response
        self.transport.loseConnection()
        # Let go of the buffers: the protocol is in reference cycles (factory, transport,
        # connector), so whatever it holds lives on until the cyclic garbage collector
        # runs; with many large responses in flight that would be megabytes of dead body
        # pieces, and page faults instead of reused memory.
        body, self._body = self._body.value(), _Body(None)
        if self._raw is None:  # not chunked: see _response_head
            raw = [self._head_bytes, body, self._h11.trailing_data[0]]
        else:
            raw = self._raw
        self._raw = None
        response = Response(
            url=self._url,
            http_version=head.http_version.decode("ascii"),
            code=head.status_code,
            phrase=head.reason.decode("latin-1"),
            headers=Headers.from_raw(head.headers.raw_items()),
            body=body,
            raw=b"",  # the received pieces instead, joined when first read:
            head_length=self._head_length,
            trailers=trailers,
        )
        self.response.callback(_with_raw_pieces(response, raw))

    def _fail(self, reason: FetchError) -> None:
        """Abort the connection (never wait on a peer) and fail C{response}."""
        self._body, self._raw = _Body(None), None  # see _succeed
        if self.transport is not None:
            self.transport.abortConnection()
        if not self.response.called:
            self.response.errback(reason)

    def _cancel(self, response: Deferred[Response]) -> None:
        """Cancelling C{response} aborts the connection; the Deferred fails as cancelled."""
        if self.transport is not None:
            self.transport.abortConnection()
