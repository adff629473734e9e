"""
TLS for the client, imported only when a URL is C{https} or a TLS failure is reported, so
that plain HTTP never loads OpenSSL.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.ssl import CertificateOptions, optionsForClientTLS
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

from twistsock.http._errors import CertificateError, FetchError, TLSHandshakeError

__all__ = ["client_tls", "tls_error"]


def client_tls(host: str, verify: bool) -> Any:
    """
    The C{IOpenSSLClientConnectionCreator} for a connection to C{host}: Twisted's verifying
    one (certificate chain and host name), or, when C{verify} is false, one that checks
    nothing (C{tls_verify=False}, C{-k}).
    """
    return optionsForClientTLS(host) if verify else _UnverifiedTLS(host)


@implementer(IOpenSSLClientConnectionCreator)
class _UnverifiedTLS:
    """
    TLS without certificate or hostname verification (C{tls_verify=False}, C{-k}), still
    sending SNI for host names so that name-based virtual hosts pick the right certificate.
    """

    def __init__(self, host: str) -> None:
        self._context = CertificateOptions().getContext()
        self._sni = None if isIPAddress(host) or isIPv6Address(host) else host.encode("ascii")

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        """Make the OpenSSL connection for one TLS client connection."""
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        if self._sni is not None:
            connection.set_tlsext_host_name(self._sni)
        return connection


def _reasons(error: SSL.Error) -> str:
    """
    OpenSSL's reasons in C{error}, in words (C{"wrong version number"}), without the
    Python list of C{(library, function, reason)} tuples that C{str()} shows.
    """
    found = error.args[0] if error.args else None
    if not isinstance(found, list):
        return ""
    return "; ".join(
        str(entry[2]) for entry in found if isinstance(entry, tuple) and len(entry) == 3
    )


def tls_error(reason: BaseException | None, host: str) -> FetchError | None:
    """
    Classify a TLS failure: an untrusted or mismatched certificate (60) or another
    handshake failure (35); C{None} if C{reason} is not a TLS failure.
    """
    if isinstance(reason, SSL.Error):
        text = str(reason)
        if "certificate verify failed" in text:
            return CertificateError(host, "certificate verify failed (untrusted or expired)")
        return TLSHandshakeError(host, _reasons(reason) or text)
    if isinstance(reason, VerificationError):  # service_identity: wrong host name
        return CertificateError(host, f"certificate is not valid for {host}")
    return None
