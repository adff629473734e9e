"""
HTTP proxies, as curl 7.88 uses them: which URL goes through which proxy, and how.

  - L{Proxies} holds the proxy settings: one proxy for every scheme, or one per scheme,
    and the hosts never proxied.  L{Proxies.from_environment} reads them from the
    environment the way curl does (C{http_proxy} in lower case only, C{HTTPS_PROXY} or
    C{https_proxy}, C{ALL_PROXY} or C{all_proxy}, C{NO_PROXY} or C{no_proxy}; the lower
    case one wins; an empty variable counts as unset).
  - L{no_proxy_matches} is curl's C{no_proxy} rule: C{*} alone matches every host; a
    name matches itself and its subdomains (C{example.com} and C{.example.com} both
    match C{www.example.com}, not C{nonexample.com}), case-insensitively, trailing dots
    ignored; an IPv4 address matches an address or a CIDR range (C{127.0.0.0/8}); an
    IPv6 address matches its own text only (curl 7.88 compares it as a name).
  - Plain C{http} goes to the proxy as an absolute-form request
    (C{GET http://host:port/path HTTP/1.1}), with C{Proxy-Authorization} when the proxy
    URL carries user information.
  - C{https} goes through a C{CONNECT host:port} tunnel (L{TunnelEndpoint}); TLS starts
    over the tunnel and is verified against the origin's name, and the proxy's
    credentials go in the C{CONNECT} request only, never through the tunnel.  The
    proxy's answer is read by the same sans-IO L{ResponseReader} as every response, with
    the same bound on its head.

Nothing here reads the environment unless asked to: see L{Proxies.from_environment}.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any
from urllib.parse import unquote, urlsplit

from twisted.internet import error
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from twistsock._version import __version__
from twistsock.http._errors import (
    CouldNotResolveProxy,
    FetchError,
    InvalidProxyURL,
    MalformedURL,
    ProxyTunnelError,
    UnsupportedProxyScheme,
)
from twistsock.http._protocol import TransferObserver
from twistsock.http._reader import ResponseReader
from twistsock.http._request import GetRequest, ParsedURL, _ascii_host, without_userinfo

__all__ = [
    "DEFAULT_PROXY_PORT",
    "Proxies",
    "Proxy",
    "TunnelEndpoint",
    "connect_request",
    "forward_request",
    "no_proxy_matches",
    "parse_proxy",
    "proxy_endpoint",
    "route",
]

DEFAULT_PROXY_PORT = 1080
"""The port of a proxy URL that names none (curl's default)."""

_UNSUPPORTED = frozenset({"https", "socks4", "socks4a", "socks5", "socks5h"})
"""Proxy schemes curl speaks and twistsock does not."""


@dataclass(frozen=True)
class Proxy:
    """
    One HTTP proxy, parsed from its URL.

    @ivar url: the proxy URL as given, less its user information (for messages).
    @ivar host: the proxy's host in ASCII (no brackets for IPv6).
    @ivar port: its port (1080 when the URL names none, as curl).
    @ivar username: the user name of the URL, percent-decoded, or C{None}.
    @ivar password: its password, percent-decoded (C{""} without one), or C{None}.
        Neither appears in C{repr}.
    """

    url: str
    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def authorization(self) -> str | None:
        """The C{Proxy-Authorization} value (Basic), or C{None} without credentials."""
        if self.username is None:
            return None
        from twistsock.http._fetch import basic_authorization

        return basic_authorization(self.username, self.password or "")


def parse_proxy(text: str) -> Proxy | None:
    """
    Parse a proxy URL as curl's C{-x} does: C{http://} when it names no scheme, port 1080
    when it names none, a path ignored; C{""} is no proxy at all (C{None}).

    @raise InvalidProxyURL: (5) for a bad host or port.
    @raise UnsupportedProxyScheme: (7) for any scheme but C{http}.
    """
    if not text:
        return None
    given = text if "://" in text else f"http://{text}"
    shown = without_userinfo(given)
    scheme = given.split("://", 1)[0].lower()
    if scheme != "http":
        raise UnsupportedProxyScheme(shown, scheme)
    try:
        parts = urlsplit(given)
        port = parts.port
        host = _ascii_host(shown, urlsplit(shown))
    except (ValueError, MalformedURL):
        raise InvalidProxyURL(shown) from None
    if port == 0:
        raise InvalidProxyURL(shown)
    username = parts.username
    return Proxy(
        url=shown,
        host=host,
        port=DEFAULT_PROXY_PORT if port is None else port,
        username=None if username is None else unquote(username, errors="surrogateescape"),
        password=(
            None if username is None else unquote(parts.password or "", errors="surrogateescape")
        ),
    )


def no_proxy_matches(host: str, no_proxy: str) -> bool:
    """
    Does C{host} (as L{parse_url} gives it: IPv6 without brackets) match the
    comma-separated C{no_proxy} list, by curl 7.88's rules (see the module's description)?
    """
    if not no_proxy:
        return False
    if no_proxy == "*":
        return True
    try:
        address: IPv4Address | None = IPv4Address(host)
    except ValueError:
        address = None
    name = host if address is not None else host.lower().removesuffix(".")
    for token in no_proxy.replace(",", " ").split():
        if address is not None:
            if _in_network(address, token):
                return True
            continue
        token = token.lower().removesuffix(".").removeprefix(".")
        if token and (name == token or name.endswith(f".{token}")):
            return True
    return False


def _in_network(address: IPv4Address, token: str) -> bool:
    """Is C{address} C{token}, or in it when it is a CIDR range (C{/0} means C{/32})?"""
    text, slash, bits = token.partition("/")
    prefix = 32
    if slash:
        if not bits.isdigit() or int(bits) > 32:
            return False
        prefix = int(bits) or 32
    try:
        network = IPv4Network(f"{text}/{prefix}", strict=False)
    except ValueError:
        return False
    return address in network


def _parsed(text: str | None) -> Proxy | None:
    return None if text is None else parse_proxy(text)


def _first(environ: Mapping[str, str], *names: str) -> str | None:
    """The first of C{names} set to something in C{environ} (empty counts as unset)."""
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


@dataclass(frozen=True, init=False)
class Proxies:
    """
    Which proxy each URL goes through, checked once (a bad proxy URL fails at once).

    C{Proxies("http://proxy:3128")} sends every URL through one proxy; C{http=} and
    C{https=} name a proxy for one scheme instead (it wins over the first argument);
    C{no_proxy} lists the hosts that are never proxied, in curl's C{--noproxy} form.
    An empty proxy URL means no proxy.  L{from_environment} reads them all as curl does.

    @ivar proxy: the proxy for every scheme, if any.
    @ivar http: the proxy for C{http} URLs, if any (wins over C{proxy}); a L{Proxy}
        with an empty C{url} when it was given as C{""}: none for that scheme.
    @ivar https: the proxy for C{https} URLs, likewise.
    @ivar no_proxy: the comma-separated hosts, domains and IPv4 ranges never proxied,
        or C{"*"} for every host.
    """

    proxy: Proxy | None
    http: Proxy | None
    https: Proxy | None
    no_proxy: str

    def __init__(
        self,
        proxy: str | None = None,
        *,
        http: str | None = None,
        https: str | None = None,
        no_proxy: str | Iterable[str] = "",
    ) -> None:
        """
        @param proxy: a proxy URL (C{http://[user:password@]host[:port]}) for every URL.
        @param http: a proxy URL for C{http} URLs only.
        @param https: a proxy URL for C{https} URLs only.
        @param no_proxy: the hosts never proxied: curl's comma-separated list, or its
            items.
        @raise InvalidProxyURL: (5) for a proxy URL that cannot be parsed.
        @raise UnsupportedProxyScheme: (7) for a proxy URL whose scheme is not C{http}.
        """
        if not isinstance(no_proxy, str):
            no_proxy = ",".join(no_proxy)
        object.__setattr__(self, "proxy", _parsed(proxy))
        # An empty URL for one scheme is no proxy for it, whatever the first argument.
        object.__setattr__(self, "http", _parsed(http) if http != "" else _NONE)
        object.__setattr__(self, "https", _parsed(https) if https != "" else _NONE)
        object.__setattr__(self, "no_proxy", no_proxy)

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        proxy: str | None = None,
        no_proxy: str | None = None,
    ) -> Proxies:
        """
        The proxies curl would use in C{environ} (C{os.environ} when C{None}):
        C{http_proxy} (lower case only: the upper case one can be set by a request's
        C{Proxy} header in a CGI program), C{https_proxy} or C{HTTPS_PROXY}, and
        C{all_proxy} or C{ALL_PROXY} for a scheme that has none; C{no_proxy} or
        C{NO_PROXY}.  The lower case variable wins; an empty one counts as unset.

        @param proxy: as curl's C{-x}: when not C{None}, the proxy for every URL instead
            of the environment's (C{""}: none).
        @param no_proxy: as curl's C{--noproxy}: when not C{None}, the list instead of
            the environment's.
        """
        if environ is None:
            environ = os.environ
        if no_proxy is None:
            no_proxy = _first(environ, "no_proxy", "NO_PROXY") or ""
        if proxy is not None:
            return cls(proxy, no_proxy=no_proxy)
        return cls(
            _first(environ, "all_proxy", "ALL_PROXY"),
            http=_first(environ, "http_proxy"),
            https=_first(environ, "https_proxy", "HTTPS_PROXY"),
            no_proxy=no_proxy,
        )

    @classmethod
    def of(cls, proxy: str | Proxies | None) -> Proxies | None:
        """C{proxy} as L{Proxies}: a URL is the proxy for every URL; C{None} stays."""
        if proxy is None or isinstance(proxy, Proxies):
            return proxy
        return cls(proxy)

    def select(self, url: ParsedURL) -> Proxy | None:
        """The proxy for C{url}, or C{None} to connect directly."""
        chosen = self.http if url.scheme == "http" else self.https
        if chosen is None:
            chosen = self.proxy
        if chosen is None or chosen is _NONE:
            return None
        if no_proxy_matches(url.host, self.no_proxy):
            return None
        return chosen


