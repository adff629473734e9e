"""
Tests for L{twistsock.http._decoding}: content codings undone as the body arrives, the
same bytes however the input is split, with bounded output whatever the input.
"""

from __future__ import annotations

import gzip
import sys
import tracemalloc
import zlib
from collections.abc import Callable
from functools import cache
from typing import Any

import brotli
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.interfaces import IConsumer
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from twistsock.http import (
    BodyTooLarge,
    ContentDecodingError,
    Headers,
    TrailingContentData,
    UnsupportedContentEncoding,
)
from twistsock.http._decoding import (
    PIECE,
    BodyDecoder,
    accept_encoding,
    available_codings,
    content_codings,
    decoding_target,
)

URL = "http://example.com/"


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def raw_deflate(data: bytes) -> bytes:
    encoder = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return encoder.compress(data) + encoder.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstd,
}
"""Each coding's encoder (C{deflate}: zlib-wrapped, as RFC 9110 says)."""


def encode(data: bytes, codings: list[str]) -> bytes:
    """C{data} with C{codings} applied in order."""
    for coding in codings:
        data = ENCODERS[coding](data)
    return data


def decode(codings: list[str], pieces: list[bytes]) -> bytes:
    """Feed C{pieces} to a L{BodyDecoder} for C{codings}; return what it wrote."""
    out: list[bytes] = []
    decoder = BodyDecoder(URL, codings, out.append)
    for piece in pieces:
        decoder.feed(piece)
    return b"".join(out)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """C{data} cut at the positions C{cuts} (any ints, taken modulo the length)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


BOMB_SIZE = 16 * 1024 * 1024


@cache
def bomb(coding: str) -> bytes:
    """16 MiB of zeros, encoded with C{coding}: a few kB that expand a thousandfold."""
    data = bytes(BOMB_SIZE)
    if coding == "br":
        return brotli.compress(data, quality=1)
    return ENCODERS[coding](data)


class Limited:
    """A writer that takes at most C{limit} bytes in all and raises beyond."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.length = 0
        self.largest = 0

    def __call__(self, data: bytes) -> None:
        self.length += len(data)
        self.largest = max(self.largest, len(data))
        if self.length > self.limit:
            raise BodyTooLarge(URL, self.limit)


codings_lists = st.lists(st.sampled_from(sorted(ENCODERS)), min_size=1, max_size=3)


class SplitTests(SynchronousTestCase):
    """
    The output is the same bytes however the input is split.
    """

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=3000), codings_lists, st.lists(st.integers(0, 10**6)))
    def test_any_split(self, data: bytes, codings: list[str], cuts: list[int]) -> None:
        """
        Any body, any stack of codings, any split of the encoded bytes: the decoded
        bytes are the body.
        """
        encoded = encode(data, codings)
        self.assertEqual(decode(codings, split(encoded, cuts)), data)

    @settings(max_examples=50, deadline=None)
    @given(st.binary(max_size=3000), st.lists(st.integers(0, 10**6)))
    def test_raw_deflate(self, data: bytes, cuts: list[int]) -> None:
        """
        C{deflate} accepts raw deflate data too (no zlib wrapper), as curl does, split
        anywhere, even after its first byte.
        """
        self.assertEqual(decode(["deflate"], split(raw_deflate(data), cuts)), data)

    def test_byte_by_byte(self) -> None:
        """
        A body fed one byte at a time decodes, for every coding.
        """
        data = b"hello, world\n" * 100
        for coding in ENCODERS:
            encoded = ENCODERS[coding](data)
            pieces = [encoded[i : i + 1] for i in range(len(encoded))]
            self.assertEqual(decode([coding], pieces), data, coding)

    def test_zstd_frames(self) -> None:
        """
        A zstd body may hold several frames: all are decoded.
        """
        self.assertEqual(decode(["zstd"], [zstd(b"one ") + zstd(b"two")]), b"one two")

    def test_gzip_accepts_zlib(self) -> None:
        """
        C{gzip} accepts a zlib stream too (curl lets zlib tell them apart).
        """
        self.assertEqual(decode(["gzip"], [zlib.compress(b"zlib")]), b"zlib")


