"""
End-to-end tests of C{twistsock get --compressed} against local servers, side by side with
curl 7.88's C{--compressed}: the bytes written and the exit status.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import brotli
import zstandard
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase
from twisted.web import server
from twisted.web.resource import EncodingResourceWrapper, Resource

from tests._curl import require_curl, run_curl, run_get
from tests._http_servers import listen_canned, temporary_directory

BODY = b"".join(b"line %d of a compressible body\n" % i for i in range(20_000))


def canned(coding: str, body: bytes) -> bytes:
    """A response with C{Content-Encoding: coding} and C{body}, with a length."""
    return (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
        % (coding.encode(), len(body))
        + body
    )


def raw_deflate(data: bytes) -> bytes:
    encoder = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return encoder.compress(data) + encoder.flush()


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


class Text(Resource):
    """Serves C{BODY} in pieces (chunked), gzip-encoded by twisted.web when accepted."""

    isLeaf = True

    def render_GET(self, request: server.Request) -> int:
        for start in range(0, len(BODY), 100_000):
            request.write(BODY[start : start + 100_000])
        request.finish()
        return server.NOT_DONE_YET  # type: ignore[no-any-return]


class CompressedCommandTests(TestCase):
    """
    C{get --compressed} as a subprocess, compared with curl on the same server.
    """

    def canned(self, reply: bytes) -> tuple[str, Any]:
        port, factory = listen_canned(self, reactor, reply, "close")
        return f"http://127.0.0.1:{port}/", factory

    def gzip_site(self) -> str:
        """A twisted.web site whose root is gzip-encoded (C{GzipEncoderFactory})."""
        site = server.Site(EncodingResourceWrapper(Text(), [server.GzipEncoderFactory()]))
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"http://127.0.0.1:{port.getHost().port}/"

    @inlineCallbacks
    def both(self, url: str, *args: str) -> Any:
        """
        Run curl and C{get} with C{args}; check that they write the same and exit alike
        (an error line of ours names curl's code); return C{(stdout, status)}.
        """
        curl_out, _, curl_status = yield run_curl(reactor, "-s", "-S", *args, url)
        out, err, status = yield run_get(reactor, "-s", "-S", *args, url)
        self.assertEqual((out, status), (curl_out, curl_status), err)
        if status:
            self.assertTrue(err.startswith(b"twistsock: (%d) " % status), err)
        return out, status

    @inlineCallbacks
    def test_twisted_web_gzip(self) -> Any:
        """
        twisted.web's gzip encoding (chunked) is decoded, to stdout and to a C{-o}
        file, as curl decodes it.
        """
        require_curl()
        url = self.gzip_site()
        out, status = yield self.both(url, "--compressed")
        self.assertEqual((out, status), (BODY, 0))
        directory = temporary_directory(self)
        for name, run in (("curl", run_curl), ("ours", run_get)):
            _, _, status = yield run(
                reactor, "-s", "--compressed", "-o", str(directory / name), url
            )
            self.assertEqual(status, 0)
        self.assertEqual((directory / "ours").read_bytes(), BODY)
        self.assertEqual((directory / "curl").read_bytes(), BODY)

    @inlineCallbacks
    def test_codings(self) -> Any:
        """
        gzip, zlib and raw deflate, br, zstd (several frames), stacked codings and
        upper case: decoded as curl decodes them.
        """
        require_curl()
        cases = [
            ("gzip", gzip.compress(BODY)),
            ("x-gzip", gzip.compress(BODY)),
            ("deflate", zlib.compress(BODY)),
            ("deflate", raw_deflate(BODY)),
            ("br", brotli.compress(BODY)),
            ("zstd", zstd(BODY[:1000]) + zstd(BODY[1000:])),
            ("gzip, br", brotli.compress(gzip.compress(BODY))),
            ("GZIP, identity", gzip.compress(BODY)),
        ]
        for coding, encoded in cases:
            url, _ = self.canned(canned(coding, encoded))
            out, status = yield self.both(url, "--compressed")
            self.assertEqual((out, status), (BODY, 0), coding)

    @inlineCallbacks
    def test_errors(self) -> Any:
        """
        An unknown coding, corrupt data and too many codings fail with 61, bytes after
        the end of a gzip stream with 23, as curl; what was decoded before a fault is
        written, as curl writes it; a stream cut short is no error.
        """
        require_curl()
        cases = [
            ("compress", b"xx", 61),
            ("gzip", b"not gzip at all", 61),
            ("zstd", zstd(b"first ") + b"garbage!", 61),
            ("gzip, " * 5 + "gzip", gzip.compress(b"x"), 61),
            ("gzip", gzip.compress(b"one ") + gzip.compress(b"two"), 23),
            ("gzip", gzip.compress(BODY)[:-12], 0),
        ]
        for coding, encoded, code in cases:
            url, _ = self.canned(canned(coding, encoded))
            _, status = yield self.both(url, "--compressed")
            self.assertEqual(status, code, coding)

    @inlineCallbacks
    def test_request(self) -> Any:
        """
        C{--compressed} sends the C{Accept-Encoding} curl sends; without it, none is
        sent and a gzip body is written as it came.
        """
        require_curl()
        encoded = gzip.compress(b"hello")
        url, factory = self.canned(canned("gzip", encoded))
        yield self.both(url, "--compressed")
        curl_request, ours = factory.requests
        line = next(x for x in curl_request.split(b"\r\n") if x.startswith(b"Accept-Encoding"))
        self.assertIn(b"\r\n" + line + b"\r\n", ours)
        out, status = yield self.both(url)
        self.assertEqual((out, status), (encoded, 0))
        self.assertNotIn(b"Accept-Encoding", factory.requests[-1])

    @inlineCallbacks
    def test_include_and_raw(self) -> Any:
        """
        C{-i} writes the head as received, then the decoded body; C{--raw} writes the
        bytes received, undecoded (chunk framing too), as curl's C{--raw} writes the body.
        """
        require_curl()
        encoded = gzip.compress(BODY)
        reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        reply += b"%x\r\n%s\r\n0\r\n\r\n" % (len(encoded), encoded)
        url, _ = self.canned(reply)
        out, _ = yield self.both(url, "--compressed", "-i")
        self.assertEqual(out, reply[: reply.index(b"\r\n\r\n") + 4] + BODY)
        # twistsock's --raw writes the head too (as -i --raw); the body bytes are curl's.
        theirs, _, _ = yield run_curl(reactor, "-s", "--compressed", "--raw", url)
        out, _, status = yield run_get(reactor, "-s", "--compressed", "--raw", url)
        self.assertEqual((out, status), (reply, 0))
        self.assertTrue(reply.endswith(theirs))

    @inlineCallbacks
    def test_size_download(self) -> Any:
        """
        C{-w %{size_download}} counts the encoded body bytes received, as curl's, not the
        decoded bytes written.
        """
        require_curl()
        encoded = gzip.compress(BODY)
        url, _ = self.canned(canned("gzip", encoded))
        args = ("--compressed", "-o", "/dev/null", "-w", "%{size_download}")
        out, _ = yield self.both(url, *args)
        self.assertEqual(out, b"%d" % len(encoded))
        out, _ = yield self.both(self.gzip_site(), *args)
        self.assertLess(int(out), len(BODY))

    @inlineCallbacks
    def test_bomb(self) -> Any:
        """
        C{--max-filesize} bounds the decoded body: a bomb fails with 63 (curl 7.88 does
        not bound it) and leaves no C{-o} file.
        """
        url, _ = self.canned(canned("gzip", gzip.compress(bytes(50_000_000))))
        path = temporary_directory(self) / "out"
        out, err, status = yield run_get(
            reactor, "--compressed", "--max-filesize", "1000000", "-o", str(path), url
        )
        self.assertEqual((status, out), (63, b""))
        self.assertTrue(err.startswith(b"twistsock: (63) Maximum file size exceeded"))
        self.assertFalse(path.exists())
