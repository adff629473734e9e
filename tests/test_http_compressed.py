"""
Tests for C{fetch(compressed=True)} and C{Client.get(compressed=True)}: the request asks
for a compressed body, and the final response's body is decoded as it arrives, held or
streamed, with the body limit on the decoded bytes.
"""

from __future__ import annotations

import gzip
import io
import tracemalloc
import zlib
from typing import Any

import brotli
import zstandard
from twisted.internet.interfaces import IConsumer
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import GzipEncoderFactory, Request

from tests._memory import MemoryReactorClock
from tests.test_http_decoding import Consumer
from tests.test_http_fetch import connect, reply
from twistsock import (
    BodyTooLarge,
    Client,
    ContentDecodingError,
    HTTPGetProtocol,
    Response,
    UnsupportedContentEncoding,
    fetch,
)
from twistsock.http._decoding import accept_encoding
from twistsock.testing import FakeHTTP, StubRequest, StubResponse

URL = "http://example.com/"
BODY = b"The quick brown fox jumps over the lazy dog.\n" * 200


def head(coding: str, length: int | None) -> bytes:
    """A 200 head with C{Content-Encoding: coding}, a length or chunked framing."""
    framing = b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
    return b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\n%s\r\n\r\n" % (coding.encode(), framing)


def chunked(data: bytes, size: int = 100) -> bytes:
    """C{data} in chunked framing, C{size} bytes a chunk."""
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


