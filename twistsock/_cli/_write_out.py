"""
C{twistsock get -w/--write-out FORMAT}: what curl's C{--write-out} prints after each
transfer, from a L{TransferInfo} (sans-IO: no stream, no reactor; the command writes the
pieces L{write_out} returns).

The format follows curl 7.88: C{%{name}} is a variable (its name in any case), C{%%} a
C{%}, C{\\n}, C{\\r} and C{\\t} a newline, carriage return and tab; any other C{%} or
backslash sequence is written as it is.  C{%{stdout}} and C{%{stderr}} switch where the
rest goes, C{%{onerror}} drops the rest after a transfer that succeeded, C{%{json}} is
every variable as one JSON object (curl's keys), C{%{header_json}} the last response's
header fields as one, and C{%header{name}} is one of those fields.  An unknown variable
is a warning on stderr and prints nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from twistsock.http._response import Timings

__all__ = [
    "STDERR",
    "STDOUT",
    "VARIABLES",
    "TransferInfo",
    "parse_head",
    "read_format",
    "write_out",
]

STDOUT = "stdout"
STDERR = "stderr"


@dataclass(frozen=True)
class TransferInfo:
    """
    What one transfer of C{twistsock get} did, for its C{--write-out} variables.

    @ivar url: the URL as given.
    @ivar urlnum: its index among the command's URLs, from 0.
    @ivar url_effective: the URL fetched last (a redirect's, with C{-L}).
    @ivar exitcode: the transfer's exit status (curl's), 0 for success.
    @ivar errormsg: the error message, C{None} for success.
    @ivar http_code: the status code of the last response, 0 if none arrived.
    @ivar http_version: that response's HTTP version (C{"1.1"}), C{"0"} if none.
    @ivar headers: that response's header fields, in order.
    @ivar size_download: the bytes of that response's body received.
    @ivar size_header: the bytes of every response head received.
    @ivar size_request: the bytes of every request sent.
    @ivar num_connects: the new connections made.
    @ivar num_redirects: the redirects followed.
    @ivar redirect_url: where the last response redirects to, when it was not followed.
    @ivar filename_effective: the C{-o} file written, if any.
    @ivar remote_ip: the IP address of the last connection's peer (C{""} before any).
    @ivar remote_port: its port (0 before any).
    @ivar local_ip: the IP address of the last connection's own end.
    @ivar local_port: its port.
    @ivar scheme: C{"HTTP"} or C{"HTTPS"} once a request was sent, else C{None}.
    @ivar timings: when each step was over.
    """

    url: str
    urlnum: int = 0
    url_effective: str = ""
    exitcode: int = 0
    errormsg: str | None = None
    http_code: int = 0
    http_version: str = "0"
    headers: tuple[tuple[str, str], ...] = ()
    size_download: int = 0
    size_header: int = 0
    size_request: int = 0
    num_connects: int = 0
    num_redirects: int = 0
    redirect_url: str | None = None
    filename_effective: str | None = None
    remote_ip: str = ""
    remote_port: int = 0
    local_ip: str = ""
    local_port: int = 0
    scheme: str | None = None
    timings: Timings = field(default_factory=Timings)

    def header(self, name: str) -> str | None:
        """The first value of the response header field C{name} (any case), or C{None}."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.strip(" \t")
        return None


def parse_head(raw: bytes) -> tuple[str, int, tuple[tuple[str, str], ...]]:
    """
    The HTTP version, status code and header fields of the last response in C{raw} (a
    head as received: interim 1xx responses first, if any), decoded as ISO-8859-1.
    """
    blocks = [b for b in raw.replace(b"\r\n", b"\n").split(b"\n\n") if b.strip()]
    lines = blocks[-1].decode("latin-1").split("\n") if blocks else [""]
    status = lines[0].split(" ", 2)
    version = status[0].partition("/")[2] or "0"
    try:
        code = int(status[1])
    except (IndexError, ValueError):
        code = 0
    fields = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            fields.append((name, value.strip(" \t")))
    return version, code, tuple(fields)


def _seconds(value: float) -> str:
    """Seconds with six decimals, as curl writes them (from whole microseconds)."""
    us = max(0, round(value * 1_000_000))
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def _speed(info: TransferInfo) -> int:
    """Bytes per second over the whole transfer, as curl's C{trspeed}."""
    us = round(info.timings.total * 1_000_000)
    size = info.size_download
    return size * 1_000_000 if us < 1 else size * 1_000_000 // us


class _Kind:
    """How a variable is written: as text, and as a JSON value."""

    TEXT = 0  # a string, null in JSON when None
    NUMBER = 1  # an integer
    CODE = 2  # a status code: three digits as text, a number in JSON
    TIME = 3  # seconds, six decimals in both


_Getter = Callable[[TransferInfo], object]

