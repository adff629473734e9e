"""
The result of a fetch: an immutable L{Response} and its immutable L{Headers}.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

__all__ = ["Headers", "Response", "Timings"]


@dataclass(frozen=True)
class Headers:
    """
    Response header fields, in the order received, with case-insensitive lookup.

    Names keep the case the server sent; names and values are C{str} decoded as ISO-8859-1,
    which maps every byte to one character, so C{value.encode("latin-1")} gives back the
    exact bytes.  Iterating gives C{(name, value)} pairs; repeated fields stay separate.

    Lookups use snake_case like the rest of the API: L{get} for the first value of a field,
    L{get_all} for every value.

    @ivar pairs: the C{(name, value)} pairs.
    """

    pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        """Build from C{(name, value)} byte pairs, as h11 gives them."""
        return cls(tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw))

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of the field C{name} (any case), or C{default}."""
        wanted = name.lower()
        for key, value in self.pairs:
            if key.lower() == wanted:
                return value
        return default

    def get_all(self, name: str) -> tuple[str, ...]:
        """Return every value of the field C{name} (any case), in order; C{()} if absent."""
        wanted = name.lower()
        return tuple(value for key, value in self.pairs if key.lower() == wanted)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)


@dataclass(frozen=True)
class Timings:
    """
    When each step of a transfer was over, in seconds from its start, as curl's
    C{--write-out} C{time_*} variables count them (read on the reactor's clock,
    C{reactor.seconds()}).

    With redirects followed, each step's time is the sum over the requests of the
    chain of that step's time from the start of its own request (as curl adds them up),
    so that every one stays within L{total}; L{redirect} is when the final request
    began.  A step that did not happen counts 0: L{appconnect} for plain C{http};
    L{namelookup} for an IP address; L{namelookup}, L{connect} and L{appconnect} for a
    request sent on a reused persistent connection; and every step after the one that
    failed.

    @ivar namelookup: when the host name was resolved.
    @ivar connect: when the TCP connection was established.
    @ivar appconnect: when the TLS handshake was complete (C{https}).
    @ivar pretransfer: when the request was about to be sent (after the handshake).
    @ivar starttransfer: when the first byte of the response arrived.
    @ivar total: when the transfer was over, complete or failed.
    @ivar redirect: when the final request of a redirect chain began (0 without
        redirects).
    """

    namelookup: float = 0.0
    connect: float = 0.0
    appconnect: float = 0.0
    pretransfer: float = 0.0
    starttransfer: float = 0.0
    total: float = 0.0
    redirect: float = 0.0


NO_TIMINGS = Timings()
"""The L{Timings} of a response that nobody timed (all 0)."""


class _LazyTimings:
    """
    The descriptor behind L{Response.timings}: a L{Timings} in, a L{Timings} out, but a
    fetched response holds the callable that makes its L{Timings} (see L{_with_timings}),
    called when C{timings} is first read: most callers never read it, and building it
    costs more than the rest of the timing of a request.
    """

    @overload
    def __get__(self, obj: None, objtype: Any = None) -> Timings: ...

    @overload
    def __get__(self, obj: object, objtype: Any = None) -> Timings: ...

    def __get__(self, obj: object | None, objtype: Any = None) -> Timings:
        if obj is None:
            return NO_TIMINGS  # the dataclass's default
        value: Timings | Callable[[], Timings] = obj.__dict__["_timings"]
        if not isinstance(value, Timings):
            value = obj.__dict__["_timings"] = value()
        return value

    def __set__(self, obj: object, value: Timings) -> None:
        # Only reached from the dataclass __init__ (see _RawBytes.__set__), which passes
        # this descriptor itself when no timings are given (a field() default).
        obj.__dict__["_timings"] = NO_TIMINGS if isinstance(value, _LazyTimings) else value


