"""
Tests for the C{twistsock} command: argument handling in-process, then C{get} and C{probe}
as subprocesses (C{python -m twistsock}) against servers on this test's reactor.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from typing import Any

from twisted.internet import error
from twisted.internet import reactor as _reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.testing import StringTransport
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests._http_servers import (
    BINARY,
    NeverResolves,
    closed_port,
    listen_canned,
    listen_web,
    temporary_directory,
)
from tests._memory import MemoryReactorClock
from twistsock._cli import _parser, main
from twistsock._cli._get import _get, _Terminal, write_atomically
from twistsock._cli._probe import _probe_all, parse_target, probe
from twistsock.http._request import build_request, parse_url
from twistsock.testing import FakeHTTP, Fault, StubResponse

reactor: Any = _reactor

#: No proxy settings: neither curl nor twistsock may leave 127.0.0.1.
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}

#: C{python -c} code that runs the command with a name resolver that finds no address for
#: any name: an unresolvable host, without a real DNS query.
NO_DNS = """
import sys
from twisted.internet import reactor
class NoAddresses:
    def resolveHostName(self, receiver, hostName, *args, **kwargs):
        receiver.resolutionBegan(None)
        receiver.resolutionComplete()
reactor.installNameResolver(NoAddresses())
from twistsock._cli import main
sys.exit(main())
"""

CANNED = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"X-Spaced:   value with  spaces\r\n"
    b"Content-Length: 6\r\n"
    b"\r\n"
    b"hello\n"
)
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"
)


def without_date(output: bytes) -> bytes:
    """C{output} with the value of its C{Date} header (one at most) replaced by C{...}."""
    head, blank, body = output.partition(b"\r\n\r\n")
    lines = [b"Date: ..." if line.startswith(b"Date: ") else line for line in head.split(b"\r\n")]
    return b"\r\n".join(lines) + blank + body


class ArgumentTests(SynchronousTestCase):
    """
    Bad arguments give one line on stderr and an exit status, without a reactor.
    """

    def setUp(self) -> None:
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def assert_one_line(self, code: int, argv: list[str], line: str) -> None:
        """C{main(argv)} returns C{code} and writes exactly C{line} to stderr."""
        self.assertEqual(main(argv), code)
        self.assertEqual(self.stderr.getvalue(), line + "\n")

    def test_missing_url(self) -> None:
        """
        C{get} without a URL exits 2 with one line.
        """
        self.assert_one_line(
            2, ["get"], "twistsock: the following arguments are required: URL "
            "(try 'twistsock get --help')",
        )  # fmt: skip

    def test_bad_option_value(self) -> None:
        """
        A non-numeric C{--max-time} exits 2 with one line.
        """
        self.assertEqual(main(["get", "-m", "soon", "http://x/"]), 2)
        self.assertEqual(self.stderr.getvalue().count("\n"), 1)
        self.assertIn("--max-time", self.stderr.getvalue())

    def test_numeric_options_checked(self) -> None:
        """
        Every numeric option is range-checked with a short one-line message and exit 2:
        counts out of range or not integers, and timeouts that are not finite and positive;
        the message states the range rather than listing every allowed value.
        """
        cases = [
            (["probe", "-c", "0", "h:1"], "-c/--concurrency", "an integer from 1 to 1000"),
            (["probe", "-c", "1001", "h:1"], "-c/--concurrency", "an integer from 1 to 1000"),
            (["probe", "-c", "x", "h:1"], "-c/--concurrency", "an integer from 1 to 1000"),
            (["probe", "-t", "nan", "h:1"], "-t/--timeout", "seconds > 0"),
            (["probe", "-t", "0", "h:1"], "-t/--timeout", "seconds > 0"),
            (["get", "-m", "-1", "http://x/"], "-m/--max-time", "seconds > 0"),
            (["get", "-m", "inf", "http://x/"], "-m/--max-time", "seconds > 0"),
            (["get", "-m", "1e400", "http://x/"], "-m/--max-time", "seconds > 0"),
            (["get", "--connect-timeout", "NaN", "http://x/"], "--connect-timeout", "seconds"),
            (["get", "--max-redirs", "-1", "http://x/"], "--max-redirs", "an integer >= 0"),
            (["get", "--max-filesize", "1.5", "http://x/"], "--max-filesize", "an integer >= 0"),
            (
                ["get", "--max-filesize", "9" * 5000, "http://x/"],
                "--max-filesize",
                "an integer >= 0, not '99999999999999999999...'",
            ),
        ]
        for argv, option, expected in cases:
            self.stderr.seek(0)
            self.stderr.truncate()
            self.assertEqual(main(argv), 2, argv)
            line = self.stderr.getvalue()
            self.assertEqual(line.count("\n"), 1, argv)
            self.assertLess(len(line), 160, argv)
            self.assertIn(f"argument {option}", line)
            self.assertIn(f"expected {expected}", line)
        self.assertEqual(_parser().parse_args(["probe", "-c", "1000", "h:1"]).concurrency, 1000)
        self.assertEqual(_parser().parse_args(["get", "-m", "0.5", "u"]).max_time, 0.5)

    def test_unsupported_scheme(self) -> None:
        """
        An ftp URL exits 1, before any connection.
        """
        self.assert_one_line(1, ["get", "ftp://x/"], 'twistsock: (1) Protocol "ftp" not supported')

    def test_malformed_url(self) -> None:
        """
        A URL with a space exits 3.
        """
        self.assertEqual(main(["get", "http://a b/"]), 3)
        self.assertTrue(self.stderr.getvalue().startswith("twistsock: (3) URL rejected"))

    def test_header_injection(self) -> None:
        """
        A C{-H} value with CR/LF exits 43 before anything is sent.
        """
        self.assertEqual(main(["get", "-H", "X: a\r\nInjected: 1", "http://x/"]), 43)
        self.assertEqual(self.stderr.getvalue().count("\n"), 1)

    def test_silent(self) -> None:
        """
        C{-s} hides the error line (as curl does); C{-sS} shows it again.
        """
        self.assertEqual(main(["get", "-s", "ftp://x/"]), 1)
        self.assertEqual(self.stderr.getvalue(), "")
        self.assertEqual(main(["get", "-sS", "ftp://x/"]), 1)
        self.assertEqual(self.stderr.getvalue().count("\n"), 1)

    def test_bad_probe_target(self) -> None:
        """
        A probe target that is not C{HOST:PORT} exits 2.
        """
        self.assert_one_line(
            2, ["probe", "localhost"], "twistsock: bad target 'localhost': expected HOST:PORT"
        )

    def test_probe_url(self) -> None:
        """
        A URL where C{HOST:PORT} was expected is reported as such, not as an IPv6 address
        without brackets.
        """
        self.assert_one_line(
            2,
            ["probe", "http://127.0.0.1:8080/"],
            "twistsock: bad target 'http://127.0.0.1:8080/': expected HOST:PORT, not a URL "
            "(e.g. 127.0.0.1:8080)",
        )

    def test_parse_target(self) -> None:
        """
        Targets are C{HOST:PORT}, with IPv6 literals in brackets; ports are 1-65535.
        """
        self.assertEqual(parse_target("example.com:80"), ("example.com", 80))
        self.assertEqual(parse_target("[::1]:8080"), ("::1", 8080))
        for bad in ["::1:80", "host", "host:", ":80", "host:0", "host:65536", "host:x"]:
            self.assertRaises(ValueError, parse_target, bad)


class HelperTests(SynchronousTestCase):
    """
    The atomic writer and the terminal observer.
    """

    def test_write_atomically(self) -> None:
        """
        The file appears with the data and nothing else is left in the directory.
        """
        directory = temporary_directory(self)
        write_atomically(str(directory / "out.bin"), b"data")
        self.assertEqual(os.listdir(directory), ["out.bin"])
        self.assertEqual((directory / "out.bin").read_bytes(), b"data")

    def test_write_failure_leaves_nothing(self) -> None:
        """
        When the rename fails, the temporary file is removed and nothing is left.
        """
        directory = temporary_directory(self)
        (directory / "out.bin").mkdir(parents=True)  # a directory cannot be replaced
        self.assertRaises(OSError, write_atomically, str(directory / "out.bin"), b"data")
        self.assertEqual(os.listdir(directory), ["out.bin"])

    def test_write_synced_before_rename(self) -> None:
        """
        The temporary file is flushed to disk (C{fsync}, with all the data in it) before
        it is renamed over the target, and the directory is synced after.
        """
        directory = temporary_directory(self)
        events: list[tuple[str, int, int]] = []
        fsync, replace = os.fsync, os.replace

        def record_sync(fd: int) -> None:
            info = os.fstat(fd)
            events.append(("fsync", info.st_ino, info.st_size))
            fsync(fd)

        def record_replace(source: str, target: str) -> None:
            events.append(("replace", os.stat(source).st_ino, 0))
            replace(source, target)

        self.patch(os, "fsync", record_sync)
        self.patch(os, "replace", record_replace)
        write_atomically(str(directory / "out.bin"), b"data")
        inode = (directory / "out.bin").stat().st_ino
        self.assertEqual(events[:2], [("fsync", inode, 4), ("replace", inode, 0)])
        self.assertEqual(events[2][:2], ("fsync", directory.stat().st_ino))

    def test_write_keeps_permissions(self) -> None:
        """
        Replacing a file keeps its permission bits (not set-user-ID: new bytes should not
        inherit it); a new file gets 0666 less the umask, as curl's would.
        """
        directory = temporary_directory(self)
        target = directory / "out"
        for before, after in [(0o600, 0o600), (0o755, 0o755), (0o4755, 0o755)]:
            target.write_bytes(b"old")
            os.chmod(target, before)
            write_atomically(str(target), b"new")
            self.assertEqual(
                (target.read_bytes(), target.stat().st_mode & 0o7777), (b"new", after)
            )
        old = os.umask(0o027)
        self.addCleanup(os.umask, old)
        write_atomically(str(directory / "fresh"), b"new")
        self.assertEqual((directory / "fresh").stat().st_mode & 0o7777, 0o640)

    def test_verbose(self) -> None:
        """
        C{-v} shows request lines with C{>} and response lines with C{<}.
        """
        stream = io.StringIO()
        terminal = _Terminal(stream, verbose=True, progress=False)
        request = build_request(parse_url("http://h/"))
        terminal.request_sent(request, request.to_bytes())
        terminal.response_head(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n", 0)
        lines = stream.getvalue().splitlines()
        self.assertIn("> GET / HTTP/1.1", lines)
        self.assertIn("> Host: h", lines)
        self.assertEqual(lines[-3:], ["< HTTP/1.1 200 OK", "< A: b", "<"])

    def test_progress_bar(self) -> None:
        """
        With progress on, a tqdm bar is drawn on the stream and removed at the end; with
        progress off, nothing is written.
        """
        stream = io.StringIO()
        terminal = _Terminal(stream, verbose=False, progress=True)
        terminal.response_head(b"HTTP/1.1 200 OK\r\n\r\n", 2048)
        terminal.body_received(1024)
        terminal.body_received(2048)
        terminal.close()
        self.assertIn("2.05k", stream.getvalue())
        quiet = io.StringIO()
        terminal = _Terminal(quiet, verbose=False, progress=False)
        terminal.response_head(b"HTTP/1.1 200 OK\r\n\r\n", 2048)
        terminal.body_received(2048)
        terminal.close()
        self.assertEqual(quiet.getvalue(), "")


class TerminalStream(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class ProgressTests(SynchronousTestCase):
    """
    C{get -o} shows a progress bar only when stderr is a terminal.
    """

    def download(self, stderr: io.StringIO, *extra: str) -> str:
        """Run C{get -o} in memory with C{stderr}; return what the file holds."""
        self.patch(sys, "stderr", stderr)
        target = temporary_directory(self) / "out"
        options = _parser().parse_args(["get", "-o", str(target), *extra, "http://h/"])
        memory = MemoryReactorClock()
        d = Deferred.fromCoroutine(_get(memory, options, []))
        protocol = memory.tcpClients[0][2].buildProtocol(IPv4Address("TCP", "1.2.3.4", 80))
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n")
        protocol.dataReceived(b"x" * 3000)
        self.assertEqual(self.successResultOf(d), 0)
        return target.read_text()

    def test_terminal(self) -> None:
        """
        On a terminal, the bar is drawn while the file downloads.
        """
        stderr = TerminalStream()
        self.assertEqual(self.download(stderr), "x" * 3000)
        self.assertIn("3.00k", stderr.getvalue())

    def test_not_terminal(self) -> None:
        """
        When stderr is not a terminal, nothing is written to it.
        """
        stderr = io.StringIO()
        self.assertEqual(self.download(stderr), "x" * 3000)
        self.assertEqual(stderr.getvalue(), "")

    def test_silent(self) -> None:
        """
        C{-s} hides the bar even on a terminal.
        """
        stderr = TerminalStream()
        self.download(stderr, "-s")
        self.assertEqual(stderr.getvalue(), "")


class InterruptTests(SynchronousTestCase):
    """
    Ctrl-C (the reactor shutting down) ends C{get} and C{probe} quietly with status 130.
    """

    def shut_down(self, memory: MemoryReactorClock) -> None:
        """Run the reactor's before-shutdown triggers, as Ctrl-C would."""
        for function, args, kwargs in memory.triggers["before"]["shutdown"]:
            function(*args, **kwargs)

    def test_get(self) -> None:
        """
        An interrupted C{get} aborts its connection, prints nothing and returns 130.
        """
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        memory = MemoryReactorClock()
        options = _parser().parse_args(["get", "http://h/"])
        d = Deferred.fromCoroutine(_get(memory, options, []))
        protocol = memory.tcpClients[0][2].buildProtocol(IPv4Address("TCP", "1.2.3.4", 80))
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.shut_down(memory)
        self.assertEqual(self.successResultOf(d), 130)
        self.assertTrue(transport.disconnected)
        self.assertEqual(stderr.getvalue(), "")

    def test_before_the_reactor(self) -> None:
        """
        Ctrl-C while the command is still loading (Twisted and the client imported when
        the command starts) returns 130 and prints nothing, as during a transfer.
        """
        import twistsock._cli._get as get_module

        def interrupted(options: Any) -> int:
            raise KeyboardInterrupt()

        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        self.patch(get_module, "get_command", interrupted)
        self.assertEqual(main(["get", "http://h/"]), 130)
        self.assertEqual(stderr.getvalue(), "")

    def test_probe(self) -> None:
        """
        An interrupted C{probe} stops printing and returns 130.
        """
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        memory = MemoryReactorClock()
        d = Deferred.fromCoroutine(_probe_all(memory, [("a:1", "a", 1)], 3, 1))
        self.shut_down(memory)
        self.assertEqual(self.successResultOf(d), 130)
        self.assertEqual(out.getvalue(), "")

    def test_finished_work_ignores_shutdown(self) -> None:
        """
        Once the work is done, the shutdown at the end of the command changes nothing.
        """
        self.patch(sys, "stdout", io.StringIO())
        memory = MemoryReactorClock()
        d = Deferred.fromCoroutine(_probe_all(memory, [("a:1", "a", 1)], 3, 1))
        memory.advance(3)
        self.assertEqual(self.successResultOf(d), 1)
        self.shut_down(memory)


