"""
twistsock: the classic blocking-socket tutorial made real on Twisted.

An OK-echo server (L{twistsock.echo}: L{OKEchoFactory}, also the C{twistsock} twistd
plugin) and an HTTP GET client (L{twistsock.http}: L{fetch}, L{HTTPGetFactory}) that reads
the whole response correctly.

Every public name of both is available here too.  They are imported when first used
(PEP 562), so that C{import twistsock} loads neither product, the server never loads the
client, and the client never loads the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twistsock._lazy import lazy_names
from twistsock._version import __version__

if TYPE_CHECKING:
    from twistsock.echo import EchoSettings, InvalidSetting, OKEchoFactory, OKEchoProtocol
    from twistsock.http import (
        BodyTooLarge,
        BodyWriteError,
        CertificateError,
        Client,
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
        Headers,
        HTTPGetFactory,
        HTTPGetProtocol,
        HTTPStatusError,
        InvalidHeader,
        InvalidProxyURL,
        MalformedResponse,
        MalformedURL,
        OperationTimeout,
        PartialBody,
        Proxies,
        ProxyTunnelError,
        RangeNotSupported,
        Response,
        RetryPolicy,
        Timings,
        TLSHandshakeError,
        TooManyRedirects,
        TrailingContentData,
        UnsupportedContentEncoding,
        UnsupportedProxyScheme,
        UnsupportedScheme,
        fetch,
    )

_HOME = {
    "EchoSettings": "twistsock.echo",
    "InvalidSetting": "twistsock.echo",
    "OKEchoFactory": "twistsock.echo",
    "OKEchoProtocol": "twistsock.echo",
    "BodyTooLarge": "twistsock.http",
    "BodyWriteError": "twistsock.http",
    "CertificateError": "twistsock.http",
    "Client": "twistsock.http",
    "ConnectTimeout": "twistsock.http",
    "ConnectionRefused": "twistsock.http",
    "ConnectionReset": "twistsock.http",
    "ContentDecodingError": "twistsock.http",
    "CouldNotConnect": "twistsock.http",
    "CouldNotResolve": "twistsock.http",
    "CouldNotResolveProxy": "twistsock.http",
    "EmptyReply": "twistsock.http",
    "FetchError": "twistsock.http",
    "FetchTimeout": "twistsock.http",
    "HTTPGetFactory": "twistsock.http",
    "HTTPGetProtocol": "twistsock.http",
    "HTTPStatusError": "twistsock.http",
    "Headers": "twistsock.http",
    "InvalidHeader": "twistsock.http",
    "InvalidProxyURL": "twistsock.http",
    "MalformedResponse": "twistsock.http",
    "MalformedURL": "twistsock.http",
    "OperationTimeout": "twistsock.http",
    "PartialBody": "twistsock.http",
    "RangeNotSupported": "twistsock.http",
    "Proxies": "twistsock.http",
    "ProxyTunnelError": "twistsock.http",
    "Response": "twistsock.http",
    "RetryPolicy": "twistsock.http",
    "Timings": "twistsock.http",
    "TLSHandshakeError": "twistsock.http",
    "TooManyRedirects": "twistsock.http",
    "TrailingContentData": "twistsock.http",
    "UnsupportedContentEncoding": "twistsock.http",
    "UnsupportedProxyScheme": "twistsock.http",
    "UnsupportedScheme": "twistsock.http",
    "fetch": "twistsock.http",
}

__all__ = [
    "__version__",
    "EchoSettings",
    "InvalidSetting",
    "OKEchoFactory",
    "OKEchoProtocol",
    "BodyTooLarge",
    "BodyWriteError",
    "CertificateError",
    "Client",
    "ConnectTimeout",
    "ConnectionRefused",
    "ConnectionReset",
    "ContentDecodingError",
    "CouldNotConnect",
    "CouldNotResolve",
    "CouldNotResolveProxy",
    "EmptyReply",
    "FetchError",
    "FetchTimeout",
    "HTTPGetFactory",
    "HTTPGetProtocol",
    "HTTPStatusError",
    "Headers",
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
    "fetch",
]


if not TYPE_CHECKING:  # type checkers see the imports above, and no catch-all getattr
    __getattr__, __dir__ = lazy_names(__name__, globals(), _HOME)
