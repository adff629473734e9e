"""
Line framing for the OK-echo server, as pure bytes in and replies out.

Nothing here touches a transport, a reactor or a clock, so the framing can be tested
exhaustively (and fuzzed with hypothesis) apart from the protocol that feeds it.

A line is everything up to and including a C{b"\\n"}; its terminator is C{b"\\r\\n"} or
C{b"\\n"}, whichever it arrived with.  The reply to a line is the prefix followed by the line
exactly as received, terminator included, so replies keep the client's own line ending and
every byte (binary, UTF-8, NUL) passes through unchanged.

The framer works on whole chunks with C{bytes} operations implemented in C (C{rfind},
C{count}, C{replace}) instead of a Python loop per line: a chunk that carries a thousand
pipelined lines costs one call and produces one reply buffer, to be sent with one write.
"""

from __future__ import annotations

__all__ = ["LineFramer", "LineTooLong"]


class LineTooLong(Exception):
    """
    A line grew past the framer's limit without a terminator.

    @ivar replies: the replies owed to the complete lines that arrived before the over-long
        one, which should still be sent before the error.
    @ivar limit: the maximum line length, in bytes, terminator included.
    """

    def __init__(self, replies: bytes, limit: int) -> None:
        super().__init__(f"line too long (max {limit} bytes)")
        self.replies = replies
        self.limit = limit


class LineFramer:
    """
    Splits a byte stream into lines and builds the OK-echo reply to each.

    Only the unterminated tail of the stream is buffered, and never more than
    C{max_line_length - 1} bytes of it: a line that cannot fit is reported as soon as it
    is known to be too long.

    @ivar lines: how many complete lines have been framed so far.
    """

    # One framer per connection: slots keep 10,000 idle connections small.
    __slots__ = ("_prefix", "_joiner", "_max", "_buffer", "lines")

    def __init__(self, prefix: bytes, max_line_length: int) -> None:
        """
        @param prefix: the bytes put before every reply (C{b"OK..."}).
        @param max_line_length: the longest line accepted, in bytes, terminator included.
        """
        if max_line_length < 1:
            raise ValueError("max_line_length must be at least 1")
        self._prefix = prefix
        self._joiner = b"\n" + prefix
        self._max = max_line_length
        self._buffer = b""
        self.lines = 0

    @property
    def buffered(self) -> int:
        """
        The number of bytes held for a line that has not ended yet.
        """
        return len(self._buffer)

    def feed(self, data: bytes) -> bytes:
        """
        Take the next bytes of the stream and return the replies to every line they complete.

        @return: the concatenated replies, in order; C{b""} when no line was completed.
        @raise LineTooLong: when a line exceeds the limit.  The exception carries the
            replies owed to the lines before it; the framer must not be fed again.
        """
        buf = self._buffer + data if self._buffer else data
        end = buf.rfind(b"\n")
        if end < 0:
            if len(buf) >= self._max:
                self._buffer = b""
                raise LineTooLong(b"", self._max)
            self._buffer = buf
            return b""
        end += 1
        complete = buf[:end]
        rest = buf[end:]
        if end > self._max or len(rest) >= self._max:
            # Only a chunk longer than the limit can hold an over-long line.
            return self._feed_long(complete, rest)
        self._buffer = rest
        count = complete.count(b"\n")
        self.lines += count
        if count == 1:
            return self._prefix + complete
        return self._prefix + complete[:-1].replace(b"\n", self._joiner) + b"\n"

    def _feed_long(self, complete: bytes, rest: bytes) -> bytes:
        """
        The slow path of L{feed}: check each complete line against the limit.
        """
        pieces = complete.split(b"\n")
        del pieces[-1]  # complete ends with b"\n", so split leaves an empty tail.
        for index, piece in enumerate(pieces):
            if len(piece) + 1 > self._max:
                good = pieces[:index]
                self.lines += len(good)
                self._buffer = b""
                raise LineTooLong(self._replies(good), self._max)
        self.lines += len(pieces)
        replies = self._replies(pieces)
        if len(rest) >= self._max:
            self._buffer = b""
            raise LineTooLong(replies, self._max)
        self._buffer = rest
        return replies

    def _replies(self, pieces: list[bytes]) -> bytes:
        """
        Build the replies to lines given without their C{b"\\n"}.
        """
        if not pieces:
            return b""
        return self._prefix + self._joiner.join(pieces) + b"\n"

    def feed_one(self, data: bytes) -> bytes | None:
        """
        Like L{feed}, but answer only the first line and forget the rest.

        This is the framing of the one-reply-then-close mode.

        @return: the reply to the first line, or C{None} while no line has ended yet.
        @raise LineTooLong: when the first line exceeds the limit.
        """
        buf = self._buffer + data if self._buffer else data
        end = buf.find(b"\n")
        if end < 0 or end + 1 > self._max:
            if end >= 0 or len(buf) >= self._max:
                self._buffer = b""
                raise LineTooLong(b"", self._max)
            self._buffer = buf
            return None
        self._buffer = b""
        self.lines += 1
        return self._prefix + buf[: end + 1]

    def finish(self) -> bytes:
        """
        The stream has ended: return the reply owed to an unterminated last line.

        The reply is the prefix and the partial line exactly as received, with no
        terminator added, so that nothing the client sent goes unanswered or is altered.

        @return: the reply, or C{b""} when the stream ended on a line boundary.
        """
        rest, self._buffer = self._buffer, b""
        if not rest:
            return b""
        self.lines += 1
        return self._prefix + rest
