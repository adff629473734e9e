"""
The GET request, sans-IO: URL parsing, header validation and the bytes to send.

Nothing here touches a transport or a reactor.  Everything that could corrupt the request
(CR, LF or NUL in the URL or a header, a header name that is not a token) is refused here,
before a connection is even attempted, so there is no way to inject a header or a second
request.  The bytes themselves are serialised by h11, the same state machine that later
parses the response.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from ipaddress import IPv6Address, ip_address
from urllib.parse import SplitResult, quote, unquote, urlsplit

import h11
import idna

from twistsock._version import __version__
from twistsock.http._errors import InvalidHeader, MalformedURL, UnsupportedScheme

__all__ = [
    "DEFAULT_PORTS",
    "GetRequest",
    "HeadersInput",
    "ParsedURL",
    "build_request",
    "cached_request",
    "parse_header_line",
    "parse_url",
    "validate_headers",
    "without_userinfo",
]

DEFAULT_PORTS = {"http": 80, "https": 443}
"""The schemes twistsock speaks, and the port each uses when the URL names none."""

HeadersInput = Mapping[str, str] | Iterable[tuple[str, str]]
"""Extra request headers: a mapping, or C{(name, value)} pairs (which allow repeats)."""

# RFC 9110 5.6.2: token = 1*tchar
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# A DNS label as resolvers accept it (underscores occur in real names).
_LABEL = re.compile(r"[A-Za-z0-9_-]+\Z")
# Control characters (CR, LF and NUL among them), space and DEL are never valid in a URL.
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
# CR, LF and NUL end or corrupt a header line; other controls except TAB are invalid too.
_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# What may appear unescaped in a request target (RFC 3986 unreserved, sub-delims, ":@/?%").
_TARGET_SAFE = "/?:@!$&'()*+,;=-._~%[]"


@dataclass(frozen=True)
class ParsedURL:
    """
    An absolute C{http} or C{https} URL, checked and split into what the connection and
    the request line need.

    @ivar url: the URL as given (fragment included), less its user information
        (C{user:password@}), so that it can be shown and logged.
    @ivar scheme: C{"http"} or C{"https"}.
    @ivar host: the host in ASCII (IDNA-encoded, lower case), without brackets for IPv6.
    @ivar port: the port, the scheme's default when the URL names none.
    @ivar target: the request target: path (C{"/"} when empty) and query, no fragment,
        non-ASCII characters percent-encoded.
    @ivar username: the user name the URL carries, percent-decoded, or C{None}.
    @ivar password: the password the URL carries, percent-decoded (C{""} when the user
        name has none), or C{None} without a user name.  Neither appears in C{repr}.
    """

    url: str
    scheme: str
    host: str
    port: int
    target: str
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def is_ipv6(self) -> bool:
        """Whether the host is an IPv6 literal (written in brackets in URLs and C{Host})."""
        return ":" in self.host

    @property
    def authority(self) -> str:
        """
        The C{Host} header value: the host (bracketed if IPv6) with the port appended
        only when it is not the scheme's default, the way browsers and curl send it.
        """
        host = f"[{self.host}]" if self.is_ipv6 else self.host
        if self.port == DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"


def _ascii_host(url: str, parts: SplitResult) -> str:
    """
    Return the URL's host as ASCII: IP literals checked and normalised, names IDNA-encoded
    (UTS 46 mapping, so C{"BÜCHER.example"} becomes C{"xn--bcher-kva.example"}).
    """
    host = parts.hostname
    if not host:
        raise MalformedURL(url, "no host")
    if "[" in parts.netloc:
        try:
            return str(IPv6Address(host.split("%", 1)[0]))
        except ValueError:
            raise MalformedURL(url, f"bad IPv6 address {host!r}") from None
    try:
        return str(ip_address(host))
    except ValueError:
        pass
    if host.isascii():
        labels = host.rstrip(".").split(".")
        if all(_LABEL.match(label) for label in labels):
            return host
        raise MalformedURL(url, f"bad host name {host!r}")
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as e:
        raise MalformedURL(url, f"bad international host name {host!r} ({e})") from None


def without_userinfo(url: str) -> str:
    """
    C{url} without the user information of its authority (C{user:password@}), split as
    C{urlsplit} splits it: the authority ends at the first C{/}, C{?} or C{#}, and the
    user information at its last C{@}.  Without a scheme, the authority is taken to begin
    the text (as curl reads C{user:password@host}), so that no message shows a password.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, end)
    if at < 0:
        return url
    return f"{scheme}{separator}{rest[at + 1 :]}"


def parse_url(url: str) -> ParsedURL:
    """
    Parse and check an absolute URL.

    User information (C{http://user:password@host/}) is taken apart, percent-decoded,
    into C{username} and C{password}; it never appears in C{ParsedURL.url} nor in an
    error's message.

    @raise MalformedURL: (curl exit 3) for control characters or spaces, no host, or a bad
        port.
    @raise UnsupportedScheme: (curl exit 1) for schemes other than C{http} and C{https}.
    """
    given, url = url, without_userinfo(url)
    if _URL_FORBIDDEN.search(given):
        raise MalformedURL(url, "control character or space in URL")
    if "://" not in url:
        raise MalformedURL(url, "no scheme (expected http:// or https://)")
    try:
        parts = urlsplit(url)
        username = urlsplit(given).username
        password = urlsplit(given).password
    except ValueError as e:
        raise MalformedURL(url, str(e)) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsupportedScheme(url, parts.scheme)
    host = _ascii_host(url, parts)
    try:
        port = parts.port
    except ValueError:
        raise MalformedURL(url, "bad port") from None
    if port == 0:
        raise MalformedURL(url, "bad port")
    target = quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_TARGET_SAFE)
    return ParsedURL(
        url=url,
        scheme=scheme,
        host=host,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        target=target,
        username=None if username is None else unquote(username, errors="surrogateescape"),
        password=None if username is None else unquote(password or "", errors="surrogateescape"),
    )


