"""
Tests for L{twistsock.http._request}: URL parsing, header validation, the request bytes.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twistsock import InvalidHeader, MalformedURL, UnsupportedScheme, __version__
from twistsock.http._request import (
    build_request,
    cached_request,
    parse_header_line,
    parse_url,
    validate_headers,
)


class ParseURLTests(SynchronousTestCase):
    """
    L{parse_url} accepts absolute http and https URLs and refuses everything else.
    """

    def test_defaults(self) -> None:
        """
        Without a port, http uses 80 and https 443; an empty path becomes C{/}; the query is
        kept and the fragment dropped.
        """
        url = parse_url("http://Example.COM")
        self.assertEqual(
            (url.scheme, url.host, url.port, url.target), ("http", "example.com", 80, "/")
        )
        url = parse_url("HTTPS://example.com/a/b?x=1&y=2#frag")
        self.assertEqual((url.scheme, url.port, url.target), ("https", 443, "/a/b?x=1&y=2"))

    def test_authority(self) -> None:
        """
        The C{Host} value carries the port only when it is not the scheme's default.
        """
        self.assertEqual(parse_url("http://example.com:80/").authority, "example.com")
        self.assertEqual(parse_url("https://example.com:443/").authority, "example.com")
        self.assertEqual(parse_url("http://example.com:8080/").authority, "example.com:8080")
        self.assertEqual(parse_url("https://example.com:80/").authority, "example.com:80")

    def test_ipv6(self) -> None:
        """
        An IPv6 literal in brackets gives the bare address to connect to, and keeps its
        brackets in C{Host}.
        """
        url = parse_url("http://[::1]:8080/x")
        self.assertEqual((url.host, url.port, url.is_ipv6), ("::1", 8080, True))
        self.assertEqual(url.authority, "[::1]:8080")
        self.assertEqual(parse_url("http://[::1]/").authority, "[::1]")

    def test_idna(self) -> None:
        """
        An international host name is IDNA-encoded (UTS 46 mapping, so case folds).
        """
        url = parse_url("http://BÜCHER.example/")
        self.assertEqual(url.host, "xn--bcher-kva.example")
        self.assertEqual(url.authority, "xn--bcher-kva.example")

    def test_non_ascii_path(self) -> None:
        """
        Non-ASCII characters in the path and query are sent percent-encoded as UTF-8;
        existing escapes are left alone.
        """
        self.assertEqual(parse_url("http://h/é?q=ü%20").target, "/%C3%A9?q=%C3%BC%20")

    def test_unsupported_scheme(self) -> None:
        """
        Schemes other than http and https fail with L{UnsupportedScheme}, curl exit 1.
        """
        e = self.assertRaises(UnsupportedScheme, parse_url, "ftp://example.com/")
        self.assertEqual((e.scheme, e.curl_exit_code), ("ftp", 1))
        self.assertEqual(str(e), 'Protocol "ftp" not supported')

    def test_malformed(self) -> None:
        """
        Missing scheme or host, bad ports, bad IPv6 literals, bad host names, and whitespace
        or control characters fail with L{MalformedURL}, curl exit 3.
        """
        for bad in [
            "example.com/",
            "http://",
            "http:///path",
            "http://example.com:port/",
            "http://example.com:0/",
            "http://example.com:70000/",
            "http://[::g]/",
            "http://exa!mple.com/",
            "http://example.com/a b",
            "http://example.com/\r\nX-Injected: 1",
            "http://example.com/\x00",
            "http://example.com/\t",
        ]:
            e = self.assertRaises(MalformedURL, parse_url, bad)
            self.assertEqual((e.url, e.curl_exit_code), (bad, 3))

    @settings(max_examples=50, deadline=None)
    @given(st.text(), st.sampled_from(["\r", "\n", "\x00"]), st.text())
    def test_no_injection_through_url(self, before: str, control: str, after: str) -> None:
        """
        Any URL holding CR, LF or NUL is refused, wherever it is.
        """
        self.assertRaises(MalformedURL, parse_url, f"http://h/{before}{control}{after}")


class HeaderTests(SynchronousTestCase):
    """
    Extra headers are checked before anything is sent.
    """

    def test_parse_header_line(self) -> None:
        """
        C{Name: value} splits at the first colon; surrounding blanks are dropped.
        """
        self.assertEqual(parse_header_line("X-A:  b: c \t"), ("X-A", "b: c"))
        self.assertEqual(parse_header_line("X-Empty:"), ("X-Empty", ""))

    def test_invalid_header_lines(self) -> None:
        """
        No colon, a name that is not a token, or CR, LF or NUL in the value fail with
        L{InvalidHeader} (curl's bad-argument exit 43).
        """
        for bad in [
            "NoColon",
            ": value",
            "Bad Name: v",
            "X: a\r\nInjected: 1",
            "X: a\nb",
            "X: \x00",
        ]:
            e = self.assertRaises(InvalidHeader, parse_header_line, bad)
            self.assertEqual((e.header, e.curl_exit_code), (bad, 43))

    def test_validate_headers(self) -> None:
        """
        Mappings and pair sequences are both accepted; an injected CR/LF is refused.
        """
        self.assertEqual(validate_headers({"A": "1"}), (("A", "1"),))
        self.assertEqual(validate_headers([("A", "1"), ("A", "2")]), (("A", "1"), ("A", "2")))
        self.assertEqual(validate_headers(None), ())
        self.assertRaises(InvalidHeader, validate_headers, {"A": "1\r\nB: 2"})

    def test_surrounding_whitespace(self) -> None:
        """
        Whitespace around a value is dropped (h11 would refuse it when sending).
        """
        self.assertEqual(validate_headers({"A": " \t1 2\t "}), (("A", "1 2"),))

    def test_h11_refusal(self) -> None:
        """
        A request h11 would refuse (two C{Host} headers) fails with L{InvalidHeader} when
        it is built, not later when the connection is made.
        """
        url = parse_url("http://h/")
        e = self.assertRaises(InvalidHeader, build_request, url, [("Host", "a"), ("Host", "b")])
        self.assertEqual(e.header, "Host: a; Host: b")

    @settings(max_examples=50, deadline=None)
    @given(st.text(), st.sampled_from(["\r", "\n", "\x00"]), st.text())
    def test_no_injection_through_headers(self, before: str, control: str, after: str) -> None:
        """
        Any header value holding CR, LF or NUL is refused.
        """
        self.assertRaises(InvalidHeader, validate_headers, [("X", before + control + after)])


class RequestBytesTests(SynchronousTestCase):
    """
    The bytes sent for a GET.
    """

    def test_exact_bytes(self) -> None:
        """
        The request line, then Host, User-Agent, Accept, Connection, then extra headers.
        """
        request = build_request(parse_url("http://example.com:8080/p?q=1#f"), [("X-A", "b")])
        self.assertEqual(
            request.to_bytes(),
            b"GET /p?q=1 HTTP/1.1\r\n"
            b"Host: example.com:8080\r\n"
            b"User-Agent: twistsock/" + __version__.encode() + b"\r\n"
            b"Accept: */*\r\n"
            b"Connection: close\r\n"
            b"X-A: b\r\n"
            b"\r\n",
        )

    def test_replace_defaults(self) -> None:
        """
        An extra header named like a default one (any case) replaces it in place.
        """
        request = build_request(
            parse_url("http://example.com/"), [("user-agent", "me/1"), ("Accept", "text/plain")]
        )
        self.assertEqual(
            request.headers,
            (
                ("Host", "example.com"),
                ("user-agent", "me/1"),
                ("Accept", "text/plain"),
                ("Connection", "close"),
            ),
        )

    def test_h11_event_built_once(self) -> None:
        """
        The h11 event is built and checked once per request (in L{build_request}), then
        shared by every connection that sends it; sending it twice gives the same bytes.
        """
        request = build_request(parse_url("http://example.com/"))
        self.assertIs(request.to_h11(), request.to_h11())
        self.assertEqual(request.to_bytes(), request.to_bytes())

    def test_cached_request(self) -> None:
        """
        L{cached_request} builds a request once per URL, extra headers and persistence,
        serialised once, and refuses a bad URL on every call.
        """
        first = cached_request("http://example.com/c", (("X-A", "b"),), True)
        self.assertIs(first, cached_request("http://example.com/c", (("X-A", "b"),), True))
        self.assertIs(first.to_bytes(), first.to_bytes())
        self.assertEqual(
            first,
            build_request(parse_url("http://example.com/c"), [("X-A", "b")], keep_alive=True),
        )
        closing = cached_request("http://example.com/c", (("X-A", "b"),), False)
        self.assertIn(b"Connection: close", closing.to_bytes())
        self.assertTrue(closing.asks_close)
        self.assertFalse(first.asks_close)
        for _ in range(2):
            self.assertRaises(MalformedURL, cached_request, "http://exa mple.com/", (), True)