class BoundTests(SynchronousTestCase):
    """
    A decompression bomb is stopped after at most the limit's worth of output, with
    pieces of bounded size and bounded memory.
    """

    def test_bomb_stops_at_the_limit(self) -> None:
        """
        16 MiB of zeros behind a few kB, for every coding, and stacked: the writer's
        L{BodyTooLarge} stops the decoding once 1 MiB is passed, in the same C{feed}, and
        no piece is larger than about L{PIECE} (brotli may go half as much again).
        """
        for codings in (["gzip"], ["deflate"], ["br"], ["zstd"], ["gzip", "gzip"]):
            encoded = bomb(codings[0])
            if len(codings) == 2:
                encoded = gzip.compress(encoded)
            self.assertLess(len(encoded), BOMB_SIZE // 100)
            writer = Limited(1024 * 1024)
            decoder = BodyDecoder(URL, codings, writer)
            self.assertRaises(BodyTooLarge, decoder.feed, encoded)
            self.assertLessEqual(writer.length, writer.limit + 2 * PIECE, codings)
            self.assertLessEqual(writer.largest, 2 * PIECE, codings)

    @settings(max_examples=20, deadline=None)
    @given(st.sampled_from(["gzip", "deflate", "br", "zstd"]), st.lists(st.integers(0, 10**6)))
    def test_bomb_any_split(self, coding: str, cuts: list[int]) -> None:
        """
        However the bomb arrives, the output stops within a piece of the limit.
        """
        writer = Limited(256 * 1024)
        decoder = BodyDecoder(URL, [coding], writer)
        with self.assertRaises(BodyTooLarge):
            for piece in split(bomb(coding), cuts):
                decoder.feed(piece)
        self.assertLessEqual(writer.length, writer.limit + 2 * PIECE)

    def test_memory_is_bounded(self) -> None:
        """
        Decoding 16 MiB from every coding, all of it written (to a writer that keeps
        nothing), holds a few pieces at a time: the traced peak stays far below the
        decoded size.
        """
        for coding in ("gzip", "deflate", "br", "zstd"):
            encoded = bomb(coding)
            writer = Limited(BOMB_SIZE)
            tracemalloc.start()
            try:
                BodyDecoder(URL, [coding], writer).feed(encoded)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            self.assertEqual(writer.length, BOMB_SIZE, coding)
            self.assertLess(peak, 2 * 1024 * 1024, coding)

    def test_zstd_window_is_bounded(self) -> None:
        """
        A zstd frame that asks for a window over 8 MiB (RFC 9659's cap for the C{zstd}
        coding) is refused instead of allocating it.
        """
        parameters = zstandard.ZstdCompressionParameters.from_level(
            3, window_log=24, write_content_size=0
        )
        encoder = zstandard.ZstdCompressor(compression_params=parameters).compressobj()
        encoded = encoder.compress(b"abc" * 10) + encoder.flush()
        error = self.assertRaises(ContentDecodingError, decode, ["zstd"], [encoded])
        self.assertEqual(error.curl_exit_code, 61)


class ErrorTests(SynchronousTestCase):
    """
    Unknown codings, corrupt data and data after the end fail as curl 7.88 does.
    """

    def test_corrupt(self) -> None:
        """
        Data that is not of its coding fails with L{ContentDecodingError} (61), saying
        the decoder's words for it.
        """
        for coding in ENCODERS:
            error = self.assertRaises(ContentDecodingError, decode, [coding], [b"not it!!"])
            self.assertEqual((error.curl_exit_code, error.coding), (61, coding))
            self.assertEqual(error.url, URL)
        error = self.assertRaises(ContentDecodingError, decode, ["gzip"], [b"not gzip"])
        self.assertEqual(
            str(error), "Error while processing content unencoding: incorrect header check (gzip)"
        )

    def test_decoded_before_the_fault(self) -> None:
        """
        What was decoded before corrupt data was written before the error.
        """
        out: list[bytes] = []
        decoder = BodyDecoder(URL, ["zstd"], out.append)
        decoder.feed(zstd(b"first"))
        self.assertRaises(ContentDecodingError, decoder.feed, b"garbage!")
        self.assertEqual(out, [b"first"])

    def test_trailing_data(self) -> None:
        """
        Bytes after the end of a gzip or deflate stream (a second gzip member, garbage)
        fail with L{TrailingContentData}, curl's write error 23, however they arrive;
        after a brotli stream they are corrupt data (61).
        """
        for coding, encoded in [
            ("gzip", gzip.compress(b"one") + gzip.compress(b"two")),
            ("gzip", gzip.compress(b"one") + b"x"),
            ("deflate", zlib.compress(b"one") + b"x"),
            ("deflate", raw_deflate(b"one") + b"x"),
        ]:
            for pieces in ([encoded], [encoded[:-1], encoded[-1:]]):
                error = self.assertRaises(TrailingContentData, decode, [coding], pieces)
                self.assertEqual(error.curl_exit_code, 23)
        encoded = brotli.compress(b"one") + b"x"
        error = self.assertRaises(ContentDecodingError, decode, ["br"], [encoded])
        self.assertEqual(error.curl_exit_code, 61)

    def test_cut_short(self) -> None:
        """
        A stream cut short is not an error: what could be decoded is written (curl).
        """
        data = bytes(range(256)) * 40
        for coding in ("gzip", "deflate", "br", "zstd"):
            encoded = ENCODERS[coding](data)
            decoded = decode([coding], [encoded[: len(encoded) // 2]])
            self.assertTrue(data.startswith(decoded), coding)
        self.assertEqual(decode(["deflate"], [b"x"]), b"")

    def test_unknown_coding(self) -> None:
        """
        An unknown coding fails with L{UnsupportedContentEncoding} (61) at once, naming
        the codings that are understood.
        """
        error = self.assertRaises(UnsupportedContentEncoding, BodyDecoder, URL, ["compress"], id)
        self.assertEqual((error.curl_exit_code, error.coding), (61, "compress"))
        self.assertEqual(
            str(error),
            "Unrecognized content encoding type 'compress'. "
            "twistsock understands deflate, gzip, br, zstd content encodings.",
        )

    def test_too_many_codings(self) -> None:
        """
        Six codings are refused (61), as curl refuses them; five are decoded.
        """
        data = b"deep"
        self.assertEqual(decode(["gzip"] * 5, [encode(data, ["gzip"] * 5)]), data)
        error = self.assertRaises(ContentDecodingError, BodyDecoder, URL, ["gzip"] * 6, id)
        self.assertIn("more than 5 content encodings", str(error))


class CodingsTests(SynchronousTestCase):
    """
    Which codings a response has, and which are offered.
    """

    def test_content_codings(self) -> None:
        """
        Every C{Content-Encoding} field, split on commas, lower-cased, without empty
        elements and C{identity}, in the order applied.
        """
        headers = Headers((("Content-Encoding", "GZIP, ,identity"), ("content-encoding", " br\t")))
        self.assertEqual(content_codings(headers), ["gzip", "br"])
        self.assertEqual(content_codings(Headers()), [])

    def test_accept_encoding(self) -> None:
        """
        curl's value, with the optional codings whose packages are installed.
        """
        self.assertEqual(accept_encoding(), "deflate, gzip, br, zstd")

    def test_without_the_packages(self) -> None:
        """
        Without C{brotli} and C{zstandard}, C{br} and C{zstd} are neither offered nor
        decoded: such a body is an unrecognized coding.
        """
        for module in ("brotli", "zstandard"):
            self.addCleanup(sys.modules.__setitem__, module, sys.modules[module])
            sys.modules[module] = None  # type: ignore[assignment]
        self.assertEqual(available_codings(), ("deflate", "gzip"))
        self.assertEqual(accept_encoding(), "deflate, gzip")
        error = self.assertRaises(UnsupportedContentEncoding, BodyDecoder, URL, ["br"], id)
        self.assertEqual(error.available, ("deflate", "gzip"))
        self.assertIn("understands deflate, gzip content", str(error))
        self.assertEqual(decode(["gzip"], [gzip.compress(b"still")]), b"still")


@implementer(IConsumer)
class Consumer:
    """An C{IConsumer} that records what it is given and its producer."""

    def __init__(self) -> None:
        self.producer: Any = None
        self.data: list[bytes] = []

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        self.data.append(data)


class TargetTests(SynchronousTestCase):
    """
    L{decoding_target} wraps whatever a body may be streamed to.
    """

    def test_consumer(self) -> None:
        """
        A consumer stays a consumer: the producer registered on the wrapper is the
        consumer's, so that flow control holds; it gets the decoded bytes.
        """
        consumer = Consumer()
        target: Any = decoding_target(URL, ["gzip"], consumer)
        self.assertTrue(IConsumer.providedBy(target))
        producer = object()
        target.registerProducer(producer, True)
        self.assertIs(consumer.producer, producer)
        target.write(gzip.compress(b"decoded"))
        self.assertEqual(consumer.data, [b"decoded"])
        target.unregisterProducer()
        self.assertIsNone(consumer.producer)

    def test_file_and_callable(self) -> None:
        """
        An object with C{write} and a callable both get the decoded bytes.
        """
        consumer = Consumer()
        pieces: list[bytes] = []
        for target in (consumer, pieces.append):
            write: Any = decoding_target(URL, ["deflate"], getattr(target, "write", target))
            write(zlib.compress(b"decoded"))
        self.assertEqual((consumer.data, pieces), ([b"decoded"], [b"decoded"]))
