"""
Tests for HTTP proxies in memory (L{twistsock.http._proxy}): curl's C{no_proxy} rules and
environment variables, proxy URLs, the absolute-form request and the C{CONNECT} tunnel
bytes, the proxy's credentials (to the proxy only), refusals, and the pool's keys.  The
same behaviour against a real proxy, beside curl: C{tests.test_http_proxy_tinyproxy}.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from twisted.internet.defer import CancelledError
from twisted.trial.unittest import SynchronousTestCase

from tests._http_servers import NeverResolves
from tests._memory import MemoryReactorClock
from tests.test_http_fetch import connect, reply
from twistsock import (
    Client,
    ConnectionRefused,
    ConnectTimeout,
    CouldNotResolveProxy,
    InvalidProxyURL,
    MalformedResponse,
    Proxies,
    ProxyTunnelError,
    UnsupportedProxyScheme,
    fetch,
)
from twistsock._version import __version__
from twistsock.http._factory import HTTPGetFactory
from twistsock.http._protocol import TransferObserver
from twistsock.http._proxy import (
    Proxy,
    TunnelEndpoint,
    connect_request,
    no_proxy_matches,
    parse_proxy,
)
from twistsock.http._request import build_request, parse_url
from twistsock.testing import FakeHTTP, Fault, StubRequest, StubResponse

AGENT = f"User-Agent: twistsock/{__version__}"


def basic(credentials: str) -> str:
    """The C{Proxy-Authorization} value for C{user:password}."""
    return "Basic " + base64.b64encode(credentials.encode()).decode()


class NoProxyTests(SynchronousTestCase):
    """
    L{no_proxy_matches} follows curl 7.88 (each row was checked against curl itself).
    """

    TABLE = [
        # host, no_proxy, matches
        ("www.example.com", "", False),
        ("www.example.com", "*", True),
        ("127.0.0.1", "*", True),
        ("www.example.com", " *", False),  # "*" counts only alone
        ("www.example.com", "foo,*", False),
        ("www.example.com", "example.com", True),  # a domain matches its subdomains
        ("example.com", "example.com", True),
        ("www.example.com", ".example.com", True),  # a leading dot is ignored
        ("example.com", ".example.com", True),
        ("www.example.com", "ample.com", False),  # at a dot only
        ("www.example.com", "x.www.example.com", False),
        ("www.example.com", "*.example.com", False),  # no wildcards
        ("www.example.com", "EXAMPLE.COM", True),  # case-insensitive
        ("www.example.com", "www.example.com.", True),  # trailing dots ignored
        ("www.example.com.", "example.com", True),
        ("www.example.com", "foo, example.com", True),  # commas and blanks separate
        ("www.example.com", "foo example.com", True),
        ("www.example.com", ",,example.com,,", True),
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", " 127.0.0.1 ", True),
        ("127.0.0.1", "127.0.0.0", False),
        ("127.0.0.1", "127.0.0.0/8", True),  # CIDR for IPv4
        ("127.0.0.1", "127.0.0.2/8", True),
        ("127.0.0.1", "127.0.0.0/33", False),
        ("127.0.0.1", "127.0.0.1/0", True),  # /0 means /32
        ("127.0.0.2", "127.0.0.1/0", False),
        ("127.0.0.1", "127.0.0.1:8080", False),  # no ports
        ("127.0.0.1", "localhost", False),  # names are not resolved
        ("::1", "::1", True),  # IPv6 compared as text, without brackets
        ("::1", "[::1]", False),
        ("::1", "::1/128", False),
        ("::1", "0:0::1", False),
    ]

    def test_table(self) -> None:
        """
        Each row of L{TABLE}: C{*} alone, domain suffixes at a dot, case and dots, IPv4
        addresses and ranges, IPv6 as text.
        """
        for host, no_proxy, expected in self.TABLE:
            self.assertEqual(
                no_proxy_matches(host, no_proxy), expected, f"{host!r} in {no_proxy!r}"
            )


class EnvironmentTests(SynchronousTestCase):
    """
    L{Proxies.from_environment} reads the variables curl reads, with curl's precedence.
    """

    def chosen(self, environ: dict[str, str] | None, url: str, **kwargs: Any) -> str | None:
        """The proxy chosen for C{url} in C{environ}, as C{host:port}, or C{None}."""
        proxy = Proxies.from_environment(environ, **kwargs).select(parse_url(url))
        return None if proxy is None else f"{proxy.host}:{proxy.port}"

    def test_http(self) -> None:
        """
        C{http_proxy} in lower case only (the upper case one can come from a CGI
        request's C{Proxy} header); else C{all_proxy}, then C{ALL_PROXY}.
        """
        url = "http://origin.test/"
        self.assertEqual(self.chosen({"http_proxy": "a:1"}, url), "a:1")
        self.assertIsNone(self.chosen({"HTTP_PROXY": "a:1"}, url))
        self.assertEqual(self.chosen({"HTTP_PROXY": "a:1", "ALL_PROXY": "b:2"}, url), "b:2")
        self.assertEqual(self.chosen({"all_proxy": "c:3", "ALL_PROXY": "b:2"}, url), "c:3")
        self.assertEqual(self.chosen({"http_proxy": "a:1", "all_proxy": "c:3"}, url), "a:1")
        self.assertIsNone(self.chosen({"https_proxy": "a:1"}, url))

    def test_https(self) -> None:
        """
        C{https_proxy}, then C{HTTPS_PROXY}, then C{all_proxy} and C{ALL_PROXY}.
        """
        url = "https://origin.test/"
        self.assertEqual(self.chosen({"https_proxy": "a:1", "HTTPS_PROXY": "b:2"}, url), "a:1")
        self.assertEqual(self.chosen({"HTTPS_PROXY": "b:2", "all_proxy": "c:3"}, url), "b:2")
        self.assertEqual(self.chosen({"ALL_PROXY": "c:3"}, url), "c:3")
        self.assertIsNone(self.chosen({"http_proxy": "a:1"}, url))

    def test_empty(self) -> None:
        """
        An empty variable counts as unset, as in curl: the next one is read.
        """
        self.assertEqual(
            self.chosen({"http_proxy": "", "all_proxy": "c:3"}, "http://o.test/"), "c:3"
        )
        self.assertEqual(
            self.chosen({"https_proxy": "", "HTTPS_PROXY": "b:2"}, "https://o.test/"), "b:2"
        )
        self.assertIsNone(
            self.chosen(
                {"http_proxy": "a:1", "no_proxy": "", "NO_PROXY": "o.test"}, "http://o.test/"
            )
        )

    def test_no_proxy(self) -> None:
        """
        C{no_proxy} wins over C{NO_PROXY}; C{--noproxy} (C{no_proxy=}) over both, C{""}
        included.
        """
        environ = {"http_proxy": "a:1", "no_proxy": "other.test", "NO_PROXY": "o.test"}
        self.assertEqual(self.chosen(environ, "http://o.test/"), "a:1")
        self.assertIsNone(self.chosen(environ, "http://other.test/"))
        self.assertIsNone(self.chosen(environ, "http://o.test/", no_proxy="*"))
        self.assertEqual(self.chosen(environ, "http://other.test/", no_proxy=""), "a:1")

    def test_explicit(self) -> None:
        """
        C{proxy=} (C{-x}) replaces every proxy variable, C{""} turning them off; the
        environment's C{no_proxy} still applies to it, as in curl.
        """
        environ = {"http_proxy": "a:1", "https_proxy": "b:2", "no_proxy": "skip.test"}
        self.assertEqual(self.chosen(environ, "https://o.test/", proxy="x:9"), "x:9")
        self.assertIsNone(self.chosen(environ, "http://o.test/", proxy=""))
        self.assertIsNone(self.chosen(environ, "http://skip.test/", proxy="x:9"))

    def test_default(self) -> None:
        """
        Without a mapping, C{os.environ} is read.
        """
        self.patch(os, "environ", {"http_proxy": "http://env.test:8"})
        self.assertEqual(self.chosen(None, "http://o.test/"), "env.test:8")


class ProxyURLTests(SynchronousTestCase):
    """
    Proxy URLs are read as curl reads C{-x}.
    """

    def test_defaults(self) -> None:
        """
        No scheme means C{http://}, no port 1080; a path is ignored; C{""} is no proxy.
        """
        self.assertEqual(parse_proxy("proxy.test"), Proxy("http://proxy.test", "proxy.test", 1080))
        self.assertEqual(
            parse_proxy("HTTP://Proxy.Test:3128/some/path"),
            Proxy("HTTP://Proxy.Test:3128/some/path", "proxy.test", 3128),
        )
        self.assertEqual(parse_proxy("http://[::1]:8"), Proxy("http://[::1]:8", "::1", 8))
        self.assertIsNone(parse_proxy(""))

    def test_credentials(self) -> None:
        """
        User information is percent-decoded; a user alone has an empty password; neither
        appears in C{repr} or in the URL kept for messages.
        """
        proxy = parse_proxy("http://us%40er:p%3Aw@proxy.test:3128")
        assert proxy is not None
        self.assertEqual((proxy.username, proxy.password), ("us@er", "p:w"))
        self.assertEqual(proxy.authorization, basic("us@er:p:w"))
        self.assertEqual(proxy.url, "http://proxy.test:3128")
        self.assertNotIn("p:w", repr(proxy) + repr(Proxies("http://us:p%3Aw@proxy.test")))
        user_only = parse_proxy("http://joe@proxy.test")
        assert user_only is not None
        self.assertEqual(user_only.authorization, basic("joe:"))
        self.assertIsNone(Proxy("http://p", "p", 1).authorization)

    def test_bad(self) -> None:
        """
        A bad host or port is curl's "Unsupported proxy syntax" (5); another scheme than
        http is refused (7); the messages never show the credentials.
        """
        for text in ("http://[bad", "http://p.test:99999", "http://p.test:0", "http://a b"):
            e = self.assertRaises(InvalidProxyURL, parse_proxy, f"{text}")
            self.assertEqual(e.curl_exit_code, 5)
        e = self.assertRaises(InvalidProxyURL, parse_proxy, "http://joe:secret@[bad")
        self.assertEqual(str(e), "Unsupported proxy syntax in 'http://[bad'")
        for scheme in ("socks5", "socks4", "socks5h", "https", "ftp"):
            u = self.assertRaises(
                UnsupportedProxyScheme, parse_proxy, f"{scheme}://joe:secret@p.test"
            )
            self.assertEqual(u.curl_exit_code, 7)
            self.assertEqual(
                str(u),
                f"Unsupported proxy scheme for '{scheme}://p.test' "
                "(twistsock speaks to http:// proxies only)",
            )

    def test_fetch_bad(self) -> None:
        """
        C{fetch} with a bad proxy URL fails at once, connecting nowhere.
        """
        memory = MemoryReactorClock()
        self.failureResultOf(
            fetch("http://o.test/", reactor=memory, proxy="socks5://p"), UnsupportedProxyScheme
        )
        self.assertEqual(memory.tcpClients, [])

    def test_per_scheme(self) -> None:
        """
        C{http=} and C{https=} win over the proxy for every scheme; C{""} for a scheme is
        no proxy for it.
        """
        proxies = Proxies("all.test:1", https="s.test:2")
        self.assertEqual(proxies.select(parse_url("https://o/")), parse_proxy("s.test:2"))
        self.assertEqual(proxies.select(parse_url("http://o/")), parse_proxy("all.test:1"))
        self.assertIsNone(Proxies("all.test:1", http="").select(parse_url("http://o/")))
        self.assertIsNone(Proxies("a:1", no_proxy=["x.test", "o"]).select(parse_url("http://o/")))


class ForwardTests(SynchronousTestCase):
    """
    Plain http through a proxy: the absolute-form request goes to the proxy.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def test_request_bytes(self) -> None:
        """
        The proxy gets C{GET http://host:port/path?query HTTP/1.1}, the usual headers,
        and C{Proxy-Authorization} for its credentials; the URL's own credentials are
        C{Authorization}, as without a proxy.
        """
        d = fetch(
            "http://joe:pw@127.0.0.1:8080/p%20q?x=1#frag",
            reactor=self.reactor,
            proxy="http://pu:pp@127.0.0.2:3128",
        )
        host, port = self.reactor.tcpClients[0][:2]
        self.assertEqual((host, port), ("127.0.0.2", 3128))
        transport = connect(self.reactor)
        self.assertEqual(
            transport.value(),
            (
                "GET http://127.0.0.1:8080/p%20q?x=1 HTTP/1.1\r\n"
                "Host: 127.0.0.1:8080\r\n"
                f"{AGENT}\r\n"
                "Accept: */*\r\n"
                "Connection: close\r\n"
                f"Authorization: {basic('joe:pw')}\r\n"
                f"Proxy-Authorization: {basic('pu:pp')}\r\n"
                "\r\n"
            ).encode(),
        )
        reply(transport, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        response = self.successResultOf(d)
        self.assertEqual(
            (response.url, response.body), ("http://127.0.0.1:8080/p%20q?x=1#frag", b"ok")
        )

    def test_own_header(self) -> None:
        """
        A C{Proxy-Authorization} among the headers replaces the proxy URL's.
        """
        fetch(
            "http://o.test/",
            reactor=self.reactor,
            proxy="http://pu:pp@127.0.0.2:3128",
            headers={"Proxy-Authorization": "Bearer t"},
        )
        data = connect(self.reactor).value()
        self.assertIn(b"\r\nProxy-Authorization: Bearer t\r\n", data)
        self.assertEqual(data.count(b"Proxy-Authorization"), 1)

    def test_no_proxy(self) -> None:
        """
        A host in C{no_proxy} is connected to directly, with an origin-form request.
        """
        fetch(
            "http://127.0.0.1:8080/x",
            reactor=self.reactor,
            proxy=Proxies("http://127.0.0.2:3128", no_proxy="127.0.0.0/8"),
        )
        self.assertEqual(self.reactor.tcpClients[0][:2], ("127.0.0.1", 8080))
        self.assertTrue(connect(self.reactor).value().startswith(b"GET /x HTTP/1.1\r\n"))

    def test_fake_network(self) -> None:
        """
        With L{FakeHTTP}, the proxy's name resolves and the request reaches it whole,
        redirects included (each hop is sent to the proxy).
        """

        def proxy(request: StubRequest) -> StubResponse:
            if request.target == "http://o.test/a":
                return StubResponse(302, headers=(("Location", "/b"),))
            return StubResponse(200, request.target.encode())

        network = FakeHTTP(proxy)
        d = fetch(
            "http://o.test/a", reactor=network.reactor, proxy="proxy.test:3128",
            follow_redirects=True,
        )  # fmt: skip
        network.flush()
        self.assertEqual(self.successResultOf(d).body, b"http://o.test/b")
        self.assertEqual(
            [r.target for r in network.requests], ["http://o.test/a", "http://o.test/b"]
        )

    def test_unresolvable_proxy(self) -> None:
        """
        A proxy name that does not resolve: L{CouldNotResolveProxy} (5), as curl says it.
        """
        network = FakeHTTP(lambda request: StubResponse())
        network.fault("proxy.test", Fault.unresolvable())
        d = fetch("https://o.test/", reactor=network.reactor, proxy="http://u:s@proxy.test")
        network.flush()
        e = self.failureResultOf(d, CouldNotResolveProxy).value
        self.assertEqual((str(e), e.curl_exit_code), ("Could not resolve proxy: proxy.test", 5))

    def test_refused_proxy(self) -> None:
        """
        A proxy that refuses the connection: L{ConnectionRefused} (7) naming the proxy.
        """
        network = FakeHTTP(lambda request: StubResponse())
        network.fault("proxy.test", Fault.refused())
        d = fetch("http://o.test/", reactor=network.reactor, proxy="http://proxy.test:3128")
        network.advance(1)  # HostnameEndpoint reports a refusal at its next attempt tick
        e = self.failureResultOf(d, ConnectionRefused).value
        self.assertEqual((e.host, e.port), ("proxy.test", 3128))

    def test_proxy_connect_timeout(self) -> None:
        """
        A proxy that does not accept the connection in time: L{ConnectTimeout} (28)
        naming the proxy.
        """
        network = FakeHTTP(lambda request: StubResponse())
        network.fault("proxy.test", Fault.connect_timeout())
        d = fetch(
            "https://o.test/", reactor=network.reactor, proxy="proxy.test:3128",
            connect_timeout=2,
        )  # fmt: skip
        network.advance(3)
        e = self.failureResultOf(d, ConnectTimeout).value
        self.assertEqual((e.host, e.port, e.curl_exit_code), ("proxy.test", 3128, 28))


class TunnelTests(SynchronousTestCase):
    """
    https through a proxy: the C{CONNECT} request, the proxy's answer, then TLS.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def test_connect_request(self) -> None:
        """
        C{CONNECT host:port} with C{Host}, C{User-Agent}, and the proxy's credentials;
        IPv6 hosts in brackets.
        """
        proxy = parse_proxy("http://pu:pp@p.test")
        assert proxy is not None
        self.assertEqual(
            connect_request(parse_url("https://o.test/x"), proxy),
            (
                "CONNECT o.test:443 HTTP/1.1\r\nHost: o.test:443\r\n"
                f"{AGENT}\r\nProxy-Authorization: {basic('pu:pp')}\r\n\r\n"
            ).encode(),
        )
        self.assertTrue(
            connect_request(parse_url("https://[::1]:8443/"), Proxy("p", "p", 1)).startswith(
                b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n"
            )
        )

    def tunnel(
        self, proxy: str = "http://pu:pp@127.0.0.2:3128", observer: Any = None
    ) -> tuple[Any, Any]:
        """
        A plain-HTTP request through a L{TunnelEndpoint} (to see what goes through it):
        the factory's response Deferred and the transport to the proxy.
        """
        from twistsock.http._fetch import tcp_endpoint

        url = parse_url("http://o.test:8080/in")
        parsed = parse_proxy(proxy)
        assert parsed is not None
        endpoint = TunnelEndpoint(
            tcp_endpoint(self.reactor, "127.0.0.2", 3128, 5), url, parsed, observer
        )
        factory = HTTPGetFactory(build_request(url), timeout=None)
        d = factory.connect(endpoint)
        return d, connect(self.reactor)

    def test_through(self) -> None:
        """
        After a 2xx answer, the request goes through the tunnel without the proxy's
        credentials; bytes that came with the answer are the origin's.
        """
        d, transport = self.tunnel()
        self.assertTrue(transport.value().startswith(b"CONNECT o.test:8080 HTTP/1.1\r\n"))
        transport.clear()
        reply(transport, b"HTTP/1.1 200 Connection established\r\nContent-Length: 5\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"GET /in HTTP/1.1\r\nHost: o.test:8080"))
        self.assertNotIn(b"Proxy-Authorization", transport.value())
        reply(transport, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")
        self.assertEqual(self.successResultOf(d).body, b"body")

    def test_observer(self) -> None:
        """
        The observer is told of the C{CONNECT} request and the proxy's answer, as sent
        and received (C{get -v} shows them, C{get -i} writes the answer).
        """
        seen = []

        class Observer(TransferObserver):
            def proxy_connect(self, request: bytes, head: bytes) -> None:
                seen.append((request, head))

        for answer in (b"HTTP/1.1 200 OK\r\nX: y\r\n\r\n", b"HTTP/1.1 403 No\r\n\r\n"):
            d, transport = self.tunnel(observer=Observer())
            sent = transport.value()
            reply(transport, answer)
            self.assertEqual(seen.pop(), (sent, answer))
            d.cancel()
            self.failureResultOf(d, CancelledError, ProxyTunnelError)

    def test_interim_and_rest(self) -> None:
        """
        Interim 1xx answers are skipped; what follows the final head in the same read
        goes to the origin's protocol.
        """
        d, transport = self.tunnel()
        reply(
            transport,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        )
        self.assertEqual(self.successResultOf(d).body, b"ok")

    def test_refused(self) -> None:
        """
        A status other than 2xx: L{ProxyTunnelError} (56) with curl's words, the
        connection aborted.
        """
        for code in (403, 407, 502):
            d, transport = self.tunnel()
            reply(transport, f"HTTP/1.1 {code} No\r\nContent-Length: 2\r\n\r\nno".encode())
            e = self.failureResultOf(d, ProxyTunnelError).value
            self.assertEqual(
                (str(e), e.code, e.curl_exit_code),
                (f"CONNECT tunnel failed, response {code}", code, 56),
            )
            self.assertTrue(transport.disconnecting)

    def test_aborted(self) -> None:
        """
        A proxy that closes before answering: "Proxy CONNECT aborted" (56).
        """
        d, transport = self.tunnel()
        reply(transport, b"HTTP/1.1 200")
        transport.protocol.connectionLost(None)  # type: ignore[attr-defined]
        e = self.failureResultOf(d, ProxyTunnelError).value
        self.assertEqual((str(e), e.code), ("Proxy CONNECT aborted", None))

    def test_bounded(self) -> None:
        """
        The answer's head is bounded as every response head is: beyond the framing bound
        it is L{MalformedResponse} (8), however it arrives.
        """
        d, transport = self.tunnel()
        reply(transport, b"HTTP/1.1 200 OK\r\n")
        for _ in range(1100):
            reply(transport, b"X-Filler: " + b"x" * 1000 + b"\r\n")
            if d.called:
                break
        self.failureResultOf(d, MalformedResponse)
        self.assertTrue(transport.disconnecting)
        d, transport = self.tunnel()
        reply(transport, b"SSH-2.0-nope\r\n")
        self.failureResultOf(d, MalformedResponse)

    def test_cancel(self) -> None:
        """
        Cancelling while the proxy has not answered aborts the connection; while still
        connecting, it stops the attempt.
        """
        d, transport = self.tunnel()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(transport.disconnecting)

    def test_tls_over_tunnel(self) -> None:
        """
        C{fetch} of an https URL through a proxy sends C{CONNECT}, then, after 2xx, a TLS
        ClientHello naming the origin (SNI), not the proxy.
        """
        d = fetch("https://origin.test/", reactor=self.reactor, proxy="http://127.0.0.2:3128")
        self.assertEqual(self.reactor.tcpClients[0][:2], ("127.0.0.2", 3128))
        transport = connect(self.reactor)
        self.assertEqual(
            transport.value(),
            b"CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n"
            + f"{AGENT}\r\n\r\n".encode(),
        )
        transport.clear()
        reply(transport, b"HTTP/1.1 200 Connection established\r\n\r\n")
        hello = transport.value()
        self.assertEqual(hello[:1], b"\x16")  # a TLS handshake record
        self.assertIn(b"origin.test", hello)
        self.assertNotIn(b"127.0.0.2", hello)
        d.cancel()
        self.failureResultOf(d, CancelledError)


class PoolTests(SynchronousTestCase):
    """
    L{Client}'s pool keys connections by origin and proxy.
    """

    def test_keyed_by_proxy(self) -> None:
        """
        A connection to the proxy is kept for the next request to the same origin
        through it, and never serves a direct request to that origin.
        """
        network = FakeHTTP(lambda request: StubResponse(200, request.target.encode()))
        client = Client(reactor=network.reactor, proxy="http://proxy.test:3128")
        bodies = []
        for path in ("/a", "/b"):
            d = client.get(f"http://o.test{path}")
            network.flush()
            bodies.append(self.successResultOf(d).body)
        self.assertEqual(bodies, [b"http://o.test/a", b"http://o.test/b"])
        self.assertEqual(client.idle, 1)
        self.assertEqual(network.reactor.tcpClients[0][0], network._address_of("proxy.test"))
        self.assertEqual(len(network.reactor.tcpClients), 1)
        client.proxies = None  # now direct: the proxied connection is not reused
        d = client.get("http://o.test/c")
        network.flush()
        self.assertEqual(self.successResultOf(d).body, b"/c")
        self.assertEqual(len(network.reactor.tcpClients), 2)
        self.assertEqual(client.idle, 2)
        closing = client.close()
        network.flush()
        self.successResultOf(closing)

    def test_fetch_with_client(self) -> None:
        """
        With a C{client}, the proxy is the client's: C{proxy=} too is a C{ValueError}.
        """
        memory = MemoryReactorClock()
        client = Client(reactor=memory)
        self.failureResultOf(fetch("http://o.test/", client=client, proxy="p.test"), ValueError)

    def test_client_bad_proxy(self) -> None:
        """
        A bad proxy URL fails when the client is made.
        """
        self.assertRaises(InvalidProxyURL, Client, reactor=MemoryReactorClock(), proxy="http://[x")


class NeverResolvesTests(SynchronousTestCase):
    """
    The proxy's resolution is bounded by the deadline like any other.
    """

    def test_timeout(self) -> None:
        """
        A proxy name that never resolves: the operation times out (28).
        """
        memory = MemoryReactorClock()
        memory.installNameResolver(NeverResolves())
        d = fetch("https://o.test/", reactor=memory, proxy="proxy.test", timeout=3)
        memory.advance(3)
        self.assertEqual(self.failureResultOf(d).value.curl_exit_code, 28)  # type: ignore[union-attr]