VARIABLES: dict[str, tuple[int, _Getter]] = {
    "content_type": (_Kind.TEXT, lambda i: i.header("Content-Type")),
    "errormsg": (_Kind.TEXT, lambda i: i.errormsg),
    "exitcode": (_Kind.NUMBER, lambda i: i.exitcode),
    "filename_effective": (_Kind.TEXT, lambda i: i.filename_effective),
    "http_code": (_Kind.CODE, lambda i: i.http_code),
    "http_version": (_Kind.TEXT, lambda i: i.http_version),
    "local_ip": (_Kind.TEXT, lambda i: i.local_ip),
    "local_port": (_Kind.NUMBER, lambda i: i.local_port),
    "method": (_Kind.TEXT, lambda i: "GET"),
    "num_connects": (_Kind.NUMBER, lambda i: i.num_connects),
    "num_headers": (_Kind.NUMBER, lambda i: len(i.headers)),
    "num_redirects": (_Kind.NUMBER, lambda i: i.num_redirects),
    "redirect_url": (_Kind.TEXT, lambda i: i.redirect_url),
    "remote_ip": (_Kind.TEXT, lambda i: i.remote_ip),
    "remote_port": (_Kind.NUMBER, lambda i: i.remote_port),
    "response_code": (_Kind.CODE, lambda i: i.http_code),
    "scheme": (_Kind.TEXT, lambda i: i.scheme),
    "size_download": (_Kind.NUMBER, lambda i: i.size_download),
    "size_header": (_Kind.NUMBER, lambda i: i.size_header),
    "size_request": (_Kind.NUMBER, lambda i: i.size_request),
    "size_upload": (_Kind.NUMBER, lambda i: 0),
    "speed_download": (_Kind.NUMBER, _speed),
    "speed_upload": (_Kind.NUMBER, lambda i: 0),
    "time_appconnect": (_Kind.TIME, lambda i: i.timings.appconnect),
    "time_connect": (_Kind.TIME, lambda i: i.timings.connect),
    "time_namelookup": (_Kind.TIME, lambda i: i.timings.namelookup),
    "time_pretransfer": (_Kind.TIME, lambda i: i.timings.pretransfer),
    "time_redirect": (_Kind.TIME, lambda i: i.timings.redirect),
    "time_starttransfer": (_Kind.TIME, lambda i: i.timings.starttransfer),
    "time_total": (_Kind.TIME, lambda i: i.timings.total),
    "url": (_Kind.TEXT, lambda i: i.url),
    "url_effective": (_Kind.TEXT, lambda i: i.url_effective),
    "urlnum": (_Kind.NUMBER, lambda i: i.urlnum),
}
"""
The variables with a value, by name: how each is written and where its value comes from.
C{%{json}} holds all of them, under these names (curl's), in this order.
"""


def _text(kind: int, value: object) -> str:
    if kind == _Kind.TIME:
        assert isinstance(value, float | int)
        return _seconds(value)
    if kind == _Kind.CODE:
        return f"{value:03d}"
    return "" if value is None else str(value)


def _json(info: TransferInfo) -> str:
    """Every variable as one JSON object (times with six decimals, as curl)."""
    members = []
    for name, (kind, get) in VARIABLES.items():
        value = get(info)
        if kind == _Kind.TIME:
            assert isinstance(value, float | int)
            text = _seconds(value)
        else:
            text = json.dumps(value, ensure_ascii=False)
        members.append(f'"{name}":{text}')
    return "{" + ",".join(members) + "}"


def _header_json(info: TransferInfo) -> str:
    """
    The last response's header fields as curl's C{%{header_json}} writes them: a JSON
    object of lower-case names, each with the list of its values, one name a line.
    """
    fields: dict[str, list[str]] = {}
    for name, value in info.headers:
        fields.setdefault(name.lower(), []).append(value.strip(" \t"))
    members = [
        json.dumps(name, ensure_ascii=False)
        + ":"
        + json.dumps(values, ensure_ascii=False, separators=(",", ":"))
        for name, values in fields.items()
    ]
    return "{" + ",\n".join(members) + "\n}"


def write_out(format: str, info: TransferInfo) -> list[tuple[str, str]]:
    """
    Expand C{format} for C{info}, as curl 7.88's C{--write-out} does.

    @return: the pieces to write, in order, each with where it goes: L{STDOUT} or
        L{STDERR} (C{%{stderr}} switches, and the warning for an unknown variable goes
        to stderr: C{twistsock: unknown --write-out variable: 'NAME'}).
    """
    pieces: list[tuple[str, str]] = []
    target = STDOUT
    text: list[str] = []

    def flush() -> None:
        if text:
            pieces.append((target, "".join(text)))
            text.clear()

    i, end = 0, len(format)
    while i < end:
        c = format[i]
        following = format[i + 1] if i + 1 < end else ""
        if c == "%" and following:
            if following == "%":
                text.append("%")
                i += 2
            elif following == "{":
                close = format.find("}", i + 2)
                if close < 0:
                    text.append("%{")
                    i += 2
                    continue
                name = format[i + 2 : close]
                i = close + 1
                key = name.lower()
                if key in VARIABLES:
                    kind, get = VARIABLES[key]
                    text.append(_text(kind, get(info)))
                elif key == "json":
                    text.append(_json(info))
                elif key == "header_json":
                    text.append(_header_json(info))
                elif key in (STDOUT, STDERR):
                    flush()
                    target = key
                elif key == "onerror":
                    if info.exitcode == 0:
                        break
                else:
                    flush()
                    pieces.append((STDERR, f"twistsock: unknown --write-out variable: '{name}'\n"))
            elif format.startswith("header{", i + 1):
                close = format.find("}", i + 8)
                if close < 0:
                    text.append("%header{")
                    i += 8
                    continue
                text.append(info.header(format[i + 8 : close]) or "")
                i = close + 1
            else:
                text.append(c + following)
                i += 2
        elif c == "\\" and following:
            text.append({"n": "\n", "r": "\r", "t": "\t"}.get(following, c + following))
            i += 2
        else:
            text.append(c)
            i += 1
    flush()
    return pieces


def read_format(data: str) -> str:
    """
    The format in C{data}, the text of a C{-w @file} (or C{@-}): each line is cut at its
    first carriage return or newline and the lines are joined, as curl reads it (so a
    file's final newline is not written; write C{\\n} for one).
    """
    return "".join(line.split("\r", 1)[0] for line in data.split("\n"))
