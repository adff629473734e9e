"""
Tests for L{twistsock.http._reader.ResponseReader}, the sans-IO response reader: bytes in,
a L{twistsock.Response} or a L{twistsock.FetchError} out, response after response.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests._corpus import CLEAN, CORPUS, Sample
from twistsock import BodyTooLarge, EmptyReply, FetchError, MalformedResponse, Response
from twistsock.http._reader import ResponseReader

URL = "http://example.com/"


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """Cut C{data} at the given offsets."""
    points = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


def read(sample: Sample, pieces: list[bytes]) -> Any:
    """
    Feed C{pieces} to a new reader, then the end of the stream if C{sample} ends cleanly;
    return the outcome as a comparable value (a reset is not the reader's business: it is
    left without an end, as a connection held open).
    """
    reader = ResponseReader(URL, max_body_size=sample.max_body_size)
    for piece in pieces:
        reader.feed(piece)
    if sample.end is CLEAN:
        reader.feed_eof()
    result = reader.result
    if result is None:
        return ("pending", reader.body_length, reader.head)
    if isinstance(result, FetchError):
        return (type(result), str(result))
    return (
        result.code,
        result.http_version,
        result.phrase,
        result.headers,
        result.body,
        result.raw,
        result.head_length,
        result.trailers,
        reader.extra,
        reader.keep_alive,
    )


class SplitTests(SynchronousTestCase):
    """
    TCP is a byte stream: however a response is cut into reads, the reader gives the same
    outcome, error messages included.
    """

    def test_every_byte_boundary(self) -> None:
        """
        Every response of the corpus under 500 bytes, cut in two at every byte boundary
        and delivered one byte at a time, reads as in one piece.
        """
        for name, sample in CORPUS.items():
            if len(sample.reply) >= 500:
                continue
            whole = read(sample, [sample.reply])
            for cut in range(len(sample.reply) + 1):
                self.assertEqual(read(sample, split(sample.reply, [cut])), whole, name)
            bytewise = [sample.reply[i : i + 1] for i in range(len(sample.reply))]
            self.assertEqual(read(sample, bytewise), whole, name)

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(sorted(CORPUS)), st.lists(st.floats(0, 1), max_size=20))
    def test_any_split(self, name: str, cuts: list[float]) -> None:
        """
        Any response of the corpus, big ones included, cut anywhere, reads as in one piece.
        """
        sample = CORPUS[name]
        offsets = [int(cut * len(sample.reply)) for cut in cuts]
        self.assertEqual(read(sample, split(sample.reply, offsets)), read(sample, [sample.reply]))

    def test_big_lines_trickled(self) -> None:
        """
        A 100 KB chunk extension and a 100 KB header, fed in 7-byte pieces, are read in
        time linear in their size (each feed looks at the new bytes, not the whole line).
        """
        sample = CORPUS["100 KB chunk extension"]
        reply = sample.reply
        self.assertEqual(
            read(sample, [reply[i : i + 7] for i in range(0, len(reply), 7)]),
            read(sample, [reply]),
        )
        sample = CORPUS["20 KB header"]
        reply = sample.reply * 5
        reader = ResponseReader(URL)
        for i in range(0, len(reply), 7):
            reader.feed(reply[i : i + 7])
        self.assertIsInstance(reader.result, Response)


class ConnectionTests(SynchronousTestCase):
    """
    One reader reads the responses of one connection, one after another.
    """

    def test_pipelined(self) -> None:
        """
        Bytes after a complete response are the next response's: C{raw} holds one
        response each, and L{ResponseReader.next_response} reads the next from them.
        """
        first = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        second = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n"
        third = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        for pieces in ([first + second + third], split(first + second + third, [40, 70])):
            reader = ResponseReader(URL)
            for piece in pieces:
                reader.feed(piece)
            responses = []
            for url in ["/2", "/3", None]:
                result = reader.result
                assert isinstance(result, Response)
                responses.append(result)
                self.assertTrue(reader.keep_alive)
                if url is not None:
                    reader.next_response(URL + url)
            self.assertEqual([r.raw for r in responses], [first, second, third])
            self.assertEqual([r.body for r in responses], [b"ok", b"no", b""])
            self.assertEqual([r.url for r in responses], [URL, URL + "/2", URL + "/3"])
            self.assertEqual(reader.extra, b"")

    def test_next_response_waits(self) -> None:
        """
        After L{ResponseReader.next_response} with nothing received yet, the reader waits;
        it refuses to start before the current response is complete.
        """
        reader = ResponseReader(URL)
        with self.assertRaises(RuntimeError):
            reader.next_response(URL)
        reader.feed(b"HTTP/1.1 204 No Content\r\n\r\n")
        reader.next_response(URL)
        self.assertIsNone(reader.result)
        reader.feed_eof()
        self.assertIsInstance(reader.result, EmptyReply)

    def test_keep_alive(self) -> None:
        """
        A connection can carry another response after an HTTP/1.1 response without
        C{Connection: close}, or an HTTP/1.0 one with C{Connection: keep-alive}, unless
        the body is delimited by the end of the stream.
        """
        cases = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
            (b"HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 0\r\n\r\n", False),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
            (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", True),
            (b"HTTP/1.1 304 Not Modified\r\n\r\n", True),
        ]
        for reply, keep_alive in cases:
            reader = ResponseReader(URL)
            reader.feed(reply)
            self.assertIsInstance(reader.result, Response)
            self.assertEqual(reader.keep_alive, keep_alive, reply)
        reader = ResponseReader(URL)
        reader.feed(b"HTTP/1.1 200 OK\r\n\r\nbody")
        self.assertFalse(reader.keep_alive)
        reader.feed_eof()
        self.assertEqual((reader.result.body, reader.keep_alive), (b"body", False))  # type: ignore[union-attr]

    def test_head_before_body(self) -> None:
        """
        The final head is available as soon as it is accepted, with the body's announced
        length; the body's progress is counted as it arrives.
        """
        reader = ResponseReader(URL)
        reader.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe")
        head = reader.head
        assert head is not None
        self.assertEqual((head.code, head.content_length, reader.body_length), (200, 5, 2))
        self.assertTrue(head.raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"))
        self.assertIsNone(reader.result)

    def test_body_length_at_the_end(self) -> None:
        """
        L{ResponseReader.body_length} still counts the body once the response is complete
        or failed, however it was framed, held or streamed: the observer is told of the
        last piece after that.
        """
        replies = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ]
        for reply in replies:
            for on_head in (None, lambda head: [].append):
                reader = ResponseReader(URL, on_head=on_head)
                reader.feed(reply)
                self.assertIsInstance(reader.result, Response)
                self.assertEqual(reader.body_length, 5, reply)
        reader = ResponseReader(URL)
        reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhel")
        reader.feed_eof()
        self.assertIsInstance(reader.result, FetchError)
        self.assertEqual(reader.body_length, 3)

    def test_failure_is_final(self) -> None:
        """
        After a failure the reader reads nothing more, not even the end of the stream.
        """
        reader = ResponseReader(URL, max_body_size=10)
        reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
        self.assertIsInstance(reader.result, BodyTooLarge)
        reader.feed(b"HTTP/1.1 200 OK\r\n\r\n")
        reader.feed_eof()
        self.assertIsInstance(reader.result, BodyTooLarge)

    def test_framing_bound_per_response(self) -> None:
        """
        The framing bound counts each response's own bytes: many responses with big
        heads on one connection are each within it.
        """
        reply = b"HTTP/1.1 200 OK\r\nX: " + b"a" * 700_000 + b"\r\nContent-Length: 0\r\n\r\n"
        reader = ResponseReader(URL, max_body_size=10)
        reader.feed(reply * 3)
        for _ in range(2):
            self.assertIsInstance(reader.result, Response)
            reader.next_response(URL)
        self.assertIsInstance(reader.result, Response)
        reader = ResponseReader(URL, max_body_size=10)
        reader.feed(b"HTTP/1.1 200 OK\r\n" + (b"X: " + b"a" * 700_000 + b"\r\n") * 2)
        self.assertIsInstance(reader.result, MalformedResponse)


class BodyWindowTests(SynchronousTestCase):
    """
    A Content-Length body can be written straight into its buffer (one copy, the kernel's).
    """

    def test_window(self) -> None:
        """
        Once the head is read and nothing else is pending, L{ResponseReader.body_window}
        is the rest of the body's buffer; bytes written there and reported with
        L{ResponseReader.body_filled} are the body, and mix with fed bytes.
        """
        reader = ResponseReader(URL)
        self.assertIsNone(reader.body_window())
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
        reader.feed(head + b"012")
        window = reader.body_window()
        assert window is not None
        self.assertEqual(len(window), 7)
        window[:4] = b"3456"
        window.release()
        reader.body_filled(4)
        self.assertEqual(reader.body_length, 7)
        reader.feed(b"7")
        window = reader.body_window()
        assert window is not None
        window[:2] = b"89"
        window.release()
        reader.body_filled(2)
        self.assertIsNone(reader.body_window())
        response = reader.result
        assert isinstance(response, Response)
        self.assertEqual((response.body, response.raw), (b"0123456789", head + b"0123456789"))

    def test_no_window(self) -> None:
        """
        There is no window for a head, a chunked or close-delimited body, nor while bytes
        are pending.
        """
        for reply in [
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            b"HTTP/1.1 200 OK\r\n\r\nabc",
        ]:
            reader = ResponseReader(URL)
            reader.feed(reply)
            self.assertIsNone(reader.body_window(), reply)

    def test_whole_body_in_one_piece(self) -> None:
        """
        A Content-Length body that comes in one piece needs no buffer of its own: a read
        that is exactly the body is the body, not a copy; one in the head's read is the
        body after one copy; either way the next window is C{None}.
        """
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
        reader = ResponseReader(URL)
        reader.feed(head)
        piece = b"hello"
        reader.feed(piece)
        response = reader.result
        assert isinstance(response, Response)
        self.assertIs(response.body, piece)
        self.assertEqual(response.raw, head + piece)
        reader = ResponseReader(URL, keep_extra=True)
        reader.feed(head + b"hello" + b"HTTP")
        self.assertIsNone(reader.body_window())
        response = reader.result
        assert isinstance(response, Response)
        self.assertEqual((response.body, response.raw), (b"hello", head + b"helloHTTP"))