_NONE = Proxy(url="", host="", port=0)
"""An empty proxy URL for one scheme: no proxy, not even the one for every scheme."""


def forward_request(request: GetRequest, proxy: Proxy) -> GetRequest:
    """
    C{request} as sent to C{proxy} for a plain C{http} URL: in absolute form, with
    C{Proxy-Authorization} for the proxy's credentials unless the request has one.
    """
    headers = request.headers
    authorization = proxy.authorization
    if authorization is not None and not any(
        name.lower() == "proxy-authorization" for name, _ in headers
    ):
        headers = (*headers, ("Proxy-Authorization", authorization))
    return dataclasses.replace(request, headers=headers, absolute_form=True)


def route(proxies: Proxies | None, request: GetRequest) -> tuple[GetRequest, Proxy | None]:
    """
    The proxy C{request} goes through (C{None}: directly), and the request as it is then
    sent (L{forward_request} for C{http} through a proxy).
    """
    proxy = None if proxies is None else proxies.select(request.url)
    if proxy is not None and request.url.scheme == "http":
        request = forward_request(request, proxy)
    return request, proxy


def connect_request(url: ParsedURL, proxy: Proxy) -> bytes:
    """
    The C{CONNECT} request that asks C{proxy} for a tunnel to C{url}'s host and port
    (bracketed if IPv6): C{Host}, C{User-Agent}, and C{Proxy-Authorization} when the
    proxy URL carries credentials.  Every part is checked already (L{parse_url},
    L{parse_proxy}, base64).
    """
    host = f"[{url.host}]" if url.is_ipv6 else url.host
    authority = f"{host}:{url.port}"
    lines = [
        f"CONNECT {authority} HTTP/1.1",
        f"Host: {authority}",
        f"User-Agent: twistsock/{__version__}",
    ]
    authorization = proxy.authorization
    if authorization is not None:
        lines.append(f"Proxy-Authorization: {authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _proxy_error(reason: Failure, proxy: Proxy, timeout: float) -> Failure:
    """A failure to connect to C{proxy}, named as curl names it (see L{connect_error})."""
    from twistsock.http._factory import connect_error

    if isinstance(reason.value, error.DNSLookupError):
        return Failure(CouldNotResolveProxy(proxy.host))
    return Failure(connect_error(reason.value, proxy.host, proxy.port, timeout))


@implementer(IStreamClientEndpoint)
class _ProxyEndpoint:
    """A TCP endpoint to a proxy whose failures name the proxy (5 for its name)."""

    def __init__(self, reactor: Any, proxy: Proxy, timeout: float) -> None:
        from twistsock.http._fetch import tcp_endpoint

        self._endpoint = tcp_endpoint(reactor, proxy.host, proxy.port, timeout)
        self._proxy = proxy
        self._timeout = timeout

    def connect(self, factory: IProtocolFactory) -> Deferred[Any]:
        connecting: Deferred[Any] = self._endpoint.connect(factory)
        return connecting.addErrback(_proxy_error, self._proxy, self._timeout)


class _TunnelProtocol(Protocol):
    """
    Asks the proxy for a tunnel, reads its answer, then hands the connection to the
    protocol the caller's factory builds, and every byte after the answer to it.
    """

    transport: Any = None

    def __init__(self, tunnel: _Tunnel) -> None:
        self._tunnel = tunnel
        self._reader: ResponseReader | None = ResponseReader(
            tunnel.proxy.url, max_body_size=0, on_head=lambda head: _discard
        )
        self._received = bytearray()  # bounded: the reader fails beyond its head bound
        self._request = b""
        self.inner: Any = None

    def connectionMade(self) -> None:
        self._tunnel.tunnel_protocol = self
        self._request = connect_request(self._tunnel.url, self._tunnel.proxy)
        self.transport.write(self._request)

    def dataReceived(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.dataReceived(data)
            return
        reader = self._reader
        if reader is None:
            return
        self._received += data
        reader.feed(data)
        head = reader.head
        if head is None:
            if isinstance(reader.result, FetchError):
                self._fail(reader.result)
            return
        if self._tunnel.observer is not None:
            self._tunnel.observer.proxy_connect(self._request, head.raw)
        if not 200 <= head.code < 300:
            self._fail(ProxyTunnelError(self._tunnel.proxy.url, head.code))
            return
        # A 2xx answer has no body, whatever its headers say (RFC 9110 section 9.3.6):
        # what follows the head is the tunnel's.
        rest = bytes(self._received[len(head.raw) :])
        self._reader = None
        self._received = bytearray()
        inner = self._tunnel.factory.buildProtocol(self.transport.getPeer())
        if inner is None:
            self._fail(ProxyTunnelError(self._tunnel.proxy.url, head.code))
            return
        self.inner = inner
        inner.makeConnection(self.transport)
        self._tunnel.opened(inner)
        if rest and self.inner is not None:
            self.inner.dataReceived(rest)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.inner is not None:
            self.inner.connectionLost(reason)
            return
        self._reader = None
        self._tunnel.failed(ProxyTunnelError(self._tunnel.proxy.url, None))

    def _fail(self, reason: FetchError) -> None:
        self._reader = None
        self.transport.abortConnection()
        self._tunnel.failed(reason)


def _discard(piece: bytes) -> None:
    """The bytes after a refusal's head (its body) are not needed."""


class _Tunnel(Factory):
    """
    One tunnel being opened: builds its L{_TunnelProtocol} and fires C{result} with the
    caller's protocol once the proxy said yes.
    """

    noisy = False

    def __init__(
        self,
        url: ParsedURL,
        proxy: Proxy,
        factory: IProtocolFactory,
        observer: TransferObserver | None,
    ) -> None:
        self.url = url
        self.proxy = proxy
        self.factory = factory
        self.observer = observer
        self.tunnel_protocol: _TunnelProtocol | None = None
        self.connecting: Deferred[Any] | None = None
        self.result: Deferred[IProtocol] = Deferred(self._cancel)

    def buildProtocol(self, addr: IAddress | None) -> _TunnelProtocol:
        return _TunnelProtocol(self)

    def connected(self, outcome: object) -> None:
        """The connection to the proxy is made, or failed: a failure is the result."""
        self.connecting = None
        if isinstance(outcome, Failure) and not self.result.called:
            self.result.errback(outcome)

    def opened(self, inner: IProtocol) -> None:
        if not self.result.called:
            self.result.callback(inner)

    def failed(self, reason: FetchError) -> None:
        if not self.result.called:
            self.result.errback(reason)

    def _cancel(self, result: Deferred[IProtocol]) -> None:
        """Stop connecting to the proxy, or abort the connection that waits for it."""
        if self.connecting is not None:
            connecting, self.connecting = self.connecting, None
            result.errback(CancelledError())
            connecting.cancel()
        elif self.tunnel_protocol is not None and self.tunnel_protocol.transport is not None:
            self.tunnel_protocol.transport.abortConnection()


@implementer(IStreamClientEndpoint)
class TunnelEndpoint:
    """
    An endpoint whose connections go through a C{CONNECT} tunnel of an HTTP proxy: the
    factory's protocol is connected once the proxy answered 2xx.  A refusal fails the
    connection with L{ProxyTunnelError} (56), and so does a proxy that closes the
    connection before answering; cancelling stops connecting or aborts the connection.
    """

    def __init__(
        self,
        proxy_endpoint: Any,
        url: ParsedURL,
        proxy: Proxy,
        observer: TransferObserver | None = None,
    ) -> None:
        """
        @param proxy_endpoint: the endpoint that connects to the proxy.
        @param url: the URL whose host and port the tunnel leads to.
        @param proxy: the proxy (for its credentials and messages).
        @param observer: told of the C{CONNECT} request and the proxy's answer.
        """
        self._proxy_endpoint = proxy_endpoint
        self._url = url
        self._proxy = proxy
        self._observer = observer

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        tunnel = _Tunnel(self._url, self._proxy, factory, self._observer)
        connecting: Deferred[Any] = self._proxy_endpoint.connect(tunnel)
        tunnel.connecting = connecting
        connecting.addBoth(tunnel.connected)
        return tunnel.result


def proxy_endpoint(
    reactor: Any,
    url: ParsedURL,
    proxy: Proxy,
    connect_timeout: float,
    tls_verify: bool,
    observer: TransferObserver | None = None,
) -> Any:
    """
    The client endpoint for C{url} through C{proxy}: the proxy itself for C{http} (the
    request goes in absolute form: L{forward_request}); for C{https}, TLS to the origin,
    verified against its name, over a L{TunnelEndpoint}.
    """
    endpoint: Any = _ProxyEndpoint(reactor, proxy, connect_timeout)
    if url.scheme == "https":
        from twisted.internet.endpoints import wrapClientTLS

        from twistsock.http._tls import client_tls

        endpoint = wrapClientTLS(
            client_tls(url.host, tls_verify), TunnelEndpoint(endpoint, url, proxy, observer)
        )
    return endpoint
