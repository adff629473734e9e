"""
A corpus of real-world and hostile HTTP/1.x responses, for the differential test of the
response reader and for its split-independence test.

Each entry is a L{Sample}: the bytes a server sends, how the connection ends after them
(cleanly, by a reset, or not at all: held open), and the body limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet import error

CLEAN = error.ConnectionDone
RESET = error.ConnectionLost

OK = b"HTTP/1.1 200 OK\r\n"
CHUNKED = OK + b"Transfer-Encoding: chunked\r\n\r\n"


@dataclass(frozen=True)
class Sample:
    """
    A reply and how it ends.

    @ivar reply: the bytes sent.
    @ivar end: the reason the connection is lost after them, or C{None}: held open.
    @ivar max_body_size: the client's body limit.
    """

    reply: bytes
    end: type[Exception] | None = CLEAN
    max_body_size: int = 1000


def _cl(body: bytes, head: bytes = OK) -> bytes:
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


CORPUS: dict[str, Sample] = {
    # Real-world shapes.
    "nginx small file": Sample(
        b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 02 Dec 2026 05:00:00 GMT\r\n"
        b"Content-Type: text/plain\r\nContent-Length: 5\r\nLast-Modified: Tue, 01 Dec 2026 "
        b'10:00:00 GMT\r\nConnection: keep-alive\r\nETag: "6a-5"\r\nAccept-Ranges: bytes'
        b"\r\n\r\nhello",
        None,
    ),
    "apache redirect": Sample(
        b"HTTP/1.1 301 Moved Permanently\r\nDate: x\r\nServer: Apache\r\nLocation: "
        b"https://example.com/\r\nContent-Length: 9\r\nContent-Type: text/html; "
        b"charset=iso-8859-1\r\n\r\n<a>x</a>\n"
    ),
    "chunked html with trailer": Sample(
        CHUNKED + b"7\r\n<html>\n\r\n8\r\n</html>\n\r\n0\r\nServer-Timing: db;dur=53\r\n\r\n",
        None,
    ),
    "HTTP/1.0 close-delimited": Sample(b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP\r\n\r\nold body"),
    "HTTP/1.0 keep-alive": Sample(
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", None
    ),
    "HTTP/1.1 close-delimited": Sample(OK + b"Connection: close\r\n\r\nuntil the end"),
    "404 with body": Sample(_cl(b"not found", b"HTTP/1.1 404 Not Found\r\n"), None),
    "500 no reason phrase": Sample(b"HTTP/1.1 500\r\nContent-Length: 0\r\n\r\n", None),
    "200 empty reason phrase": Sample(b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", None),
    "reason with tab and Latin-1": Sample(
        b"HTTP/1.1 200 Tr\xe8s\tbien\r\nContent-Length: 0\r\n\r\n", None
    ),
    "unknown status 299": Sample(b"HTTP/1.1 299 Whatever\r\nContent-Length: 1\r\n\r\nx", None),
    "status 999": Sample(b"HTTP/1.1 999 Weird\r\nContent-Length: 1\r\n\r\nx", None),
    "HTTP/1.2 read as 1.x": Sample(b"HTTP/1.2 200 OK\r\nContent-Length: 1\r\n\r\nx", None),
    "set-cookies repeated": Sample(
        OK + b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nset-cookie: c=3\r\nContent-Length: 0\r\n\r\n",
        None,
    ),
    "204 no body": Sample(b"HTTP/1.1 204 No Content\r\n\r\n", None),
    "204 with Content-Length": Sample(
        b"HTTP/1.1 204 No Content\r\nContent-Length: 5000\r\n\r\n", None
    ),
    "304 with Content-Length": Sample(
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99999999999\r\n\r\n", None
    ),
    "204 then extra bytes": Sample(b"HTTP/1.1 204 No Content\r\n\r\nEXTRA", None),
    "Content-Length then extra bytes": Sample(OK + b"Content-Length: 2\r\n\r\nokEXTRA", None),
    "Content-Length 0": Sample(OK + b"Content-Length: 0\r\n\r\n", None),
    "body at the limit": Sample(_cl(b"x" * 1000), None),
    "100 Continue then 200": Sample(
        b"HTTP/1.1 100 Continue\r\n\r\n" + _cl(b"ok"),
        None,
    ),
    "103 Early Hints then 200": Sample(
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + _cl(b"ok"), None
    ),
    "two interim responses": Sample(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" + _cl(b"ok"), None
    ),
    "interim with Content-Length over the limit": Sample(
        b"HTTP/1.1 100 Continue\r\nContent-Length: 5000\r\n\r\n" + _cl(b"ok"), None
    ),
    # Line endings and folding.
    "LF-only head": Sample(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", None),
    "mixed line ends": Sample(b"HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\nok", None),
    "obs-fold": Sample(
        b"HTTP/1.1 200 OK\r\nX-F: a\r\n b\r\n\tc\r\nContent-Length: 0\r\n\r\n", None
    ),
    "obs-fold with trailing space": Sample(
        b"HTTP/1.1 200 OK\r\nX-F: a  \r\n   b\r\nContent-Length: 0\r\n\r\n", None
    ),
    "fold at the start of the headers": Sample(
        b"HTTP/1.1 200 OK\r\n X-F: a\r\nContent-Length: 0\r\n\r\n", None
    ),
    "status line only, LF LF": Sample(b"HTTP/1.1 200 OK\n\nbody"),
    # Header fields.
    "header without space": Sample(OK + b"X-A:b\r\nContent-Length: 0\r\n\r\n", None),
    "header value padded": Sample(OK + b"X-A:   b c   \r\nContent-Length: 0\r\n\r\n", None),
    "empty header value": Sample(OK + b"X-A:\r\nContent-Length: 0\r\n\r\n", None),
    "header with control byte": Sample(OK + b"X-A: a\x01b\r\nContent-Length: 0\r\n\r\n", None),
    "header with NUL": Sample(OK + b"X-A: a\x00b\r\nContent-Length: 0\r\n\r\n", None),
    "header with vertical tab": Sample(OK + b"X-A: a\x0bb\r\nContent-Length: 0\r\n\r\n", None),
    "header with bare CR": Sample(OK + b"X-A: a\rb\r\nContent-Length: 0\r\n\r\n", None),
    "header without colon": Sample(OK + b"Bad Header\r\nContent-Length: 0\r\n\r\n", None),
    "header name with space": Sample(OK + b"X A: b\r\nContent-Length: 0\r\n\r\n", None),
    "space before colon": Sample(OK + b"X-A : b\r\nContent-Length: 0\r\n\r\n", None),
    "empty header name": Sample(OK + b": b\r\nContent-Length: 0\r\n\r\n", None),
    "header name with slash": Sample(OK + b"X/A: b\r\nContent-Length: 0\r\n\r\n", None),
    "header value Latin-1": Sample(OK + b"X-A: caf\xe9\r\nContent-Length: 0\r\n\r\n", None),
    "Latin-1 header name": Sample(OK + b"X-\xe9: a\r\nContent-Length: 0\r\n\r\n", None),
    "200 short headers": Sample(
        OK + b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"Content-Length: 0\r\n\r\n",
        None,
    ),
    "20 KB header": Sample(OK + b"X-Big: " + b"a" * 20000 + b"\r\nContent-Length: 0\r\n\r\n"),
    "10,000 short headers": Sample(
        OK + b"X: y\r\n" * 10000 + b"Content-Length: 0\r\n\r\n",
    ),
    "2 MiB header": Sample(OK + b"X-Big: " + b"a" * (2 * 2**20) + b"\r\n\r\n"),
    # Content-Length.
    "Content-Length padded": Sample(OK + b"Content-Length:  2 \r\n\r\nok", None),
    "Content-Length list agreeing": Sample(OK + b"Content-Length: 2, 2\r\n\r\nok", None),
    "Content-Length list disagreeing": Sample(OK + b"Content-Length: 2, 3\r\n\r\nok", None),
    "Content-Length twice agreeing": Sample(
        OK + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nok", None
    ),
    "Content-Length twice disagreeing": Sample(
        OK + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nok", None
    ),
    "Content-Length with plus": Sample(OK + b"Content-Length: +2\r\n\r\nok", None),
    "Content-Length negative": Sample(OK + b"Content-Length: -1\r\n\r\nok", None),
    "Content-Length hex": Sample(OK + b"Content-Length: 0x2\r\n\r\nok", None),
    "Content-Length empty": Sample(OK + b"Content-Length: \r\n\r\nok", None),
    "Content-Length with leading zeros": Sample(OK + b"Content-Length: 0002\r\n\r\nok", None),
    "Content-Length 20 digits": Sample(OK + b"Content-Length: 10000000000000000000\r\n\r\n", None),
    "Content-Length 21 digits": Sample(
        OK + b"Content-Length: 100000000000000000000\r\n\r\n", None
    ),
    "Content-Length over the limit": Sample(OK + b"Content-Length: 1001\r\n\r\n", None),
    "Content-Length body cut by close": Sample(OK + b"Content-Length: 10\r\n\r\nhalf"),
    "Content-Length body cut by reset": Sample(OK + b"Content-Length: 10\r\n\r\nhalf", RESET),
    "Content-Length body held open": Sample(OK + b"Content-Length: 10\r\n\r\nhalf", None),
    # Transfer-Encoding.
    "chunked, mixed case": Sample(
        OK + b"Transfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", None
    ),
    "Transfer-Encoding gzip": Sample(OK + b"Transfer-Encoding: gzip\r\n\r\nxx"),
    "Transfer-Encoding gzip, chunked": Sample(
        OK + b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    ),
    "Transfer-Encoding identity": Sample(OK + b"Transfer-Encoding: identity\r\n\r\nxx"),
    "Transfer-Encoding twice": Sample(
        OK + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "Transfer-Encoding with Content-Length": Sample(
        OK + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ),
    "Content-Length with Transfer-Encoding": Sample(
        OK + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ),
    # Chunks.
    "chunk extensions": Sample(CHUNKED + b"5;a=b;c\r\nhello\r\n0;x\r\n\r\n", None),
    "chunk size with whitespace before extension": Sample(
        CHUNKED + b"5 ;a=b\r\nhello\r\n0\r\n\r\n", None
    ),
    "chunk size with tab before extension": Sample(
        CHUNKED + b"5\t;a=b\r\nhello\r\n0\r\n\r\n", None
    ),
    "chunk size with trailing space": Sample(CHUNKED + b"5  \r\nhello\r\n0\r\n\r\n", None),
    "chunk size upper-case hex": Sample(CHUNKED + b"A\r\n0123456789\r\n0\r\n\r\n", None),
    "chunk size with leading zeros": Sample(CHUNKED + b"0005\r\nhello\r\n0000\r\n\r\n", None),
    "chunk size 0x prefix": Sample(CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n"),
    "chunk size negative": Sample(CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n"),
    "chunk size not hex": Sample(CHUNKED + b"zz\r\n"),
    "chunk size empty": Sample(CHUNKED + b"\r\nhello\r\n0\r\n\r\n"),
    "chunk size line LF-only": Sample(CHUNKED + b"5\nhello\r\n0\r\n\r\n"),
    "chunk size line LF-only, held open": Sample(CHUNKED + b"5\nhello\n0\n\n", None),
    "chunk data without CRLF": Sample(CHUNKED + b"5\r\nhelloXX0\r\n\r\n"),
    "chunk data with LF only": Sample(CHUNKED + b"5\r\nhello\n0\r\n\r\n"),
    "chunk data longer than announced": Sample(CHUNKED + b"3\r\nhello\r\n0\r\n\r\n"),
    "chunked body cut by close": Sample(CHUNKED + b"5\r\nhel"),
    "chunked body cut by reset": Sample(CHUNKED + b"5\r\nhel", RESET),
    "chunked body cut before last chunk": Sample(CHUNKED + b"5\r\nhello\r\n"),
    "chunked body cut in trailers": Sample(CHUNKED + b"0\r\nX-T: a\r\n"),
    "chunked over the limit": Sample(CHUNKED + b"3e8\r\n" + b"x" * 1000 + b"\r\n1\r\nx\r\n"),
    "one chunk over the limit, held open": Sample(CHUNKED + b"3e9\r\n", None),
    "chunk size 2^64, held open": Sample(CHUNKED + b"10000000000000000\r\n", None),
    "chunk size 2^64 with more data": Sample(CHUNKED + b"10000000000000000\r\nxxxx"),
    "chunk size 21 digits": Sample(CHUNKED + b"000000000000000000005\r\nhello\r\n0\r\n\r\n"),
    "trailers LF-only": Sample(CHUNKED + b"0\r\nX-T: a\n\n", None),
    "trailers folded": Sample(CHUNKED + b"0\r\nX-T: a\r\n b\r\n\r\n", None),
    "trailer line invalid": Sample(CHUNKED + b"0\r\nBad Trailer\r\n\r\n"),
    "trailer Content-Length invalid": Sample(CHUNKED + b"0\r\nContent-Length: x\r\n\r\n"),
    "empty trailers LF": Sample(CHUNKED + b"2\r\nok\r\n0\r\n\n", None),
    "many tiny chunks": Sample(
        CHUNKED + b"".join(b"1\r\n%c\r\n" % c for c in b"abcdefghij" * 20) + b"0\r\n\r\n",
        None,
    ),
    "chunks then extra bytes": Sample(CHUNKED + b"2\r\nok\r\n0\r\n\r\nEXTRA", None),
    "100 KB chunk extension": Sample(
        CHUNKED + b"2;" + b"e" * 100_000 + b"\r\nok\r\n0\r\n\r\n", None
    ),
    "100 KB of trailers": Sample(CHUNKED + b"0\r\n" + b"X-T: a\r\n" * 14000 + b"\r\n", None),
    # Close-delimited.
    "close-delimited body cut by reset": Sample(OK + b"\r\nhalf", RESET),
    "close-delimited held open": Sample(OK + b"\r\nhalf", None),
    "close-delimited over the limit": Sample(OK + b"\r\n" + b"x" * 1001),
    # Status lines.
    "empty reply": Sample(b""),
    "reset before any byte": Sample(b"", RESET),
    "garbage": Sample(b"garbage\r\n\r\n"),
    "HTTP/0.9-style reply, closed": Sample(b"<html>hello</html>\n"),
    "HTTP/0.9-style reply, held open": Sample(b"<html>hello</html>\n", None),
    "lower-case http": Sample(b"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    "ICY status line": Sample(b"ICY 200 OK\r\n\r\n"),
    "leading CRLF": Sample(b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    "leading space": Sample(b" HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    "two spaces after version": Sample(b"HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n"),
    "two-digit status": Sample(b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"),
    "four-digit status": Sample(b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"),
    "letters in status": Sample(b"HTTP/1.1 2OO OK\r\n\r\n"),
    "status 099": Sample(b"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n"),
    "NUL in reason": Sample(b"HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n"),
    "HTTP/2 status line": Sample(b"HTTP/2 200\r\ncontent-length: 0\r\n\r\n"),
    "HTTP/2.0 status line": Sample(b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    "HTTP/5.6, closed": Sample(b"HTTP/5.6 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "HTTP/5.6, held open": Sample(b"HTTP/5.6 200 OK\r\n\r\n", None),
    "HTTP/0.9 status line": Sample(b"HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n"),
    "HTTP/2 preface": Sample(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    "TLS alert to plain HTTP": Sample(b"\x15\x03\x01\x00\x02\x02\x46"),
    "HTML error page instead of TLS": Sample(b"<!DOCTYPE html><p>400 Bad Request"),
    "head cut short": Sample(OK + b"Content-Le"),
    "status line cut short": Sample(b"HTTP/1.1 20"),
    "status line cut short, held open": Sample(b"HTTP/1.1 20", None),
    "head held open": Sample(OK + b"Content-Le", None),
    # Interim responses.
    "interim then close": Sample(b"HTTP/1.1 100 Continue\r\n\r\n"),
    "interim then reset": Sample(b"HTTP/1.1 100 Continue\r\n\r\n", RESET),
    "interim then a cut head": Sample(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"),
    "101 Switching Protocols": Sample(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", None
    ),
    "interim with bad header": Sample(b"HTTP/1.1 100 Continue\r\nBad\r\n\r\n" + _cl(b"ok")),
}
"""The corpus, by name."""
