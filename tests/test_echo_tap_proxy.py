"""
Tests for the PROXY protocol options of L{twistsock.echo.tap}: C{--proxy-protocol},
C{--proxy-from}, C{--proxy-header-timeout}, C{ssl:} ports behind C{ssl send-proxy}, and
C{haproxy:} ports refused.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from tests._certificates import make_self_signed
from tests.test_echo_tap import parse
from twistsock._twisted import ssl_endpoint_parts
from twistsock.echo import tap


class ProxyOptionsTests(SynchronousTestCase):
    """
    The options become L{EchoSettings} fields, checked once.
    """

    def test_defaults(self) -> None:
        """
        Off by default; headers from loopback only; 5 seconds for the header.
        """
        settings = parse()["settings"]
        self.assertFalse(settings.proxy_protocol)
        self.assertEqual(settings.proxy_from, ("127.0.0.0/8", "::1/128"))
        self.assertEqual(settings.proxy_header_timeout, 5.0)

    def test_options(self) -> None:
        """
        C{--proxy-from} is repeatable and replaces the default.
        """
        settings = parse(
            "--proxy-protocol",
            "--proxy-from",
            "10.0.0.0/8",
            "--proxy-from",
            "::1",
            "--proxy-header-timeout",
            "2.5",
        )["settings"]
        self.assertTrue(settings.proxy_protocol)
        self.assertEqual(settings.proxy_from, ("10.0.0.0/8", "::1/128"))
        self.assertEqual(settings.proxy_header_timeout, 2.5)

    def test_bad_values(self) -> None:
        """
        A bad network or timeout is an error that names its option.
        """
        for argv, message in [
            (
                ["--proxy-from", "10.0.0.0/33"],
                "--proxy-from must be IP networks in CIDR notation",
            ),
            (["--proxy-header-timeout", "soon"], "--proxy-header-timeout must be a number"),
            (["--proxy-header-timeout", "0"], "--proxy-header-timeout must be more than 0"),
        ]:
            error = self.assertRaises(usage.UsageError, parse, *argv)
            self.assertIn(message, str(error))

    def test_haproxy_ports_refused(self) -> None:
        """
        C{haproxy:} ports are refused in one line that points at C{--proxy-protocol}.
        """
        error = self.assertRaises(
            SystemExit, tap.Options().parseOptions, ["--port", "haproxy:tcp:8888"]
        )
        self.assertEqual(
            error.code,
            "twistd twistsock: error: --port 'haproxy:tcp:8888': haproxy: ports are not "
            "supported; use --proxy-protocol --port tcp:8888 instead "
            "(see twistd twistsock --help)",
        )

    def test_help(self) -> None:
        """
        The help names the three options and no longer suggests C{haproxy:} ports.
        """
        text = str(tap.ServerOptions())
        for needle in ("--proxy-protocol", "--proxy-from", "--proxy-header-timeout"):
            self.assertIn(needle, text)
        self.assertNotIn("haproxy:tcp", text)


class ProxyServiceTests(SynchronousTestCase):
    """
    With C{--proxy-protocol} an C{ssl:} port listens as plain TCP and starts TLS after
    the header; other ports are unchanged.
    """

    def test_ssl_port(self) -> None:
        """
        The C{ssl:} port's number, backlog, interface and certificate are kept.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        key, cert = make_self_signed(directory)
        ssl_port = f"ssl:0:interface=127.0.0.1:backlog=7:privateKey={key}:certKey={cert}"
        options = parse("--proxy-protocol", "--port", ssl_port, "--port", "tcp:0")
        (echo,) = list(tap.makeService(options))
        assert isinstance(echo, tap.EchoServerService)
        (_, tls), (_, plain) = echo.endpoints
        assert isinstance(tls, tap.TLSAfterHeaderEndpoint)
        assert isinstance(tls.endpoint, TCP4ServerEndpoint)
        self.assertEqual(
            (tls.endpoint._port, tls.endpoint._backlog, tls.endpoint._interface),
            (0, 7, "127.0.0.1"),
        )
        self.assertIsNotNone(tls.context)
        self.assertIsInstance(plain, TCP4ServerEndpoint)

    def test_ssl_port_without_proxy(self) -> None:
        """
        Without C{--proxy-protocol} an C{ssl:} port is Twisted's own.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        key, cert = make_self_signed(directory)
        options = parse("--port", f"ssl:0:privateKey={key}:certKey={cert}")
        (echo,) = list(tap.makeService(options))
        assert isinstance(echo, tap.EchoServerService)
        self.assertNotIsInstance(echo.endpoints[0][1], tap.TLSAfterHeaderEndpoint)

    def test_ssl_endpoint_parts(self) -> None:
        """
        L{ssl_endpoint_parts} reads this Twisted's C{ssl:} endpoint, and gives C{None}
        for any other.
        """
        from twisted.internet.endpoints import serverFromString

        directory = Path(self.mktemp())
        directory.mkdir()
        key, cert = make_self_signed(directory)
        endpoint = serverFromString(None, f"ssl:8443:privateKey={key}:certKey={cert}")
        parts = ssl_endpoint_parts(endpoint)
        assert parts is not None
        self.assertEqual(parts[:3], (8443, 50, ""))
        self.assertTrue(hasattr(parts[3], "getContext"))
        self.assertIsNone(ssl_endpoint_parts(serverFromString(None, "tcp:8888")))
