"""
Tests for C{twistsock get -w/--write-out}: the formatter alone (every variable, escapes,
C{%{json}}, C{@file}), the command in memory (failures, several URLs), and the command as
a subprocess against local servers, side by side with curl.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests import test_cli
from tests._curl import require_curl, run_curl, run_get
from tests._http_servers import closed_port, listen_web, temporary_directory
from tests._memory import MemoryReactorClock
from tests.test_cli import Stdout
from twistsock import Timings
from twistsock._cli import _parser
from twistsock._cli._get import _get, _read_write_out
from twistsock._cli._write_out import (
    STDERR,
    STDOUT,
    VARIABLES,
    TransferInfo,
    parse_head,
    read_format,
    write_out,
)
from twistsock.testing import FakeHTTP, StubResponse

reactor: Any = _reactor

TIMINGS = Timings(
    namelookup=0.001,
    connect=0.0025,
    appconnect=0.25,
    pretransfer=0.250001,
    starttransfer=1.5,
    total=2,
    redirect=0.75,
)

INFO = TransferInfo(
    url="http://example.com/a",
    urlnum=2,
    url_effective="https://example.com/b",
    http_code=200,
    http_version="1.1",
    headers=(("Content-Type", "text/plain"), ("X-Two", " spaced "), ("x-two", "again")),
    size_download=3000,
    size_header=120,
    size_request=80,
    num_connects=2,
    num_redirects=1,
    filename_effective="out.txt",
    remote_ip="::1",
    remote_port=443,
    local_ip="::1",
    local_port=50000,
    scheme="HTTPS",
    timings=TIMINGS,
)

FAILED = TransferInfo(
    url="http://127.0.0.1:1/",
    url_effective="http://127.0.0.1:1/",
    exitcode=7,
    errormsg="Failed to connect to 127.0.0.1 port 1: Connection refused",
    timings=Timings(total=0.0005),
)


def out(format: str, info: TransferInfo = INFO) -> str:
    """What C{format} writes to stdout for C{info} (nothing is expected on stderr)."""
    pieces = write_out(format, info)
    assert all(target == STDOUT for target, _ in pieces), pieces
    return "".join(text for _, text in pieces)


class FormatTests(SynchronousTestCase):
    """
    L{write_out} expands a format as curl 7.88 does.
    """

    def test_every_variable(self) -> None:
        """Each variable is written as curl writes it."""
        expected = {
            "content_type": "text/plain",
            "errormsg": "",
            "exitcode": "0",
            "filename_effective": "out.txt",
            "http_code": "200",
            "http_version": "1.1",
            "local_ip": "::1",
            "local_port": "50000",
            "method": "GET",
            "num_connects": "2",
            "num_headers": "3",
            "num_redirects": "1",
            "redirect_url": "",
            "remote_ip": "::1",
            "remote_port": "443",
            "response_code": "200",
            "scheme": "HTTPS",
            "size_download": "3000",
            "size_header": "120",
            "size_request": "80",
            "size_upload": "0",
            "speed_download": "1500",
            "speed_upload": "0",
            "time_appconnect": "0.250000",
            "time_connect": "0.002500",
            "time_namelookup": "0.001000",
            "time_pretransfer": "0.250001",
            "time_redirect": "0.750000",
            "time_starttransfer": "1.500000",
            "time_total": "2.000000",
            "url": "http://example.com/a",
            "url_effective": "https://example.com/b",
            "urlnum": "2",
        }
        self.assertEqual(set(expected), set(VARIABLES))
        for name, value in expected.items():
            self.assertEqual(out(f"%{{{name}}}"), value, name)

    def test_failure(self) -> None:
        """
        A failed transfer: C{http_code} is C{000}, the exit code and message are set, and
        what was not reached is empty or 0.
        """
        self.assertEqual(
            out("%{http_code} %{exitcode} %{errormsg}|%{content_type}|%{time_total}", FAILED),
            "000 7 Failed to connect to 127.0.0.1 port 1: Connection refused||0.000500",
        )

    def test_escapes(self) -> None:
        """
        C{\\n}, C{\\r}, C{\\t} and C{%%} are escapes; other backslash and C{%} sequences,
        and a lone one at the end, are written as they are.
        """
        self.assertEqual(out("a\\nb\\rc\\td%%e"), "a\nb\rc\td%e")
        self.assertEqual(out("\\\\n \\x %q 100% \\"), "\\\\n \\x %q 100% \\")

    def test_unclosed(self) -> None:
        """A C{%{} without its C{}} is written, and what follows is read as usual."""
        self.assertEqual(out("%{http_code\\n"), "%{http_code\n")
        self.assertEqual(out("%header{x-two"), "%header{x-two")

    def test_case(self) -> None:
        """Variable names are case-insensitive."""
        self.assertEqual(out("%{HTTP_Code}"), "200")

    def test_header(self) -> None:
        """C{%header{name}} is the first such field, trimmed, or nothing."""
        self.assertEqual(out("[%header{x-TWO}][%header{missing}]"), "[spaced][]")

    def test_unknown(self) -> None:
        """An unknown variable prints nothing, and a warning on stderr where it was met."""
        self.assertEqual(
            write_out("a%{nope}b", INFO),
            [
                (STDOUT, "a"),
                (STDERR, "twistsock: unknown --write-out variable: 'nope'\n"),
                (STDOUT, "b"),
            ],
        )

    def test_streams(self) -> None:
        """C{%{stderr}} and C{%{stdout}} switch where the rest goes."""
        self.assertEqual(
            write_out("1%{stderr}2%{stdout}3", INFO),
            [(STDOUT, "1"), (STDERR, "2"), (STDOUT, "3")],
        )

    def test_onerror(self) -> None:
        """C{%{onerror}} ends the output after a success, and is nothing after a failure."""
        self.assertEqual(out("a%{onerror}b"), "a")
        self.assertEqual(out("a%{onerror}b", FAILED), "ab")

    def test_nothing(self) -> None:
        """An empty format writes nothing."""
        self.assertEqual(write_out("", INFO), [])

    def test_json(self) -> None:
        """
        C{%{json}} is one JSON object of every variable: numbers as numbers (the status
        too), times with six decimals, strings, and C{null} for what is not there.
        """
        text = out("%{json}")
        self.assertIn('"time_total":2.000000,', text)
        self.assertIn('"time_pretransfer":0.250001,', text)
        document = json.loads(text)
        self.assertEqual(list(document), list(VARIABLES))
        self.assertEqual(document["http_code"], 200)
        self.assertEqual(document["errormsg"], None)
        self.assertEqual(document["redirect_url"], None)
        self.assertEqual(document["url_effective"], "https://example.com/b")
        self.assertEqual(document["time_connect"], 0.0025)
        failed = json.loads(out("%{json}", FAILED))
        self.assertEqual(
            (failed["http_code"], failed["http_version"], failed["scheme"], failed["exitcode"]),
            (0, "0", None, 7),
        )

    def test_header_json(self) -> None:
        """
        C{%{header_json}} is the last response's fields, names in lower case with their
        values in lists (a repeated name at its first place), one name a line, as curl.
        """
        self.assertEqual(
            out("%{header_json}"),
            '{"content-type":["text/plain"],\n"x-two":["spaced","again"]\n}',
        )
        self.assertEqual(out("%{header_json}", FAILED), "{\n}")

    def test_json_strings(self) -> None:
        """Strings in C{%{json}} are escaped as JSON."""
        info = TransferInfo(url='http://x/"\\\n', errormsg="é")
        document = json.loads(out("%{json}", info))
        self.assertEqual((document["url"], document["errormsg"]), ('http://x/"\\\n', "é"))

    def test_speed(self) -> None:
        """
        C{speed_download} is whole bytes per second over the total time; with no time at
        all, the size per microsecond.
        """
        info = TransferInfo(url="u", size_download=10, timings=Timings(total=3))
        self.assertEqual(out("%{speed_download}", info), "3")
        info = TransferInfo(url="u", size_download=10)
        self.assertEqual(out("%{speed_download}", info), "10000000")

    def test_rounding(self) -> None:
        """Times are written from whole microseconds, rounded."""
        info = TransferInfo(url="u", timings=Timings(total=0.3, connect=1.0000004))
        self.assertEqual(out("%{time_total} %{time_connect}", info), "0.300000 1.000000")

    def test_parse_head(self) -> None:
        """
        L{parse_head} reads the version, code and fields of the last head (after interim
        responses); nothing gives version C{"0"} and code 0.
        """
        raw = (
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.0 404 Not Found\r\nContent-Type:  text/html \r\nX: 1\r\n\r\n"
        )
        self.assertEqual(
            parse_head(raw), ("1.0", 404, (("Content-Type", "text/html"), ("X", "1")))
        )
        self.assertEqual(parse_head(b""), ("0", 0, ()))
        self.assertEqual(parse_head(b"junk\n\n"), ("0", 0, ()))

    def test_read_format(self) -> None:
        """
        A format read from a file loses its line ends, and the rest of a line after a
        carriage return, as curl reads it.
        """
        self.assertEqual(read_format("%{http_code}\\n\n"), "%{http_code}\\n")
        self.assertEqual(read_format("a\nb\r\nc\rignored\nd"), "abcd")


class ReadFormatTests(SynchronousTestCase):
    """
    C{-w @file} and C{-w @-} read the format before the transfer.
    """

    def setUp(self) -> None:
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def options(self, *args: str) -> Any:
        return _parser().parse_args(["get", *args, "http://h/"])

    def test_file(self) -> None:
        """A file's lines are joined without their ends."""
        path = temporary_directory(self) / "format"
        path.write_text("%{http_code}\\n\n%{url}\n")
        options = self.options()
        self.assertEqual(_read_write_out(options, str(path)), "%{http_code}\\n%{url}")

    def test_stdin(self) -> None:
        """C{-} is stdin."""
        self.patch(sys, "stdin", io.StringIO("X%{http_code}\n"))
        self.assertEqual(_read_write_out(self.options(), "-"), "X%{http_code}")

    def test_missing(self) -> None:
        """
        A file that cannot be read is a warning (none with C{-s}) and an empty format, as
        curl.
        """
        missing = str(temporary_directory(self) / "missing")
        self.assertEqual(_read_write_out(self.options(), missing), "")
        self.assertIn(f"twistsock: Warning: Failed to read {missing}", self.stderr.getvalue())
        self.stderr.truncate(0)
        self.assertEqual(_read_write_out(self.options("-s"), missing), "")
        self.assertEqual(self.stderr.getvalue(), "")