class _RawBytes:
    """
    The descriptor behind L{Response.raw}: C{bytes} in, C{bytes} out, but a response read
    by L{twistsock.http.HTTPGetProtocol} keeps the pieces it received and joins them only when
    C{raw} is first read (see L{_with_raw_pieces}).

    Why: C{raw} is the whole response again on top of C{body}, and most callers read
    C{body} only; joining it at once would hold every body twice.  The pieces are the very
    bytes objects received, so keeping them costs nothing; the joined bytes are the same
    bytes, in the same order, and are kept once built.

    Reading the class attribute raises C{AttributeError}, so that the dataclass sees no
    default and C{raw} is a required argument.
    """

    @overload
    def __get__(self, obj: None, objtype: Any = None) -> _RawBytes: ...

    @overload
    def __get__(self, obj: object, objtype: Any = None) -> bytes: ...

    def __get__(self, obj: object | None, objtype: Any = None) -> bytes | _RawBytes:
        if obj is None:
            raise AttributeError("raw")
        value: bytes | tuple[bytes, ...] = obj.__dict__["_raw"]
        if isinstance(value, tuple):
            value = obj.__dict__["_raw"] = b"".join(value)
        return value

    def __set__(self, obj: object, value: bytes) -> None:
        # Only reached from the dataclass __init__ (object.__setattr__); assignments after
        # it are refused by the frozen dataclass's __setattr__ before they get here.
        obj.__dict__["_raw"] = value


@dataclass(frozen=True)
class Response:
    """
    A complete HTTP response.

    @ivar url: the URL that was requested to get this response.
    @ivar http_version: the server's HTTP version, such as C{"1.1"} or C{"1.0"}.
    @ivar code: the status code.
    @ivar phrase: the reason phrase (possibly empty).
    @ivar headers: the header fields.
    @ivar body: the body, decoded from its transfer framing (chunks joined); not
        content-decoded (a gzip body stays gzip) unless fetched with C{compressed=True}.
    @ivar raw: every byte received on the connection, exactly as received (for a fetched
        response, joined from the received pieces the first time it is read).
    @ivar head_length: how many leading bytes of C{raw} are status lines and headers
        (interim 1xx responses included): C{raw[:head_length]} is what C{curl -i} shows
        before the body.
    @ivar trailers: the trailer fields of a chunked body, if any.
    @ivar history: the earlier responses, oldest first, when redirects were followed.
    @ivar timings: when each step of the transfer was over (the whole redirect chain, on
        the final response fetched by L{twistsock.http.fetch}; all 0 on a response
        built otherwise and on those of C{history}).
    """

    url: str
    http_version: str
    code: int
    phrase: str
    headers: Headers
    body: bytes
    raw: _RawBytes = _RawBytes()  # bytes; required (see _RawBytes)
    head_length: int = 0
    trailers: Headers = field(default_factory=Headers)
    history: tuple[Response, ...] = ()
    # Timings; NO_TIMINGS by default; not compared: two fetches of the same bytes are equal.
    timings: _LazyTimings = field(default=_LazyTimings(), compare=False)

    @property
    def head(self) -> bytes:
        """The status line(s) and header lines exactly as received, blank line included."""
        return self.raw[: self.head_length]


def _with_raw_pieces(response: Response, pieces: Sequence[bytes]) -> Response:
    """
    Make C{response.raw} the concatenation of C{pieces}, joined the first time it is read.
    For L{twistsock.http.HTTPGetProtocol}, on a response it has just built (with C{raw=b""})
    and that nobody has seen yet.
    """
    response.__dict__["_raw"] = tuple(pieces)
    return response


def _with_timings(response: Response, timings: Callable[[], Timings]) -> Response:
    """
    Make C{response.timings} what C{timings} returns, called when it is first read: for
    L{twistsock.http.fetch}, on the response it is about to hand over and that nobody has
    seen yet (C{dataclasses.replace} would join C{raw}, and copy the response, for one
    field).
    """
    response.__dict__["_timings"] = timings
    return response
