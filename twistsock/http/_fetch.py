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
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urljoin

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, fail

from twistsock._deadline import with_deadline
from twistsock._limits import DEFAULT_MAX_BODY_SIZE, DEFAULT_TIMEOUT
from twistsock.http._errors import MalformedURL, OperationTimeout, TooManyRedirects
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
    parse_url,
    validate_headers,
)
from twistsock.http._response import Response
from twistsock.http._retry import Retry, RetryPolicy, as_policy, run_with_retries

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


def tcp_endpoint(reactor: Any, host: str, port: int, timeout: float) -> Any:
    """
    The TCP client endpoint (an C{IStreamClientEndpoint}) for C{host} and C{port}.

    A host name goes through C{HostnameEndpoint} (resolution through the reactor, IPv4 and
    IPv6 attempts raced).  An IP literal, already an address, is connected to directly with
    C{TCP4ClientEndpoint} or C{TCP6ClientEndpoint}: C{HostnameEndpoint} would still send it
    through the resolver (a thread-pool C{getaddrinfo} round trip), build its attempt
    machinery, and report a refused connection only at its next 0.3 s attempt tick: most of
    the cost of a request to a local server, and a needless delay on refusal (for
    C{twistsock probe} too, which reports the time taken).
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
    return HostnameEndpoint(reactor, host, port, timeout=timeout)


def _endpoint(
    reactor: Any,
    url: ParsedURL,
    connect_timeout: float,
    tls_verify: bool,
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
    endpoint = tcp_endpoint(reactor, url.host, url.port, connect_timeout)
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
    """
    if auth is None and url.username is not None:
        auth = (url.username, url.password or "")
    if auth is None or any(name.lower() == "authorization" for name, _ in headers):
        return headers
    user, password = auth
    return (("Authorization", basic_authorization(user, password)), *headers)


def _same_origin(a: ParsedURL, b: ParsedURL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


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
        observer: TransferObserver | None,
        stream: Callable[[ResponseHead], object] | None = None,
        follow_redirects: bool = False,
        client: Client | None = None,
        proxies: Proxies | None = None,
    ) -> None:
        self.reactor = reactor
        self.proxies = proxies
        self.client = client
        self.stream = stream
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
        stream = None if self.stream is None else self._stream_to
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
            self.reactor, url, self.connect_timeout, self.tls_verify, proxy, self.observer
        )
        return factory.connect(endpoint, connect_timeout=self.connect_timeout)

    def _stream_to(self, head: ResponseHead) -> object:
        """
        Where the body of C{head} goes: held when it is a redirect that will be followed,
        where the caller's C{stream} says otherwise.
        """
        assert self.stream is not None
        if self.follow_redirects and head.code in REDIRECT_CODES:
            if (head.headers.get("Location") or "").strip(" \t"):
                return None
        return self.stream(head)

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
        C{auth} is not given; it never appears in C{Response.url} or error messages.
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

    @return: fires with the L{Response} (its C{history} holds the redirect responses), or
        fails with a L{twistsock.http.FetchError} subclass.  Cancelling it aborts the connection
        (or ends a wait between attempts).
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
) -> Deferred[Response]:
    """
    L{fetch}, with a L{TransferObserver} told about each request and response as it goes
    (the command line's C{--verbose} and progress bar), and C{stream} asked, with each
    final head that is not a redirect to follow, where its body goes (see
    L{HTTPGetProtocol}).  With retries, C{on_retry} is told each decision to retry
    before its wait, and C{check} may fail a response that is not retried (C{--fail}: a
    failure it raises may be retried in turn, with C{all_errors}).
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
        parsed = parse_url(url)
        extra = _with_credentials(validate_headers(headers), parsed, auth)
        request = build_request(parsed, extra, keep_alive=client is not None)
        if client is not None and proxy is not None:
            raise ValueError("with a Client, the proxy is the Client's: pass proxy= to it")
        proxies = Proxies.of(proxy)
    except Exception:
        return fail()

    def attempt(stream: Callable[[ResponseHead], object] | None) -> Deferred[Response]:
        job = _Fetch(
            reactor,
            connect_timeout,
            max_body_size,
            tls_verify,
            observer,
            stream,
            follow_redirects,
            client,
            proxies,
        )
        if follow_redirects:
            attempt = Deferred.fromCoroutine(job.follow(request, extra, max_redirects))
        else:
            try:
                attempt = job.get(request)
            except Exception:  # a reactor's connectTCP may raise at once
                attempt = fail()
        # The deadline names the URL being fetched when it passes (a redirect's, perhaps).
        return with_deadline(attempt, timeout, reactor, lambda t: OperationTimeout(job.current, t))

    if not policy.retries:
        return attempt(stream)
    return Deferred.fromCoroutine(
        run_with_retries(reactor, policy, attempt, stream, on_retry=on_retry, check=check)
    )
