"""
Tests for the client's certificate checks (L{twistsock.http._tls}) against a trusted
certificate without a C{subjectAltName}: in process with L{twistsock.fetch}, and with the
C{twistsock get} command beside curl.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.ssl import PrivateCertificate
from twisted.logger import LogEvent, LogLevel, globalLogPublisher
from twisted.trial.unittest import TestCase
from twisted.web.server import Site
from twisted.web.static import Data

from tests._certificates import make_self_signed
from tests._curl import ENV, run_curl, run_get
from tests._http_servers import temporary_directory
from twistsock import CertificateError, fetch

reactor: Any = _reactor


class NoSubjectAltNameTests(TestCase):
    """
    A trusted certificate that names its host only in the subject's CN, with no
    C{subjectAltName}: the transfer fails with L{CertificateError} (60) saying so, and
    nothing else is logged or printed.  Certificates with one still pass the check, or fail
    it, by their names.
    """

    def listen(self, name: str, alt_names: bool = False) -> str:
        """
        Serve C{hello} over TLS on 127.0.0.1 with a certificate for C{name}, by default
        without a C{subjectAltName}, to be trusted through C{SSL_CERT_FILE} (OpenSSL reads
        it for each context; curl reads C{CURL_CA_BUNDLE}).

        @return: the path of the certificate.
        """
        key_path, cert_path = make_self_signed(
            temporary_directory(self), name=name, alt_names=alt_names
        )
        pem = key_path.read_bytes() + cert_path.read_bytes()
        page = Data(b"hello\n", "text/plain")
        page.isLeaf = True
        site = Site(page)
        options = PrivateCertificate.loadPEM(pem).options()
        port = reactor.listenSSL(0, site, options, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port
        return str(cert_path)

    def trust(self, cert: str) -> list[LogEvent]:
        """
        Trust C{cert} in this process for the rest of the test.

        @return: the list where the events logged at the critical level go.
        """
        os.environ["SSL_CERT_FILE"] = cert
        self.addCleanup(os.environ.pop, "SSL_CERT_FILE", None)
        critical: list[LogEvent] = []

        def observe(event: LogEvent) -> None:
            if event.get("log_level") == LogLevel.critical:
                critical.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        return critical

    @inlineCallbacks
    def test_fetch(self) -> Any:
        """
        C{fetch()} fails with L{CertificateError}, whose reason names the missing
        C{subjectAltName}; nothing is logged at the critical level.
        """
        critical = self.trust(self.listen("localhost"))
        d = fetch(f"https://localhost:{self.port}/", reactor=reactor)
        e = yield self.assertFailure(d, CertificateError)
        self.assertEqual(
            (e.curl_exit_code, e.host, e.reason),
            (60, "localhost", "certificate has no subjectAltName, so it names no host"),
        )
        self.assertEqual(critical, [])

    @inlineCallbacks
    def test_fetch_alt_names(self) -> Any:
        """
        The identity check that replaces Twisted's still accepts a certificate whose
        C{subjectAltName} names the host, and still rejects one that names another.
        """
        critical = self.trust(self.listen("localhost", alt_names=True))
        response = yield fetch(f"https://localhost:{self.port}/", reactor=reactor)
        self.assertEqual(response.body, b"hello\n")
        self.trust(self.listen("other.invalid", alt_names=True))
        d = fetch(f"https://localhost:{self.port}/", reactor=reactor)
        e = yield self.assertFailure(d, CertificateError)
        self.assertEqual(e.reason, "certificate is not valid for localhost")
        self.assertEqual(critical, [])

    @inlineCallbacks
    def test_command(self) -> Any:
        """
        C{twistsock get} exits 60 with exactly one error line.  (curl 7.88 falls back to
        the CN and fetches the page; twistsock, like service_identity and RFC 9525, does
        not accept a CN as the server's identity.)
        """
        cert = self.listen("localhost")
        env = dict(ENV, SSL_CERT_FILE=cert)
        out, err, status = yield run_get(reactor, f"https://localhost:{self.port}/", env=env)
        self.assertEqual(
            (out, err, status),
            (
                b"",
                b"twistsock: (60) SSL certificate problem for localhost: certificate has no"
                b" subjectAltName, so it names no host\n",
                60,
            ),
        )

    @inlineCallbacks
    def test_command_other_name(self) -> Any:
        """
        With a CN that is not the host either, curl agrees: both exit 60.
        """
        cert = self.listen("other.invalid")
        env = dict(ENV, SSL_CERT_FILE=cert, CURL_CA_BUNDLE=cert)
        url = f"https://localhost:{self.port}/"
        _, curl_err, curl_status = yield run_curl(reactor, "-sS", url, env=env)
        _, err, status = yield run_get(reactor, url, env=env)
        self.assertEqual((status, curl_status), (60, 60), curl_err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn(b"subjectAltName", err)
