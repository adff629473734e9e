"""
HTTP proxies against a real forward proxy: Debian's C{tinyproxy}, started by each test
on 127.0.0.1 with its own configuration, in front of local twisted.web servers (plain and
TLS).  C{twistsock get} runs beside curl 7.88 with the same arguments and environment;
C{fetch(proxy=)} and C{Client(proxy=)} run in the test process.

Where tinyproxy is not installed (C{.ci/run} installs it), the tests that need it are
skipped, saying so; curl likewise (L{require_curl}).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.ssl import PrivateCertificate
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web import server
from twisted.web.resource import Resource

from tests._certificates import make_self_signed
from tests._curl import ENV, require_curl, run_curl, run_get
from tests._http_servers import closed_port, listen_web, temporary_directory
from tests.test_http_fetch import SiteWithoutALPN
from twistsock import Client, fetch
from twistsock.http import ProxyTunnelError

reactor: Any = _reactor

USER, PASSWORD = "proxy-user", "pass-word_1"
"""tinyproxy's BasicAuth credentials (its configuration takes no other characters)."""

CREDENTIALS = "proxy%2Duser:pass%2dword%5F1"
"""The same in a proxy URL, percent-encoded where no encoding is needed: decoded or not."""

START_TIMEOUT = 10.0
"""Seconds tinyproxy has to start listening before a test fails."""


def tinyproxy_path() -> str:
    """The path of tinyproxy; skip the calling test, saying why, when it is missing."""
    found = shutil.which("tinyproxy") or next(
        (p for p in ("/usr/bin/tinyproxy", "/usr/sbin/tinyproxy") if os.path.exists(p)), None
    )
    if found is None:
        raise SkipTest("tinyproxy is not installed: the tests against a real proxy are skipped")
    return found


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