class CompressedFetchTests(SynchronousTestCase):
    """
    L{fetch} with C{compressed=True}, against a memory reactor.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def get(self, **kwargs: Any) -> tuple[Any, StringTransport]:
        d = fetch(URL, reactor=self.reactor, compressed=True, **kwargs)
        return d, connect(self.reactor)

    def test_accept_encoding(self) -> None:
        """
        The request says C{Accept-Encoding: deflate, gzip, br, zstd} (what curl 7.88
        sends, given the packages); without C{compressed} it says nothing of it, and a
        caller's own C{Accept-Encoding} is sent instead of it.
        """
        _, transport = self.get()
        self.assertIn(b"\r\nAccept-Encoding: deflate, gzip, br, zstd\r\n", transport.value())
        fetch(URL, reactor=self.reactor)
        self.assertNotIn(b"Accept-Encoding", connect(self.reactor).value())
        _, transport = self.get(headers={"accept-encoding": "gzip"})
        self.assertIn(b"\r\naccept-encoding: gzip\r\n", transport.value())
        self.assertEqual(transport.value().lower().count(b"accept-encoding"), 1)

    def test_held_body_decoded(self) -> None:
        """
        A held body is decoded, for every coding, with a length or chunked; the headers
        stay as received, and C{raw} is the head.
        """
        encoders = {
            "gzip": gzip.compress,
            "deflate": zlib.compress,
            "br": brotli.compress,
            "zstd": zstandard.ZstdCompressor().compress,
        }
        for coding, encoder in encoders.items():
            encoded = encoder(BODY)
            for first, framed in [
                (head(coding, len(encoded)), encoded),
                (head(coding, None), chunked(encoded)),
            ]:
                d, transport = self.get()
                reply(transport, first + framed)
                response = self.successResultOf(d)
                self.assertEqual(response.body, BODY, coding)
                self.assertEqual(response.headers.get("Content-Encoding"), coding)
                self.assertEqual(response.raw, first)

    def test_split_anywhere(self) -> None:
        """
        The response split in two at every position (head, chunk framing, encoded
        body) gives the same decoded body.
        """
        encoded = gzip.compress(BODY[:500])
        data = head("gzip", None) + chunked(encoded, 7)
        for cut in range(1, len(data)):
            d, transport = self.get()
            reply(transport, data[:cut])
            reply(transport, data[cut:])
            self.assertEqual(self.successResultOf(d).body, BODY[:500], cut)

    def test_not_decoded_without_compressed(self) -> None:
        """
        Without C{compressed}, a gzip body is the gzip bytes, as curl without
        C{--compressed}.
        """
        encoded = gzip.compress(BODY)
        d = fetch(URL, reactor=self.reactor)
        reply(connect(self.reactor), head("gzip", len(encoded)) + encoded)
        self.assertEqual(self.successResultOf(d).body, encoded)

    def test_no_coding(self) -> None:
        """
        A response without C{Content-Encoding} (or with C{identity}) is as it was.
        """
        d, transport = self.get()
        reply(transport, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain")
        self.assertEqual(self.successResultOf(d).body, b"plain")
        d, transport = self.get()
        reply(transport, head("identity", 5) + b"plain")
        self.assertEqual(self.successResultOf(d).body, b"plain")

    def test_bomb_held(self) -> None:
        """
        A held body is bounded by C{max_body_size} decoded: a bomb fails with
        L{BodyTooLarge} and the connection is aborted, though its encoded bytes are few.
        """
        encoded = gzip.compress(bytes(10_000_000))
        d, transport = self.get(max_body_size=100_000)
        reply(transport, head("gzip", len(encoded)) + encoded)
        self.assertEqual(self.failureResultOf(d, BodyTooLarge).value.limit, 100_000)
        self.assertTrue(transport.disconnecting)

    def test_limit_is_decoded_size(self) -> None:
        """
        A body of exactly C{max_body_size} decoded bytes is accepted.
        """
        encoded = gzip.compress(bytes(100_000))
        d, transport = self.get(max_body_size=100_000)
        reply(transport, head("gzip", len(encoded)) + encoded)
        self.assertEqual(len(self.successResultOf(d).body), 100_000)

    def test_unknown_coding(self) -> None:
        """
        An unknown coding fails with L{UnsupportedContentEncoding} (61) at the head:
        nothing is streamed.
        """
        pieces: list[bytes] = []
        d, transport = self.get(stream_to=pieces.append)
        reply(transport, head("compress", 4) + b"abcd")
        error = self.failureResultOf(d, UnsupportedContentEncoding).value
        self.assertEqual((error.coding, error.curl_exit_code, pieces), ("compress", 61, []))

    def test_corrupt(self) -> None:
        """
        Corrupt data fails with L{ContentDecodingError} (61) after what was decoded.
        """
        pieces: list[bytes] = []
        encoded = zstandard.ZstdCompressor().compress(b"good") + b"garbage!"
        d, transport = self.get(stream_to=pieces.append)
        reply(transport, head("zstd", len(encoded)) + encoded)
        self.failureResultOf(d, ContentDecodingError)
        self.assertEqual(pieces, [b"good"])

    def test_streamed(self) -> None:
        """
        A streamed body is decoded as it arrives, to a callable, a file or a consumer
        (registered as the producer's, so that flow control holds).
        """
        encoded = gzip.compress(BODY)
        pieces: list[bytes] = []
        file = io.BytesIO()
        consumer = Consumer()
        for target in (pieces.append, file, consumer):
            d, transport = self.get(stream_to=target)
            reply(transport, head("gzip", len(encoded)) + encoded[:100])
            if target is consumer:
                self.assertIsInstance(consumer.producer, HTTPGetProtocol)
            reply(transport, encoded[100:])
            response = self.successResultOf(d)
            self.assertEqual(response.body, b"")
        self.assertEqual(b"".join(pieces), BODY)
        self.assertEqual(file.getvalue(), BODY)
        self.assertEqual(b"".join(consumer.data), BODY)
        self.assertTrue(IConsumer.providedBy(consumer))

    def test_streamed_memory(self) -> None:
        """
        Streaming 32 MiB decoded from a few kB holds pieces, not the body.
        """
        encoded = gzip.compress(bytes(32 * 1024 * 1024))
        received = [0]

        def count(data: bytes) -> None:
            received[0] += len(data)

        d, transport = self.get(stream_to=count)
        tracemalloc.start()
        try:
            reply(transport, head("gzip", len(encoded)) + encoded)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.successResultOf(d)
        self.assertEqual(received[0], 32 * 1024 * 1024)
        self.assertLess(peak, 2 * 1024 * 1024)

    def test_followed_redirect_not_decoded(self) -> None:
        """
        The body of a redirect that is followed is not decoded (nor written anywhere):
        an unknown coding on it is no error.
        """
        d = fetch(URL, reactor=self.reactor, compressed=True, follow_redirects=True)
        reply(
            connect(self.reactor),
            b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Encoding: compress\r\n"
            b"Content-Length: 2\r\n\r\nxx",
        )
        encoded = gzip.compress(b"there")
        reply(connect(self.reactor), head("gzip", len(encoded)) + encoded)
        response: Response = self.successResultOf(d)
        self.assertEqual((response.body, response.history[0].body), (b"there", b"xx"))


class GzipResource(Resource):
    """Serves C{BODY}, gzip-encoded by twisted.web when the request accepts it."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return BODY


class CompressedClientTests(SynchronousTestCase):
    """
    C{Client.get(compressed=True)} and C{fetch} against twisted.web's own gzip encoding.
    """

    def test_twisted_web_gzip(self) -> None:
        """
        A twisted.web resource wrapped in C{GzipEncoderFactory} answers the
        C{Accept-Encoding} with a gzip body, chunked: decoded.  Without C{compressed}
        nothing is encoded.
        """
        from twisted.web.resource import EncodingResourceWrapper

        network = FakeHTTP(EncodingResourceWrapper(GzipResource(), [GzipEncoderFactory()]))
        client = Client(reactor=network.reactor)
        d = client.get(URL, compressed=True)
        network.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.headers.get("Content-Encoding"), "gzip")
        self.assertEqual(response.body, BODY)
        self.assertEqual(network.requests[-1].headers.get("Accept-Encoding"), accept_encoding())
        d = fetch(URL, reactor=network.reactor)
        network.flush()
        self.assertEqual(self.successResultOf(d).body, BODY)
        self.assertNotIn("Accept-Encoding", network.requests[-1].headers)
        client.close()
        network.flush()

    def test_stub_response(self) -> None:
        """
        A handler function's canned deflate body (raw deflate, as some servers send)
        is decoded.
        """
        encoder = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        encoded = encoder.compress(BODY) + encoder.flush()

        def handler(request: StubRequest) -> StubResponse:
            return StubResponse(body=encoded, headers=(("Content-Encoding", "deflate"),))

        network = FakeHTTP(handler)
        d = fetch(URL, reactor=network.reactor, compressed=True)
        network.flush()
        self.assertEqual(self.successResultOf(d).body, BODY)
