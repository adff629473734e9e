"""
TLS for the client, imported only when a URL is C{https} or a TLS failure is reported, so
that plain HTTP never loads OpenSSL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from OpenSSL import SSL, crypto
from service_identity import CertificateError as NoIdentity
from service_identity import VerificationError
from service_identity.hazmat import DNS_ID, IPAddress_ID, ServiceID, verify_service_identity
from service_identity.pyopenssl import extract_patterns
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.ssl import CertificateOptions, optionsForClientTLS
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from twistsock.http._errors import CertificateError, FetchError, TLSHandshakeError

__all__ = ["client_tls", "tls_error"]


def client_tls(host: str, verify: bool) -> Any:
    """
    The C{IOpenSSLClientConnectionCreator} for a connection to C{host}: one that verifies
    the certificate chain and the host name (L{_VerifiedTLS}), or, when C{verify} is false,
    one that checks nothing (C{tls_verify=False}, C{-k}).
    """
    return _VerifiedTLS(host) if verify else _UnverifiedTLS(host)


@implementer(IOpenSSLClientConnectionCreator)
class _VerifiedTLS:
    """
    Twisted's verifying TLS (trust roots, SNI, the certificate chain) with the check of
    the host name against the certificate done here, so that every failure of it fails
    the connection.

    Twisted's own check treats only C{service_identity}'s C{VerificationError} (a name
    mismatch) as a failure; the C{CertificateError} of a certificate without a
    C{subjectAltName} escapes it, is logged as a critical error with a traceback, and
    the handshake goes on.  OpenSSL keeps one verify callback per connection:
    C{set_verify} here replaces Twisted's.
    """

    def __init__(self, host: str) -> None:
        self._creator = optionsForClientTLS(host)
        ip = isIPAddress(host) or isIPv6Address(host)
        self._service_id: ServiceID = IPAddress_ID(host) if ip else DNS_ID(host)

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        """Make the OpenSSL connection for one TLS client connection."""
        connection = self._creator.clientConnectionForTLS(tlsProtocol)
        connection.set_verify(
            SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
            _check_identity(tlsProtocol, self._service_id),
        )
        return connection


def _check_identity(
    protocol: TLSMemoryBIOProtocol, service_id: ServiceID
) -> Callable[[SSL.Connection, crypto.X509, int, int, int], bool]:
    """
    The verify callback of one connection: OpenSSL's verdict on the chain, and for the
    server's own certificate also its identity.  A certificate that does not name
    C{service_id}, or names nothing, fails the connection with that reason (and an
    exception never escapes into OpenSSL).
    """

    def verify(
        connection: SSL.Connection, certificate: crypto.X509, errno: int, depth: int, ok: int
    ) -> bool:
        if depth != 0 or not ok:
            return bool(ok)
        try:
            patterns = extract_patterns(certificate)
            if not patterns:  # service-identity before 24.1 says only "no match" here
                raise NoIdentity("Certificate does not contain any `subjectAltName`s.")
            verify_service_identity(patterns, [service_id], [])
        except Exception:
            protocol.failVerification(Failure())
            return False
        return True

    return verify


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
    if isinstance(reason, NoIdentity):  # service_identity: no usable names at all
        if "subjectAltName" in str(reason):
            return CertificateError(host, "certificate has no subjectAltName, so it names no host")
        return CertificateError(host, f"certificate names are invalid: {reason}")
    return None
