"""
L{fetch}: get a URL over HTTP or HTTPS with a deadline, following redirects when asked.

C{fetch} puts the pieces together: L{parse_url} and L{build_request} check the request,
C{HostnameEndpoint} resolves the name through the reactor and connects over IPv4 or IPv6
(an IP literal is connected to directly: C{reactor.connectTCP} for C{http}), C{wrapClientTLS}
adds TLS for C{https}, and L{HTTPGetFactory} reads the response.  A single
deadline covers the whole operation, redirects included; when it passes, the connection is
aborted (not closed politely: the peer may not be reading) and the fetch fails with
L{OperationTimeout}.  This is the difference from C{treq}'s C{timeout=}, which covers only
the wait for the headers.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urljoin

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, fail
from twisted.python.failure import Failure

from twistsock._deadline import with_deadline
from twistsock._limits import DEFAULT_MAX_BODY_SIZE, DEFAULT_TIMEOUT
from twistsock.http._decoding import (
    accept_encoding,
    check_codings,
    content_codings,
    decoding_target,
)
from twistsock.http._errors import (
    BodyTooLarge,
    FetchError,
    MalformedURL,
    OperationTimeout,
    RangeNotSupported,
    TooManyRedirects,
)
from twistsock.http._factory import HTTPGetFactory
from twistsock.http._pool import Client
from twistsock.http._protocol import TransferObserver
from twistsock.http._proxy import Proxies, Proxy, proxy_endpoint, route
from twistsock.http._reader import ResponseHead
from twistsock.http._request import (
    GetRequest,
    HeadersInput,
    ParsedURL,
    build_request,
    cached_request,
    parse_url,
    validate_headers,
)
from twistsock.http._response import Response, _with_timings
from twistsock.http._retry import Retry, RetryPolicy, as_policy, run_with_retries
from twistsock.http._timings import TransferTimer, timed_observer, timed_resolution

__all__ = [
    "REDIRECT_CODES",
    "basic_authorization",
    "fetch",
    "fetch_with_observer",
    "tcp_endpoint",
]

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
"""The status codes whose C{Location} is followed when C{follow_redirects} is true."""

_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
"""Extra headers not carried over a redirect to another scheme, host or port (as curl)."""

# Printable ASCII except space: kept as is in a Location; the rest is percent-encoded.
_LOCATION_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


def tcp_endpoint(
    reactor: Any,
    host: str,
    port: int,
    timeout: float,
    on_resolved: Callable[[], None] | None = None,
) -> Any:
    """
    The TCP client endpoint (an C{IStreamClientEndpoint}) for C{host} and C{port}.

    A host name goes through C{HostnameEndpoint} (resolution through the reactor, IPv4 and
    IPv6 attempts raced).  An IP literal, already an address, is connected to directly with
    C{TCP4ClientEndpoint} or C{TCP6ClientEndpoint}: C{HostnameEndpoint} would still send it
    through the resolver (a thread-pool C{getaddrinfo} round trip), build its attempt
    machinery, and report a refused connection only at its next 0.3 s attempt tick: most of
    the cost of a request to a local server, and a needless delay on refusal (for
    C{twistsock probe} too, which reports the time taken).

    @param on_resolved: called when a host name has been resolved (see
        L{timed_resolution}).
    """
    # Imported when first needed: plain http to an address needs no endpoint at all.
    from twisted.internet.endpoints import (
        HostnameEndpoint,
        TCP4ClientEndpoint,
        TCP6ClientEndpoint,
    )

    if isIPAddress(host):
        return TCP4ClientEndpoint(reactor, host, port, timeout=timeout)
    if isIPv6Address(host):
        return TCP6ClientEndpoint(reactor, host, port, timeout=timeout)
    return HostnameEndpoint(timed_resolution(reactor, on_resolved), host, port, timeout=timeout)


def _endpoint(
    reactor: Any,
    url: ParsedURL,
    connect_timeout: float,
    tls_verify: bool,
    on_resolved: Callable[[], None] | None = None,
    proxy: Proxy | None = None,
    observer: TransferObserver | None = None,
) -> Any:
    """
    The client endpoint for C{url}: L{tcp_endpoint}, wrapped in TLS for C{https}, or
    through C{proxy} (see L{proxy_endpoint}; C{observer} is told of a C{CONNECT}).  (Plain
    C{http} to an IP literal needs no endpoint at all: see L{_Fetch.get}.)
    """
    if proxy is not None:
        return proxy_endpoint(reactor, url, proxy, connect_timeout, tls_verify, observer)
    endpoint = tcp_endpoint(reactor, url.host, url.port, connect_timeout, on_resolved)
    if url.scheme == "https":
        from twisted.internet.endpoints import wrapClientTLS

        from twistsock.http._tls import client_tls

        endpoint = wrapClientTLS(client_tls(url.host, tls_verify), endpoint)
    return endpoint


def _is_ip_literal(host: str) -> bool:
    """Is C{host} an IPv4 or IPv6 address (as L{parse_url} normalises them)?"""
    return isIPAddress(host) or isIPv6Address(host)


def _redirect_target(response: Response, location: str) -> ParsedURL:
    """
    Resolve C{Location} against the URL that answered, percent-encoding what must be.

    @raise MalformedURL: (curl exit 3, as curl's "The redirect target URL could not be
        parsed") when the target is not a valid URL, C{urljoin}'s own complaints
        (C{http://[::1}: "Invalid IPv6 URL") included.
    @raise UnsupportedScheme: (exit 1) when it names a scheme other than http or https.
    """
    encoded = quote(location.encode("latin-1"), safe=_LOCATION_SAFE)
    try:
        joined = urljoin(response.url, encoded)
    except ValueError as e:
        raise MalformedURL(location, f"bad redirect target ({e})") from None
    return parse_url(joined)


def basic_authorization(user: str, password: str) -> str:
    """
    The C{Authorization} value for HTTP Basic authentication (RFC 7617), C{user:password}
    in UTF-8 (bytes a URL's percent-encoding gave, as they were), base64-encoded.

    @raise ValueError: when C{user} holds a colon, which would move the split.
    """
    if ":" in user:
        raise ValueError("a Basic authentication user name cannot contain ':'")
    token = base64.b64encode(f"{user}:{password}".encode("utf-8", "surrogateescape"))
    return f"Basic {token.decode('ascii')}"


def _with_credentials(
    headers: tuple[tuple[str, str], ...], url: ParsedURL, auth: tuple[str, str] | None
) -> tuple[tuple[str, str], ...]:
    """
    C{headers} with C{Authorization} for C{auth}, or else for the URL's user information,
    first; an C{Authorization} among C{headers} wins, as curl's C{-H} does.

    @raise MalformedURL: the URL's user name holds a colon (percent-encoded), which
        Basic authentication cannot carry.
    """
    from_url = auth is None and url.username is not None
    if from_url:
        auth = (url.username or "", url.password or "")
    if auth is None or any(name.lower() == "authorization" for name, _ in headers):
        return headers
    user, password = auth
    if from_url and ":" in user:
        raise MalformedURL(url.url, "a user name holding ':' cannot be sent in Basic auth")
    return (("Authorization", basic_authorization(user, password)), *headers)


def _same_origin(a: ParsedURL, b: ParsedURL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def _range_start(content_range: str | None) -> int | None:
    """
    The first byte position a C{Content-Range} gives, read as curl reads it (C{bytes
    N-M/T}, C{bytes: N-}, C{N-}), or C{None} (absent, or C{*/T}).
    """
    value = (content_range or "").lstrip(" \t")
    value = value.removeprefix("bytes").lstrip(" \t:")
    digits = len(value) - len(value.lstrip("0123456789"))
    return int(value[:digits]) if digits else None


class _AlreadyComplete(FetchError):
    """
    A resumed transfer's response says the resource is complete already (a 416, or a
    whole body of exactly C{resume_from} bytes): the transfer stops at its head, which
    L{_Fetch.get} turns back into the L{Response} (as curl, which stops there too).
    """

    def __init__(self, url: str, head: ResponseHead) -> None:
        super().__init__("the entire document is already downloaded")
        self.url = url
        self.head = head

    def response(self) -> Response:
        """The response: the head, and no body."""
        head = self.head
        return Response(
            url=self.url,
            http_version=head.http_version,
            code=head.code,
            phrase=head.phrase,
            headers=head.headers,
            body=b"",
            raw=head.raw,
            head_length=len(head.raw),
        )


class _HeldBody:
    """A decoded body held in memory, up to C{limit} bytes (L{BodyTooLarge} beyond)."""

    def __init__(self, url: str, limit: int) -> None:
        self._url = url
        self._limit = limit
        self._buffer = io.BytesIO()  # getvalue hands its buffer over: the body is held once

    def __call__(self, data: bytes) -> None:
        if self._buffer.tell() + len(data) > self._limit:
            raise BodyTooLarge(self._url, self._limit)
        self._buffer.write(data)

    def value(self) -> bytes:
        """The decoded body."""
        return self._buffer.getvalue()


class _Fetch:
    """
    One call of L{fetch}: the hops of its redirect chain, and the URL being fetched (for
    the timeout message).
    """

    def __init__(
        self,
        reactor: Any,
        connect_timeout: float,
        max_body_size: int,
        tls_verify: bool,
        observer: TransferTimer,
        stream: Callable[[ResponseHead], object] | None = None,
        follow_redirects: bool = False,
        client: Client | None = None,
        compressed: bool = False,
        resume_from: int = 0,
        proxies: Proxies | None = None,
    ) -> None:
        self.reactor = reactor
        self.proxies = proxies
        self.client = client
        self.stream = stream
        self.compressed = compressed
        self.resume_from = resume_from
        self.restart_on_whole = False
        self.held: _HeldBody | None = None  # this hop's decoded body, when held
        self.follow_redirects = follow_redirects
        self.connect_timeout = connect_timeout
        self.max_body_size = max_body_size
        self.tls_verify = tls_verify
        self.observer = observer
        self.current = ""

    def get(self, request: GetRequest) -> Deferred[Response]:
        """Connect and read one response; connection failures become L{FetchError}s."""
        url = request.url
        self.current = url.url
        self.observer.request_started(url.url)
        self.held = None
        stream: Callable[[ResponseHead], object] | None = self._stream_to
        if self.stream is None and not self.compressed and not self.resume_from:
            stream = None
        attempt = self._get(request, stream)
        if self.compressed or self.resume_from:
            attempt.addCallbacks(self._with_held_body, self._complete_already)
        return attempt

    def _with_held_body(self, response: Response) -> Response:
        """The response, with the decoded body if it was held decoded."""
        if self.held is not None:
            response = dataclasses.replace(response, body=self.held.value())
        return response

    def _complete_already(self, failure: Any) -> Response:
        """A resumed transfer found complete already is a L{Response}, not a failure."""
        failure.trap(_AlreadyComplete)
        complete: _AlreadyComplete = failure.value
        return complete.response()

    def _get(
        self, request: GetRequest, stream: Callable[[ResponseHead], object] | None
    ) -> Deferred[Response]:
        """Send C{request} over the client's connections, or a connection of its own."""
        url = request.url
        if self.client is not None:
            return self.client.request(
                request, max_body_size=self.max_body_size, observer=self.observer, stream=stream
            )
        request, proxy = route(self.proxies, request)
        factory = HTTPGetFactory(
            request,
            max_body_size=self.max_body_size,
            observer=self.observer,
            stream=stream,
            timeout=None,
        )
        if proxy is None and url.scheme == "http" and _is_ip_literal(url.host):
            # Plain TCP to an address: no endpoint needed.  The factory turns connection
            # failures into FetchErrors itself, and cancelling its Deferred stops the
            # connector; this skips the endpoint's wrapping factory, wrapping protocol
            # (one more call per dataReceived) and connection Deferred.
            self.reactor.connectTCP(url.host, url.port, factory, timeout=self.connect_timeout)
            return factory.response
        endpoint = _endpoint(
            self.reactor,
            url,
            self.connect_timeout,
            self.tls_verify,
            on_resolved=self.observer.name_resolved,
            proxy=proxy,
            observer=self.observer,
        )
        return factory.connect(endpoint, connect_timeout=self.connect_timeout)

    def _stream_to(self, head: ResponseHead) -> object:
        """
        Where the body of C{head} goes: held when it is a redirect that will be followed,
        where the caller's C{stream} says otherwise.
        """
        if self.follow_redirects and head.code in REDIRECT_CODES:
            if (head.headers.get("Location") or "").strip(" \t"):
                return None
        if self.compressed or self.resume_from:
            return self._checked_stream_to(head)
        assert self.stream is not None
        return self.stream(head)

    def _checked_stream_to(self, head: ResponseHead) -> object:
        """
        Where the body of the final C{head} goes with C{resume_from} or C{compressed}:
        checked against the offset, and through a decoder where it has codings.

        @raise RangeNotSupported: the response does not continue at the offset.
        @raise _AlreadyComplete: the response says the resource is complete.
        @raise UnsupportedContentEncoding: a coding cannot be decoded.
        """
        try:
            complete = self.resume_from and self._check_range(head)
            codings = content_codings(head.headers) if self.compressed and not complete else []
            check_codings(self.current, codings)  # before anything is written
        except FetchError:
            self._show_head(head)
            raise
        target = None if self.stream is None else self.stream(head)
        if complete:
            self._show_head(head)
            raise _AlreadyComplete(self.current, head)
        if codings:
            if target is None:
                target = self.held = _HeldBody(self.current, self.max_body_size)
            return decoding_target(self.current, codings, target)
        return target

    def _show_head(self, head: ResponseHead) -> None:
        """
        Tell the observer about C{head}, which stops the transfer here (the protocol tells
        it only about heads whose body is read).
        """
        if self.observer is not None:
            self.observer.response_head(head.raw, head.content_length)

    def _check_range(self, head: ResponseHead) -> bool:
        """
        Does C{head}, the answer to a resumed request, continue at C{resume_from}?  C{False}
        when it does; C{True} when the resource is complete already (a 416, or a body
        of exactly C{resume_from} bytes without a C{Content-Range} that continues).  A 200
        with the whole resource is C{False} too (the download starts over) when its body is
        held, or when the caller's stream chose to start over (C{restart_on_whole}).

        @raise RangeNotSupported: otherwise (as curl, whatever the status code).
        """
        content_range = head.headers.get("Content-Range")
        if _range_start(content_range) == self.resume_from:
            return False
        if head.code == 416 or head.content_length == self.resume_from:
            return True
        if head.code == 200 and (self.stream is None or self.restart_on_whole):
            # The whole resource: the download starts over, where its body can go from
            # the start (held, or a stream that looks at the status).
            return False
        raise RangeNotSupported(self.current, self.resume_from, head.code, content_range, head)

    async def follow(
        self, request: GetRequest, headers: Sequence[tuple[str, str]], max_redirects: int
    ) -> Response:
        """
        Get C{request}, then follow redirects; raise a L{FetchError} on failure.
        (Without redirects to follow, L{fetch} calls L{get} alone: no coroutine needed.)
        """
        first = request.url
        history: list[Response] = []
        while True:
            response = await self.get(request)
            # An empty Location is no Location at all (as curl): the redirect is the
            # final response, rather than a redirect to itself until max_redirects.
            location = (response.headers.get("Location") or "").strip(" \t")
            if response.code not in REDIRECT_CODES or not location:
                if history:
                    response = dataclasses.replace(response, history=tuple(history))
                return response
            if len(history) >= max_redirects:
                raise TooManyRedirects(response.url, max_redirects)
            history.append(response)
            target = _redirect_target(response, location)
            kept = headers
            if not _same_origin(first, target):
                kept = [(n, v) for n, v in headers if n.lower() not in _CREDENTIAL_HEADERS]
            request = build_request(target, kept, keep_alive=self.client is not None)


def _with_transfer_headers(
    extra: tuple[tuple[str, str], ...], compressed: bool, resume_from: int
) -> tuple[tuple[str, str], ...]:
    """
    C{extra} with C{Accept-Encoding} for C{compressed} (unless C{extra} has one) and
    C{Range} for C{resume_from} (replacing any).

    @raise ValueError: C{resume_from} is negative.
    """
    if resume_from < 0:
        raise ValueError(f"resume_from must be 0 or more, not {resume_from}")
    names = {name.lower() for name, _ in extra}
    if compressed and "accept-encoding" not in names:
        extra += (("Accept-Encoding", accept_encoding()),)
    if resume_from:
        extra = tuple((n, v) for n, v in extra if n.lower() != "range")
        extra += (("Range", f"bytes={resume_from}-"),)
    return extra


def fetch(
    url: str,
    *,
    reactor: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = 10,
    headers: HeadersInput | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    follow_redirects: bool = False,
    max_redirects: int = 10,
    tls_verify: bool = True,
    stream_to: object = None,
    client: Client | None = None,
    retries: int | RetryPolicy = 0,
    auth: tuple[str, str] | None = None,
    compressed: bool = False,
    resume_from: int = 0,
    proxy: str | Proxies | None = None,
) -> Deferred[Response]:
    """
    GET C{url} and return a Deferred of the complete L{Response}.

    Without C{client}, the request has a connection of its own, closed after the response
    (C{Connection: close}): nothing is left open behind the call.  With a L{Client}, it
    uses that client's persistent connections (and C{reactor}, C{connect_timeout} and
    C{tls_verify} are the client's).

    @param url: an absolute C{http://} or C{https://} URL; IDNA host names and IPv6 literals
        (C{http://[::1]:8080/}) are accepted.  User information in it
        (C{http://user:password@host/}, percent-decoded) is sent as C{auth} is, when
        C{auth} is not given (a user name holding C{:} fails with L{MalformedURL}); it
        never appears in C{Response.url} or error messages.
    @param reactor: the reactor to use; the global one when C{None}.
    @param timeout: seconds for the whole operation (resolution, connection, TLS, every byte
        of every response, redirects included); with C{retries}, for each attempt (as
        curl's C{--max-time}).
    @param connect_timeout: seconds for each TCP connection attempt.
    @param headers: extra request headers, a mapping or C{(name, value)} pairs; one named
        like a default header (C{Host}, C{User-Agent}, C{Accept}, C{Connection}) replaces it.
    @param max_body_size: the largest body held in memory, in bytes (default 64 MiB).
    @param follow_redirects: follow 301, 302, 303, 307 and 308 responses with a
        C{Location}, resolved against the current URL; a redirect whose C{Location} is
        missing or empty is the final response (as curl), and one whose C{Location} is
        not a valid URL fails with L{MalformedURL}.  C{Authorization}, C{Cookie} and
        C{Proxy-Authorization} are dropped when a redirect leaves the original scheme, host
        and port.
    @param max_redirects: how many redirects may be followed.
    @param tls_verify: check the server's certificate and host name (C{https}); C{False}
        turns verification off explicitly.
    @param stream_to: where the final response's body goes as it arrives, instead of
        memory: an C{IConsumer} (with flow control: a consumer that pauses stops the
        reading), a binary file, or a callable taking each piece.  Its size is then not
        bounded by C{max_body_size} (nothing is held), the L{Response}'s C{body} is empty,
        and its C{raw} is the head alone.  A write that raises C{OSError} fails with
        L{twistsock.http.BodyWriteError} (23).  The bodies of redirects that are followed
        are not streamed.
    @param client: the L{Client} whose connections to use, if any.
    @param retries: a L{RetryPolicy}, or how many times to retry after a transient failure
        (a timeout, a name that does not resolve, or the status 408, 429, 500, 502, 503 or
        504) with curl's waits: 1 s, then twice as long each time, up to 10 minutes, or what
        C{Retry-After} asks.  The waits use C{reactor}.  The body of a response that is
        retried is neither returned nor streamed; a streamed body cut short by a failure
        that is retried stays where it was streamed.  0, the default, never retries.
    @param auth: C{(user, password)} for HTTP Basic authentication: sent as
        C{Authorization} to the URL's scheme, host and port only, never after a redirect
        to another (as C{curl -u}); an C{Authorization} in C{headers} replaces it.  A user
        name holding C{:} fails with C{ValueError}.
    @param compressed: ask for a compressed body (C{Accept-Encoding: deflate, gzip}, plus
        C{br} and C{zstd} when the C{brotli} and C{zstandard} packages are installed,
        unless C{headers} has an C{Accept-Encoding}), and decode the final response's body
        as its C{Content-Encoding} says, as it arrives (curl's C{--compressed}).  The
        decoded body is what is held, bounded by C{max_body_size} (a decompression bomb
        fails with L{twistsock.http.BodyTooLarge} after at most that much output), or
        streamed to C{stream_to}; C{headers} and C{raw} stay as received (a decoded body
        held in memory leaves C{raw} the head alone).  An unknown coding fails with
        L{twistsock.http.UnsupportedContentEncoding} (61) before any body is written,
        corrupt data with L{twistsock.http.ContentDecodingError} (61) after what was
        decoded before it (see L{twistsock.http._decoding} for the edge cases).
        Without it, bodies are never decoded.
    @param resume_from: continue a download at this byte offset (curl's C{-C}): a
        C{Range: bytes=N-} header is sent (replacing any in C{headers}), and the final
        response must continue there: a C{Content-Range} that starts at C{resume_from}
        (a 206), whose body is then the rest of the resource.  A response that says the
        resource is complete already, a 416 or a body of exactly C{resume_from} bytes
        without such a C{Content-Range}, stops at its head: it is returned with an empty
        C{body}, and nothing is streamed.  A 200 with the whole resource, when the body is
        held, is the download starting over: the L{Response} has code 200 and the whole
        body (with C{stream_to}, which cannot be rewound, it fails as below).  Any other
        response fails with L{twistsock.http.RangeNotSupported} (33) before any of its
        body is streamed, unless C{retries} retry its transient status first (as curl's
        C{-C} with C{--fail}).
        C{0} sends no C{Range}.  With C{compressed}, the offset counts encoded bytes, and
        a coded 206 body generally cannot be decoded on its own: use one or the other.
    @param proxy: the HTTP proxy to go through: a URL
        (C{http://[user:password@]host[:port]}, port 1080 by default, as curl's C{-x}) for
        every URL, or L{Proxies} (per scheme, with hosts never proxied;
        C{Proxies.from_environment()} reads the environment as curl does).  C{None}, the
        default, connects directly: the environment is read only when asked to.  Plain
        C{http} is sent to the proxy in absolute form; C{https} goes through a C{CONNECT}
        tunnel, TLS verified against the origin's name.  Credentials in the proxy URL
        are sent as C{Proxy-Authorization} (Basic) to the proxy only.  A refused tunnel
        fails with L{twistsock.http.ProxyTunnelError} (56), a proxy name that does not
        resolve with L{twistsock.http.CouldNotResolveProxy} (5).  With a C{client}, the
        client's C{proxy} is used, and this one must be C{None}.

    @return: fires with the L{Response} (its C{history} holds the redirect responses, its
        C{timings} when each step of the transfer was over, read on C{reactor}'s clock: see
        L{twistsock.http.Timings}), or fails with a L{twistsock.http.FetchError} subclass
        (with the C{timings} of what was done).  Cancelling it aborts the connection (or
        ends a wait between attempts).  With retries, the timings are those of the last
        attempt (curl's are too).
    """
    return fetch_with_observer(
        url,
        reactor=reactor,
        timeout=timeout,
        connect_timeout=connect_timeout,
        headers=headers,
        max_body_size=max_body_size,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        tls_verify=tls_verify,
        observer=None,
        stream=None if stream_to is None else (lambda head: stream_to),
        client=client,
        retries=retries,
        auth=auth,
        compressed=compressed,
        resume_from=resume_from,
        proxy=proxy,
    )


def fetch_with_observer(
    url: str,
    *,
    reactor: Any,
    timeout: float,
    connect_timeout: float,
    headers: HeadersInput | None,
    max_body_size: int,
    follow_redirects: bool,
    max_redirects: int,
    tls_verify: bool,
    observer: TransferObserver | None,
    stream: Callable[[ResponseHead], object] | None = None,
    client: Client | None = None,
    retries: int | RetryPolicy = 0,
    auth: tuple[str, str] | None = None,
    proxy: str | Proxies | None = None,
    on_retry: Callable[[Retry], object] | None = None,
    check: Callable[[Response], object] | None = None,
    compressed: bool = False,
    resume_from: int = 0,
    restart_on_whole: bool = False,
    status_before_range: bool = True,
) -> Deferred[Response]:
    """
    L{fetch}, with a L{TransferObserver} told about each request and response as it goes
    (the command line's C{--verbose} and progress bar), and C{stream} asked, with each
    final head that is not a redirect to follow, where its body goes (see
    L{HTTPGetProtocol}).  With retries, C{on_retry} is told each decision to retry
    before its wait, and C{check} may fail a response that is not retried (C{--fail}: a
    failure it raises may be retried in turn, with C{all_errors}).  With
    C{restart_on_whole}, a 200 with the whole resource to a resumed request goes to
    C{stream} (which sees its status and starts over) instead of failing.  Without
    C{status_before_range}, a transient status to a resumed request fails the range
    check at once instead of being retried (curl's C{-C} without C{--fail}).
    """
    if client is not None:
        reactor, connect_timeout, tls_verify = (
            client.reactor,
            client.connect_timeout,
            client.tls_verify,
        )
    if reactor is None:
        from twisted.internet import reactor
    try:
        policy = as_policy(retries)
        extra = validate_headers(headers)
        request = cached_request(url, extra, client is not None)
        parsed = request.url
        if auth is not None or parsed.username is not None or compressed or resume_from:
            extra = _with_credentials(extra, parsed, auth)
            extra = _with_transfer_headers(extra, compressed, resume_from)
            request = build_request(parsed, extra, keep_alive=client is not None)
        if client is not None and proxy is not None:
            raise ValueError("with a Client, the proxy is the Client's: pass proxy= to it")
        proxies = Proxies.of(proxy)
    except Exception:
        return fail()

    def attempt(stream: Callable[[ResponseHead], object] | None) -> Deferred[Response]:
        timer = timed_observer(reactor.seconds, observer)
        job = _Fetch(
            reactor,
            connect_timeout,
            max_body_size,
            tls_verify,
            timer,
            stream,
            follow_redirects,
            client,
            compressed,
            resume_from,
            proxies,
        )
        job.restart_on_whole = restart_on_whole
        if follow_redirects:
            attempt = Deferred.fromCoroutine(job.follow(request, extra, max_redirects))
        else:
            try:
                attempt = job.get(request)
            except Exception:  # a reactor's connectTCP may raise at once
                attempt = fail()
        # The deadline names the URL being fetched when it passes (a redirect's, perhaps).
        with_deadline(attempt, timeout, reactor, lambda t: OperationTimeout(job.current, t))
        return attempt.addBoth(_timed, timer)

    if not policy.retries:
        return attempt(stream)
    return Deferred.fromCoroutine(
        run_with_retries(
            reactor,
            policy,
            attempt,
            stream,
            on_retry=on_retry,
            check=check,
            status_before_range=status_before_range,
        )
    )


def _timed(outcome: Response | Failure, timer: TransferTimer) -> Response | Failure:
    """
    The fetch (or one attempt of it) is over: its L{Timings} go on the response, or on
    the L{FetchError} it failed with.
    """
    if isinstance(outcome, Response):
        timer.finish()
        return _with_timings(outcome, timer.finished)  # built if it is read
    if isinstance(outcome.value, FetchError):
        outcome.value.timings = timer.finished()
    return outcome
