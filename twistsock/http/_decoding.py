"""
Content decoding (RFC 9110 section 8.4), sans-IO: a body's encoded bytes in, piece by
piece, its decoded bytes out to a writer, with bounded memory whatever the input.

L{BodyDecoder} undoes the codings a C{Content-Encoding} lists, last applied first, as the
body arrives.  Each decoding step produces at most about L{PIECE} bytes before they are
handed on (C{zlib}'s C{max_length}, brotli's C{output_buffer_limit}, zstandard's
C{write_size}), so that a decompression bomb is never expanded in memory: the writer at
the end counts what it gets and raises (L{twistsock.http.BodyTooLarge}) once over its
limit, which stops the decoding at once.

The codings and their edge cases follow curl 7.88 (C{--compressed}):

  - C{gzip} (and C{x-gzip}) accepts a gzip or a zlib stream, C{deflate} a zlib stream or
    raw deflate data (some servers send that); C{br} needs the C{brotli} package and
    C{zstd} the C{zstandard} one (the C{compression} extra); C{identity} is no coding.
  - More than 5 codings, or an unknown one, fail with a L{ContentDecodingError} or
    L{UnsupportedContentEncoding} (61) before any body is written.
  - Corrupt data fails with L{ContentDecodingError} (61), after the bytes decoded before it.
  - Bytes after the end of a gzip or deflate stream fail with L{TrailingContentData}
    (23, curl's code for it); after a brotli stream they are corrupt data (61); a zstd
    body may hold several frames, and bytes that are no frame are corrupt data.
  - A stream cut short is not an error: what could be decoded is written (the transfer
    framing, C{Content-Length} or chunks, tells a cut transfer apart).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any, cast

from twisted.internet.interfaces import IConsumer
from zope.interface import implementer

from twistsock.http._errors import (
    ContentDecodingError,
    TrailingContentData,
    UnsupportedContentEncoding,
)
from twistsock.http._response import Headers

__all__ = [
    "MAX_CODINGS",
    "PIECE",
    "BodyDecoder",
    "accept_encoding",
    "available_codings",
    "check_codings",
    "content_codings",
    "decoding_target",
]

PIECE = 64 * 1024
"""The most decoded bytes one decoding step produces before handing them on (brotli may
go over it by a block: about half as much again)."""

MAX_CODINGS = 5
"""The most codings a body may have (curl's limit: each one costs a decoder)."""

ZSTD_MAX_WINDOW = 8 * 1024 * 1024
"""The largest zstd window accepted: RFC 9659 caps it at 8 MiB for the C{zstd} coding,
and it is the memory a zstd decoder may allocate."""

Writer = Callable[[bytes], object]


def available_codings() -> tuple[str, ...]:
    """
    The codings this installation decodes, in curl's order: C{deflate} and C{gzip} always,
    C{br} and C{zstd} when the C{brotli} and C{zstandard} packages are installed.
    """
    codings = ["deflate", "gzip"]
    for coding, module in (("br", "brotli"), ("zstd", "zstandard")):
        try:
            __import__(module)
        except ImportError:
            continue
        codings.append(coding)
    return tuple(codings)


def accept_encoding() -> str:
    """The C{Accept-Encoding} value sent for C{compressed=True}: L{available_codings}."""
    return ", ".join(available_codings())


def content_codings(headers: Headers) -> list[str]:
    """
    The codings C{Content-Encoding} lists, every field joined, in the order applied,
    lower-cased, with empty elements and C{identity} left out.
    """
    codings: list[str] = []
    for value in headers.get_all("Content-Encoding"):
        for token in value.split(","):
            coding = token.strip(" \t").lower()
            if coding and coding != "identity":
                codings.append(coding)
    return codings


def _is_zlib_header(start: bytes) -> bool:
    """Do these two bytes begin a zlib stream (RFC 1950: deflate, a valid check)?"""
    return start[0] & 0x0F == 8 and (start[0] << 8 | start[1]) % 31 == 0


def _zlib_reason(e: zlib.error) -> str:
    """zlib's own words (C{incorrect header check}), as curl shows them."""
    return str(e).split(": ", 1)[-1]


class _Zlib:
    """
    One C{gzip} or C{deflate} decoder.  C{deflate} waits for two bytes to tell a zlib
    stream from raw deflate data.
    """

    def __init__(self, url: str, coding: str, write: Writer) -> None:
        self._url = url
        self._coding = coding
        self._write = write
        self._start = b""
        self._decoder: Any = None
        if coding != "deflate":
            self._decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib

    def feed(self, data: bytes) -> None:
        decoder = self._decoder
        if decoder is None:
            data = self._start + data
            if len(data) < 2:
                self._start = data
                return
            self._start = b""
            wbits = zlib.MAX_WBITS if _is_zlib_header(data) else -zlib.MAX_WBITS
            decoder = self._decoder = zlib.decompressobj(wbits)
        if decoder.eof:
            if data:
                raise TrailingContentData(self._url, self._coding)
            return
        while True:
            try:
                out = decoder.decompress(data, PIECE)
            except zlib.error as e:
                raise ContentDecodingError(self._url, self._coding, _zlib_reason(e)) from None
            if out:
                self._write(out)
            if decoder.unused_data:
                raise TrailingContentData(self._url, self._coding)
            data = decoder.unconsumed_tail
            if not data and len(out) < PIECE:  # all input used, no output pending
                return


class _Brotli:
    """One C{br} decoder (the C{brotli} package)."""

    def __init__(self, url: str, coding: str, write: Writer) -> None:
        import brotli

        self._url = url
        self._write = write
        self._error = brotli.error
        self._decoder = brotli.Decompressor()

    def feed(self, data: bytes) -> None:
        decoder = self._decoder
        try:
            out = decoder.process(data, output_buffer_limit=PIECE)
            # Output may be pending after the input is taken: drain it, a piece at a time.
            while out or not decoder.can_accept_more_data():
                if out:
                    self._write(out)
                out = decoder.process(b"", output_buffer_limit=PIECE)
        except self._error as e:
            raise ContentDecodingError(self._url, "br", str(e)) from None


class _Zstd:
    """
    One C{zstd} decoder (the C{zstandard} package): its stream writer hands each piece
    on as soon as it is decoded, which is the only way it bounds its output.
    """

    def __init__(self, url: str, coding: str, write: Writer) -> None:
        import zstandard

        self._url = url
        self._error = zstandard.ZstdError
        self._writer = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_writer(
            cast(Any, _Forward(write)), write_size=PIECE
        )

    def feed(self, data: bytes) -> None:
        try:
            self._writer.write(data)
        except self._error as e:
            raise ContentDecodingError(self._url, "zstd", str(e)) from None


class _Forward:
    """A file-like C{write} that calls a L{Writer} (what zstandard writes to)."""

    def __init__(self, write: Writer) -> None:
        self._write = write

    def write(self, data: bytes) -> int:
        self._write(data)
        return len(data)


_DECODERS: dict[str, type[_Zlib] | type[_Brotli] | type[_Zstd]] = {
    "gzip": _Zlib,
    "x-gzip": _Zlib,
    "deflate": _Zlib,
    "br": _Brotli,
    "zstd": _Zstd,
}
"""Each coding's decoder."""


def check_codings(url: str, codings: Sequence[str]) -> None:
    """
    Refuse C{codings} that cannot be decoded (the response for C{url} is refused).

    @raise UnsupportedContentEncoding: a coding is unknown, or its package is missing.
    @raise ContentDecodingError: more than L{MAX_CODINGS} codings.
    """
    if len(codings) > MAX_CODINGS:
        raise ContentDecodingError(
            url, ", ".join(codings), f"more than {MAX_CODINGS} content encodings"
        )
    if codings:
        available = available_codings()
        for coding in codings:
            if coding not in available and coding != "x-gzip":
                raise UnsupportedContentEncoding(url, coding, available)


class BodyDecoder:
    """
    Decode a body's content codings as it arrives: L{feed} takes the encoded bytes in
    any pieces; the decoded bytes go to C{write} in pieces of about L{PIECE} bytes at
    most, the same bytes however the input was split.  An exception C{write} raises
    stops the decoding and comes out of L{feed}.

    @ivar codings: the codings, in the order they were applied.
    """

    def __init__(self, url: str, codings: Sequence[str], write: Writer) -> None:
        """
        @param url: the URL fetched, for the errors.
        @param codings: the codings, in the order applied (L{content_codings}).
        @raise UnsupportedContentEncoding: a coding is unknown, or its package is missing.
        @raise ContentDecodingError: more than L{MAX_CODINGS} codings.
        """
        check_codings(url, codings)
        self.codings = tuple(codings)
        # The first coding applied is the last undone: it writes to C{write}.
        for coding in codings:
            write = _DECODERS[coding](url, coding, write).feed
        self._feed = write

    def feed(self, data: bytes) -> None:
        """Decode C{data}, the next bytes of the encoded body."""
        if data:
            self._feed(data)


@implementer(IConsumer)
class _DecodingConsumer:
    """
    An C{IConsumer} that decodes what is written to it and writes that to another
    consumer, to which the producer (the connection) is registered: flow control holds.
    """

    def __init__(self, decoder: BodyDecoder, consumer: Any) -> None:
        self._decoder = decoder
        self._consumer = consumer

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._consumer.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._consumer.unregisterProducer()

    def write(self, data: bytes) -> None:
        self._decoder.feed(data)


def decoding_target(url: str, codings: Sequence[str], target: object) -> object:
    """
    Where to stream a body encoded with C{codings} so that C{target} gets it decoded:
    C{target} is what a body may be streamed to (an C{IConsumer}, an object with a
    C{write} method, or a callable taking each piece), and so is the result: an
    C{IConsumer} for a consumer, a callable otherwise.
    """
    write = cast(Writer, getattr(target, "write", target))
    decoder = BodyDecoder(url, codings, write)
    if IConsumer.providedBy(target):
        return _DecodingConsumer(decoder, target)
    return decoder.feed