class Stdout:
    """A stand-in for C{sys.stdout} whose C{buffer} collects the bytes written."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()


class ManyURLTests(SynchronousTestCase):
    """
    C{get URL URL ...} shares connections, one transfer at a time or, with C{-Z}, up to
    C{--parallel-max} at once; C{-o} names pair with the URLs in order.
    """

    def setUp(self) -> None:
        self.stdout = Stdout()
        self.patch(sys, "stdout", self.stdout)
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def get(self, network: FakeHTTP, *args: str) -> int:
        """Run C{get} with C{args} on C{network}; return its status once done."""
        options = _parser().parse_args(["get", *args])
        d = Deferred.fromCoroutine(_get(network.reactor, options, []))
        for _ in range(1000):
            network.advance(0.01)
            if d.called:
                break
        return self.successResultOf(d)

    def test_sequential_reuse(self) -> None:
        """
        Several URLs are fetched in order over one connection; the bodies are written
        in order.
        """
        network = FakeHTTP(lambda request: StubResponse(body=request.target.encode() + b";"))
        urls = [f"http://example.com/{i}" for i in range(5)]
        self.assertEqual(self.get(network, *urls), 0)
        self.assertEqual(self.stdout.buffer.getvalue(), b"/0;/1;/2;/3;/4;")
        self.assertEqual(len(network.reactor.tcpClients), 1)

    def test_parallel_bounded(self) -> None:
        """
        With C{-Z --parallel-max 3}, 30 URLs are fetched with at most 3 connections, and
        each C{-o} file gets its URL's body.
        """
        network = FakeHTTP(lambda request: StubResponse(body=request.target.encode()))
        directory = temporary_directory(self)
        args = ["-Z", "--parallel-max", "3"]
        for i in range(30):
            args += ["-o", str(directory / f"f{i}")]
        args += [f"http://example.com/{i}" for i in range(30)]
        self.assertEqual(self.get(network, *args), 0)
        self.assertLessEqual(len(network.reactor.tcpClients), 3)
        for i in range(30):
            self.assertEqual((directory / f"f{i}").read_bytes(), f"/{i}".encode())

    def test_many_urls_bounded(self) -> None:
        """
        1,000 URLs with C{-Z --parallel-max 20} complete over at most 20 connections.
        """
        network = FakeHTTP(lambda request: StubResponse(body=b"."))
        urls = [f"http://example.com/{i}" for i in range(1000)]
        self.assertEqual(self.get(network, "-Z", "--parallel-max", "20", *urls), 0)
        self.assertEqual(self.stdout.buffer.getvalue(), b"." * 1000)
        self.assertEqual(len(network.requests), 1000)
        self.assertLessEqual(len(network.reactor.tcpClients), 20)

    def test_failures(self) -> None:
        """
        A failed transfer does not stop the others; the status is the last failure's.
        """
        network = FakeHTTP(lambda request: StubResponse(body=b"ok;"))
        network.fault("bad.example", Fault.unresolvable())
        network.fault("refused.example", Fault.refused())
        status = self.get(
            network,
            "http://example.com/",
            "http://bad.example/",
            "http://example.com/",
            "http://refused.example/",
            "http://example.com/",
        )
        self.assertEqual((status, self.stdout.buffer.getvalue()), (7, b"ok;ok;ok;"))
        self.assertEqual(
            self.stderr.getvalue(),
            "twistsock: (6) Could not resolve host: bad.example\n"
            "twistsock: (7) Failed to connect to refused.example port 80: Connection refused\n",
        )


class ProbeTests(SynchronousTestCase):
    """
    C{probe} against a memory reactor: outcomes, time taken, and the concurrency bound.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def test_open(self) -> None:
        """
        A connection that succeeds is C{open}, and is closed at once.
        """
        d = Deferred.fromCoroutine(probe(self.reactor, "example.com", 80, 3))
        self.reactor.advance(0.25)
        protocol = self.reactor.tcpClients[0][2].buildProtocol(IPv4Address("TCP", "1.2.3.4", 80))
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertEqual(self.successResultOf(d), ("open", 0.25))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_refused(self) -> None:
        """
        A refused connection is C{refused}.
        """
        d = Deferred.fromCoroutine(probe(self.reactor, "example.com", 80, 3))
        factory = self.reactor.tcpClients[0][2]
        factory.clientConnectionFailed(None, Failure(error.ConnectionRefusedError()))
        self.reactor.advance(1)
        self.assertEqual(self.successResultOf(d)[0], "refused")

    def test_ip_literals(self) -> None:
        """
        IPv4 and IPv6 literals are connected to at once, without the name resolver, and
        a refusal is reported at once (C{HostnameEndpoint} waits for its next 0.3 s
        attempt tick, which showed in the time taken).
        """
        self.reactor.installNameResolver(NeverResolves())  # type: ignore[arg-type]
        for host in ["127.0.0.1", "::1"]:
            d = Deferred.fromCoroutine(probe(self.reactor, host, 81, 3))
            host_, port, factory, timeout, _ = self.reactor.tcpClients[-1]
            self.assertEqual((host_, port, timeout), (host, 81, 3))
            factory.clientConnectionFailed(None, Failure(error.ConnectionRefusedError()))
            self.assertEqual(self.successResultOf(d), ("refused", 0))

    def test_timeout(self) -> None:
        """
        No answer within the timeout is C{timeout}, after exactly the timeout.
        """
        d = Deferred.fromCoroutine(probe(self.reactor, "example.com", 80, 3))
        self.reactor.advance(2.9)
        self.assertNoResult(d)
        self.reactor.advance(0.1)
        self.assertEqual(self.successResultOf(d), ("timeout", 3.0))

    def test_bounded(self) -> None:
        """
        With C{--concurrency 1} the second target is tried only when the first is done;
        lines come out in argument order and the status is 1 unless all are open.
        """
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        targets = [("a:1", "a", 1), ("b:2", "b", 2)]
        d = Deferred.fromCoroutine(_probe_all(self.reactor, targets, 3, 1))
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.reactor.advance(3)
        self.assertEqual(len(self.reactor.tcpClients), 2)
        self.assertEqual(out.getvalue(), "a:1 timeout 3000.0 ms\n")
        self.reactor.advance(3)
        self.assertEqual(self.successResultOf(d), 1)
        self.assertEqual(out.getvalue().splitlines()[1], "b:2 timeout 3000.0 ms")


