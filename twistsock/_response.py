"""
The result of a fetch: an immutable L{Response} and its immutable L{Headers}.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = ["Headers", "Response"]


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
class Response:
    """
    A complete HTTP response.

    @ivar url: the URL that was requested to get this response.
    @ivar http_version: the server's HTTP version, such as C{"1.1"} or C{"1.0"}.
    @ivar code: the status code.
    @ivar phrase: the reason phrase (possibly empty).
    @ivar headers: the header fields.
    @ivar body: the body, decoded from its transfer framing (chunks joined); not
        content-decoded (a gzip body stays gzip).
    @ivar raw: every byte received on the connection, exactly as received.
    @ivar head_length: how many leading bytes of C{raw} are status lines and headers
        (interim 1xx responses included): C{raw[:head_length]} is what C{curl -i} shows
        before the body.
    @ivar trailers: the trailer fields of a chunked body, if any.
    @ivar history: the earlier responses, oldest first, when redirects were followed.
    """

    url: str
    http_version: str
    code: int
    phrase: str
    headers: Headers
    body: bytes
    raw: bytes
    head_length: int = 0
    trailers: Headers = field(default_factory=Headers)
    history: tuple[Response, ...] = ()

    @property
    def head(self) -> bytes:
        """The status line(s) and header lines exactly as received, blank line included."""
        return self.raw[: self.head_length]
