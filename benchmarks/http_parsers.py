"""
Response parsing alone, in process: twistsock's reader against h11 and httptools (llhttp).

    .venv/bin/python benchmarks/http_parsers.py            # about 30 seconds
    .venv/bin/python benchmarks/http_parsers.py --quick    # a smoke run, into results/tmp/

No sockets: each parser is fed the same bytes, split the way a socket delivers them
(64 KiB reads), and must produce the same status and body.  The figure is CPU time per
response (C{time.process_time}), median of the rounds.  Cases: a small response (a head of
about 200 bytes and a 104-byte body, all in one read), a 1 MiB Content-Length body, and a
1 MiB chunked body in 4 KiB chunks.  Then the behaviours that decide which parser twistsock
can use, each parser given the same bytes: LF-only line endings and an obs-fold header
(which the README says twistsock accepts), Transfer-Encoding with Content-Length (which it
refuses), and a head over the framing bound split across two reads.

Writes C{results/http-parsers.md} and C{results/http-parsers.json}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import h11

from twistsock.http._reader import ResponseReader

HERE = Path(__file__).resolve().parent
READ = 65536


def small() -> bytes:
    """A small response: the head of a typical server, a 104-byte body."""
    head = (
        b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 02 Dec 2026 06:00:00 GMT\r\n"
        b"Content-Type: text/plain\r\nContent-Length: 104\r\nConnection: keep-alive\r\n"
        b"Last-Modified: Wed, 02 Dec 2026 05:00:00 GMT\r\nAccept-Ranges: bytes\r\n\r\n"
    )
    return head + b"x" * 104


def large() -> bytes:
    """A 1 MiB Content-Length body."""
    return b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + b"y" * 1048576


def chunked() -> bytes:
    """A 1 MiB chunked body in 4 KiB chunks."""
    chunk = b"1000\r\n" + b"z" * 4096 + b"\r\n"
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 256 + b"0\r\n\r\n"


def reads(data: bytes) -> list[bytes]:
    """C{data} as a socket would deliver it, in reads of at most 64 KiB."""
    return [data[i : i + READ] for i in range(0, len(data), READ)]


def with_twistsock(pieces: list[bytes]) -> tuple[int, int]:
    """Status and body length, read by twistsock's reader."""
    reader = ResponseReader("http://127.0.0.1/")
    for piece in pieces:
        reader.feed(piece)
    reader.feed_eof()
    result = reader.result
    if not hasattr(result, "code"):
        raise ValueError(str(result))
    return result.code, len(result.body)  # type: ignore[union-attr]


def with_h11(pieces: list[bytes]) -> tuple[int, int]:
    """Status and body length, read by h11 (the body joined from its Data events)."""
    connection = h11.Connection(h11.CLIENT)
    connection.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    connection.send(h11.EndOfMessage())
    status, body = 0, []
    for piece in [*pieces, b""]:
        connection.receive_data(piece)
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                break
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body.append(event.data)
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return status, len(b"".join(body))
    raise ValueError("incomplete")


def with_httptools(pieces: list[bytes]) -> tuple[int, int]:
    """Status and body length, read by httptools (llhttp)."""
    import httptools

    class Handler:
        def __init__(self) -> None:
            self.body: list[bytes] = []
            self.done = False

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            self.done = True

    handler = Handler()
    parser = httptools.HttpResponseParser(handler)
    # The leniencies that come closest to the README's framing choices: LF-only lines,
    # obs-fold (lenient_headers, which also stops checking header values), and whitespace
    # after a chunk size.
    parser.set_dangerous_leniencies(
        lenient_optional_cr_before_lf=True,
        lenient_headers=True,
        lenient_spaces_after_chunk_size=True,
    )
    for piece in pieces:
        parser.feed_data(piece)
    if not handler.done:
        raise ValueError("incomplete")
    return parser.get_status_code(), len(b"".join(handler.body))


PARSERS: dict[str, Callable[[list[bytes]], tuple[int, int]]] = {
    "twistsock reader": with_twistsock,
    "h11": with_h11,
    "httptools (llhttp), lenient": with_httptools,
}

