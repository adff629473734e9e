"""
End-to-end tests of C{twistsock get -C/--continue-at} against local servers, side by side
with curl 7.88's C{-C}: the exit status, what is written, and the file after resuming.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web import server
from twisted.web.resource import Resource

from tests._curl import require_curl, run_curl, run_get
from tests._http_servers import BINARY, listen_canned, listen_web, temporary_directory
from tests.test_cli import without_date
from tests.test_http_retry import errors, listen_flaky
from twistsock._cli import main
from twistsock._cli._get import resume_offset

PARTIAL = (
    b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 4-9/10\r\nContent-Length: 6\r\n\r\n"
)


class ResumeCommandTests(TestCase):
    """
    C{get -C} as a subprocess, compared with curl on the same server and file contents.
    """

    def setUp(self) -> None:
        self.directory = temporary_directory(self)

    def web(self) -> str:
        """The URL of the twisted.web test site's binary file (its C{File} takes ranges)."""
        port = listen_web(self, reactor, temporary_directory(self))
        return f"http://127.0.0.1:{port}/static/binary.bin"

    def canned(self, reply: bytes) -> str:
        port, _ = listen_canned(self, reactor, reply, "close")
        return f"http://127.0.0.1:{port}/"

    @inlineCallbacks
    def both(self, start: bytes | None, url: str, *args: str) -> Any:
        """
        Run curl and C{get} with C{args} and C{url}, each writing to a file of its own
        that holds C{start} first (C{-o} is added; no file if C{None}).  Check that both
        exit alike, write the same to stdout and leave the same file; return C{(stdout,
        status, file contents or None)}.
        """
        results = []
        for name, run in (("curl", run_curl), ("ours", run_get)):
            path = self.directory / name
            if start is not None:
                path.write_bytes(start)
            out, err, status = yield run(reactor, "-s", "-S", *args, "-o", str(path), url)
            contents = path.read_bytes() if path.exists() else None
            results.append((out, status, contents, err))
        (curl_out, curl_status, curl_file, curl_err), ours = results
        self.assertEqual((ours[0], ours[1], ours[2]), (curl_out, curl_status, curl_file), ours[3])
        if curl_status:
            self.assertTrue(ours[3].startswith(b"twistsock: (%d) " % curl_status), ours[3])
        return ours[:3]

    @inlineCallbacks
    def test_continue(self) -> Any:
        """
        C{-C -} with a partial file asks for the rest (C{Range: bytes=N-}) and appends
        the 206's body: the file is complete.
        """
        require_curl()
        _, status, contents = yield self.both(BINARY[:1000], self.web(), "-C", "-")
        self.assertEqual((status, contents), (0, BINARY))

    @inlineCallbacks
    def test_complete_already(self) -> Any:
        """
        A complete file (the 416 says so), or one longer than the resource: success,
        and the file is as it was.
        """
        require_curl()
        url = self.web()
        for start in (BINARY, BINARY + b"more"):
            _, status, contents = yield self.both(start, url, "-C", "-")
            self.assertEqual((status, contents), (0, start))

    @inlineCallbacks
    def test_missing_or_empty_file(self) -> Any:
        """
        C{-C -} without a file, or with an empty one, is a plain download.
        """
        require_curl()
        url = self.web()
        for start in (None, b""):
            _, status, contents = yield self.both(start, url, "-C", "-")
            self.assertEqual((status, contents), (0, BINARY))

    @inlineCallbacks
    def test_include_complete(self) -> Any:
        """
        With C{-i}, the 416's head is appended to a complete file, as curl appends it
        (curl is told C{Connection: close}, which twistsock sends, so that the heads
        are the same but for the C{Date}).
        """
        require_curl()
        url = self.web()
        contents = []
        for run in (run_curl, run_get):
            path = self.directory / "file"
            path.write_bytes(BINARY)
            _, _, status = yield run(
                reactor, "-s", "-i", "-H", "Connection: close", "-C", "-", "-o", str(path), url
            )
            self.assertEqual(status, 0)
            contents.append(path.read_bytes())
        self.assertTrue(contents[1].startswith(BINARY + b"HTTP/1.1 416 "))
        self.assertEqual(
            without_date(contents[1][len(BINARY) :]), without_date(contents[0][len(BINARY) :])
        )

    @inlineCallbacks
    def test_offset(self) -> Any:
        """
        C{-C N} to stdout writes the rest from N; with C{-o}, it is appended to the file
        whatever its size (as curl).
        """
        require_curl()
        url = self.web()
        outputs = []
        for run in (run_curl, run_get):
            out, _, status = yield run(reactor, "-s", "-C", "16000", url)
            outputs.append((out, status))
        self.assertEqual(outputs[0], outputs[1])
        self.assertEqual(outputs[1], (BINARY[16000:], 0))
        _, status, contents = yield self.both(b"abc", url, "-C", "16000")
        self.assertEqual((status, contents), (0, b"abc" + BINARY[16000:]))

    @inlineCallbacks
    def test_stdout_sends_no_range(self) -> Any:
        """
        C{-C -} without C{-o} has no file to continue: no C{Range}, the whole body.
        """
        require_curl()
        port, factory = listen_canned(
            self, reactor, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        )
        outputs = []
        for run in (run_curl, run_get):
            out, _, status = yield run(reactor, "-s", "-C", "-", f"http://127.0.0.1:{port}/")
            outputs.append((out, status))
        self.assertEqual(outputs, [(b"ok", 0)] * 2)
        self.assertEqual([b"Range" in request for request in factory.requests], [False, False])

    @inlineCallbacks
    def test_server_answers(self) -> Any:
        """
        What each answer to C{-C -} on a 4-byte file does, as curl: a 200 of exactly 4
        bytes means it is
        complete (0); a 206 that starts elsewhere or has no C{Content-Range}, and a
        404, fail (33), a 404 with C{-f} fails with 22, a 416 with C{-f} succeeds; a
        206 cut short fails (18) and leaves what was appended.
        """
        require_curl()
        cases: list[tuple[bytes, tuple[str, ...], int, bytes]] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n0123", (), 0, b"abcd"),
            (
                b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-9/10\r\n"
                b"Content-Length: 8\r\n\r\n23456789",
                (),
                33,
                b"abcd",
            ),
            (b"HTTP/1.1 206 Partial Content\r\nContent-Length: 6\r\n\r\n456789", (), 33, b"abcd"),
            (b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope\n", (), 33, b"abcd"),
            (b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope\n", ("-f",), 22, b"abcd"),
            (b"HTTP/1.1 416 Nope\r\nContent-Length: 5\r\n\r\nnope\n", ("-f",), 0, b"abcd"),
            (PARTIAL + b"456789", (), 0, b"abcd456789"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Range: bytes 4-9/10\r\n"
                b"Content-Length: 6\r\n\r\n456789",
                (),
                0,
                b"abcd456789",
            ),
            (PARTIAL + b"456", (), 18, b"abcd456"),
        ]
        for reply, extra, code, after in cases:
            _, status, contents = yield self.both(b"abcd", self.canned(reply), *extra, "-C", "-")
            self.assertEqual((status, contents), (code, after), reply)

    @inlineCallbacks
    def test_200_starts_over(self) -> Any:
        """
        A 200 with the whole resource to C{-C -} starts the download over: the file is
        replaced by the whole body, through a temporary file.  This is where twistsock
        differs from curl 7.88 on purpose (the issue's rule): curl exits 33 and keeps the
        partial file, which the comparison shows where curl is installed.
        """
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"
        url = self.canned(reply)
        path = self.directory / "ours"
        path.write_bytes(b"abcd")
        out, err, status = yield run_get(reactor, "-s", "-S", "-C", "-", "-o", str(path), url)
        self.assertEqual((out, err, status, path.read_bytes()), (b"", b"", 0, b"0123456789"))
        self.assertEqual(sorted(p.name for p in self.directory.iterdir()), ["ours"])
        require_curl()
        path = self.directory / "curl"
        path.write_bytes(b"abcd")
        _, _, status = yield run_curl(reactor, "-s", "-C", "-", "-o", str(path), url)
        self.assertEqual((status, path.read_bytes()), (33, b"abcd"))

    @inlineCallbacks
    def test_200_to_stdout(self) -> Any:
        """
        C{-C N} to stdout, answered with a 200 and the whole resource, fails with 33 and
        writes nothing, as curl: stdout cannot start over (C{>> partial} would hold the
        start twice).
        """
        require_curl()
        url = self.canned(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
        outputs = []
        for run in (run_curl, run_get):
            out, err, status = yield run(reactor, "-s", "-S", "-C", "4", url)
            outputs.append((out, status, err[:5]))
        self.assertEqual(outputs[0], (b"", 33, b"curl:"))
        self.assertEqual(outputs[1], (b"", 33, b"twist"))

    @inlineCallbacks
    def test_raw_appends(self) -> Any:
        """
        With C{--raw}, the bytes received (head included, as C{--raw} writes them) are
        appended to the file, not written over it.
        """
        reply = PARTIAL + b"456789"
        path = self.directory / "raw"
        path.write_bytes(b"abcd")
        _, err, status = yield run_get(
            reactor, "--raw", "-C", "-", "-o", str(path), self.canned(reply)
        )
        self.assertEqual((status, err, path.read_bytes()), (0, b"", b"abcd" + reply))

    @inlineCallbacks
    def test_raw_200(self) -> Any:
        """
        With C{--raw}, a 200 with the whole resource is not appended to the partial file:
        the download starts over as without C{--raw}; to stdout it fails with 33, as curl,
        with nothing written.
        """
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"
        url = self.canned(reply)
        path = self.directory / "raw"
        path.write_bytes(b"abcd")
        _, err, status = yield run_get(reactor, "--raw", "-C", "-", "-o", str(path), url)
        self.assertEqual((status, err, path.read_bytes()), (0, b"", reply))
        out, err, status = yield run_get(reactor, "--raw", "-C", "4", url)
        self.assertEqual((status, out), (33, b""))
        self.assertTrue(err.startswith(b"twistsock: (33) "), err)

    @inlineCallbacks
    def test_bad_offset(self) -> Any:
        """
        A negative or non-numeric offset is a usage error (2), as curl says.
        """
        require_curl()
        for value in ("-3", "abc"):
            for run in (run_curl, run_get):
                _, _, status = yield run(reactor, "-s", "-C", value, "http://127.0.0.1:1/")
                self.assertEqual(status, 2, value)

    @inlineCallbacks
    def test_busy_retried_with_fail(self) -> Any:
        """
        A 503 to C{-f --retry 1 -C -} is retried as curl retries it (the status is
        checked before the range): two requests each, two error lines (22), exit 22,
        the file as it was.  Without C{-f}, curl checks the range first: 33 at once,
        one request each, and no retry.
        """
        require_curl()
        reply = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nnope"
        for extra, code, requests in [(("-f",), 22, 4), ((), 33, 2)]:
            port, factory = listen_canned(self, reactor, reply, "close")
            url = f"http://127.0.0.1:{port}/"
            results = []
            for name, run in (("curl", run_curl), ("ours", run_get)):
                path = self.directory / name
                path.write_bytes(b"123456")
                args = ("-sS", *extra, "--retry", "1", "-C", "-", "-o", str(path), url)
                out, err, status = yield run(reactor, *args)
                results.append((out, status, errors(err), path.read_bytes()))
            expected = (b"", code, [code] * (requests // 2), b"123456")
            self.assertEqual(results, [expected] * 2)
            self.assertEqual(len(factory.requests), requests)

    @inlineCallbacks
    def test_busy_retry_after_too_long(self) -> Any:
        """
        A 503 whose C{Retry-After} ends past C{--retry-max-time}, to C{-f --retry 1 -C -}:
        no retry, one error line (22) and the warning, as curl.
        """
        require_curl()
        reply = (
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 10\r\nContent-Length: 4\r\n\r\nnope"
        )
        port, factory = listen_canned(self, reactor, reply, "close")
        args = ("-f", "--retry", "1", "--retry-max-time", "5", "-C", "-")
        for run in (run_curl, run_get):
            path = self.directory / "file"
            path.write_bytes(b"123456")
            out, err, status = yield run(
                reactor, *args, "-o", str(path), f"http://127.0.0.1:{port}/"
            )
            self.assertEqual(
                (out, status, errors(err), path.read_bytes()), (b"", 22, [22], b"123456")
            )
            self.assertIn(b"Warning: The Retry-After: time would make", err)
        self.assertEqual(len(factory.requests), 2)

    @inlineCallbacks
    def test_busy_then_partial(self) -> Any:
        """
        A 503, then a 206 that continues, to C{-f --retry 1 -C -}: the file is complete
        after one retry, as curl's.
        """
        require_curl()
        for run in (run_curl, run_get):
            url = listen_flaky(self, BusyThenPartial())
            path = self.directory / "file"
            path.write_bytes(b"abcd")
            out, err, status = yield run(
                reactor, "-sS", "-f", "--retry", "1", "-C", "-", "-o", str(path), url
            )
            self.assertEqual((out, status, path.read_bytes()), (b"", 0, b"abcd456789"), err)


class BusyThenPartial(Resource):
    """Answers 503 to the first request, then the rest of C{0123456789} from C{Range}."""

    isLeaf = True
    requests = 0

    def render_GET(self, request: server.Request) -> bytes:
        self.requests += 1
        if self.requests == 1:
            request.setResponseCode(503)
            return b"busy\n"
        start = int((request.getHeader("Range") or "bytes=0-")[len("bytes=") : -1])
        request.setResponseCode(206)
        request.setHeader("Content-Range", f"bytes {start}-9/10")
        return b"0123456789"[start:]


class ResumeOffsetTests(SynchronousTestCase):
    """
    L{resume_offset}: what C{-C} asks for.
    """

    def test_offsets(self) -> None:
        """
        C{-C N} is N; C{-C -} is the size of the C{-o} file, 0 without one, with a
        missing one, or for stdout; no C{-C} is 0.
        """
        path = Path(self.mktemp())
        path.write_bytes(b"12345")
        self.assertEqual(resume_offset(7, None), 7)
        self.assertEqual(resume_offset("-", str(path)), 5)
        self.assertEqual(resume_offset("-", str(path) + "-missing"), 0)
        self.assertEqual(resume_offset("-", "-"), 0)
        self.assertEqual(resume_offset("-", None), 0)
        self.assertEqual(resume_offset(None, str(path)), 0)

    def test_usage(self) -> None:
        """
        A bad C{-C} value is one line and exit 2, before anything is fetched.
        """
        self.assertEqual(main(["get", "-s", "-C", "-1", "http://127.0.0.1:1/"]), 2)
