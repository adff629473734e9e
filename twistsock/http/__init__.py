"""
The HTTP GET client: the tutorial's C{GET / HTTP/1.1}, reading the whole response.

L{fetch} gets a URL with one deadline for the whole transfer; L{HTTPGetFactory} and
L{HTTPGetProtocol} do one GET over any client endpoint.  Every failure is a
L{FetchError} subclass carrying curl's exit code.

Importing this package loads nothing of the echo server.
"""

from twistsock.http._errors import (
    BodyTooLarge,
    BodyWriteError,
    CertificateError,
    ConnectionRefused,
    ConnectionReset,
    ConnectTimeout,
    ContentDecodingError,
    CouldNotConnect,
    CouldNotResolve,
    CouldNotResolveProxy,
    EmptyReply,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidHeader,
    InvalidProxyURL,
    MalformedResponse,
    MalformedURL,
    OperationTimeout,
    PartialBody,
    ProxyTunnelError,
    RangeNotSupported,
    TLSHandshakeError,
    TooManyRedirects,
    TrailingContentData,
    UnsupportedContentEncoding,
    UnsupportedProxyScheme,
    UnsupportedScheme,
)
from twistsock.http._factory import HTTPGetFactory
from twistsock.http._fetch import fetch
from twistsock.http._pool import Client
from twistsock.http._protocol import HTTPGetProtocol
from twistsock.http._proxy import Proxies
from twistsock.http._response import Headers, Response, Timings
from twistsock.http._retry import RetryPolicy

__all__ = [
    "BodyTooLarge",
    "BodyWriteError",
    "CertificateError",
    "Client",
    "ConnectionRefused",
    "ConnectionReset",
    "ConnectTimeout",
    "ContentDecodingError",
    "CouldNotConnect",
    "CouldNotResolve",
    "CouldNotResolveProxy",
    "EmptyReply",
    "fetch",
    "FetchError",
    "FetchTimeout",
    "Headers",
    "HTTPGetFactory",
    "HTTPGetProtocol",
    "HTTPStatusError",
    "InvalidHeader",
    "InvalidProxyURL",
    "MalformedResponse",
    "MalformedURL",
    "OperationTimeout",
    "PartialBody",
    "RangeNotSupported",
    "Proxies",
    "ProxyTunnelError",
    "Response",
    "RetryPolicy",
    "Timings",
    "TLSHandshakeError",
    "TooManyRedirects",
    "TrailingContentData",
    "UnsupportedContentEncoding",
    "UnsupportedProxyScheme",
    "UnsupportedScheme",
]
