"""
The response reader, sans-IO: bytes in, one L{Response} or L{FetchError} out, then the next
response on the same connection.

L{ResponseReader} holds every decision about what a server's reply means; the protocols
around it only move bytes and fire Deferreds.  It never touches a transport, a reactor or
a clock, so every rule here is tested by feeding bytes.

The states, and what moves the reader from one to the next (this table is the whole state
machine; nothing else changes C{_state})::

    HEAD         status line and header fields, interim 1xx responses included
                 -> DONE (204, 304, Content-Length: 0), LENGTH, CHUNK_SIZE or CLOSE
    LENGTH       a Content-Length body              -> DONE when the length has arrived
    CLOSE        a body delimited by the end of the stream  -> DONE at the end of stream
    CHUNK_SIZE   a chunk size line                  -> CHUNK_DATA, or TRAILERS for size 0
    CHUNK_DATA   chunk data                         -> CHUNK_END
    CHUNK_END    the CRLF after chunk data          -> CHUNK_SIZE
    TRAILERS     the trailer section                -> DONE
    DONE         a complete response; later bytes wait for L{ResponseReader.next_response}
    FAILED       a L{FetchError}; nothing more is read

Decisions (the README's "Some choices" says the same to users):

  - One bound on what is not body: status lines and headers (interim 1xx responses
    included), chunk size lines with their extensions, chunk CRLFs and trailers.  It is
    checked on every byte fed, against the bytes fed, so the outcome never depends on how
    the stream was split into reads.  Beyond it the reply is a L{MalformedResponse}.
  - A reply fails as soon as it can never become valid: a first line that is not the
    start of C{HTTP/1.x} (an HTTP/0.9-style reply, an HTTP/2 preface), a major version
    other than 1, a byte that cannot belong to a chunk size line, a chunk size over
    C{max_body_size} (or 2^64 or more: L{BodyTooLarge}).  Nothing waits for a deadline
    that the bytes already decide.
  - C{Transfer-Encoding} together with C{Content-Length} is refused: RFC 9112 section 6.3
    says such a message "ought to be handled as an error" (it is the shape of request
    smuggling and response splitting).  C{Transfer-Encoding} other than C{chunked} is
    refused too.  Repeated C{Content-Length} values must agree (and are shown once).
  - LF-only line endings and obs-fold continuation lines are accepted in the head and
    the trailers, as RFC 9112 lets a user agent do; a chunk size line ends with CRLF.
  - A chunk size may be followed by whitespace before its extensions (C{5 ;a=b}), as
    RFC 9112 section 7.1.1 says a recipient must parse; its extensions are ignored.
  - Interim 1xx responses are skipped (their bytes stay in C{raw} and C{head_length}); a
    101 is refused, since no protocol switch is ever asked for; interim responses and
    then the end of the stream is an empty reply (L{EmptyReply}, 52), as curl says.
  - 204 and 304 have no body whatever their C{Content-Length} says.
  - A body announced longer than C{max_body_size} fails with L{BodyTooLarge} at once.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from twistsock._limits import DEFAULT_MAX_BODY_SIZE, MIN_FRAMING_LIMIT
from twistsock.http._errors import (
    BodyTooLarge,
    BodyWriteError,
    EmptyReply,
    FetchError,
    MalformedResponse,
    PartialBody,
)
from twistsock.http._response import Headers, Response, _with_raw_pieces

__all__ = ["BodyWriter", "ResponseHead", "ResponseReader"]

BodyWriter = Callable[[bytes], object]
"""Where a streamed body goes: called with each piece of it, in order, as it arrives."""

_HEAD = 0
_LENGTH = 1
_CLOSE = 2
_CHUNK_SIZE = 3
_CHUNK_DATA = 4
_CHUNK_END = 5
_TRAILERS = 6
_DONE = 7
_FAILED = 8

_NO_BODY = frozenset({204, 304})
"""Final status codes whose response has no body (the request is always a GET)."""

_CHECKED_PREFIX = 64
"""
How many leading bytes of an incomplete line are checked for a reply that can never become
valid: enough for a status line's version and code and any chunk size below 2^64, and a
fixed amount, so that a line trickled in byte by byte is not checked over and over.
"""

_UNBOUNDED = 2**64
"""
The bound of a streamed body, which is not held: chunk sizes from here on are refused as
too large whatever the body limit.
"""

# RFC 9112 section 4 as h11 reads it: the reason phrase is optional (servers omit it).
_REASON = rb"(?:[ \t]|[^\x00\s])*"
_STATUS_LINE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([0-9]{3})(?: (" + _REASON + rb"))?")


def _prefixes(*tokens: bytes) -> re.Pattern[bytes]:
    """A pattern whose longest match at the start is the longest valid prefix."""
    pattern = b""
    for token in reversed(tokens):
        pattern = token + (b"(?:" + pattern + b")?" if pattern else b"")
    return re.compile(pattern)


_STATUS_PREFIX = _prefixes(
    *(re.escape(bytes([c])) for c in b"HTTP/"),
    b"[0-9]",
    rb"\.",
    b"[0-9]",
    b" ",
    b"[0-9]",
    b"[0-9]",
    b"[0-9]",
    b" " + _REASON,
)
_FIELD = re.compile(
    rb"([-!#$%&'*+.^_`|~0-9a-zA-Z]+):[ \t]*((?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*"
)
# What L{_fast_fields} leaves to L{_fields}: the whitespace _FIELD refuses in a value (NUL,
# VT, FF), and a CR that does not end a line (the last line's LF is cut off).
_UNUSUAL = re.compile(r"[\x00\x0b\x0c]|\r(?!\n|\Z)")
_TOKENS = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_DIGITS = re.compile(r"[0-9]{1,20}", re.ASCII)
_FOLD = re.compile(rb"[ \t]+")
_WHITESPACE = (b" ", b"\t")
_BLANK_LINE = re.compile(rb"\n\r?\n")
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;.*)?")
_CHUNK_PREFIX = re.compile(rb"(?:[0-9A-Fa-f]+(?:[ \t]*(?:;[^\n]*)?)?)?")
_HEX = re.compile(rb"[0-9A-Fa-f]*")


def _shown(data: bytes, limit: int = 60) -> str:
    """C{data} as a quoted string for a message: Latin-1, escapes for control bytes."""
    text = repr(bytes(data[:limit]).decode("latin-1"))
    return text + "..." if len(data) > limit else text


def _shown_text(text: str) -> str:
    """L{_shown} for text decoded as Latin-1."""
    return _shown(text.encode("latin-1"))


class _Refused(Exception):
    """
    A reply refused while parsing: the L{FetchError} class and its reason.  Internal to
    the reader, which turns it into the error with the URL.
    """

    def __init__(self, reason: str, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


def _check_status_line(line: bytes, complete: bool) -> None:
    """
    Refuse a first line that is not, or cannot become, an HTTP/1.x status line.  C{line}
    is the line without its end (CR LF or LF); when C{complete} is false it is what has
    arrived so far, of which at most L{_CHECKED_PREFIX} bytes are looked at.
    """
    if complete and line[5:6] == b"1" and _STATUS_LINE.fullmatch(line) is not None:
        return  # the common case: a valid HTTP/1.x status line
    prefix = line[:_CHECKED_PREFIX]
    if not complete and len(line) <= _CHECKED_PREFIX and prefix.endswith(b"\r"):
        prefix = prefix[:-1]  # perhaps the start of the line end
    valid = _STATUS_PREFIX.match(prefix)
    end = valid.end() if valid is not None else 0
    if end >= 6 and prefix[5:6] != b"1":
        major = prefix[5:6].decode()
        raise _Refused(f"HTTP major version {major} is not supported (only HTTP/1.x is)")
    if end < len(prefix):
        if end < 5:
            raise _Refused(f"not an HTTP/1.x response: it begins {_shown(prefix[: end + 1])}")
        raise _Refused(f"invalid status line: {_shown(prefix[: end + 1])}")
    if complete and not line:
        raise _Refused("empty status line")
    if complete and _STATUS_LINE.fullmatch(line) is None:
        raise _Refused(f"invalid status line: {_shown(line)}")


def _chunk_size(line: bytes, complete: bool, allowance: int) -> int:
    """
    The size a chunk size line announces, or -1 while it is incomplete; refuse a line that
    is not, or cannot become, valid, and a size over C{allowance} (the body bytes still
    allowed) or of 2^64 or more.  C{line} excludes its CRLF; when C{complete} is false, at
    most L{_CHECKED_PREFIX} bytes of it are looked at.
    """
    prefix = line if complete else line[:_CHECKED_PREFIX]
    digits = _HEX.match(prefix)
    size = 0
    if digits is not None and digits.end():
        significant = digits.group().lstrip(b"0")
        if len(significant) > 16:
            raise _Refused("chunk size of 2^64 or more", too_large=True)
        size = int(significant or b"0", 16)
        if size > allowance:
            raise _Refused("chunk size over the body limit", too_large=True)
    prefix = line[:_CHECKED_PREFIX]
    if not complete and len(line) <= _CHECKED_PREFIX and prefix.endswith(b"\r"):
        prefix = prefix[:-1]  # perhaps the start of the CRLF
    valid = _CHUNK_PREFIX.match(prefix)
    end = valid.end() if valid is not None else 0
    if end < len(prefix):
        raise _Refused(f"invalid chunk size line: {_shown(prefix[: end + 1])}")
    if not complete:
        return -1
    if _CHUNK_LINE.fullmatch(line) is None:
        raise _Refused(f"invalid chunk size line: {_shown(line)}")
    return size


def _fields(lines: list[bytes], what: str) -> _Framing:
    """
    Parse header or trailer field lines (line ends removed): unfold obs-fold continuation
    lines, split names from values, and apply the framing fields' rules (L{_framing}).
    """
    unfolded = lines
    if any(line[:1] in _WHITESPACE for line in lines):
        parts: list[list[bytes]] = []  # each field's line and continuations, joined once
        for line in lines:
            fold = _FOLD.match(line)
            if fold is not None:
                if not parts:
                    raise _Refused(f"folded {what} line with no field before it")
                parts[-1].append(line[fold.end() :])
            else:
                parts.append([line])
        unfolded = [b" ".join(field) for field in parts]
    fields: list[tuple[str, str]] = []
    for line in unfolded:
        match = _FIELD.fullmatch(line)
        if match is None:
            raise _Refused(f"invalid {what} line: {_shown(line)}")
        name, value = match.groups()
        fields.append((name.decode("latin-1"), value.decode("latin-1")))
    return _framing(fields)


class _Framing:
    """
    The framing fields of a section, checked by L{_framing}.

    @ivar fields: the fields as they are to be shown.
    @ivar length: the C{Content-Length}, or C{None}.
    @ivar chunked: whether C{Transfer-Encoding: chunked} is there.
    @ivar connection: the C{Connection} tokens, lower-cased.
    """

    __slots__ = ("fields", "length", "chunked", "connection")

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields
        self.length: int | None = None
        self.chunked = False
        self.connection: list[str] = []


def _framing(fields: list[tuple[str, str]]) -> _Framing:
    """
    Apply the framing fields' rules to parsed C{fields}: C{Content-Length} is digits,
    repeated values agree and are kept once; C{Transfer-Encoding} is one C{chunked}
    (lower-cased).  Return them with what they say.
    """
    framing = _Framing(fields)
    kept: list[tuple[str, str]] | None = None  # a copy, once a field is shown changed
    length: str | None = None
    for index, (name, value) in enumerate(fields):
        if len(name) not in (10, 14, 17):  # no framing field: the common case
            if kept is not None:
                kept.append((name, value))
            continue
        lower = name.lower()
        if lower == "content-length":
            shown = value
            if "," in value or value != value.strip(" \t"):
                values = {v.strip(" \t") for v in value.split(",")}
                if len(values) != 1:
                    raise _Refused(f"conflicting Content-Length values: {_shown_text(value)}")
                value = values.pop()
            if _DIGITS.fullmatch(value) is None:
                raise _Refused(f"invalid Content-Length: {_shown_text(value)}")
            if length is not None:
                if length != value:
                    raise _Refused("conflicting Content-Length values")
                if kept is None:
                    kept = fields[:index]
                continue  # shown once
            length = value
            framing.length = int(value)
            if value != shown and kept is None:
                kept = fields[:index]
        elif lower == "transfer-encoding":
            if framing.chunked:
                raise _Refused("more than one Transfer-Encoding field")
            if value.lower() != "chunked":
                shown = _shown(value.encode("latin-1").lower())  # ASCII letters lowered
                raise _Refused(f"unsupported Transfer-Encoding: {shown}")
            framing.chunked = True
            if value != "chunked" and kept is None:
                kept = fields[:index]
            value = "chunked"
        elif lower == "connection":
            framing.connection.extend(token.strip(" \t").lower() for token in value.split(","))
        if kept is not None:
            kept.append((name, value))
    if kept is not None:
        framing.fields = kept
    return framing


def _fast_fields(text: str) -> _Framing | None:
    """
    The header fields of C{text} (the field lines of a head, decoded as Latin-1, without
    the line end of the last), with the framing fields' rules applied, when every line is
    a plain field line: the common case, checked with a few passes in C.  C{None}
    otherwise (folded or invalid lines): L{_fields} then parses line by line and says
    what is wrong.
    """
    if _UNUSUAL.search(text) is not None:
        return None
    fields: list[tuple[str, str]] = []
    for line in text.removesuffix("\r").replace("\r\n", "\n").split("\n"):
        name, colon, value = line.partition(":")
        if not name or not colon:
            return None
        fields.append((name, value.strip(" \t")))
    if _TOKENS.fullmatch("".join(name for name, _ in fields)) is None:
        return None
    return _framing(fields)


def _lines(section: bytes) -> list[bytes]:
    """The lines of a head or trailer section without its final blank line, ends removed."""
    lines = section.split(b"\n")
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


@dataclass(frozen=True)
class ResponseHead:
    """
    The head of a final response, as soon as it has been accepted.

    @ivar http_version: C{"1.1"} or C{"1.0"} (or another 1.x).
    @ivar code: the status code.
    @ivar phrase: the reason phrase.
    @ivar headers: the header fields.
    @ivar raw: the status lines and headers exactly as received, interim responses included.
    @ivar content_length: the body's announced length, or C{None} when it is chunked,
        delimited by the end of the stream, or absent (204, 304).
    """

    http_version: str
    code: int
    phrase: str
    headers: Headers
    raw: bytes
    content_length: int | None


class _Body:
    """
    A body, piece by piece, then as one C{bytes}.

    With an announced length (at most C{max_body_size}, the memory the caller agreed to),
    the whole buffer is allocated at once, when its first bytes come, and bytes go straight
    into it: each received piece is copied once, or none at all when the transport reads
    into L{window} itself.  The buffer is a C{BytesIO}'s, so C{getvalue} hands it over as
    the body's C{bytes} without another copy or a second body-sized block.  A body whose
    bytes all come in one piece (a small one, in the read that brought the head) needs no
    buffer: that piece is the body.  Without a length (chunked, close-delimited), pieces are
    appended to a growing C{BytesIO}.
    """

    def __init__(self, expected: int | None) -> None:
        self._expected = expected or 0
        self._buffer: io.BytesIO | None = None
        self._view: memoryview | None = None
        self._whole: bytes | None = None
        self.length = 0

    def _allocate(self) -> memoryview:
        buffer = self._buffer = io.BytesIO()
        buffer.seek(self._expected - 1)
        buffer.write(b"\0")  # allocates the whole length at once
        view = self._view = buffer.getbuffer()
        return view

    def add(self, data: bytes | memoryview) -> None:
        """Append C{data}."""
        size = len(data)
        if self._expected:
            view = self._view
            if view is None:
                if size == self._expected:  # all of it at once
                    self._whole = data if isinstance(data, bytes) else data.tobytes()
                    self.length = size
                    return
                view = self._allocate()
            view[self.length : self.length + size] = data
        else:
            if self._buffer is None:
                self._buffer = io.BytesIO()
            self._buffer.write(data)
        self.length += size

    def window(self) -> memoryview | None:
        """The part of an announced-length buffer still to be filled, to be written to."""
        if not self._expected or self._whole is not None:
            return None
        view = self._view if self._view is not None else self._allocate()
        return view[self.length :]

    def filled(self, size: int) -> None:
        """C{size} more bytes were written into L{window}."""
        self.length += size

    def value(self) -> bytes:
        """Everything added, as C{bytes}."""
        if self._whole is not None:
            return self._whole
        if self._buffer is None:
            return b""
        if self._view is not None:
            self._view.release()  # while it is held, getvalue would copy
            self._view = None
        self._buffer.truncate(self.length)  # a no-op once the announced length arrived
        return self._buffer.getvalue()


class _Stream:
    """
    A body handed to a L{BodyWriter} piece by piece instead of being held; C{b""} in the
    end.  A piece is passed on as the C{bytes} received when it is one whole read, or
    copied out of it otherwise (the writer may keep it).
    """

    def __init__(self, write: BodyWriter) -> None:
        self._write = write
        self.length = 0

    def add(self, data: bytes | memoryview) -> None:
        """Pass C{data} on."""
        if isinstance(data, memoryview):
            data = data.tobytes()
        self.length += len(data)
        self._write(data)

    def window(self) -> memoryview | None:
        """A streamed body has no buffer to write into."""
        return None

    def filled(self, size: int) -> None:  # pragma: no cover - window() is always None
        raise AssertionError("a streamed body has no window")

    def value(self) -> bytes:
        """Nothing is held."""
        return b""


class ResponseReader:
    """
    Read responses from a stream of bytes, one at a time.

    Feed it with L{feed} as bytes arrive and L{feed_eof} when the stream ends.  Once the
    final response's head is accepted, L{head} is set; L{body_length} counts body bytes as
    they arrive; L{result} becomes the complete L{Response}, or a L{FetchError}.  Then
    L{next_response} starts on the next response, with whatever bytes followed the last.

    A final response's body is held in memory, up to C{max_body_size}, unless C{on_head}
    says where to stream it instead: then C{max_body_size} does not apply (nothing is
    held) and the L{Response}'s C{body} is empty.

    @ivar url: the URL requested, for the L{Response} and the errors.
    @ivar max_body_size: the largest body held, in bytes.
    @ivar framing_limit: the most bytes per response that are not body: C{max_body_size},
        or 1 MiB if that is more.  It bounds the memory a server can make the reader hold
        independently of the body, so that a body within C{max_body_size} is never
        reported as too large however finely it is chunked.
    @ivar head: the final response's head, once accepted.
    @ivar result: the L{Response} or L{FetchError}, once known.
    @ivar received: the bytes of this response received so far (status lines included).
    """

    def __init__(
        self,
        url: str,
        *,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        keep_extra: bool = False,
        on_head: Callable[[ResponseHead], BodyWriter | None] | None = None,
    ) -> None:
        """
        @param on_head: called with each final head as soon as it is accepted, before any
            of its body; it returns where to stream the body, or C{None} to hold it.  A
            L{FetchError} it raises, or that the writer raises, is the outcome; an
            C{OSError} from the writer is a L{BodyWriteError}.
        @param keep_extra: put the bytes that arrive after the response, in the same read,
            at the end of its C{raw} (for a connection that carries one response only, whose
            C{raw} is everything received).
        """
        self.url = url
        self.max_body_size = max_body_size
        self.framing_limit = max(max_body_size, MIN_FRAMING_LIMIT)
        self._keep_extra = keep_extra
        self._on_head = on_head
        self._buffer = bytearray()  # received, not yet consumed
        self._start(url, b"")

    def _start(self, url: str, pending: bytes) -> None:
        """Start on a response whose first bytes, C{pending}, are already here."""
        self.url = url
        self.head: ResponseHead | None = None
        self.result: Response | FetchError | None = None
        self.received = len(pending)
        self._state = _HEAD
        self._framing = 0  # framing bytes consumed
        self._scanned = 0  # bytes of an incomplete head or trailer section searched
        self._status_checked = False
        self._interim = False  # a complete interim response has arrived
        self._body: _Body | _Stream = _Body(None)
        self._body_limit = self.max_body_size
        self._remaining = 0  # of a Content-Length body or a chunk
        self._raw: list[bytes] | None = [pending] if pending else []
        self._head_raw = b""
        self._trailers = Headers()
        self._keep_alive = False

    @property
    def body_length(self) -> int:
        """The body bytes received so far."""
        return self._body.length

    @property
    def keep_alive(self) -> bool:
        """
        Whether the connection can carry another response after this complete one: an
        HTTP/1.1 response without C{Connection: close}, or an HTTP/1.0 one with
        C{Connection: keep-alive}, whose body is not delimited by the end of the stream.
        """
        return self._keep_alive and self._state == _DONE

    def next_response(self, url: str) -> None:
        """
        Start reading the next response on the same connection (the one for C{url}): the
        bytes that followed the last response are its first bytes.
        """
        if self._state != _DONE:
            raise RuntimeError("the current response is not complete")
        pending = bytes(self._buffer)
        del self._buffer[:]
        self._start(url, b"")
        if pending:
            self.feed(pending)

    @property
    def extra(self) -> bytes:
        """The bytes received after the complete response (the next one's start)."""
        return bytes(self._buffer) if self._state == _DONE else b""

    def body_window(self) -> memoryview | None:
        """
        Where the next bytes of the stream belong, if they can be written straight into
        the body: a writable view of the rest of a Content-Length body, when nothing else
        is pending.  Write into it (C{socket.recv_into}), then call L{body_filled}: the
        bytes are then copied once, by the kernel.  C{None} otherwise: use L{feed}.
        """
        if self._state != _LENGTH or self._buffer:
            return None
        return self._body.window()

    def body_filled(self, size: int) -> None:
        """C{size} bytes (at least one) were written at the start of L{body_window}."""
        self.received += size
        self._body.filled(size)
        self._remaining -= size
        if not self._remaining:
            self._state = _DONE
            self._finish()

    def feed(self, data: bytes) -> None:
        """Read C{data}, the next bytes of the stream."""
        if not data or self._state == _FAILED:
            return
        if self._state == _DONE:
            self._buffer += data
            return
        self.received += len(data)
        if self._raw is not None:
            self._raw.append(data)
        try:
            if self._buffer:
                self._buffer += data
                del self._buffer[: self._run(self._buffer)]
            else:
                used = self._run(data)
                if used < len(data):
                    self._buffer += memoryview(data)[used:]
        except _Refused as e:
            self._fail(e)
            return
        except FetchError as e:  # from on_head or a body writer
            self._error(e)
            return
        except OSError as e:  # from a body writer
            self._error(BodyWriteError("the body", e.strerror or str(e)))
            return
        except Exception as e:  # anything else a body writer or on_head raised
            self._error(BodyWriteError("the body", str(e) or type(e).__name__))
            return
        if self._state == _DONE:
            self._finish()

    def feed_eof(self) -> None:
        """The stream has ended cleanly: finish a body delimited by it, or fail."""
        state = self._state
        if state == _DONE or state == _FAILED:
            return
        if state == _CLOSE:
            self._state = _DONE
            self._finish()
        elif state != _HEAD:
            self._error(PartialBody(self.url, self._body.length))
        elif not self.received or (self._interim and not self._buffer):
            self._error(EmptyReply(self.url))
        else:
            self._error(MalformedResponse(self.url, "connection closed in the response head"))

    def _run(self, src: bytes | bytearray) -> int:
        """Consume what C{src} holds, from its start; return how much was consumed."""
        pos = 0
        end = len(src)
        while pos < end:
            state = self._state
            if state == _LENGTH:
                take = min(self._remaining, end - pos)
                self._add_body(src, pos, take)
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _DONE
            elif state == _CHUNK_DATA:
                take = min(self._remaining, end - pos)
                self._add_body(src, pos, take)
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _CHUNK_END
            elif state == _CLOSE:
                take = end - pos
                if self._body.length + take > self._body_limit:
                    raise _Refused("body over the limit", too_large=True)
                self._add_body(src, pos, take)
                pos = end
            elif state == _HEAD:
                found = self._read_head(src, pos)
                if found < 0:
                    break
                pos = found
            elif state == _CHUNK_SIZE:
                found = self._read_chunk_size(src, pos)
                if found < 0:
                    break
                pos = found
            elif state == _CHUNK_END:
                expected = b"\r\n"[self._remaining :]
                got = src[pos : pos + len(expected)]
                if got != expected[: len(got)]:
                    raise _Refused("chunk data not followed by CRLF")
                self._framing += len(got)
                pos += len(got)
                self._remaining += len(got)
                if self._remaining == 2:
                    self._remaining = 0
                    self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                found = self._read_trailers(src, pos)
                if found < 0:
                    break
                pos = found
            else:  # _DONE: the rest is the next response's
                break
        return pos

    def _add_body(self, src: bytes | bytearray, pos: int, size: int) -> None:
        """Add C{size} bytes of C{src} from C{pos} to the body, copied once."""
        if pos == 0 and size == len(src) and isinstance(src, bytes):
            self._body.add(src)
        else:
            with memoryview(src) as view:
                self._body.add(view[pos : pos + size])

    def _allowed(self) -> int:
        """How many more framing bytes this response may have."""
        return self.framing_limit - self._framing

    def _over_bound(self) -> _Refused:
        return _Refused(f"over {self.framing_limit} bytes of headers and chunk framing")

    def _section_end(self, src: bytes | bytearray, pos: int) -> int:
        """
        Where the head or trailer section starting at C{pos} ends (after its blank line),
        or -1 while it is incomplete; refuse it when it is over the framing bound.
        """
        allowed = self._allowed()
        end = len(src)
        start = pos + max(0, self._scanned - 2)
        found = _BLANK_LINE.search(src, start, min(end, pos + allowed + 1))
        if found is None:
            if end - pos > allowed:
                raise self._over_bound()
            self._scanned = end - pos
            return -1
        self._scanned = 0
        return found.end()

    def _read_head(self, src: bytes | bytearray, pos: int) -> int:
        """Read a head (interim or final) starting at C{pos}; return where it ends, or -1."""
        if not self._status_checked:
            allowed = self._allowed()
            stop = min(len(src), pos + allowed + 1)
            newline = src.find(b"\n", pos, stop)
            if newline < 0:
                _check_status_line(bytes(src[pos:stop]), complete=False)
                if stop - pos > allowed:
                    raise self._over_bound()
                return -1
            _check_status_line(bytes(src[pos:newline]).removesuffix(b"\r"), complete=True)
            self._status_checked = True
        section_end = self._section_end(src, pos)
        if section_end < 0:
            return -1
        self._framing += section_end - pos
        self._status_checked = False
        section = bytes(src[pos:section_end])
        self._accept_head(section[: section.rindex(b"\n", 0, len(section) - 1)])
        return section_end

    def _accept_head(self, section: bytes) -> None:
        """Check a complete head (without its blank line) and act on it."""
        newline = section.find(b"\n")
        status_line = section if newline < 0 else section[:newline]
        status = _STATUS_LINE.fullmatch(status_line.removesuffix(b"\r"))
        assert status is not None  # checked by _check_status_line
        major, minor, code_digits, reason = status.groups()
        code = int(code_digits)
        framing = None
        if newline >= 0:
            framing = _fast_fields(section[newline + 1 :].decode("latin-1"))
        if framing is None:
            framing = _fields(_lines(section)[1:], "header")
        if code < 100:
            raise _Refused(f"invalid status code {code_digits.decode()}")
        if code == 101:
            raise _Refused("101 Switching Protocols, but no protocol switch was asked for")
        if code < 200:
            self._interim = True
            return
        length = framing.length
        chunked = framing.chunked
        connection = framing.connection
        if chunked and length is not None:
            raise _Refused("both Transfer-Encoding and Content-Length")
        version = b"%s.%s" % (major, minor)
        if version == b"1.0":
            self._keep_alive = "keep-alive" in connection
        else:
            self._keep_alive = "close" not in connection
        if code in _NO_BODY:
            length = None
            state = _DONE
        elif chunked:
            state = _CHUNK_SIZE
        elif length is not None:
            state = _LENGTH if length else _DONE
            self._remaining = length
        else:
            state = _CLOSE
            self._keep_alive = False
        raw = self._raw
        assert raw is not None  # kept until the final head
        first = raw[0]  # usually holds the whole head: no need to join everything
        if len(first) < self._framing:
            first = b"".join(raw)
        self._head_raw = first[: self._framing]
        head = ResponseHead(
            http_version=version.decode("ascii"),
            code=code,
            phrase=(reason or b"").decode("latin-1"),
            headers=Headers(tuple(framing.fields)),
            raw=self._head_raw,
            content_length=length,
        )
        write = self._on_head(head) if self._on_head is not None else None
        if write is not None:
            self._body = _Stream(write)
            self._body_limit = _UNBOUNDED
            self._raw = None  # C{raw} is the head alone: nothing of the body is held
        else:
            if state == _LENGTH and self._remaining > self.max_body_size:
                raise _Refused("announced body over the limit", too_large=True)
            self._body = _Body(length if state == _LENGTH else None)
            if not chunked:
                # The body is copied into its own buffer, and C{raw} is later the head,
                # then that very body: the received pieces are not kept, so that the body
                # is held once.  A chunked body keeps every piece (C{raw} has the chunk
                # framing).
                self._raw = None
        self._state = state
        self.head = head

    def _read_chunk_size(self, src: bytes | bytearray, pos: int) -> int:
        """Read a chunk size line starting at C{pos}; return where it ends, or -1."""
        allowed = self._allowed()
        allowance = self._body_limit - self._body.length
        stop = min(len(src), pos + allowed + 1)
        crlf = src.find(b"\r\n", pos, stop)
        if crlf < 0:
            _chunk_size(bytes(src[pos:stop]), complete=False, allowance=allowance)
            if stop - pos > allowed:
                raise self._over_bound()
            return -1
        size = _chunk_size(bytes(src[pos:crlf]), complete=True, allowance=allowance)
        self._framing += crlf + 2 - pos
        if size:
            self._state = _CHUNK_DATA
            self._remaining = size
        else:
            self._state = _TRAILERS
        return crlf + 2

    def _read_trailers(self, src: bytes | bytearray, pos: int) -> int:
        """Read the trailer section starting at C{pos}; return where it ends, or -1."""
        first = src[pos : pos + 2]
        if first[:1] == b"\n" or first == b"\r\n":  # no trailer fields
            section_end = pos + len(first) if first == b"\r\n" else pos + 1
            lines: list[bytes] = []
        elif first == b"\r":
            return -1
        else:
            section_end = self._section_end(src, pos)
            if section_end < 0:
                return -1
            section = bytes(src[pos:section_end])
            lines = _lines(section[: section.rindex(b"\n", 0, len(section) - 1)])
        if section_end - pos > self._allowed():
            raise self._over_bound()
        self._framing += section_end - pos
        self._trailers = Headers(tuple(_fields(lines, "trailer").fields))
        self._state = _DONE
        return section_end

    def _finish(self) -> None:
        """Build the L{Response} of the complete message."""
        head = self.head
        assert head is not None
        body = self._body.value()
        extra = len(self._buffer)
        if self._raw is None:
            raw = [self._head_raw, body]
            if extra and self._keep_extra:
                raw.append(bytes(self._buffer))
        else:
            raw = self._raw
            if extra and not self._keep_extra:  # the next response's first bytes
                last = raw.pop()
                raw.append(last[: len(last) - extra])
        self._raw = None
        self._let_go_of_body()  # see HTTPGetProtocol
        response = Response(
            url=self.url,
            http_version=head.http_version,
            code=head.code,
            phrase=head.phrase,
            headers=head.headers,
            body=body,
            raw=b"",  # the received pieces instead, joined when first read
            head_length=len(self._head_raw),
            trailers=self._trailers,
        )
        self.result = _with_raw_pieces(response, raw)

    def _let_go_of_body(self) -> None:
        """
        Drop the body's buffer; L{body_length} still counts what was received (the
        observer is told of the last piece after the response is complete or failed).
        """
        length, self._body = self._body.length, _Body(None)
        self._body.length = length

    def _fail(self, refused: _Refused) -> None:
        if refused.too_large:
            self._error(BodyTooLarge(self.url, self.max_body_size))
        else:
            self._error(MalformedResponse(self.url, refused.reason))

    def _error(self, error: FetchError) -> None:
        """Stop reading: C{error} is the outcome."""
        self._state = _FAILED
        self._raw = None
        self._let_go_of_body()
        del self._buffer[:]
        self.result = error
