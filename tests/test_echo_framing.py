"""
Tests for L{twistsock.echo._framing}: line framing as pure bytes in, replies out.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twistsock.echo._framing import LineFramer, LineTooLong


def feed_all(framer: LineFramer, pieces: list[bytes]) -> tuple[bytes, int | None]:
    """
    Feed C{pieces} in order; return the replies and the limit of a L{LineTooLong}, if any.
    """
    out = []
    for piece in pieces:
        try:
            out.append(framer.feed(piece))
        except LineTooLong as e:
            out.append(e.replies)
            return b"".join(out), e.limit
    return b"".join(out), None


def reference_replies(stream: bytes, prefix: bytes, limit: int) -> tuple[bytes, int | None]:
    """
    A deliberately naive model of the framing: one line at a time, by index.
    """
    out = []
    start = 0
    while True:
        end = stream.find(b"\n", start)
        if end < 0:
            if len(stream) - start >= limit:
                return b"".join(out), limit
            return b"".join(out), None
        line = stream[start : end + 1]
        if len(line) > limit:
            return b"".join(out), limit
        out.append(prefix + line)
        start = end + 1


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """
    Split C{data} at the given offsets (in any order, duplicates allowed).
    """
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


class LineFramerTests(SynchronousTestCase):
    """
    L{LineFramer} frames lines exactly and answers each with prefix + line + terminator.
    """

    def test_lf_line(self) -> None:
        """
        A line ended by LF is answered with prefix, line and LF.
        """
        self.assertEqual(LineFramer(b"OK...", 100).feed(b"asd\n"), b"OK...asd\n")

    def test_crlf_line(self) -> None:
        """
        A line ended by CRLF is answered with CRLF: the client's own terminator.
        """
        self.assertEqual(LineFramer(b"OK...", 100).feed(b"hi\r\n"), b"OK...hi\r\n")

    def test_mixed_terminators_in_one_chunk(self) -> None:
        """
        Many lines in one chunk each keep their own terminator, in order.
        """
        framer = LineFramer(b"OK...", 100)
        self.assertEqual(
            framer.feed(b"hi\r\nasd\n\nx\r\n"), b"OK...hi\r\nOK...asd\nOK...\nOK...x\r\n"
        )
        self.assertEqual(framer.lines, 4)

    def test_empty_line(self) -> None:
        """
        An empty line gets the prefix alone, followed by its terminator.
        """
        framer = LineFramer(b"OK...", 100)
        self.assertEqual(framer.feed(b"\n"), b"OK...\n")
        self.assertEqual(framer.feed(b"\r\n"), b"OK...\r\n")

    def test_split_line(self) -> None:
        """
        A line split across chunks is answered once, when its terminator arrives.
        """
        framer = LineFramer(b"OK...", 100)
        self.assertEqual(framer.feed(b"he"), b"")
        self.assertEqual(framer.buffered, 2)
        self.assertEqual(framer.feed(b"llo\r"), b"")
        self.assertEqual(framer.feed(b"\nwor"), b"OK...hello\r\n")
        self.assertEqual(framer.feed(b"ld\n"), b"OK...world\n")
        self.assertEqual(framer.buffered, 0)

    def test_binary_passthrough(self) -> None:
        """
        Every byte value other than LF passes through unchanged, UTF-8 included.
        """
        line = bytes(b for b in range(256) if b != 10) + "héllo ✓".encode()
        self.assertEqual(LineFramer(b"OK...", 1000).feed(line + b"\n"), b"OK..." + line + b"\n")

    def test_empty_prefix(self) -> None:
        """
        With an empty prefix the framer is a line-exact echo.
        """
        self.assertEqual(LineFramer(b"", 100).feed(b"a\nb\n"), b"a\nb\n")

    def test_partial_line_too_long(self) -> None:
        """
        An unterminated line that reaches the limit is an error, and nothing is buffered.
        """
        framer = LineFramer(b"OK...", 10)
        framer.feed(b"12345")
        error = self.assertRaises(LineTooLong, framer.feed, b"67890")
        self.assertEqual((error.limit, error.replies), (10, b""))
        self.assertEqual(framer.buffered, 0)
        self.assertEqual(str(error), "line too long (max 10 bytes)")

    def test_line_at_limit(self) -> None:
        """
        A line whose length, terminator included, equals the limit is accepted.
        """
        framer = LineFramer(b"OK...", 10)
        self.assertEqual(framer.feed(b"12345678\r\n"), b"OK...12345678\r\n")

    def test_long_line_after_good_ones_in_one_chunk(self) -> None:
        """
        The lines before an over-long line in the same chunk are still answered.
        """
        framer = LineFramer(b"OK...", 5)
        error = self.assertRaises(LineTooLong, framer.feed, b"ab\ncd\nefghij\nk\n")
        self.assertEqual(error.replies, b"OK...ab\nOK...cd\n")
        self.assertEqual(framer.lines, 2)

    def test_long_tail_after_good_lines(self) -> None:
        """
        Complete lines are answered when the unterminated tail of the chunk is too long.
        """
        framer = LineFramer(b"OK...", 5)
        error = self.assertRaises(LineTooLong, framer.feed, b"ab\nxxxxxxx")
        self.assertEqual(error.replies, b"OK...ab\n")

    def test_many_short_lines_in_long_chunk(self) -> None:
        """
        A chunk longer than the limit made of short lines is fine.
        """
        framer = LineFramer(b"OK...", 8)
        self.assertEqual(framer.feed(b"abc\n" * 10), b"OK...abc\n" * 10)

    def test_buffer_never_exceeds_limit(self) -> None:
        """
        The framer never holds more than the limit minus one byte.
        """
        framer = LineFramer(b"", 10)
        for _ in range(9):
            framer.feed(b"x")
        self.assertEqual(framer.buffered, 9)
        self.assertRaises(LineTooLong, framer.feed, b"x")

    def test_finish_answers_tail(self) -> None:
        """
        At end of stream an unterminated last line is answered as received, with no
        terminator invented.
        """
        framer = LineFramer(b"OK...", 100)
        framer.feed(b"a\nlast")
        self.assertEqual(framer.finish(), b"OK...last")
        self.assertEqual(framer.finish(), b"")

    def test_feed_one(self) -> None:
        """
        L{LineFramer.feed_one} answers the first line only, however the stream is split.
        """
        framer = LineFramer(b"OK...", 100)
        self.assertIsNone(framer.feed_one(b"fir"))
        self.assertEqual(framer.feed_one(b"st\r\nsecond\n"), b"OK...first\r\n")

    def test_feed_one_too_long(self) -> None:
        """
        L{LineFramer.feed_one} enforces the limit on complete and partial lines.
        """
        self.assertRaises(LineTooLong, LineFramer(b"", 3).feed_one, b"abcd\n")
        self.assertRaises(LineTooLong, LineFramer(b"", 3).feed_one, b"abc")

    def test_invalid_limit(self) -> None:
        """
        A limit below one byte is refused.
        """
        self.assertRaises(ValueError, LineFramer, b"", 0)

    @settings(max_examples=300, deadline=None)
    @given(
        stream=st.binary(max_size=300).map(lambda b: b.replace(b"\x00", b"\n")),
        cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=20),
        limit=st.integers(min_value=1, max_value=40),
    )
    def test_split_invariance(self, stream: bytes, cuts: list[int], limit: int) -> None:
        """
        Any byte stream, split at any boundaries, yields the same replies (and the same
        error) as the whole stream, and both match a naive line-by-line model.
        """
        whole = feed_all(LineFramer(b"OK...", limit), [stream])
        split = feed_all(LineFramer(b"OK...", limit), split_at(stream, cuts))
        self.assertEqual(split, whole)
        self.assertEqual(whole, reference_replies(stream, b"OK...", limit))