BEHAVIOURS = {
    "LF-only line endings": [b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"],
    "obs-fold header": [b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 2\r\n\r\nok"],
    "Transfer-Encoding and Content-Length": [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n"
    ],
    "Content-Length twice, same value": [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"
    ],
    "HTTP/1.2 status line": [b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    "HTTP/2.0 status line": [b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    "NUL in a header value": [b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok"],
    "Transfer-Encoding: gzip, chunked": [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    ],
    "chunk size, space before extension": [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 ;a=b\r\nok\r\n0\r\n\r\n"
    ],
    "chunk data ended by LF only": [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\n0\r\n\r\n"
    ],
    "20 kB head in one read": [
        b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 20000 + b"\r\nContent-Length: 2\r\n\r\nok"
    ],
    "20 kB head split in two reads": [
        b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 17000,
        b"a" * 3000 + b"\r\nContent-Length: 2\r\n\r\nok",
    ],
}


WHY_NOT_HTTPTOOLS = """\
Why the reader does not use httptools (0.9.0, the version the package index offers), though
llhttp parses faster:

- Its Python API gives no byte offsets.  Callbacks carry a status, a field, a value or a body
  piece, never where it was in the bytes fed; the only offset surfaced is that of a protocol
  upgrade.  The reader needs them: `Response.head` and `head_length` (the head exactly as
  received, interim responses included), the framing bound counted on the bytes received,
  and, on a persistent connection, where a response ends and the next bytes begin (after a
  complete message llhttp goes straight on into the next one; a callback that raises stops
  it, and the position is lost).  After a chunked body there is no way to find that end
  without parsing the chunk framing again.
- It does not give chunk sizes (`on_chunk_header` has no argument, and the parser has no
  getter for the length): a chunk size over `max_body_size` could not fail with
  `BodyTooLarge` as soon as it arrives, as the README says, without parsing the chunk size
  lines in Python, which is the reader's own cost on chunked bodies.
- `on_body` always hands over a copy, so a Content-Length body would lose its single copy
  (the socket reads straight into the body's buffer).
- With the leniencies that accept LF-only lines and obs-fold, it accepts what the README says
  twistsock refuses: NUL and other controls in header values and the reason phrase (the
  leniency turns value checks off), `HTTP/2.0` and `HTTP/0.9` status lines, status 099,
  CRLF before the status line, a fold before the first field, `Transfer-Encoding: gzip,
  chunked`, two `Transfer-Encoding` fields, chunk data ended by LF alone; it refuses what
  twistsock accepts: `HTTP/1.2`, repeated or listed `Content-Length` values that agree; it
  keeps whitespace that twistsock drops (after a value, inside an unfolded value), and hands
  trailers over as if they were header fields.  Over the 140 responses of the differential
  corpus, 31 come out differently.  Each would need a check in Python over the same head
  bytes that the reader scans once now.

The measurement above times parsing alone (no `Response`, no checks).  In the client the
reader's part of a 104-byte GET is about a fifth of `Client`'s CPU per request
(`benchmarks/results/http.md`), so a wrapper around llhttp that still found the head's end,
checked its bytes and parsed chunk size lines would save a few microseconds of it, and could
not have the offsets.
"""


def outcome(parse: Callable[[list[bytes]], tuple[int, int]], pieces: list[bytes]) -> str:
    """Accepted (status and body length) or refused, in a word."""
    try:
        status, length = parse(pieces)
    except Exception as e:  # each parser refuses in its own way
        return f"refused ({type(e).__name__})"
    return f"accepted ({status}, {length} bytes)"


def main() -> None:
    """Measure, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    rounds, repeat = (3, 20) if options.quick else (9, 200)
    cases = {"small": small(), "1 MiB Content-Length": large(), "1 MiB chunked": chunked()}
    timing: dict[str, dict[str, float]] = {}
    for case, data in cases.items():
        pieces = reads(data)
        expected = with_twistsock(pieces)
        timing[case] = {}
        for name, parse in PARSERS.items():
            if parse(pieces) != expected:
                raise SystemExit(f"{name} disagrees on {case}")
            count = repeat * (50 if case == "small" else 1)
            samples = []
            for _ in range(rounds):
                started = time.process_time()
                for _ in range(count):
                    parse(pieces)
                samples.append((time.process_time() - started) / count * 1e6)
            timing[case][name] = statistics.median(samples)
    behaviours = {
        what: {name: outcome(parse, pieces) for name, parse in PARSERS.items()}
        for what, pieces in BEHAVIOURS.items()
    }
    names = list(PARSERS)
    lines = [
        f"Response parsing in process, {time.strftime('%Y-%m-%d')}, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"h11 {h11.__version__}; median of {rounds} rounds.",
        "",
        "CPU µs per response (× = the parser's figure / twistsock's):",
        "",
        "| case | " + " | ".join(f"{n} | ×" for n in names) + " |",
        "|---|" + "---:|---:|" * len(names),
    ]
    for case, row in timing.items():
        base = row[names[0]]
        cells = " | ".join(f"{row[n]:,.1f} | {row[n] / base:.2f}×" for n in names)
        lines.append(f"| {case} | {cells} |")
    lines += ["", "The same bytes, accepted or refused:", ""]
    lines += ["| bytes | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for what, row in behaviours.items():
        lines.append(f"| {what} | " + " | ".join(row[n] for n in names) + " |")
    lines += ["", WHY_NOT_HTTPTOOLS]
    text = "\n".join(lines) + "\n"
    print(text)
    out = HERE / "results" / ("tmp" if options.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    (out / "http-parsers.md").write_text(text)
    (out / "http-parsers.json").write_text(
        json.dumps({"timing_us": timing, "behaviours": behaviours}, indent=1)
    )


if __name__ == "__main__":
    main()
