"""
twistsock: the classic blocking-socket tutorial made real on Twisted.

An OK-echo server (L{OKEchoFactory}, also the C{twistsock} twistd plugin) and an HTTP GET
client (L{fetch}, L{HTTPGetFactory}) that reads the whole response correctly.
"""

from twistsock._client import HTTPGetFactory, HTTPGetProtocol
from twistsock._echo import OKEchoFactory, OKEchoProtocol
from twistsock._errors import (
    BodyTooLarge,
    CertificateError,
    ConnectionRefused,
    ConnectionReset,
    ConnectTimeout,
    CouldNotConnect,
    CouldNotResolve,
    EmptyReply,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidHeader,
    MalformedResponse,
    MalformedURL,
    OperationTimeout,
    PartialBody,
    TLSHandshakeError,
    TooManyRedirects,
    UnsupportedScheme,
)
from twistsock._fetch import fetch
from twistsock._response import Headers, Response
from twistsock._version import __version__

__all__ = [
    "__version__",
    "OKEchoFactory",
    "OKEchoProtocol",
    "BodyTooLarge",
    "CertificateError",
    "ConnectTimeout",
    "ConnectionRefused",
    "ConnectionReset",
    "CouldNotConnect",
    "CouldNotResolve",
    "EmptyReply",
    "FetchError",
    "FetchTimeout",
    "HTTPGetFactory",
    "HTTPGetProtocol",
    "HTTPStatusError",
    "Headers",
    "InvalidHeader",
    "MalformedResponse",
    "MalformedURL",
    "OperationTimeout",
    "PartialBody",
    "Response",
    "TLSHandshakeError",
    "TooManyRedirects",
    "UnsupportedScheme",
    "fetch",
]
