"""
Typed failures of the HTTP GET client, each with the exit code curl uses for it.

Every failure of L{twistsock.http.fetch} (and of L{twistsock.http.HTTPGetProtocol}) is an
instance of L{FetchError}.  Each subclass carries the data needed to report it (host, URL,
limit, ...) as attributes, and a class attribute C{curl_exit_code} so that the command line
can follow curl's conventions without a table of its own.  C{str(error)} is the one-line
message, the way curl words it where curl has a wording; the command line prints it as
C{twistsock: (CODE) MESSAGE}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from twistsock.http._reader import ResponseHead
    from twistsock.http._response import Timings

__all__ = [
    "BodyTooLarge",
    "CertificateError",
    "ConnectionRefused",
    "ConnectionReset",
    "ConnectTimeout",
    "ContentDecodingError",
    "CouldNotConnect",
    "CouldNotResolve",
    "CouldNotResolveProxy",
    "EmptyReply",
    "FetchError",
    "FetchTimeout",
    "HTTPStatusError",
    "InvalidProxyURL",
    "InvalidHeader",
    "MalformedResponse",
    "MalformedURL",
    "OperationTimeout",
    "PartialBody",
    "RangeNotSupported",
    "TLSHandshakeError",
    "TooManyRedirects",
    "TrailingContentData",
    "UnsupportedContentEncoding",
    "ProxyTunnelError",
    "UnsupportedProxyScheme",
    "UnsupportedScheme",
]


class FetchError(Exception):
    """
    The common base of every client failure.

    @cvar curl_exit_code: the exit status curl uses for this failure.
    @ivar timings: when each step of the failed transfer was over (see
        L{twistsock.http.Timings}), set by L{twistsock.http.fetch} on the failure it
        reports; C{None} on an error that did not come from a fetch.
    """

    curl_exit_code: ClassVar[int] = 1
    timings: Timings | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UnsupportedScheme(FetchError):
    """
    The URL names a scheme other than C{http} or C{https}.

    @ivar url: the URL as given.
    @ivar scheme: its scheme.
    """

    curl_exit_code = 1

    def __init__(self, url: str, scheme: str) -> None:
        super().__init__(f'Protocol "{scheme}" not supported')
        self.url = url
        self.scheme = scheme


class MalformedURL(FetchError):
    """
    The URL cannot be parsed or holds characters that would corrupt the request line
    (CR, LF, NUL, whitespace), so nothing is sent.

    @ivar url: the URL as given.
    @ivar reason: what is wrong with it.
    """

    curl_exit_code = 3

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"URL rejected: {reason}: {url!r}")
        self.url = url
        self.reason = reason


class InvalidHeader(FetchError):
    """
    An extra request header is not a valid C{Name: value} field: a bad name, or CR, LF or
    NUL in the value (header injection).  Nothing is sent.  curl calls this a bad argument.

    @ivar header: the offending header, as given.
    @ivar reason: what is wrong with it.
    """

    curl_exit_code = 43

    def __init__(self, header: str, reason: str) -> None:
        super().__init__(f"Invalid request header {header!r}: {reason}")
        self.header = header
        self.reason = reason


class CouldNotResolve(FetchError):
    """
    The host name has no address.

    @ivar host: the name that could not be resolved.
    """

    curl_exit_code = 6

    def __init__(self, host: str) -> None:
        super().__init__(f"Could not resolve host: {host}")
        self.host = host


class CouldNotConnect(FetchError):
    """
    No connection could be made to the resolved addresses (unreachable network or host).

    @ivar host: the host connected to.
    @ivar port: the port connected to.
    @ivar reason: the operating system's words for it.
    """

    curl_exit_code = 7

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"Failed to connect to {host} port {port}: {reason}")
        self.host = host
        self.port = port
        self.reason = reason


class ConnectionRefused(CouldNotConnect):
    """
    The peer refused the connection: nothing listens on that port.
    """

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port, "Connection refused")


class FetchTimeout(FetchError):
    """
    The common base of the timeouts; the connection is always closed when one fires.
    """

    curl_exit_code = 28


class ConnectTimeout(FetchTimeout):
    """
    The TCP connection was not established within C{connect_timeout}.

    @ivar host: the host connected to.
    @ivar port: the port connected to.
    @ivar timeout: the limit, in seconds, or C{None} where it is the endpoint's own and
        not known.
    """

    def __init__(self, host: str, port: int, timeout: float | None) -> None:
        after = "" if timeout is None else f" after {timeout:g} s"
        super().__init__(f"Failed to connect to {host} port {port}: timed out{after}")
        self.host = host
        self.port = port
        self.timeout = timeout


class OperationTimeout(FetchTimeout):
    """
    The whole transfer (resolution, connection, request, every byte of every response,
    redirects included) did not finish within C{timeout}.  This also catches a server that
    stalls in the middle of a body.

    @ivar url: the URL being fetched when the time ran out.
    @ivar timeout: the limit, in seconds.
    """

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(f"Operation timed out after {timeout:g} s: {url}")
        self.url = url
        self.timeout = timeout


class TLSHandshakeError(FetchError):
    """
    The TLS handshake failed for a reason other than an untrusted certificate (for example
    the peer does not speak TLS, or no protocol version or cipher is shared).

    @ivar host: the host connected to.
    @ivar reason: OpenSSL's words for it.
    """

    curl_exit_code = 35

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"TLS connect error with {host}: {reason}")
        self.host = host
        self.reason = reason


class CertificateError(FetchError):
    """
    The server's certificate is not trusted, or not valid for the host name.

    @ivar host: the host name the certificate was checked against.
    @ivar reason: why it was rejected.
    """

    curl_exit_code = 60

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"SSL certificate problem for {host}: {reason}")
        self.host = host
        self.reason = reason


class MalformedResponse(FetchError):
    """
    The server's reply is not valid HTTP/1.x: a bad status line or header, another HTTP
    version, a bad chunk, headers cut short, headers and chunk framing over the framing
    bound, or C{Transfer-Encoding} together with C{Content-Length}.

    @ivar url: the URL fetched.
    @ivar reason: what is wrong with the reply.
    """

    curl_exit_code = 8

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"Weird server reply: {reason}")
        self.url = url
        self.reason = reason


class EmptyReply(FetchError):
    """
    The server closed the connection without sending a single byte.

    @ivar url: the URL fetched.
    """

    curl_exit_code = 52

    def __init__(self, url: str) -> None:
        super().__init__("Empty reply from server")
        self.url = url


class PartialBody(FetchError):
    """
    The server closed the connection cleanly before the end of the body it announced
    (C{Content-Length} or chunked framing).

    @ivar url: the URL fetched.
    @ivar received: the number of body bytes received.
    """

    curl_exit_code = 18

    def __init__(self, url: str, received: int) -> None:
        super().__init__(f"transfer closed with outstanding read data after {received} bytes")
        self.url = url
        self.received = received


class ConnectionReset(FetchError):
    """
    The connection was lost before the response was complete: reset by the peer (or lost
    another way) on plain TCP; over TLS, closed without the TLS close_notify alert, so
    that the end of what arrived cannot be told from a truncation.  (Twisted's TLS layer
    reports a TCP reset under TLS the same way as a close without close_notify, so the
    TLS message names what is known: the close_notify did not come.)

    @ivar url: the URL fetched.
    @ivar received: the number of bytes (status line and headers included) received.
    @ivar tls: whether the connection was a TLS one.
    """

    curl_exit_code = 56

    def __init__(self, url: str, received: int, tls: bool = False) -> None:
        if tls:
            what = "TLS connection closed without close_notify"
        else:
            what = "Recv failure: Connection reset by peer"
        super().__init__(f"{what} after {received} bytes")
        self.url = url
        self.received = received
        self.tls = tls


class TooManyRedirects(FetchError):
    """
    Following redirects would exceed C{max_redirects}.

    @ivar url: the URL of the last redirect response.
    @ivar limit: the number of redirects allowed.
    """

    curl_exit_code = 47

    def __init__(self, url: str, limit: int) -> None:
        super().__init__(f"Maximum ({limit}) redirects followed")
        self.url = url
        self.limit = limit


class BodyTooLarge(FetchError):
    """
    The body (announced by C{Content-Length}, or received) is over C{max_body_size}.  The
    connection is closed at once instead of reading the rest.

    @ivar url: the URL fetched.
    @ivar limit: the limit, in bytes.
    """

    curl_exit_code = 63

    def __init__(self, url: str, limit: int) -> None:
        super().__init__(f"Maximum file size exceeded: the body is over {limit} bytes")
        self.url = url
        self.limit = limit


class BodyWriteError(FetchError):
    """
    A streamed body could not be written where it was going (a full disk, a closed
    pipe, a consumer that stopped the transfer).  The connection is closed at once.

    @ivar where: what was being written (a file name, C{"stdout"}, C{"the body"}).
    @ivar reason: why it failed.
    """

    curl_exit_code = 23

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"Failed writing {where}: {reason}")
        self.where = where
        self.reason = reason


class HTTPStatusError(FetchError):
    """
    The response has a status code of 400 or more and the caller asked to treat that as a
    failure (C{twistsock get --fail}); L{twistsock.http.fetch} itself never raises it.

    @ivar url: the URL fetched.
    @ivar code: the status code.
    """

    curl_exit_code = 22

    def __init__(self, url: str, code: int) -> None:
        super().__init__(f"The requested URL returned error: {code}")
        self.url = url
        self.code = code


class UnsupportedContentEncoding(FetchError):
    """
    The response's C{Content-Encoding} names a coding that cannot be decoded (unknown, or
    its optional package is not installed), and decoding was asked for.  Nothing of the
    body is written.

    @ivar url: the URL fetched.
    @ivar coding: the coding, lower-cased.
    @ivar available: the codings that can be decoded.
    """

    curl_exit_code = 61

    def __init__(self, url: str, coding: str, available: tuple[str, ...]) -> None:
        names = ", ".join(available)
        super().__init__(
            f"Unrecognized content encoding type {coding!r}. "
            f"twistsock understands {names} content encodings."
        )
        self.url = url
        self.coding = coding
        self.available = available


class ContentDecodingError(FetchError):
    """
    A body's content coding could not be undone: corrupt data, or too many codings.  The
    decoded bytes before the fault have been written.

    @ivar url: the URL fetched.
    @ivar coding: the coding (or codings) concerned.
    @ivar reason: the decoder's words for it.
    """

    curl_exit_code = 61

    def __init__(self, url: str, coding: str, reason: str) -> None:
        super().__init__(f"Error while processing content unencoding: {reason} ({coding})")
        self.url = url
        self.coding = coding
        self.reason = reason


class TrailingContentData(ContentDecodingError):
    """
    Bytes follow the end of a gzip or deflate stream (a second gzip member, or garbage).
    curl fails so with its write error code, 23.
    """

    curl_exit_code = 23

    def __init__(self, url: str, coding: str) -> None:
        super().__init__(url, coding, "data after the end of the compressed stream")


class RangeNotSupported(FetchError):
    """
    A resumed transfer (C{resume_from}) got a response that does not continue at the
    offset asked for: no C{Content-Range}, or one that starts elsewhere, on a response
    that is not a 416 and whose C{Content-Length} is not the offset either.  Nothing of
    its body is written.

    @ivar url: the URL fetched.
    @ivar offset: the offset asked for.
    @ivar code: the response's status code.
    @ivar content_range: its C{Content-Range}, or C{None}.
    @ivar head: the response's head, when one arrived (its status and C{Retry-After}
        decide whether a transient status is retried).
    """

    curl_exit_code = 33

    def __init__(
        self,
        url: str,
        offset: int,
        code: int,
        content_range: str | None,
        head: ResponseHead | None = None,
    ) -> None:
        super().__init__("HTTP server doesn't seem to support byte ranges. Cannot resume.")
        self.url = url
        self.offset = offset
        self.code = code
        self.content_range = content_range
        self.head = head


class InvalidProxyURL(FetchError):
    """
    A proxy URL cannot be parsed (a bad host or port), as curl's "Unsupported proxy
    syntax".  Nothing is sent.

    @ivar proxy: the proxy URL, less its user information.
    """

    curl_exit_code = 5

    def __init__(self, proxy: str) -> None:
        super().__init__(f"Unsupported proxy syntax in '{proxy}'")
        self.proxy = proxy


class UnsupportedProxyScheme(FetchError):
    """
    A proxy URL names a scheme other than C{http} (twistsock speaks to HTTP proxies only:
    not to C{https://} or SOCKS proxies).  Nothing is sent.

    @ivar proxy: the proxy URL, less its user information.
    @ivar scheme: its scheme.
    """

    curl_exit_code = 7

    def __init__(self, proxy: str, scheme: str) -> None:
        super().__init__(
            f"Unsupported proxy scheme for '{proxy}' (twistsock speaks to http:// proxies only)"
        )
        self.proxy = proxy
        self.scheme = scheme


class CouldNotResolveProxy(CouldNotResolve):
    """
    The proxy's host name has no address.  (A L{CouldNotResolve}, so that retries treat
    it as curl does: a transient failure.)
    """

    curl_exit_code = 5

    def __init__(self, host: str) -> None:
        FetchError.__init__(self, f"Could not resolve proxy: {host}")
        self.host = host


class ProxyTunnelError(FetchError):
    """
    The proxy did not open the C{CONNECT} tunnel to an C{https} origin: it answered with
    a status other than 2xx (C{code}), or closed the connection before its answer
    (C{code} is C{None}).

    @ivar proxy: the proxy URL, less its user information.
    @ivar code: the proxy's status code, or C{None}.
    """

    curl_exit_code = 56

    def __init__(self, proxy: str, code: int | None) -> None:
        if code is None:
            message = "Proxy CONNECT aborted"
        else:
            message = f"CONNECT tunnel failed, response {code}"
        super().__init__(message)
        self.proxy = proxy
        self.code = code