def parse_header_line(line: str) -> tuple[str, str]:
    """
    Split a command-line header, C{"Name: value"}, into a checked C{(name, value)} pair.

    @raise InvalidHeader: when there is no colon, or the name or value is invalid.
    """
    name, colon, value = line.partition(":")
    if not colon:
        raise InvalidHeader(line, "expected 'Name: value'")
    return _checked_header(name, value, line)


def _checked_header(name: str, value: str, shown: str) -> tuple[str, str]:
    """Return C{(name, value)}, or raise L{InvalidHeader} naming C{shown}."""
    value = value.strip(" \t")  # surrounding whitespace is not part of a field value
    if not _TOKEN.match(name):
        raise InvalidHeader(shown, "the name is not a valid token")
    if _VALUE_FORBIDDEN.search(value):
        raise InvalidHeader(shown, "CR, LF, NUL or another control character in the value")
    return name, value


def validate_headers(headers: HeadersInput | None) -> tuple[tuple[str, str], ...]:
    """
    Check extra request headers (no CR/LF/NUL, token names) and return them as pairs.

    @raise InvalidHeader: for the first bad header.
    """
    if headers is None:
        return ()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return tuple(_checked_header(name, value, f"{name}: {value}") for name, value in pairs)


@dataclass(frozen=True)
class GetRequest:
    """
    One GET request: where it goes and the exact header fields it carries, in order.

    @ivar url: the parsed URL.
    @ivar headers: C{(name, value)} pairs, C{Host} first.
    @ivar absolute_form: whether the request line carries the whole URL
        (C{GET http://host:port/path HTTP/1.1}), as a request to an HTTP proxy does,
        rather than the path alone.
    """

    url: ParsedURL
    headers: tuple[tuple[str, str], ...]
    absolute_form: bool = False

    @property
    def target(self) -> str:
        """The request target: the path and query, or the absolute URL (no fragment)."""
        url = self.url
        if self.absolute_form:
            return f"{url.scheme}://{url.authority}{url.target}"
        return url.target

    def to_h11(self) -> h11.Request:
        """
        The request as an h11 event, to be sent through the connection's h11 state.

        The event is built (and checked by h11) once per request, then shared: h11 events
        are immutable, and building one validates every header with regular expressions,
        which costs more than sending it.
        """
        return self._h11_event

    @cached_property
    def _h11_event(self) -> h11.Request:
        return h11.Request(
            method="GET",
            target=self.target.encode("ascii"),
            headers=[
                (name.encode("ascii"), value.encode("utf-8")) for name, value in self.headers
            ],
        )

    def to_bytes(self) -> bytes:
        """
        The request exactly as L{twistsock.http.HTTPGetProtocol} writes it (h11 serialises it):
        C{GET <target> HTTP/1.1}, the header lines, and the blank line.  Serialised once per
        request and kept, since the same request is sent again and again (see
        L{cached_request}).
        """
        return self._bytes

    @cached_property
    def asks_close(self) -> bool:
        """Does the request carry C{Connection: close} (an extra header can)?"""
        return any(
            name.lower() == "connection" and "close" in value.lower()
            for name, value in self.headers
        )

    @cached_property
    def _bytes(self) -> bytes:
        connection = h11.Connection(our_role=h11.CLIENT)
        return connection.send(self.to_h11()) + connection.send(h11.EndOfMessage())


def build_request(
    url: ParsedURL, extra_headers: Iterable[tuple[str, str]] = (), *, keep_alive: bool = False
) -> GetRequest:
    """
    Build the request for C{url}: C{Host}, C{User-Agent: twistsock/<version>},
    C{Accept: */*} and C{Connection: close} (none with C{keep_alive}: an HTTP/1.1
    connection persists by default), then the extra headers.

    An extra header named like one of those (case-insensitively) replaces it where it
    stands, as curl's C{-H} does; others are appended in order (repeats allowed).
    Headers are assumed checked (L{validate_headers} or L{parse_header_line}).

    @raise InvalidHeader: when h11 refuses the result (two C{Host} headers, for one).
    """
    headers: list[tuple[str, str]] = [
        ("Host", url.authority),
        ("User-Agent", f"twistsock/{__version__}"),
        ("Accept", "*/*"),
    ]
    if not keep_alive:
        headers.append(("Connection", "close"))
    defaults = {name.lower(): index for index, (name, _) in enumerate(headers)}
    for name, value in extra_headers:
        index = defaults.pop(name.lower(), None)
        if index is None:
            headers.append((name, value))
        else:
            headers[index] = (name, value)
    request = GetRequest(url=url, headers=tuple(headers))
    try:
        request.to_h11()  # h11's own checks, now rather than when the connection is made
    except h11.LocalProtocolError as e:
        shown = "; ".join(f"{name}: {value}" for name, value in extra_headers)
        raise InvalidHeader(shown, str(e)) from None
    return request


@lru_cache(maxsize=256)
def cached_request(
    url: str, extra_headers: tuple[tuple[str, str], ...], keep_alive: bool
) -> GetRequest:
    """
    L{build_request} for the URL string C{url}, parsed by L{parse_url}, remembered for the
    most recent 256 combinations of arguments.

    A program that GETs the same URLs again and again (a poller, a client in a loop) would
    otherwise parse the URL, encode its host, and build, check and serialise the request
    on every call, which costs more than reading the response; a L{GetRequest} is
    immutable, so one can serve every call.  Errors are not remembered: a bad URL is
    refused on every call.
    """
    return build_request(parse_url(url), extra_headers, keep_alive=keep_alive)