@inlineCallbacks
def start_tinyproxy(
    test: TestCase, connect_ports: list[int], basic_auth: tuple[str, str] | None = None
) -> Any:
    """
    Start tinyproxy in the foreground on 127.0.0.1 (a free port), allowing 127.0.0.1,
    C{CONNECT} to C{connect_ports} only, with C{basic_auth} if given; wait (bounded) for
    it to listen; stop it when the test ends.

    @return: a Deferred of C{(port, log file)}.
    """
    binary = tinyproxy_path()
    directory = temporary_directory(test)
    port = closed_port(reactor)
    log = directory / "tinyproxy.log"
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 30",
        "Allow 127.0.0.1",
        "MaxClients 20",
        f'LogFile "{log}"',
        "LogLevel Info",
        f'PidFile "{directory / "tinyproxy.pid"}"',
        "Syslog Off",
        *(f"ConnectPort {number}" for number in connect_ports),
    ]
    if basic_auth is not None:
        lines.append(f"BasicAuth {basic_auth[0]} {basic_auth[1]}")
    config = directory / "tinyproxy.conf"
    config.write_text("\n".join(lines) + "\n")
    output = (directory / "output.txt").open("wb")
    test.addCleanup(output.close)
    process = subprocess.Popen(
        [binary, "-d", "-c", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        env=ENV,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    test.addCleanup(stop)
    waited = 0.0
    while not _listening(port):
        if process.poll() is not None or waited > START_TIMEOUT:
            shown = (directory / "output.txt").read_text(errors="replace")
            test.fail(f"tinyproxy did not start listening on port {port}: {shown}")
        yield deferLater(reactor, 0.05, lambda: None)
        waited += 0.05
    return port, log


class Recorder(Resource):
    """Answers C{secure}; records the path and proxy headers of each request seen."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bytes, bytes | None]] = []

    def render_GET(self, request: server.Request) -> bytes:
        self.seen.append((request.path, request.getHeader(b"proxy-authorization")))
        return b"secure\n"


def listen_tls(test: TestCase, directory: Path) -> tuple[int, Recorder, Path]:
    """
    Serve a L{Recorder} over TLS on 127.0.0.1 with a certificate for C{origin.test},
    127.0.0.1 and ::1 (not C{localhost}).

    @return: the port, the recorder and the certificate file (the CA to trust).
    """
    key, cert = make_self_signed(directory, name="origin.test")
    options = PrivateCertificate.loadPEM(key.read_text() + cert.read_text()).options()
    recorder = Recorder()
    port = reactor.listenSSL(0, SiteWithoutALPN(recorder), options, interface="127.0.0.1")
    test.addCleanup(port.stopListening)
    return port.getHost().port, recorder, cert


class ProxyCommandTests(TestCase):
    """
    C{twistsock get -x} through tinyproxy, beside curl: the same exit status and body.
    """

    #: The credentials tinyproxy asks for, if any.
    proxy_credentials: tuple[str, str] | None = None

    @inlineCallbacks
    def setUp(self) -> Any:
        directory = temporary_directory(self)
        self.web = listen_web(self, reactor, directory)
        self.tls, self.recorder, cert = listen_tls(self, directory)
        # Each command trusts the test certificate, and nothing else of the environment
        # (no proxy variable: ENV has none).
        self.env = dict(ENV, SSL_CERT_FILE=str(cert), CURL_CA_BUNDLE=str(cert))
        self.proxy, self.log = yield start_tinyproxy(self, [self.tls], self.proxy_credentials)
        self.cert = cert

    @inlineCallbacks
    def both(self, *args: str, env: dict[str, str] | None = None) -> Any:
        """
        Run curl and C{twistsock get} with C{args}; both must exit alike and write the
        same body.  Returns twistsock's C{(stdout, stderr, status)}.
        """
        require_curl()
        env = self.env if env is None else env
        # --no-alpn: a twisted.web TLS server fails the handshake of a client that offers
        # ALPN ("internal error"); twistsock offers none, so the exchanges are the same.
        curl, ours = yield gatherResults(
            [
                run_curl(reactor, "-sS", "--no-alpn", *args, env=env),
                run_get(reactor, "-sS", *args, env=env),
            ]
        )
        self.assertEqual((ours[2], ours[0]), (curl[2], curl[0]), (curl[1], ours[1]))
        return ours

    def proxied(self) -> str:
        """What tinyproxy logged of the requests it received."""
        return self.log.read_text(errors="replace")

    @inlineCallbacks
    def test_http(self) -> Any:
        """
        Plain http goes to the proxy, which gets the whole URL (absolute form).
        """
        url = f"http://127.0.0.1:{self.web}/static/hello.txt"
        out, _, status = yield self.both("-x", f"http://127.0.0.1:{self.proxy}", url)
        self.assertEqual((status, out), (0, b"hello, world\n"))
        self.assertEqual(self.proxied().count(f"GET {url} HTTP/1.1"), 2)

    @inlineCallbacks
    def test_https(self) -> Any:
        """
        https goes through a CONNECT tunnel; TLS is verified against the origin's name
        (the certificate is valid for 127.0.0.1, not for the proxy's name C{localhost}).
        """
        url = f"https://127.0.0.1:{self.tls}/path"
        out, _, status = yield self.both("-x", f"localhost:{self.proxy}", url)
        self.assertEqual((status, out), (0, b"secure\n"))
        self.assertEqual(self.proxied().count(f"CONNECT 127.0.0.1:{self.tls} HTTP/1.1"), 2)
        self.assertEqual(self.recorder.seen, [(b"/path", None)] * 2)

    @inlineCallbacks
    def test_include_verbose(self) -> Any:
        """
        C{-i} writes the proxy's answer to C{CONNECT} before the response, as curl does;
        C{-v} shows the C{CONNECT} exchange.
        """
        require_curl()
        url = f"https://127.0.0.1:{self.tls}/"
        proxy = f"127.0.0.1:{self.proxy}"
        curl, ours, verbose = yield gatherResults(
            [
                run_curl(reactor, "-si", "--no-alpn", "-x", proxy, url, env=self.env),
                run_get(reactor, "-si", "-x", proxy, url, env=self.env),
                run_get(reactor, "-sv", "-x", proxy, url, env=self.env),
            ]
        )
        answer = curl[0].split(b"HTTP/1.1 200 OK\r\n")[0]
        self.assertTrue(answer.startswith(b"HTTP/1.0 200 Connection established\r\n"))
        self.assertTrue(ours[0].startswith(answer + b"HTTP/1.1 200 OK\r\n"), (answer, ours))
        self.assertTrue(ours[0].endswith(b"\r\n\r\nsecure\n"))
        self.assertIn(f"> CONNECT 127.0.0.1:{self.tls} HTTP/1.1\n".encode(), verbose[1])
        self.assertIn(b"< HTTP/1.0 200 Connection established\n", verbose[1])

    @inlineCallbacks
    def test_https_wrong_name(self) -> Any:
        """
        Through the tunnel, a certificate not valid for the origin's name is refused (60).
        """
        _, err, status = yield self.both(
            "-x", f"127.0.0.1:{self.proxy}", f"https://localhost:{self.tls}/"
        )
        self.assertEqual(status, 60)
        self.assertIn(b"localhost", err)

    @inlineCallbacks
    def test_refused_tunnel(self) -> Any:
        """
        A CONNECT to a port tinyproxy does not allow: 56, with the proxy's status.
        """
        _, err, status = yield self.both(
            "-x", f"http://127.0.0.1:{self.proxy}", f"https://127.0.0.1:{self.web}/"
        )
        self.assertEqual(
            (status, err), (56, b"twistsock: (56) CONNECT tunnel failed, response 403\n")
        )

    @inlineCallbacks
    def test_environment(self) -> Any:
        """
        C{http_proxy} and C{https_proxy} are used, C{HTTP_PROXY} is not, C{no_proxy}
        bypasses the proxy, and C{-x ""} turns the environment's proxy off.
        """
        proxy = f"http://127.0.0.1:{self.proxy}"
        plain = f"http://127.0.0.1:{self.web}/static/hello.txt"
        secure = f"https://127.0.0.1:{self.tls}/"
        yield self.both(plain, env=dict(self.env, http_proxy=proxy))
        yield self.both(secure, env=dict(self.env, https_proxy=proxy))
        yield self.both(secure, env=dict(self.env, HTTPS_PROXY=proxy))
        yield self.both(secure, env=dict(self.env, ALL_PROXY=proxy))
        self.assertEqual(self.proxied().count(f"GET {plain} HTTP/1.1"), 2)
        self.assertEqual(self.proxied().count("CONNECT 127.0.0.1"), 6)
        yield self.both(plain, env=dict(self.env, HTTP_PROXY=proxy))
        yield self.both(secure, env=dict(self.env, https_proxy=proxy, no_proxy="127.0.0.0/8"))
        yield self.both(secure, env=dict(self.env, NO_PROXY="127.0.0.1", all_proxy=proxy))
        yield self.both("-x", "", plain, env=dict(self.env, http_proxy=proxy))
        yield self.both("--noproxy", "*", secure, env=dict(self.env, https_proxy=proxy))
        self.assertEqual(self.proxied().count(f"GET {plain} HTTP/1.1"), 2)
        self.assertEqual(self.proxied().count("CONNECT 127.0.0.1"), 6)

    @inlineCallbacks
    def test_unreachable_proxy(self) -> Any:
        """
        A proxy that refuses the connection: 7, naming the proxy.
        """
        closed = closed_port(reactor)
        _, err, status = yield self.both(
            "-x", f"http://u:secret@127.0.0.1:{closed}", f"http://127.0.0.1:{self.web}/"
        )
        self.assertEqual(status, 7)
        self.assertEqual(
            err,
            f"twistsock: (7) Failed to connect to 127.0.0.1 port {closed}: "
            "Connection refused\n".encode(),
        )


class ProxyAuthTests(TestCase):
    """
    A proxy that asks for credentials (tinyproxy's BasicAuth), beside curl.
    """

    proxy_credentials = (USER, PASSWORD)
    setUp = ProxyCommandTests.setUp
    both = ProxyCommandTests.both

    @inlineCallbacks
    def test_required(self) -> Any:
        """
        Without credentials: plain http gets the proxy's 407 (exit 0, as curl); a
        tunnel is refused (56, "response 407").
        """
        proxy = f"http://127.0.0.1:{self.proxy}"
        _, _, status = yield self.both("-x", proxy, f"http://127.0.0.1:{self.web}/")
        self.assertEqual(status, 0)
        _, err, status = yield self.both("-x", proxy, f"https://127.0.0.1:{self.tls}/")
        self.assertEqual(
            (status, err), (56, b"twistsock: (56) CONNECT tunnel failed, response 407\n")
        )

    @inlineCallbacks
    def test_given(self) -> Any:
        """
        Credentials in the proxy URL (percent-decoded) open the proxy; the origin at the
        end of the tunnel never sees them; error lines never show them.
        """
        proxy = f"http://{CREDENTIALS}@127.0.0.1:{self.proxy}"
        out, _, status = yield self.both(
            "-x", proxy, f"http://127.0.0.1:{self.web}/static/hello.txt"
        )
        self.assertEqual((status, out), (0, b"hello, world\n"))
        out, _, status = yield self.both("-x", proxy, f"https://127.0.0.1:{self.tls}/in")
        self.assertEqual((status, out), (0, b"secure\n"))
        self.assertEqual(self.recorder.seen, [(b"/in", None)] * 2)
        wrong = f"http://{USER}:wrong@127.0.0.1:{self.proxy}"
        _, err, status = yield self.both("-x", wrong, f"https://127.0.0.1:{self.tls}/")
        self.assertEqual(status, 56)
        self.assertNotIn(b"wrong", err)

    @inlineCallbacks
    def test_api(self) -> Any:
        """
        C{fetch(proxy=)} and C{Client(proxy=)} go through the same proxy; the client
        keeps its tunnel for the next request to the same origin.
        """
        os.environ["SSL_CERT_FILE"] = str(self.cert)  # read by OpenSSL for each context
        self.addCleanup(os.environ.pop, "SSL_CERT_FILE")
        proxy = f"http://{CREDENTIALS}@127.0.0.1:{self.proxy}"
        response = yield fetch(f"https://127.0.0.1:{self.tls}/one", reactor=reactor, proxy=proxy)
        self.assertEqual(response.body, b"secure\n")
        response = yield fetch(
            f"http://127.0.0.1:{self.web}/static/hello.txt", reactor=reactor, proxy=proxy
        )
        self.assertEqual(response.body, b"hello, world\n")
        yield self.assertFailure(
            fetch(
                f"https://127.0.0.1:{self.tls}/", reactor=reactor, proxy=f"127.0.0.1:{self.proxy}"
            ),
            ProxyTunnelError,
        )
        client = Client(reactor=reactor, proxy=proxy)
        self.addCleanup(client.close)
        for path in ("/two", "/three"):
            response = yield client.get(f"https://127.0.0.1:{self.tls}{path}")
            self.assertEqual(response.body, b"secure\n")
        self.assertEqual(self.log.read_text().count("CONNECT 127.0.0.1"), 3)
        self.assertEqual(self.recorder.seen, [(b"/one", None), (b"/two", None), (b"/three", None)])