class CommandTests(TestCase):
    """
    C{python -m twistsock} as a subprocess.
    """

    def run_(self, *args: str) -> Any:
        """Run the command; the Deferred fires with C{(stdout, stderr, status)}."""
        return getProcessOutputAndValue(
            sys.executable, ["-m", "twistsock", *args], env=ENV, reactor=reactor
        )

    def run_without_dns(self, *args: str) -> Any:
        """Like L{run_}, but no name resolves (L{NO_DNS}) and none is looked up for real."""
        return getProcessOutputAndValue(
            sys.executable, ["-c", NO_DNS, *args], env=ENV, reactor=reactor
        )

    def web(self) -> str:
        """Start the twisted.web test site; return its base URL."""
        directory = temporary_directory(self)
        return f"http://127.0.0.1:{listen_web(self, reactor, directory)}"

    @inlineCallbacks
    def assert_fails_with(self, code: int, line: bytes, *args: str) -> Any:
        """The command exits C{code} with exactly C{line} on stderr and nothing on stdout."""
        out, err, status = yield self.run_(*args)
        self.assertEqual((status, err, out), (code, line + b"\n", b""))

    @inlineCallbacks
    def test_include(self) -> Any:
        """
        C{get -i} prints the status line and headers exactly as received, then the body
        (chunks joined), for a sized and a chunked body.
        """
        for canned, body in [(CANNED, b"hello\n"), (CHUNKED, b"hello world")]:
            port, _ = listen_canned(self, reactor, canned, "close")
            out, err, status = yield self.run_("get", "-i", f"http://127.0.0.1:{port}/")
            self.assertEqual((status, err), (0, b""))
            head = canned[: canned.index(b"\r\n\r\n") + 4]
            self.assertEqual(out, head + body)

    @inlineCallbacks
    def test_include_like_curl(self) -> Any:
        """
        The acceptance test: C{twistsock get -i URL} prints what C{curl -i URL} prints
        (status line, headers, body) against a C{twisted.web} server (the root, a static
        file, a binary file, a chunked body, a redirect, a 404) and a raw one.  curl is
        told C{Connection: close}, as twistsock sends it, so that both get the same
        response; only the C{Date} values, which differ from request to request, are
        set aside.
        """
        curl = shutil.which("curl")
        if curl is None:
            self.skipTest("curl is not installed")
        base = self.web()
        paths = ["/", "/static/hello.txt", "/static/binary.bin", "/chunked", "/redirect"]
        urls = [base + path for path in [*paths, "/missing"]]
        port, _ = listen_canned(self, reactor, CHUNKED, "close")
        urls.append(f"http://127.0.0.1:{port}/")
        for url in urls:
            ours, err, status = yield self.run_("get", "-i", url)
            self.assertEqual((status, err), (0, b""), url)
            theirs, err, status = yield getProcessOutputAndValue(
                curl, ["-s", "-S", "-i", "-H", "Connection: close", url], env=ENV
            )
            self.assertEqual((status, err), (0, b""), url)
            self.assertTrue(theirs.startswith(b"HTTP/1.1 "), url)
            self.assertEqual(without_date(ours), without_date(theirs), url)

    @inlineCallbacks
    def test_raw(self) -> Any:
        """
        C{--raw} prints exactly the bytes received, chunk framing included.
        """
        port, _ = listen_canned(self, reactor, CHUNKED, "close")
        out, _, status = yield self.run_("get", "--raw", f"http://127.0.0.1:{port}/")
        self.assertEqual((status, out), (0, CHUNKED))

    @inlineCallbacks
    def test_headers_sent(self) -> Any:
        """
        C{-H} headers are sent after the default ones.
        """
        port, factory = listen_canned(self, reactor, CANNED, "close")
        yield self.run_("get", "-H", "X-One: 1", "-H", "X-Two: 2", f"http://127.0.0.1:{port}/")
        self.assertIn(b"Connection: close\r\nX-One: 1\r\nX-Two: 2\r\n\r\n", factory.requests[0])

    @inlineCallbacks
    def test_binary_body(self) -> Any:
        """
        A binary body (every byte value) reaches stdout unchanged.
        """
        out, _, status = yield self.run_("get", self.web() + "/static/binary.bin")
        self.assertEqual((status, out), (0, BINARY))

    @inlineCallbacks
    def test_location(self) -> Any:
        """
        Without C{-L} the redirect itself is printed; with C{-L} the final body.
        """
        base = self.web()
        out, _, status = yield self.run_("get", base + "/redirect")
        self.assertEqual(status, 0)
        self.assertNotEqual(out, b"hello, world\n")
        out, _, status = yield self.run_("get", "-L", base + "/redirect")
        self.assertEqual((status, out), (0, b"hello, world\n"))
        yield self.assert_fails_with(
            47, b"twistsock: (47) Maximum (2) redirects followed",
            "get", "-L", "--max-redirs", "2", base + "/loop",
        )  # fmt: skip

    @inlineCallbacks
    def test_bad_location(self) -> Any:
        """
        With C{-L}, a C{Location} that is not a URL exits 3 with one line (as curl), not
        with a traceback; an empty C{Location} makes the redirect the final response.
        """
        bad = b"HTTP/1.1 302 Found\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n"
        port, _ = listen_canned(self, reactor, bad, "close")
        yield self.assert_fails_with(
            3, b"twistsock: (3) URL rejected: bad redirect target (Invalid IPv6 URL): "
            b"'http://[::1'", "get", "-L", f"http://127.0.0.1:{port}/",
        )  # fmt: skip
        empty = b"HTTP/1.1 302 Found\r\nLocation:\r\nContent-Length: 2\r\n\r\nhi"
        port, factory = listen_canned(self, reactor, empty, "close")
        out, err, status = yield self.run_("get", "-L", f"http://127.0.0.1:{port}/")
        self.assertEqual((status, out, err, len(factory.requests)), (0, b"hi", b"", 1))

    @inlineCallbacks
    def test_verbose(self) -> Any:
        """
        C{-v} writes the request and response headers to stderr, the body to stdout.
        """
        out, err, status = yield self.run_("get", "-v", self.web() + "/static/hello.txt")
        self.assertEqual((status, out), (0, b"hello, world\n"))
        self.assertIn(b"> GET /static/hello.txt HTTP/1.1\n", err)
        self.assertIn(b"< HTTP/1.1 200 OK\n", err)

    @inlineCallbacks
    def test_fail(self) -> Any:
        """
        C{-f} turns a 404 into exit 22 and prints nothing; without it, the body is printed.
        """
        url = self.web() + "/missing"
        yield self.assert_fails_with(
            22, b"twistsock: (22) The requested URL returned error: 404", "get", "-f", url
        )
        out, _, status = yield self.run_("get", url)
        self.assertEqual((status, out), (0, b"status body\n"))

    @inlineCallbacks
    def test_output(self) -> Any:
        """
        C{-o FILE} writes the body to FILE and nothing to stdout.
        """
        directory = temporary_directory(self)
        target = directory / "hello.txt"
        out, err, status = yield self.run_(
            "get", "-o", str(target), self.web() + "/static/hello.txt"
        )
        self.assertEqual((status, out, err), (0, b"", b""))
        self.assertEqual(target.read_bytes(), b"hello, world\n")
        self.assertEqual(os.listdir(directory), ["hello.txt"])

    @inlineCallbacks
    def test_output_stdout(self) -> Any:
        """
        C{-o -} writes the body to stdout, as curl does, and no file named C{-}.
        """
        directory = temporary_directory(self)
        out, err, status = yield getProcessOutputAndValue(
            sys.executable,
            ["-m", "twistsock", "get", "-o", "-", self.web() + "/static/hello.txt"],
            env=ENV,
            path=str(directory),
            reactor=reactor,
        )
        self.assertEqual((status, out, err), (0, b"hello, world\n", b""))
        self.assertEqual(os.listdir(directory), [])

    @inlineCallbacks
    def test_output_directory_missing(self) -> Any:
        """
        C{-o} into a directory that does not exist exits 23 naming the file asked for,
        not the temporary file it would have written first.
        """
        directory = temporary_directory(self)
        target = directory / "missing" / "file"
        out, err, status = yield self.run_(
            "get", "-o", str(target), self.web() + "/static/hello.txt"
        )
        self.assertEqual(
            (status, out, err.decode()),
            (23, b"", f"twistsock: (23) Failed writing {target}: No such file or directory\n"),
        )

    @inlineCallbacks
    def test_output_atomic(self) -> Any:
        """
        A transfer cut short (exit 18) leaves no file at all, not even a temporary one,
        and an existing file is left as it was.
        """
        port, _ = listen_canned(
            self, reactor, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", "close"
        )
        directory = temporary_directory(self)
        url = f"http://127.0.0.1:{port}/"
        out, err, status = yield self.run_("get", "-o", str(directory / "new"), url)
        self.assertEqual((status, err.count(b"\n")), (18, 1))
        self.assertEqual(os.listdir(directory), [])
        (directory / "old").write_bytes(b"before")
        out, err, status = yield self.run_("get", "-o", str(directory / "old"), url)
        self.assertEqual(status, 18)
        self.assertEqual(os.listdir(directory), ["old"])
        self.assertEqual((directory / "old").read_bytes(), b"before")

    @inlineCallbacks
    def test_stdout_as_it_arrives(self) -> Any:
        """
        C{get} writes the body to stdout as it arrives: what came before a server stalled
        is out when the time runs out (exit 28), and with C{-i} the head before it.
        """
        canned = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part"
        port, _ = listen_canned(self, reactor, canned, "stall")
        url = f"http://127.0.0.1:{port}/"
        out, err, status = yield self.run_("get", "-m", "1", url)
        self.assertEqual((status, out), (28, b"first part"))
        out, err, status = yield self.run_("get", "-i", "-m", "1", url)
        self.assertEqual((status, out), (28, canned))

    @inlineCallbacks
    def test_max_filesize(self) -> Any:
        """
        C{--max-filesize} bounds the file written: a body announced over it, or streamed
        past it (chunked), exits 63 and leaves no file.
        """
        directory = temporary_directory(self)
        for canned in [CANNED, CHUNKED]:
            port, _ = listen_canned(self, reactor, canned, "close")
            out, err, status = yield self.run_(
                "get",
                "--max-filesize",
                "4",
                "-o",
                str(directory / "f"),
                f"http://127.0.0.1:{port}/",
            )
            self.assertEqual(
                (status, err),
                (63, b"twistsock: (63) Maximum file size exceeded: the body is over 4 bytes\n"),
            )
            self.assertEqual(os.listdir(directory), [])

    @inlineCallbacks
    def test_output_constant_memory(self) -> Any:
        """
        C{get -o} writes a 160 MiB body to the file as it arrives: the process's peak
        resident memory stays under half the body's size, and the file is complete.
        """
        if not os.path.exists("/proc/self/status"):
            self.skipTest("the peak resident memory is read from Linux's /proc")
        size = 160 * 2**20
        body = b"0123456789abcdef" * (size // 16)
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body
        port, _ = listen_canned(self, reactor, reply, "close")
        del body, reply
        target = temporary_directory(self) / "big"
        # The peak resident memory of the process itself (VmHWM: ru_maxrss would count
        # what the forking test process held).
        code = (
            "import runpy, sys\n"
            "sys.argv = ['twistsock', *sys.argv[1:]]\n"
            "try:\n"
            "    runpy.run_module('twistsock', run_name='__main__')\n"
            "finally:\n"
            "    status = open('/proc/self/status').read()\n"
            "    sys.stderr.write(status.split('VmHWM:')[1].split()[0] + '\\n')\n"
        )
        args = ["get", "--max-filesize", str(size), "-o", str(target)]
        out, err, status = yield getProcessOutputAndValue(
            sys.executable, ["-c", code, *args, f"http://127.0.0.1:{port}/"], env=ENV
        )
        self.assertEqual(status, 0, err)
        self.assertEqual(target.stat().st_size, size)
        self.assertLess(int(err.split()[-1]) * 1024, size // 2)  # VmHWM is in kB

    @inlineCallbacks
    def test_unresolvable(self) -> Any:
        """
        An unresolvable host exits 6 with curl's one line.
        """
        out, err, status = yield self.run_without_dns("get", "http://nonexistent.invalid/")
        line = b"twistsock: (6) Could not resolve host: nonexistent.invalid\n"
        self.assertEqual((status, err, out), (6, line, b""))

    def test_refused(self) -> Any:
        """
        A closed port exits 7 with one line.
        """
        port = closed_port(reactor)
        line = f"twistsock: (7) Failed to connect to 127.0.0.1 port {port}: Connection refused"
        return self.assert_fails_with(7, line.encode(), "get", f"http://127.0.0.1:{port}/")

    @inlineCallbacks
    def test_never_answers(self) -> Any:
        """
        A server that never answers exits 28 after C{-m 1}, with one line.
        """
        port, _ = listen_canned(self, reactor, b"", "stall")
        url = f"http://127.0.0.1:{port}/"
        yield self.assert_fails_with(
            28, f"twistsock: (28) Operation timed out after 1 s: {url}".encode(),
            "get", "-m", "1", url,
        )  # fmt: skip

    def test_bad_scheme(self) -> Any:
        """
        An unsupported scheme exits 1.
        """
        return self.assert_fails_with(
            1, b'twistsock: (1) Protocol "gopher" not supported', "get", "gopher://x/"
        )

    @inlineCallbacks
    def test_probe(self) -> Any:
        """
        C{probe} prints one line per target in argument order and exits 0 only when all
        are open.
        """
        port, _ = listen_canned(self, reactor, b"", "close")
        closed = closed_port(reactor)
        targets = [f"127.0.0.1:{port}", f"127.0.0.1:{closed}", "nonexistent.invalid:80"]
        out, err, status = yield self.run_without_dns("probe", *targets)
        self.assertEqual((status, err), (1, b""))
        lines = out.decode().splitlines()
        self.assertEqual([line.split()[:2] for line in lines], [
            [targets[0], "open"], [targets[1], "refused"], [targets[2], "unresolvable"]
        ])  # fmt: skip
        self.assertTrue(all(line.endswith(" ms") for line in lines))
        out, err, status = yield self.run_("probe", targets[0])
        self.assertEqual((status, out.split()[1]), (0, b"open"))