class MemoryCommandTests(SynchronousTestCase):
    """
    C{get -w} in memory: the variables of successes and failures, with exact times.
    """

    def setUp(self) -> None:
        self.stdout = Stdout()
        self.patch(sys, "stdout", self.stdout)
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def test_times(self) -> None:
        """The times written are those of the reactor's clock."""
        options = _parser().parse_args(
            [
                "get",
                "-w",
                "%{http_code} %{time_connect} %{time_starttransfer} %{time_total} "
                "%{size_download} %{num_connects} %{scheme} %{content_type}",
                "http://127.0.0.1/",
            ]
        )
        memory = MemoryReactorClock()
        d = Deferred.fromCoroutine(_get(memory, options, []))
        memory.advance(0.25)
        factory = memory.tcpClients[0][2]
        protocol: Any = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 80))
        protocol.makeConnection(StringTransport())
        memory.advance(0.5)
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
        memory.advance(0.125)
        protocol.dataReceived(b"Content-Length: 3\r\n\r\nabc")
        self.assertEqual(self.successResultOf(d), 0)
        self.assertEqual(
            self.stdout.buffer.getvalue(), b"abc200 0.250000 0.750000 0.875000 3 1 HTTP text/plain"
        )

    def test_failure_before_request_masks_url(self) -> None:
        """
        A transfer that fails before any request (a URL whose user name cannot be sent)
        writes C{url_effective} without the user information, as every other transfer.
        """
        options = _parser().parse_args(
            ["get", "-w", "%{url_effective} %{exitcode}", "http://a%3Ab:secret@127.0.0.1/"]
        )
        d = Deferred.fromCoroutine(_get(MemoryReactorClock(), options, []))
        self.assertEqual(self.successResultOf(d), 3)
        self.assertEqual(self.stdout.buffer.getvalue(), b"http://127.0.0.1/ 3")
        self.assertNotIn("secret", self.stderr.getvalue())

    # Run get with args on a FakeHTTP network; its status once done.
    get = test_cli.ManyURLTests.get

    def test_several_urls(self) -> None:
        """
        Each URL gets its own output, after its body, with its index; the second reuses
        the connection: no new connection, no connect time.
        """
        network = FakeHTTP(lambda request: StubResponse(body=request.target.encode()))
        w = "|%{urlnum} %{url} %{num_connects} %{time_connect}\\n"
        status = self.get(network, "-w", w, "http://example.com/1", "http://example.com/2")
        self.assertEqual(status, 0)
        lines = self.stdout.buffer.getvalue().decode().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[0].startswith("/1|0 http://example.com/1 1 "))
        self.assertEqual(lines[1], "/2|1 http://example.com/2 0 0.000000")

    def test_fail(self) -> None:
        """
        With C{-f}, a 404 writes no body, its error line, then the format with the
        status, exit code 22 and curl's message; no body counts as downloaded (curl stops
        at the head).
        """
        network = FakeHTTP(lambda request: StubResponse(code=404, body=b"gone"))
        w = "%{http_code} %{exitcode} %{errormsg} %{size_download}"
        self.assertEqual(self.get(network, "-f", "-w", w, "http://example.com/"), 22)
        self.assertEqual(
            self.stdout.buffer.getvalue(), b"404 22 The requested URL returned error: 404 0"
        )
        self.assertEqual(
            self.stderr.getvalue(), "twistsock: (22) The requested URL returned error: 404\n"
        )

    def test_retried(self) -> None:
        """
        With C{--retry}, the output is that of the last attempt: its status, its head, its
        connection, as curl's.
        """
        answers = [StubResponse(code=503), StubResponse(body=b"ok")]
        network = FakeHTTP(lambda request: answers.pop(0))
        w = " %{http_code} %{num_connects} %{size_download} %{num_redirects}"
        args = ["-s", "--retry", "1", "-w", w, "http://example.com/"]
        self.assertEqual(self.get(network, *args), 0)
        self.assertEqual(self.stdout.buffer.getvalue(), b"ok 200 1 2 0")

    def test_redirects(self) -> None:
        """
        With C{-L}, the final URL and the redirects followed; without, where the redirect
        points.
        """

        def serve(request: Any) -> StubResponse:
            if request.target == "/a":
                return StubResponse(code=302, headers=(("Location", "/b"),))
            return StubResponse(body=b"b")

        network = FakeHTTP(serve)
        w = " %{http_code} %{num_redirects} %{url_effective} [%{redirect_url}]"
        self.assertEqual(self.get(network, "-L", "-w", w, "http://example.com/a"), 0)
        self.assertTrue(self.stdout.buffer.getvalue().endswith(b" 200 1 http://example.com/b []"))
        self.stdout.buffer = io.BytesIO()
        self.assertEqual(self.get(network, "-w", w, "http://example.com/a"), 0)
        self.assertTrue(
            self.stdout.buffer.getvalue().endswith(
                b" 302 0 http://example.com/a [http://example.com/b]"
            )
        )


