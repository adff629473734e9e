"""
The HTTP GET client: the tutorial's C{GET / HTTP/1.1}, reading the whole response.

L{fetch} gets a URL with one deadline for the whole transfer; L{HTTPGetFactory} and
L{HTTPGetProtocol} do one GET over any client endpoint.  Every failure is a
L{FetchError} subclass carrying curl's exit code.

Importing this package loads nothing of the echo server, and each name's module is
imported when the name is first used (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twistsock._lazy import lazy_names

if TYPE_CHECKING:
    from twistsock.http._errors import (
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
    from twistsock.http._factory import HTTPGetFactory
    from twistsock.http._fetch import fetch
    from twistsock.http._protocol import HTTPGetProtocol
    from twistsock.http._response import Headers, Response

_HOME = {
    "BodyTooLarge": "twistsock.http._errors",
    "CertificateError": "twistsock.http._errors",
    "ConnectionRefused": "twistsock.http._errors",
    "ConnectionReset": "twistsock.http._errors",
    "ConnectTimeout": "twistsock.http._errors",
    "CouldNotConnect": "twistsock.http._errors",
    "CouldNotResolve": "twistsock.http._errors",
    "EmptyReply": "twistsock.http._errors",
    "FetchError": "twistsock.http._errors",
    "FetchTimeout": "twistsock.http._errors",
    "HTTPStatusError": "twistsock.http._errors",
    "InvalidHeader": "twistsock.http._errors",
    "MalformedResponse": "twistsock.http._errors",
    "MalformedURL": "twistsock.http._errors",
    "OperationTimeout": "twistsock.http._errors",
    "PartialBody": "twistsock.http._errors",
    "TLSHandshakeError": "twistsock.http._errors",
    "TooManyRedirects": "twistsock.http._errors",
    "UnsupportedScheme": "twistsock.http._errors",
    "HTTPGetFactory": "twistsock.http._factory",
    "fetch": "twistsock.http._fetch",
    "HTTPGetProtocol": "twistsock.http._protocol",
    "Headers": "twistsock.http._response",
    "Response": "twistsock.http._response",
}

__all__ = [
    "BodyTooLarge",
    "CertificateError",
    "ConnectionRefused",
    "ConnectionReset",
    "ConnectTimeout",
    "CouldNotConnect",
    "CouldNotResolve",
    "EmptyReply",
    "fetch",
    "FetchError",
    "FetchTimeout",
    "Headers",
    "HTTPGetFactory",
    "HTTPGetProtocol",
    "HTTPStatusError",
    "InvalidHeader",
    "MalformedResponse",
    "MalformedURL",
    "OperationTimeout",
    "PartialBody",
    "Response",
    "TLSHandshakeError",
    "TooManyRedirects",
    "UnsupportedScheme",
]

__getattr__, __dir__ = lazy_names(__name__, globals(), _HOME)
