"""
Tests for L{twistsock.HTTPGetProtocol} and L{twistsock.HTTPGetFactory}, in memory.

Every canned response is also delivered split at every byte boundary and in arbitrary
pieces (hypothesis): TCP is a byte stream, so the result must not depend on the splits.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass, fields, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import error
from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import ISSLTransport, IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.logger import LogEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer  # type: ignore[import-untyped]

from tests._memory import MemoryReactorClock
from twistsock import (
    BodyTooLarge,
    CertificateError,
    ConnectionRefused,
    ConnectionReset,
    ConnectTimeout,
    CouldNotConnect,
    CouldNotResolve,
    EmptyReply,
    FetchError,
    Headers,
    HTTPGetFactory,
    HTTPGetProtocol,
    MalformedResponse,
    OperationTimeout,
    PartialBody,
    Response,
    TLSHandshakeError,
)
from twistsock.http._factory import connect_error
from twistsock.http._protocol import TransferObserver
from twistsock.http._reader import ResponseReader, _Body
from twistsock.http._request import build_request, parse_url

URL = "http://example.com/path"
REQUEST = build_request(parse_url(URL))
CLEAN = error.ConnectionDone
RESET = error.ConnectionLost


@dataclass
class Case:
    """A canned reply, how the connection ends, and what it must give."""

    reply: bytes
    end: type[Exception] | None  # connectionLost reason after the bytes, if any
    code: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] | None = None
    trailers: tuple[tuple[str, str], ...] = ()
    head: bytes | None = None
    error: type[FetchError] | None = None
    max_body_size: int = 1000


SUCCESSES = {
    "content-length": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello",
        None,
        body=b"hello",
        headers=(("Content-Length", "5"), ("X-A", "1"), ("x-a", "2")),
    ),
    "chunked with trailers": Case(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        None,
        body=b"hello world",
        trailers=(("X-Trailer", "t"),),
    ),
    "close-delimited": Case(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
        CLEAN,
        body=b"until the end",
    ),
    "HTTP/1.0 close-delimited": Case(
        b"HTTP/1.0 200 OK\r\n\r\nold", CLEAN, body=b"old", headers=()
    ),
    "1xx skipped": Case(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        None,
        body=b"ok",
        headers=(("Content-Length", "2"),),
        head=b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
    ),
    "204 has no body": Case(b"HTTP/1.1 204 No Content\r\n\r\n", None, code=204),
    "304 has no body": Case(
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", None, code=304
    ),
    "304 with a Content-Length over the limit": Case(
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99999999999\r\n\r\n", None, code=304
    ),
    "204 with a Content-Length over the limit": Case(
        b"HTTP/1.1 204 No Content\r\nContent-Length: 5000\r\n\r\n", None, code=204
    ),
    "1xx with a Content-Length over the limit": Case(
        b"HTTP/1.1 100 Continue\r\nContent-Length: 5000\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        None,
        body=b"ok",
    ),
    "redirect returned as is": Case(
        b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
        None,
        code=302,
        headers=(("Location", "/elsewhere"), ("Content-Length", "0")),
    ),
    "LF-only lines and obs-fold accepted": Case(
        b"HTTP/1.1 200 OK\nX-Folded: a\n b\nContent-Length: 1\n\nz",
        None,
        body=b"z",
        headers=(("X-Folded", "a b"), ("Content-Length", "1")),
    ),
    "body exactly at the limit": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfull", None, body=b"full", max_body_size=4
    ),
}

FAILURES = {
    "malformed status line": Case(b"HTTP/1.1 2OO OK\r\n\r\n", CLEAN, error=MalformedResponse),
    "garbage": Case(b"garbage\r\n\r\n", CLEAN, error=MalformedResponse),
    "malformed header": Case(
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", CLEAN, error=MalformedResponse
    ),
    "bad chunk size": Case(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        CLEAN,
        error=MalformedResponse,
    ),
    "Transfer-Encoding with Content-Length": Case(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n",
        CLEAN,
        error=MalformedResponse,
    ),
    "head cut short": Case(b"HTTP/1.1 200 OK\r\nContent-Le", CLEAN, error=MalformedResponse),
    "empty reply": Case(b"", CLEAN, error=EmptyReply),
    "Content-Length body cut by close": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", CLEAN, error=PartialBody
    ),
    "chunked body cut by close": Case(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        CLEAN,
        error=PartialBody,
    ),
    "body cut by reset": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", RESET, error=ConnectionReset
    ),
    "close-delimited body cut by reset": Case(
        b"HTTP/1.1 200 OK\r\n\r\nhalf", RESET, error=ConnectionReset
    ),
    "announced body over the limit": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n",
        None,
        error=BodyTooLarge,
        max_body_size=10,
    ),
    "chunked body over the limit": Case(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\nghijk\r\n",
        None,
        error=BodyTooLarge,
        max_body_size=10,
    ),
    "close-delimited body over the limit": Case(
        b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 11, None, error=BodyTooLarge, max_body_size=10
    ),
}


@implementer(ISSLTransport)
class TLSStringTransport(StringTransport):
    """A L{StringTransport} that says it is a TLS one."""


class HeadRecorder(TransferObserver):
    """Records what L{TransferObserver.response_head} is told."""

    def __init__(self) -> None:
        self.heads: list[tuple[bytes, int | None]] = []

    def response_head(self, head: bytes, content_length: int | None) -> None:
        self.heads.append((head, content_length))


def deliver(case: Case, pieces: list[bytes]) -> tuple[HTTPGetProtocol, StringTransport]:
    """Connect a protocol to a L{StringTransport}, feed it C{pieces}, then end as told."""
    protocol = HTTPGetProtocol(REQUEST, max_body_size=case.max_body_size)
    transport = StringTransport()
    protocol.makeConnection(transport)
    for piece in pieces:
        protocol.dataReceived(piece)
    if case.end is not None:
        protocol.connectionLost(Failure(case.end()))
    return protocol, transport


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """Cut C{data} at the given offsets."""
    points = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


class CannedResponseTests(SynchronousTestCase):
    """
    Canned responses give the right L{Response} or L{FetchError}, however they are split.
    """

    def check(self, name: str, case: Case, pieces: list[bytes]) -> None:
        """Deliver C{pieces} and check the outcome against C{case}."""
        protocol, transport = deliver(case, pieces)
        if case.error is not None:
            failure = self.failureResultOf(protocol.response, case.error)
            self.assertEqual(failure.value.url, URL, name)  # type: ignore[union-attr]
            self.assertTrue(transport.disconnected, f"{name}: transport not aborted")
            return
        response: Response = self.successResultOf(protocol.response)
        self.assertEqual(
            (response.code, response.body, response.raw, response.url),
            (case.code, case.body, case.reply, URL),
            name,
        )
        if case.headers is not None:
            self.assertEqual(tuple(response.headers), case.headers, name)
        self.assertEqual(tuple(response.trailers), case.trailers, name)
        if case.head is not None:
            self.assertEqual(response.head, case.head, name)
        self.assertTrue(transport.disconnecting, f"{name}: connection not closed")
        self.assertFalse(transport.disconnected, f"{name}: aborted, not closed")

    def test_whole(self) -> None:
        """
        Each canned response delivered in one piece gives the expected outcome.
        """
        for name, case in {**SUCCESSES, **FAILURES}.items():
            self.check(name, case, [case.reply])

    def test_every_byte_boundary(self) -> None:
        """
        Each canned response split in two at every byte boundary gives the same outcome.
        """
        for name, case in {**SUCCESSES, **FAILURES}.items():
            for cut in range(len(case.reply) + 1):
                self.check(f"{name} cut at {cut}", case, split(case.reply, [cut]))

    def test_byte_by_byte(self) -> None:
        """
        Each canned response delivered one byte at a time gives the same outcome.
        """
        for name, case in {**SUCCESSES, **FAILURES}.items():
            pieces = [case.reply[i : i + 1] for i in range(len(case.reply))]
            self.check(name, case, pieces)

    @settings(max_examples=50, deadline=None)
    @given(
        st.sampled_from(sorted({**SUCCESSES, **FAILURES})),
        st.lists(st.integers(min_value=0, max_value=300), max_size=12),
    )
    def test_arbitrary_splits(self, name: str, cuts: list[int]) -> None:
        """
        Each canned response cut at arbitrary offsets gives the same outcome.
        """
        case = {**SUCCESSES, **FAILURES}[name]
        cuts = [c for c in cuts if c <= len(case.reply)]
        self.check(name, case, split(case.reply, cuts))

    def test_headers_lookup(self) -> None:
        """
        Header lookup ignores case; C{get} gives the first value, C{get_all} all of them.
        """
        case = SUCCESSES["content-length"]
        response = self.successResultOf(deliver(case, [case.reply])[0].response)
        self.assertEqual(response.headers.get("x-A"), "1")
        self.assertEqual(response.headers.get_all("X-A"), ("1", "2"))
        self.assertEqual(response.headers.get_all("missing"), ())
        self.assertIsNone(response.headers.get("missing"))
        self.assertIn("CONTENT-LENGTH", response.headers)
        self.assertEqual(response.http_version, "1.1")
        self.assertEqual(response.phrase, "OK")

    def test_response_is_immutable(self) -> None:
        """
        A L{Response} cannot be changed after the fact.
        """
        case = SUCCESSES["content-length"]
        response = self.successResultOf(deliver(case, [case.reply])[0].response)
        with self.assertRaises(AttributeError):
            response.code = 500  # type: ignore[misc]

    def test_raw_with_bytes_after_the_body(self) -> None:
        """
        Bytes received after a Content-Length body (in the same read) are part of C{raw},
        exactly where they came, and not of the body.
        """
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"
        for pieces in ([reply], split(reply, [10, 39])):  # the extra comes with the body's end
            protocol = HTTPGetProtocol(REQUEST)
            protocol.makeConnection(StringTransport())
            for piece in pieces:
                protocol.dataReceived(piece)
            response = self.successResultOf(protocol.response)
            self.assertEqual((response.body, response.raw), (b"ok", reply))

    def test_body_held_once(self) -> None:
        """
        A Content-Length or close-delimited body is held once: until C{raw} is read, the
        response keeps the head and the body object itself, not the received pieces.  A
        chunked body keeps the pieces (C{raw} has the chunk framing).
        """
        body = b"x" * 5000
        for reply, end in [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + body, None),
            (b"HTTP/1.0 200 OK\r\n\r\n" + body, CLEAN),
        ]:
            protocol = HTTPGetProtocol(REQUEST)
            protocol.makeConnection(StringTransport())
            for piece in split(reply, [1000, 3000]):
                protocol.dataReceived(piece)
            if end is not None:
                protocol.connectionLost(Failure(end()))
            response = self.successResultOf(protocol.response)
            self.assertEqual(response.body, body)
            self.assertTrue(any(piece is response.body for piece in vars(response)["_raw"]))
            self.assertEqual(response.raw, reply)
        chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        protocol = HTTPGetProtocol(REQUEST)
        protocol.makeConnection(StringTransport())
        for piece in split(chunked, [30, 50]):
            protocol.dataReceived(piece)
        response = self.successResultOf(protocol.response)
        self.assertEqual(len(vars(response)["_raw"]), 3)  # before raw is read and joined
        self.assertEqual((response.body, response.raw), (b"ok", chunked))

    def test_raw_like_any_field(self) -> None:
        """
        The protocol's C{raw} (joined from the received pieces when first read) behaves as
        a plain C{bytes} field: it cannot be assigned, and equality, hashing, C{replace},
        pickling and C{repr} see the exact bytes, the same as a L{Response} built with them.
        """
        case = SUCCESSES["content-length"]
        pieces = split(case.reply, [5, 40])
        received = self.successResultOf(deliver(case, pieces)[0].response)
        built = Response(**{f.name: getattr(received, f.name) for f in fields(Response)})
        with self.assertRaises(AttributeError):
            received.raw = b""  # type: ignore[misc]
        self.assertEqual(pickle.loads(pickle.dumps(received)), built)
        self.assertEqual(replace(received, code=201).raw, case.reply)
        self.assertEqual(
            (received, hash(received), repr(received)), (built, hash(built), repr(built))
        )
        self.assertIs(received.raw, received.raw)
        self.assertEqual(received.raw, case.reply)
        with self.assertRaises(TypeError):
            Response(
                url=URL, http_version="1.1", code=200, phrase="OK", headers=Headers(), body=b""
            )  # type: ignore[call-arg]

    def test_buffers_released(self) -> None:
        """
        Once C{response} has fired, with a response or a failure, the protocol holds no
        received or body bytes any more (it sits in reference cycles, so they would live
        until the cyclic garbage collector runs).
        """

        def held(protocol: HTTPGetProtocol) -> list[bytes | bytearray]:
            found, todo = [], list(vars(protocol).values())
            while todo:
                item = todo.pop()
                if isinstance(item, (bytes, bytearray)) and len(item) >= 1000:
                    found.append(item)
                elif isinstance(item, io.BytesIO) and len(item.getvalue()) >= 1000:
                    found.append(item.getvalue())
                elif isinstance(item, (list, tuple)):
                    todo.extend(item)
                elif isinstance(item, (_Body, ResponseReader)):
                    todo.extend(vars(item).values())
            return found

        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 6000\r\n\r\n" + b"x" * 6000
        for received, end in [(reply, None), (reply[:5000], CLEAN)]:
            protocol = HTTPGetProtocol(REQUEST)
            protocol.makeConnection(StringTransport())
            for piece in split(received, [3000]):
                protocol.dataReceived(piece)
            if end is not None:
                self.assertNotEqual(held(protocol), [])  # still receiving
                protocol.connectionLost(Failure(end()))
                self.failureResultOf(protocol.response, PartialBody)
            self.assertEqual(held(protocol), [])

    def test_framing_bound_whatever_the_split(self) -> None:
        """
        The bound on what is not body is the same whatever the reads: a 20 KB header,
        10,000 short headers, a 100 KB chunk extension and a 100 KB trailer section are
        accepted in one read and split anywhere (h11's 16 KiB limit on an incomplete
        event, checked only while it waits for more, is not twistsock's bound).
        """
        chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        replies = [
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 20000 + b"\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 10000 + b"Content-Length: 2\r\n\r\nok",
            chunked + b"2;" + b"e" * 100_000 + b"\r\nok\r\n0\r\n\r\n",
            chunked + b"2\r\nok\r\n0\r\n" + b"X-T: a\r\n" * 14000 + b"\r\n",
        ]
        for reply in replies:
            for pieces in ([reply], split(reply, [17000]), split(reply, [100, 16384, 40000])):
                protocol = HTTPGetProtocol(REQUEST, max_body_size=1000)
                protocol.makeConnection(StringTransport())
                for piece in pieces:
                    protocol.dataReceived(piece)
                self.assertEqual(self.successResultOf(protocol.response).body, b"ok")

    def test_head_over_the_bound(self) -> None:
        """
        A head over the framing bound fails with the same L{MalformedResponse} in one read
        and in pieces, as soon as the bound is passed, without waiting for its end.
        """
        reply = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (2**20) + b"\r\n\r\n"
        messages = set()
        for pieces in ([reply], split(reply, [17000]), [reply[:-10]]):
            protocol = HTTPGetProtocol(REQUEST, max_body_size=1000)
            transport = StringTransport()
            protocol.makeConnection(transport)
            for piece in pieces:
                protocol.dataReceived(piece)
            failure = self.failureResultOf(protocol.response, MalformedResponse)
            messages.add(str(failure.value))
            self.assertTrue(transport.disconnected)
        self.assertEqual(
            messages, {"Weird server reply: over 1048576 bytes of headers and chunk framing"}
        )

    def test_chunk_size_whitespace_before_extension(self) -> None:
        """
        Whitespace between a chunk size and its extensions (C{5 ;a=b}) is parsed, as
        RFC 9110 section 5.6.3 says a recipient must.
        """
        reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        reply += b"5 ;a=b\r\nhello\r\n6\t; c\r\n world\r\n0\r\n\r\n"
        protocol, _ = deliver(Case(reply, None), [reply])
        self.assertEqual(self.successResultOf(protocol.response).body, b"hello world")

    def test_unknown_major_version(self) -> None:
        """
        A status line of another major version (C{HTTP/5.6}, C{HTTP/2}) is refused (8) as
        soon as its version has arrived, on a connection held open.
        """
        for reply in [b"HTTP/5.6 200 OK\r\n\r\n", b"HTTP/5", b"HTTP/2 200\r\n"]:
            protocol, transport = deliver(Case(reply, None), [reply])
            failure = self.failureResultOf(protocol.response, MalformedResponse)
            self.assertIn("HTTP major version", str(failure.value))
            self.assertTrue(transport.disconnected)

    def test_never_valid_fails_at_once(self) -> None:
        """
        A reply that can never become valid fails at once on a connection held open: an
        HTTP/0.9-style reply (no status line) at its first byte, and a chunk size of 2^64
        or more with L{BodyTooLarge} (63) before its line ends, whatever the body limit.
        """
        protocol, _ = deliver(Case(b"<", None), [b"<"])
        self.failureResultOf(protocol.response, MalformedResponse)
        chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        for size in [b"10000000000000000", b"0" * 30 + b"ffffffffffffffffff"]:
            reply = chunked + size
            protocol, _ = deliver(Case(reply, None, max_body_size=2**70), [reply])
            failure = self.failureResultOf(protocol.response, BodyTooLarge)
            self.assertEqual(failure.value.curl_exit_code, 63)  # type: ignore[union-attr]
        reply = chunked + b"ffffffffffffffff\r\n"  # 2^64 - 1: over the limit, not invalid
        protocol, _ = deliver(Case(reply, None, max_body_size=2**70), [reply])
        self.assertNoResult(protocol.response)

    def test_interim_then_close(self) -> None:
        """
        Interim 1xx responses and then a clean close is an empty reply (52), as curl says.
        """
        reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
        protocol, _ = deliver(Case(reply, CLEAN), [reply])
        failure = self.failureResultOf(protocol.response, EmptyReply)
        self.assertEqual(failure.value.curl_exit_code, 52)  # type: ignore[union-attr]

    def test_plain_messages(self) -> None:
        """
        Errors say what is wrong in HTTP's words, with the offending bytes shown as text,
        never h11's internals or a C{bytearray} repr.
        """
        cases = [
            (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "invalid header line: 'Bad Header'"),
            (b"HTTP/1.1 2OO OK\r\n\r\n", "invalid status line: 'HTTP/1.1 2O'"),
            (b"garbage\r\n", "not an HTTP/1.x response: it begins 'g'"),
            (
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                "101 Switching Protocols, but no protocol switch was asked for",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "invalid chunk size line: 'z'",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxY",
                "chunk data not followed by CRLF",
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Le", "connection closed in the response head"),
        ]
        for reply, reason in cases:
            protocol, _ = deliver(Case(reply, CLEAN), [reply])
            failure = self.failureResultOf(protocol.response, MalformedResponse)
            self.assertEqual(str(failure.value), f"Weird server reply: {reason}")

    def test_finely_chunked_body_within_the_limit(self) -> None:
        """
        A body within C{max_body_size} is accepted however finely it is chunked: 20,000
        one-byte chunks (five bytes of framing per body byte) with a 20,000-byte limit.
        """
        body = bytes(range(256)) * 78 + b"x" * 32
        reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        reply += b"".join(b"1\r\n%c\r\n" % byte for byte in body) + b"0\r\n\r\n"
        protocol = HTTPGetProtocol(REQUEST, max_body_size=len(body))
        protocol.makeConnection(StringTransport())
        for start in range(0, len(reply), 65536):  # as TCP reads would deliver it
            protocol.dataReceived(reply[start : start + 65536])
        response = self.successResultOf(protocol.response)
        self.assertEqual((len(body), response.body, response.raw), (20000, body, reply))

    def test_framing_limit(self) -> None:
        """
        Framing beyond C{framing_limit} (C{max_body_size}, at least 1 MiB) fails with
        L{MalformedResponse}, not L{BodyTooLarge}, whether it is interim responses or
        chunk extensions, and the protocol stops reading at once: the memory a server
        can make it hold is bounded whatever the body.
        """
        self.assertEqual(HTTPGetProtocol(REQUEST, max_body_size=10).framing_limit, 2**20)
        self.assertEqual(HTTPGetProtocol(REQUEST, max_body_size=2**23).framing_limit, 2**23)
        interim = b"HTTP/1.1 100 Continue\r\nX-Pad: " + b"p" * 8000 + b"\r\n\r\n"
        chunk = b"1;ext=" + b"e" * 8000 + b"\r\nx\r\n"
        chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        for first, piece in [(b"", interim), (chunked, chunk)]:
            protocol = HTTPGetProtocol(REQUEST, max_body_size=1000)
            transport = StringTransport()
            protocol.makeConnection(transport)
            protocol.dataReceived(first)
            fed = len(first)
            while not protocol.response.called:
                protocol.dataReceived(piece)
                fed += len(piece)
            failure = self.failureResultOf(protocol.response, MalformedResponse)
            self.assertIn("over 1048576 bytes of headers and chunk framing", str(failure.value))
            self.assertTrue(transport.disconnected)
            self.assertLess(fed, 2**20 + 2 * len(piece))

    def test_no_body_no_total(self) -> None:
        """
        The observer is told the body length of a response with a body, and none (C{None},
        no progress bar total) for a 304 or 204 whatever their C{Content-Length}.
        """
        for reply, total in [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 2),
            (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99999999999\r\n\r\n", None),
            (b"HTTP/1.1 204 No Content\r\nContent-Length: 5000\r\n\r\n", None),
        ]:
            observer = HeadRecorder()
            protocol = HTTPGetProtocol(REQUEST, max_body_size=10, observer=observer)
            protocol.makeConnection(StringTransport())
            protocol.dataReceived(reply)
            self.successResultOf(protocol.response)
            self.assertEqual(observer.heads, [(reply[: reply.index(b"\r\n\r\n") + 4], total)])

    def test_no_bytes_after_failure(self) -> None:
        """
        Bytes arriving after a failure are ignored: the Deferred fires once.
        """
        case = FAILURES["garbage"]
        protocol, _ = deliver(case, [case.reply])
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\n\r\n")
        protocol.connectionLost(Failure(CLEAN()))
        self.failureResultOf(protocol.response, MalformedResponse)


class ProtocolTests(SynchronousTestCase):
    """
    The protocol's request, cancellation and TLS failures.
    """

    def test_connection_lost_default(self) -> None:
        """
        C{connectionLost()} without a reason is a clean close: a close-delimited body
        ends there, as it would with C{ConnectionDone}.
        """
        protocol = HTTPGetProtocol(REQUEST)
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\n\r\nbody")
        protocol.connectionLost()
        self.assertEqual(self.successResultOf(protocol.response).body, b"body")

    def test_writes_request(self) -> None:
        """
        On connection the protocol writes the whole request, and nothing else.
        """
        protocol = HTTPGetProtocol(REQUEST)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertEqual(transport.value(), REQUEST.to_bytes())
        self.assertTrue(
            transport.value().startswith(b"GET /path HTTP/1.1\r\nHost: example.com\r\n")
        )

    def test_cancel_aborts(self) -> None:
        """
        Cancelling the response Deferred aborts the connection and fails it as cancelled.
        """
        protocol = HTTPGetProtocol(REQUEST)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal")
        protocol.response.cancel()
        self.failureResultOf(protocol.response, CancelledError)
        self.assertTrue(transport.disconnected)
        protocol.connectionLost(Failure(error.ConnectionAborted()))

    def test_reset_or_no_close_notify(self) -> None:
        """
        A connection lost before the end of the response is a reset (56) on plain TCP, and
        over TLS (where Twisted reports a TCP close without the TLS close_notify alert as a
        lost connection) a close without close_notify, said as such.
        """
        partial = b"HTTP/1.1 200 OK\r\n\r\nhalf"
        for transport, tls, message in [
            (StringTransport(), False, "Recv failure: Connection reset by peer after 23 bytes"),
            (
                TLSStringTransport(),
                True,
                "TLS connection closed without close_notify after 23 bytes",
            ),
        ]:
            protocol = HTTPGetProtocol(REQUEST)
            protocol.makeConnection(transport)
            protocol.dataReceived(partial)
            protocol.connectionLost(Failure(error.ConnectionLost()))
            failure = self.failureResultOf(protocol.response, ConnectionReset)
            self.assertEqual((str(failure.value), failure.value.tls), (message, tls))  # type: ignore[union-attr]
            self.assertEqual(failure.value.curl_exit_code, 56)  # type: ignore[union-attr]

    def test_tls_handshake_failure(self) -> None:
        """
        An OpenSSL error when the connection is lost is a TLS handshake failure (35).
        """
        protocol = HTTPGetProtocol(REQUEST)
        protocol.makeConnection(StringTransport())
        protocol.connectionLost(Failure(SSL.Error([("SSL routines", "", "wrong version number")])))
        failure = self.failureResultOf(protocol.response, TLSHandshakeError)
        self.assertEqual(failure.value.curl_exit_code, 35)  # type: ignore[union-attr]
        self.assertEqual(
            str(failure.value), "TLS connect error with example.com: wrong version number"
        )

    def test_untrusted_certificate(self) -> None:
        """
        A certificate verification failure is an untrusted certificate (60).
        """
        protocol = HTTPGetProtocol(REQUEST)
        protocol.makeConnection(StringTransport())
        reason = SSL.Error([("SSL routines", "", "certificate verify failed")])
        protocol.connectionLost(Failure(reason))
        failure = self.failureResultOf(protocol.response, CertificateError)
        self.assertEqual(failure.value.host, "example.com")  # type: ignore[union-attr]
        self.assertEqual(failure.value.curl_exit_code, 60)  # type: ignore[union-attr]

    def test_hostname_mismatch(self) -> None:
        """
        A certificate for another host name (service_identity's verification error) is a
        certificate problem (60) too.
        """
        protocol = HTTPGetProtocol(REQUEST)
        protocol.makeConnection(StringTransport())
        protocol.connectionLost(Failure(VerificationError(errors=[])))
        failure = self.failureResultOf(protocol.response, CertificateError)
        self.assertIn("not valid for example.com", str(failure.value))


@implementer(IStreamClientEndpoint)
class FailingEndpoint:
    """
    An endpoint whose C{connect} fails with C{reason}, or returns C{pending} if given.
    """

    def __init__(self, reason: Exception | None, pending: Deferred[Any] | None = None) -> None:
        self.reason = reason
        self.pending = pending

    def connect(self, factory: Any) -> Deferred[Any]:
        if self.pending is not None:
            return self.pending
        assert self.reason is not None
        return fail(self.reason)


class FactoryTests(SynchronousTestCase):
    """
    L{HTTPGetFactory} builds protocols that fire the factory's own Deferred.
    """

    def test_shared_response(self) -> None:
        """
        The protocol built fires the factory's C{response} with the L{Response}.
        """
        factory = HTTPGetFactory(URL, headers={"X-A": "b"}, timeout=None)
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertIn(b"\r\nX-A: b\r\n", transport.value())
        self.assertIs(protocol.response, factory.response)
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        self.assertEqual(self.successResultOf(factory.response).body, b"ok")

    def test_quiet(self) -> None:
        """
        Starting and stopping a factory logs nothing (Twisted's factories log both by
        default, which would be two log events per fetch).
        """
        events: list[LogEvent] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        factory = HTTPGetFactory(URL, timeout=None)
        factory.doStart()
        factory.doStop()
        self.assertEqual(events, [])

    def test_max_body_size(self) -> None:
        """
        The factory passes its C{max_body_size} to the protocols it builds.
        """
        factory = HTTPGetFactory(URL, max_body_size=1, timeout=None)
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
        self.failureResultOf(factory.response, BodyTooLarge)

    def test_cancel_before_connection(self) -> None:
        """
        Cancelling before any connection just fails the Deferred as cancelled.
        """
        factory = HTTPGetFactory(URL, timeout=None)
        factory.response.cancel()
        self.failureResultOf(factory.response, CancelledError)

    def test_cancel_while_connecting(self) -> None:
        """
        Cancelling while a connector (C{reactor.connectTCP}) is connecting stops it, and
        the Deferred fails as cancelled, not with the connector's "user aborted" failure.
        """
        reactor = MemoryReactor()
        factory = HTTPGetFactory(URL, timeout=None)
        connector = reactor.connectTCP("127.0.0.1", 80, factory)
        factory.response.cancel()
        self.assertTrue(connector.stoppedConnecting)  # type: ignore[attr-defined]
        factory.clientConnectionFailed(connector, Failure(error.UserError()))
        self.failureResultOf(factory.response, CancelledError)

    def test_cancel_after_connection(self) -> None:
        """
        Cancelling the factory's Deferred aborts its protocol's connection.
        """
        factory = HTTPGetFactory(URL, timeout=None)
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        factory.response.cancel()
        self.failureResultOf(factory.response, CancelledError)
        self.assertTrue(transport.disconnected)

    def test_timeout(self) -> None:
        """
        With C{timeout}, a server that stalls fails C{response} with L{OperationTimeout}
        (28) when the time (counted from the factory's creation) passes, not before, and
        the connection is aborted; a response in time cancels the deadline.
        """
        clock = Clock()
        factory = HTTPGetFactory(URL, timeout=5, reactor=clock)
        clock.advance(1)
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal")
        clock.advance(3.9)
        self.assertNoResult(factory.response)
        clock.advance(0.1)
        failure = self.failureResultOf(factory.response, OperationTimeout)
        self.assertEqual(str(failure.value), f"Operation timed out after 5 s: {URL}")
        self.assertTrue(transport.disconnected)
        factory = HTTPGetFactory(URL, timeout=5, reactor=clock)
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        self.successResultOf(factory.response)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_timeout_while_connecting(self) -> None:
        """
        When the deadline passes while a connector is connecting, the connector is stopped
        and C{response} fails with L{OperationTimeout}, not the connector's "user aborted";
        a connection made after the deadline (an endpoint's) is aborted with nothing sent.
        """
        reactor = MemoryReactorClock()
        factory = HTTPGetFactory(URL, timeout=2, reactor=reactor)
        connector = reactor.connectTCP("127.0.0.1", 80, factory)
        reactor.advance(2)
        self.assertTrue(connector.stoppedConnecting)  # type: ignore[attr-defined]
        factory.clientConnectionFailed(connector, Failure(error.UserError()))
        self.failureResultOf(factory.response, OperationTimeout)
        factory = HTTPGetFactory(URL, timeout=2, reactor=reactor)
        reactor.advance(2)
        self.failureResultOf(factory.response, OperationTimeout)
        transport = StringTransport()
        factory.buildProtocol(None).makeConnection(transport)
        self.assertEqual((transport.value(), transport.disconnected), (b"", True))

    def test_default_timeout(self) -> None:
        """
        By default the exchange is bounded: after 30 seconds C{response} fails with
        L{OperationTimeout}.
        """
        clock = Clock()
        factory = HTTPGetFactory(URL, reactor=clock)
        clock.advance(29.9)
        self.assertNoResult(factory.response)
        clock.advance(0.1)
        failure = self.failureResultOf(factory.response, OperationTimeout)
        self.assertEqual(failure.value.timeout, 30)  # type: ignore[union-attr]

    def test_no_timeout(self) -> None:
        """
        C{timeout=None} sets no deadline (the caller bounds the exchange, as
        L{twistsock.fetch} does).
        """
        clock = Clock()
        factory = HTTPGetFactory(URL, reactor=clock, timeout=None)
        self.assertEqual(clock.getDelayedCalls(), [])
        factory.response.cancel()
        self.failureResultOf(factory.response, CancelledError)

    def test_client_connection_failed(self) -> None:
        """
        A connector's failure to connect fails C{response} with the matching error.
        """
        factory = HTTPGetFactory("http://127.0.0.1:1/", timeout=None)
        factory.clientConnectionFailed(None, Failure(error.ConnectionRefusedError()))  # type: ignore[arg-type]
        failure = self.failureResultOf(factory.response, ConnectionRefused)
        self.assertEqual(
            str(failure.value), "Failed to connect to 127.0.0.1 port 1: Connection refused"
        )

    def test_connect_refused(self) -> None:
        """
        Connected through an endpoint with L{HTTPGetFactory.connect}, a refused connection
        fails C{response}, the one Deferred to watch, with L{ConnectionRefused} (7).
        """
        memory = MemoryReactorClock()
        endpoint = TCP4ClientEndpoint(memory, "127.0.0.1", 1)
        factory = HTTPGetFactory("http://127.0.0.1:1/", reactor=memory)
        self.assertIs(factory.connect(endpoint), factory.response)
        host, port, wrapping, timeout, bind = memory.tcpClients[0]
        wrapping.clientConnectionFailed(None, Failure(error.ConnectionRefusedError()))
        failure = self.failureResultOf(factory.response, ConnectionRefused)
        self.assertEqual(failure.value.curl_exit_code, 7)
        self.assertEqual(memory.getDelayedCalls(), [])  # the deadline is gone too

    def test_connect_unresolvable(self) -> None:
        """
        An endpoint that cannot resolve the host fails C{response} with L{CouldNotResolve}.
        """
        endpoint = FailingEndpoint(error.DNSLookupError("no such host"))
        factory = HTTPGetFactory(URL, timeout=None)
        factory.connect(endpoint)
        failure = self.failureResultOf(factory.response, CouldNotResolve)
        self.assertEqual(str(failure.value), "Could not resolve host: example.com")

    def test_connect_timeout(self) -> None:
        """
        An endpoint's own connect timeout fails C{response} with L{ConnectTimeout} (28),
        naming the limit when the caller says what it is.
        """
        factory = HTTPGetFactory(URL, timeout=None)
        factory.connect(FailingEndpoint(error.TimeoutError()), connect_timeout=4)
        failure = self.failureResultOf(factory.response, ConnectTimeout)
        self.assertEqual(
            str(failure.value), "Failed to connect to example.com port 80: timed out after 4 s"
        )

    def test_cancel_while_endpoint_connects(self) -> None:
        """
        Cancelling C{response} while the endpoint connects cancels the attempt.
        """
        cancelled: list[object] = []
        endpoint = FailingEndpoint(None, Deferred(cancelled.append))
        factory = HTTPGetFactory(URL, timeout=None)
        factory.connect(endpoint)
        factory.response.cancel()
        self.failureResultOf(factory.response, CancelledError)
        self.assertEqual(len(cancelled), 1)

    def test_cancel_while_chained(self) -> None:
        """
        An endpoint's Deferred that has fired but waits on another one (as
        C{HostnameEndpoint}'s does once the name is resolved) is still cancelled.
        """
        cancelled: list[object] = []
        inner: Deferred[Any] = Deferred(cancelled.append)
        outer: Deferred[Any] = Deferred()
        outer.callback(None)
        outer.addCallback(lambda _: inner)
        self.assertTrue(outer.called)
        factory = HTTPGetFactory(URL, timeout=None)
        factory.connect(FailingEndpoint(None, outer))
        factory.response.cancel()
        self.failureResultOf(factory.response, CancelledError)
        self.assertEqual(len(cancelled), 1)

    def test_endpoint_raises(self) -> None:
        """
        An endpoint whose C{connect} raises fails C{response} with L{CouldNotConnect}
        instead of raising into the caller; so does any failure that is no connection
        error.
        """

        @implementer(IStreamClientEndpoint)
        class Raising:
            def connect(self, factory: Any) -> Deferred[Any]:
                raise OSError("boom")

        factory = HTTPGetFactory(URL, timeout=None)
        factory.connect(Raising())
        failure = self.failureResultOf(factory.response, CouldNotConnect)
        self.assertIn("boom", str(failure.value))
        factory = HTTPGetFactory(URL, timeout=None)
        factory.connect(FailingEndpoint(ValueError("odd")))
        self.failureResultOf(factory.response, CouldNotConnect)

    def test_deadline_while_endpoint_connects(self) -> None:
        """
        The deadline passing while the endpoint connects cancels the attempt and fails
        C{response} with L{OperationTimeout}.
        """
        clock = Clock()
        cancelled: list[object] = []
        factory = HTTPGetFactory(URL, timeout=5, reactor=clock)
        factory.connect(FailingEndpoint(None, Deferred(cancelled.append)))
        clock.advance(5)
        self.failureResultOf(factory.response, OperationTimeout)
        self.assertEqual(len(cancelled), 1)

    def test_connect_errors(self) -> None:
        """
        Connection errors map to curl's codes: unresolvable 6, refused 7, others 7,
        timeout 28; anything else passes through.
        """
        other = ValueError("x")
        cases = [
            (error.DNSLookupError("x"), CouldNotResolve, 6),
            (error.ConnectionRefusedError(), ConnectionRefused, 7),
            (error.NoRouteError(), CouldNotConnect, 7),
            (error.TimeoutError(), ConnectTimeout, 28),
        ]
        for exception, kind, code in cases:
            mapped = connect_error(exception, "h.example", 80, 5)
            self.assertIsInstance(mapped, kind)
            self.assertEqual(mapped.curl_exit_code, code)  # type: ignore[attr-defined]
        self.assertIs(connect_error(other, "h", 80, 5), other)
        self.assertEqual(
            str(connect_error(error.DNSLookupError(), "h.example", 80, 5)),
            "Could not resolve host: h.example",
        )