CLOSE = "Connection: close"
"""
What C{get} with one URL sends, and curl does not: with it, the server answers both with
the same head, and curl too opens a connection per request.
"""


class CurlComparisonTests(TestCase):
    """
    C{twistsock get -w} and C{curl -w} against the same local server: the deterministic
    variables agree, and the times come in order.
    """

    @inlineCallbacks
    def both(self, *args: str) -> Any:
        """Run curl and twistsock get with C{args}; fire with both results."""
        require_curl()
        curl = yield run_curl(reactor, *args)
        get = yield run_get(reactor, *args)
        return curl, get

    def setUp(self) -> None:
        self.port = listen_web(self, reactor, temporary_directory(self))
        self.base = f"http://127.0.0.1:{self.port}"

    @inlineCallbacks
    def test_deterministic_variables(self) -> Any:
        """
        Status, sizes, redirects, URLs and exit code agree with curl's, for a plain
        response, a redirect followed, a redirect not followed, and a 404 with C{-f}.
        """
        w = (
            "%{http_code} %{response_code} %{size_download} %{num_redirects} "
            "%{url_effective} %{url} %{exitcode} %{errormsg} [%{redirect_url}] "
            "%{http_version} %{content_type} %{method} %{urlnum} %{size_header} "
            "%{num_headers} %{num_connects} %{remote_ip} %{remote_port} %{local_ip}\\n"
        )
        for args in (
            ["/static/hello.txt"],
            ["-L", "/redirect"],
            ["/redirect"],
            ["-f", "/missing"],
            ["-L", "--max-redirs", "2", "/loop"],
        ):
            *flags, path = args
            argv = ["-s", "-o", "/dev/null", "-H", CLOSE, "-w", w, *flags, self.base + path]
            (curl_out, _, curl_code), (get_out, _, get_code) = yield self.both(*argv)
            self.assertEqual(get_out, curl_out, argv)
            self.assertEqual(get_code, curl_code, argv)

    @inlineCallbacks
    def test_effective_url(self) -> Any:
        """
        C{url} is the URL as given; C{url_effective} has a lower-case scheme and a path,
        as curl writes it.
        """
        w = "%{url} %{url_effective}\\n"
        urls = [f"HTTP://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.port}?q#f"]
        for url in urls:
            (curl_out, _, _), (get_out, _, _) = yield self.both(
                "-s", "-o", "/dev/null", "-w", w, url
            )
            self.assertEqual(get_out, curl_out)
        self.assertEqual(get_out, f"{urls[1]} http://127.0.0.1:{self.port}/?q#f\n".encode())

    @inlineCallbacks
    def test_unsupported_scheme(self) -> Any:
        """A URL of another scheme gets its output too, as curl (whose message differs)."""
        w = "[%{url} %{url_effective} %{urlnum} %{http_code} %{exitcode}]"
        (curl_out, _, curl_code), (get_out, _, get_code) = yield self.both(
            "-s", "-w", w, "ftp2://x/y"
        )
        self.assertEqual((get_out, get_code), (curl_out, curl_code))
        self.assertEqual(get_out, b"[ftp2://x/y ftp2://x/y 0 000 1]")

    @inlineCallbacks
    def test_output_not_writable(self) -> Any:
        """
        An C{-o} file that cannot be created: the status that arrived, and exit code 23,
        as curl (whose message differs).
        """
        target = str(temporary_directory(self) / "missing" / "file")
        w = "%{http_code} %{exitcode}"
        argv = ["-s", "-o", target, "-w", w, self.base + "/static/hello.txt"]
        (curl_out, _, curl_code), (get_out, _, get_code) = yield self.both(*argv)
        self.assertEqual((get_out, get_code), (curl_out, curl_code))
        self.assertEqual(get_out, b"200 23")

    @inlineCallbacks
    def test_failure(self) -> Any:
        """
        A refused connection: C{000}, exit code 7 and C{num_connects} 0, as curl (the
        messages differ in wording).
        """
        url = f"http://127.0.0.1:{closed_port(reactor)}/"
        w = (
            "%{http_code} %{exitcode} %{num_connects} %{size_download} %{url_effective} "
            "[%{remote_ip}] %{remote_port}"
        )
        (curl_out, _, curl_code), (get_out, _, get_code) = yield self.both("-s", "-w", w, url)
        self.assertEqual((get_out, get_code), (curl_out, curl_code))
        self.assertEqual(get_out, f"000 7 0 0 {url} [] 0".encode())

    @inlineCallbacks
    def test_several_urls(self) -> Any:
        """
        One output per URL, after each body, as curl; the second URL reuses the
        connection: no new connection, the same peer.
        """
        w = "[%{urlnum} %{http_code} %{size_download} %{remote_ip}:%{remote_port} %{num_connects}]"
        urls = [self.base + "/static/hello.txt", self.base + "/missing"]
        (curl_out, _, _), (get_out, _, _) = yield self.both("-s", "-w", w + "\\n", *urls)
        self.assertEqual(get_out, curl_out)

    @inlineCallbacks
    def test_bad_url_among_several(self) -> Any:
        """
        A URL that cannot be fetched (a bad port, another scheme) among several fails
        alone, with its own output, as curl: the others are transferred.
        """
        w = "[%{urlnum} %{http_code} %{exitcode}]"
        for bad in ("http://127.0.0.1:99999/", "ftp2://x/"):
            urls = [self.base + "/static/hello.txt", bad, self.base + "/static/hello.txt"]
            (curl_out, _, _), (get_out, err, status) = yield self.both("-s", "-w", w, *urls)
            self.assertEqual(get_out, curl_out)
            self.assertIn(b"[1 000 ", get_out)
            self.assertEqual(get_out.count(b" 200 0]"), 2)

    @inlineCallbacks
    def test_json_keys(self) -> Any:
        """
        Every key of C{%{json}} is one of curl's, with a value of the same JSON type, and
        the same value but for times, speeds, the request's size (curl's request has
        other headers) and the local port.
        """
        argv = [
            "-s",
            "-o",
            "/dev/null",
            "-H",
            CLOSE,
            "-L",
            "-w",
            "%{json}",
            self.base + "/redirect",
        ]
        (curl_out, _, _), (get_out, _, _) = yield self.both(*argv)
        curl, get = json.loads(curl_out), json.loads(get_out)
        self.assertLessEqual(set(get), set(curl))
        for key, value in get.items():
            self.assertEqual(type(value), type(curl[key]), key)
            if not key.startswith(("time_", "speed_")) and key not in (
                "size_request",
                "local_port",
            ):
                self.assertEqual(value, curl[key], key)

    @inlineCallbacks
    def test_header_json(self) -> Any:
        """C{%{header_json}} has curl's layout: the same lines, with the same names."""
        argv = ["-s", "-o", "/dev/null", "-H", CLOSE, "-w", "%{header_json}"]
        (curl_out, _, _), (get_out, _, _) = yield self.both(*argv, self.base + "/chunked")
        names = [
            [line.split(b":")[0] for line in output.splitlines()] for output in (curl_out, get_out)
        ]
        self.assertEqual(names[1], names[0])
        self.assertEqual(json.loads(get_out).keys(), json.loads(curl_out).keys())

    @inlineCallbacks
    def test_times_in_order(self) -> Any:
        """
        The times, plain http to a name (so that it is looked up): numbers with six
        decimals, in order, with no TLS handshake.
        """
        w = (
            "%{time_namelookup} %{time_connect} %{time_appconnect} %{time_pretransfer} "
            "%{time_starttransfer} %{time_total} %{time_redirect}"
        )
        url = f"http://localhost:{self.port}/redirect"
        for run in (run_get, run_curl):
            if run is run_curl:
                require_curl()
            out, _, code = yield run(reactor, "-s", "-L", "-o", "/dev/null", "-w", w, url)
            self.assertEqual(code, 0)
            times = out.decode().split()
            self.assertTrue(all(len(t.partition(".")[2]) == 6 for t in times), times)
            lookup, connect, appconnect, pretransfer, start, total, redirect = map(float, times)
            self.assertEqual(appconnect, 0)
            ordered = [lookup, connect, pretransfer, start, total]
            self.assertEqual(ordered, sorted(ordered), run)
            self.assertTrue(0 < redirect < total, run)

    @inlineCallbacks
    def test_escapes_and_streams(self) -> Any:
        """Escapes, C{%%}, C{%{stderr}} and unknown variables, as curl."""
        w = "a\\tb\\\\n%%\\x%{stderr}E%{stdout}O%{nope}%{http_code"
        argv = ["-s", "-o", "/dev/null", "-w", w, self.base + "/static/hello.txt"]
        (curl_out, curl_err, _), (get_out, get_err, _) = yield self.both(*argv)
        self.assertEqual(get_out, curl_out)
        self.assertEqual(get_err.replace(b"twistsock", b"curl"), curl_err)

    @inlineCallbacks
    def test_format_file(self) -> Any:
        """C{-w @file} reads the format from a file as curl does."""
        path = temporary_directory(self) / "format"
        path.write_text("%{http_code}\\n\n%{size_download}\n")
        argv = ["-s", "-o", "/dev/null", "-w", f"@{path}", self.base + "/static/hello.txt"]
        (curl_out, _, _), (get_out, _, _) = yield self.both(*argv)
        self.assertEqual(get_out, curl_out)
        self.assertEqual(get_out, b"200\n13")
