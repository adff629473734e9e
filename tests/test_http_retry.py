"""
Tests for retries (L{twistsock.RetryPolicy}, C{fetch(retries=)}, C{twistsock get --retry}):
the decisions and the exact waits in memory, with L{twistsock.testing.FakeHTTP} and its
clock; then the command against a local server that fails a few times, side by side with
curl 7.88 (exit status, output, the warning lines, the number of requests the server saw).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import CancelledError, gatherResults, inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web import server
from twisted.web.resource import Resource

from tests._curl import require_curl, run_curl, run_get
from tests._http_servers import closed_port, listen_canned, temporary_directory
from twistsock import (
    Client,
    ConnectionRefused,
    ConnectionReset,
    CouldNotResolve,
    HTTPStatusError,
    OperationTimeout,
    RetryPolicy,
    fetch,
)
from twistsock.http._response import Headers
from twistsock.http._retry import MAX_WAIT, Retry, RetryState, retry_after
from twistsock.testing import FakeHTTP, Fault, StubRequest, StubResponse

reactor: Any = _reactor

URL = "http://flaky.example/"


class Flaky:
    """
    A handler for L{FakeHTTP}: answers C{code} (with C{headers}, or only the first time
    with C{first_only}) to the first C{failures} requests, then 200; records the time of
    each request.
    """

    def __init__(
        self,
        network_clock: Callable[[], float],
        failures: int,
        code: int = 503,
        headers: tuple[tuple[str, str], ...] = (),
        first_only: bool = False,
    ) -> None:
        self.clock = network_clock
        self.failures = failures
        self.code = code
        self.headers = headers
        self.first_only = first_only
        self.times: list[float] = []

    def __call__(self, request: StubRequest) -> StubResponse:
        self.times.append(self.clock())
        count = len(self.times)
        if count <= self.failures:
            headers = () if self.first_only and count > 1 else self.headers
            return StubResponse(self.code, f"fail {count}\n".encode(), headers)
        return StubResponse(200, b"ok\n")


def flaky_network(
    failures: int,
    code: int = 503,
    headers: tuple[tuple[str, str], ...] = (),
    first_only: bool = False,
) -> tuple[FakeHTTP, Flaky]:
    """A fake network whose every host is L{Flaky}."""
    handler = Flaky(lambda: 0.0, failures, code, headers, first_only)
    network = FakeHTTP(handler)
    handler.clock = network.reactor.seconds
    return network, handler


def run_for(network: FakeHTTP, seconds: int) -> None:
    """Move the network's clock on a second at a time."""
    network.flush()
    for _ in range(seconds):
        network.advance(1)


class PolicyTests(SynchronousTestCase):
    """
    L{RetryPolicy} checks its values; L{RetryState} decides by curl's rules.
    """

    def test_validation(self) -> None:
        """
        Negative or non-integer retries, and waits that are negative, not finite or over
        the 10-minute maximum, are refused when the policy is made.
        """
        self.assertRaises(ValueError, RetryPolicy, -1)
        self.assertRaises(TypeError, RetryPolicy, True)
        self.assertRaises(TypeError, RetryPolicy, 1.5)
        self.assertRaises(ValueError, RetryPolicy, 1, delay=-1)
        self.assertRaises(ValueError, RetryPolicy, 1, delay=float("nan"))
        self.assertRaises(ValueError, RetryPolicy, 1, delay=MAX_WAIT + 1)
        self.assertRaises(ValueError, RetryPolicy, 1, max_time=float("inf"))
        self.assertEqual(RetryPolicy(), RetryPolicy(0, None, None, False, False))

    def test_bad_retries_fail_the_fetch(self) -> None:
        """
        C{fetch(retries=-1)} fails its Deferred with C{ValueError}; nothing is sent.
        """
        network, handler = flaky_network(0)
        self.failureResultOf(fetch(URL, reactor=network.reactor, retries=-1), ValueError)
        self.assertEqual(handler.times, [])

    def test_doubling_capped(self) -> None:
        """
        The ordinary wait starts at 1 s and doubles up to 10 minutes, then stays there.
        """
        state = RetryState(RetryPolicy(20), 0.0)
        waits = []
        error = OperationTimeout(URL, 1)
        for _ in range(12):
            retry = state.for_error(error, 0.0)
            assert retry is not None
            waits.append(retry.wait)
            state.commit(retry)
        self.assertEqual(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600])

    def test_warning_like_curl(self) -> None:
        """
        The warning reads as curl 7.88's, word for word.
        """
        self.assertEqual(
            Retry("HTTP error", 1.0, 3).warning(),
            "Problem : HTTP error. Will retry in 1 seconds. 3 retries left.",
        )
        self.assertEqual(
            Retry("retrying all errors", 0.5, 1).warning(),
            "Problem (retrying all errors). Will retry in 0.5 seconds. 1 retries left.",
        )
        self.assertEqual(
            Retry("HTTP error", None, 1).warning(),
            "The Retry-After: time would make this command line exceed the maximum "
            "allowed time for retries.",
        )

    def test_retry_after_values(self) -> None:
        """
        C{Retry-After} is seconds or an HTTP-date (from now); 0, a date in the past, or
        a value that is neither asks for nothing; a huge number stays bounded.  Seconds
        are the leading digits, as curl 7.88 reads them ("Will retry in 2 seconds" for
        C{2.5}, 3 for C{3abc}).
        """

        def asked(value: str, now: float = 0.0) -> float | None:
            return retry_after(Headers((("Retry-After", value),)), now)

        self.assertEqual(asked("7"), 7)
        self.assertEqual(asked(" 7 "), 7)
        self.assertEqual(asked("Thu, 01 Jan 1970 00:00:30 GMT"), 30)
        self.assertEqual(asked("Thu, 01 Jan 1970 00:00:30 GMT", now=10.5), 20)
        self.assertIsNone(asked("Thu, 01 Jan 1970 00:00:30 GMT", now=40))
        self.assertIsNone(asked("0"))
        self.assertIsNone(asked("-5"))
        self.assertIsNone(asked("soon"))
        self.assertEqual(asked("2.5"), 2)
        self.assertEqual(asked("3abc"), 3)
        self.assertIsNone(asked("0.5"))
        self.assertIsNone(retry_after(Headers(()), 0))
        self.assertLess(asked("9" * 5000) or 0, 1e13)


class WaitTests(SynchronousTestCase):
    """
    C{fetch(retries=)} waits on the reactor it is given, by curl's rules.
    """

    def test_backoff(self) -> None:
        """
        A 503 is retried after 1, 2, 4, 8 s; the last response, 200, is the result.
        """
        network, handler = flaky_network(4)
        d = fetch(URL, reactor=network.reactor, retries=5)
        run_for(network, 20)
        self.assertEqual(handler.times, [0, 1, 3, 7, 15])
        response = self.successResultOf(d)
        self.assertEqual((response.code, response.body), (200, b"ok\n"))

    def test_every_transient_status(self) -> None:
        """
        408, 429, 500, 502, 503 and 504 are retried; 404, 501 and 505 are not.
        """
        for code, attempts in [(408, 2), (429, 2), (500, 2), (502, 2), (503, 2), (504, 2)]:
            network, handler = flaky_network(1, code)
            d = fetch(URL, reactor=network.reactor, retries=1)
            run_for(network, 2)
            self.assertEqual((self.successResultOf(d).code, len(handler.times)), (200, attempts))
        for code in (404, 501, 505):
            network, handler = flaky_network(1, code)
            d = fetch(URL, reactor=network.reactor, retries=1)
            run_for(network, 2)
            self.assertEqual((self.successResultOf(d).code, len(handler.times)), (code, 1))

    def test_no_retries_by_default(self) -> None:
        """
        Without C{retries}, a 503 is the result.
        """
        network, handler = flaky_network(1)
        d = fetch(URL, reactor=network.reactor)
        run_for(network, 5)
        self.assertEqual((self.successResultOf(d).code, handler.times), (503, [0]))

    def test_retries_run_out(self) -> None:
        """
        When the retries run out, the last transient response is the result (as curl,
        which exits 0 with it without C{--fail}).
        """
        network, handler = flaky_network(10)
        d = fetch(URL, reactor=network.reactor, retries=2)
        run_for(network, 10)
        response = self.successResultOf(d)
        self.assertEqual(
            (response.code, response.body, handler.times), (503, b"fail 3\n", [0, 1, 3])
        )

    def test_fixed_delay(self) -> None:
        """
        C{delay} fixes the wait.
        """
        network, handler = flaky_network(2)
        d = fetch(URL, reactor=network.reactor, retries=RetryPolicy(3, delay=2.5))
        network.flush()
        for _ in range(10):
            network.advance(0.5)
        self.assertEqual(handler.times, [0, 2.5, 5.0])
        self.assertEqual(self.successResultOf(d).code, 200)

    def test_retry_after_seconds(self) -> None:
        """
        A C{Retry-After} in seconds sets the wait (over a fixed delay too); the
        ordinary wait still doubles behind it, as curl's does.
        """
        network, handler = flaky_network(3, headers=(("Retry-After", "7"),), first_only=True)
        d = fetch(URL, reactor=network.reactor, retries=5)
        run_for(network, 20)
        self.assertEqual(handler.times, [0, 7, 9, 13])
        self.assertEqual(self.successResultOf(d).code, 200)
        network, handler = flaky_network(1, headers=(("Retry-After", "3"),))
        d = fetch(URL, reactor=network.reactor, retries=RetryPolicy(1, delay=1))
        run_for(network, 5)
        self.assertEqual(handler.times, [0, 3])

    def test_retry_after_date(self) -> None:
        """
        A C{Retry-After} HTTP-date is counted from the reactor's time.
        """
        network, handler = flaky_network(
            1, headers=(("Retry-After", "Thu, 01 Jan 1970 00:00:30 GMT"),)
        )
        network.reactor.advance(10)
        d = fetch(URL, reactor=network.reactor, retries=1)
        run_for(network, 25)
        self.assertEqual(handler.times, [10, 30])
        self.assertEqual(self.successResultOf(d).code, 200)

    def test_max_time(self) -> None:
        """
        No retry starts once C{max_time} has passed since the first attempt; a wait may
        still end past it (as curl).
        """
        network, handler = flaky_network(10)
        d = fetch(URL, reactor=network.reactor, retries=RetryPolicy(10, max_time=5))
        run_for(network, 20)
        self.assertEqual(handler.times, [0, 1, 3, 7])
        self.assertEqual(self.successResultOf(d).code, 503)

    def test_retry_after_past_max_time(self) -> None:
        """
        A C{Retry-After} whose wait would end past C{max_time}, or over 10 minutes, is
        not waited for: that response is the result.
        """
        for policy, after, times in [
            (RetryPolicy(5, max_time=5), "2", [0, 2, 4]),
            (RetryPolicy(5), str(int(MAX_WAIT) + 1), [0]),
        ]:
            network, handler = flaky_network(10, headers=(("Retry-After", after),))
            d = fetch(URL, reactor=network.reactor, retries=policy)
            run_for(network, 20)
            self.assertEqual(handler.times, times)
            self.assertEqual(self.successResultOf(d).code, 503)

    def test_timeout_per_attempt(self) -> None:
        """
        A timeout is transient; C{timeout} bounds each attempt, as curl's C{--max-time}.
        """
        network = FakeHTTP(lambda request: StubResponse(body=b"x"))
        network.fault("flaky.example", Fault.stall_after(0))
        d = fetch(URL, reactor=network.reactor, timeout=5, retries=2)
        run_for(network, 17)
        self.assertNoResult(d)
        self.assertEqual(len(network.requests), 3)  # at 0, 5 + 1 and 11 + 2
        network.advance(1)
        self.failureResultOf(d, OperationTimeout)

    def test_unresolvable_is_transient(self) -> None:
        """
        A name that does not resolve is retried (curl files it under timeouts).
        """
        network, _ = flaky_network(0)
        network.fault("flaky.example", Fault.unresolvable())
        d = fetch(URL, reactor=network.reactor, retries=1)
        network.flush()
        self.assertNoResult(d)
        network.advance(1)
        self.failureResultOf(d, CouldNotResolve)

    def test_refused(self) -> None:
        """
        A refused connection fails at once, unless C{connection_refused} says it is
        transient; then it is retried after 1, then 2 s.
        """
        network, _ = flaky_network(0)
        network.fault("127.0.0.9", Fault.refused())
        url = "http://127.0.0.9/"  # an address is connected to at once: no endpoint timing
        d = fetch(url, reactor=network.reactor, retries=2)
        network.flush()
        self.failureResultOf(d, ConnectionRefused)
        self.assertEqual(len(network.reactor.tcpClients), 1)
        d = fetch(url, reactor=network.reactor, retries=RetryPolicy(2, connection_refused=True))
        network.flush()
        self.assertEqual(len(network.reactor.tcpClients), 2)
        network.advance(1)
        self.assertEqual(len(network.reactor.tcpClients), 3)
        network.advance(1)
        self.assertNoResult(d)
        network.advance(1)
        self.assertEqual(len(network.reactor.tcpClients), 4)
        self.failureResultOf(d, ConnectionRefused)

    def test_all_errors(self) -> None:
        """
        A reset is not transient, but C{all_errors} retries it.
        """
        network, _ = flaky_network(0)
        network.fault("flaky.example", Fault.reset_after(5))
        d = fetch(URL, reactor=network.reactor, retries=3)
        network.flush()
        self.failureResultOf(d, ConnectionReset)
        self.assertEqual(len(network.requests), 1)
        d = fetch(URL, reactor=network.reactor, retries=RetryPolicy(1, all_errors=True))
        run_for(network, 2)
        self.failureResultOf(d, ConnectionReset)
        self.assertEqual(len(network.requests), 3)

    def test_body_of_retried_response_not_streamed(self) -> None:
        """
        With C{stream_to}, only the final response's body is streamed: the bodies of
        the responses retried are dropped.
        """
        network, _ = flaky_network(2)
        pieces: list[bytes] = []
        d = fetch(URL, reactor=network.reactor, retries=3, stream_to=pieces.append)
        run_for(network, 5)
        self.assertEqual((self.successResultOf(d).code, b"".join(pieces)), (200, b"ok\n"))

    def test_cancel_while_waiting(self) -> None:
        """
        Cancelling during a wait ends it: C{CancelledError}, no more requests, no timer
        left behind.
        """
        network, handler = flaky_network(5)
        d = fetch(URL, reactor=network.reactor, retries=5)
        network.flush()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        run_for(network, 10)
        self.assertEqual((handler.times, network.reactor.getDelayedCalls()), ([0], []))

    def test_client(self) -> None:
        """
        C{Client.get} takes C{retries}.
        """
        network, handler = flaky_network(1)
        client = Client(reactor=network.reactor)
        d = client.get(URL, retries=1)
        run_for(network, 2)
        self.assertEqual((self.successResultOf(d).code, handler.times), (200, [0, 1]))
        client.close()
        network.flush()

    def test_on_retry_and_check(self) -> None:
        """
        C{on_retry} hears each decision; a C{check} failure (C{--fail}) is an error
        that C{all_errors} retries, and otherwise the result.
        """
        from twistsock.http._fetch import fetch_with_observer

        def check(response: Any) -> None:
            if response.code >= 400:
                raise HTTPStatusError(response.url, response.code)

        for all_errors, attempts in [(False, 1), (True, 2)]:
            network, handler = flaky_network(5, code=404)
            seen: list[Retry] = []
            d = fetch_with_observer(
                URL, reactor=network.reactor, timeout=30, connect_timeout=10, headers=None,
                max_body_size=1000, follow_redirects=False, max_redirects=0, tls_verify=True,
                observer=None, retries=RetryPolicy(1, all_errors=all_errors),
                on_retry=seen.append, check=check,
            )  # fmt: skip
            run_for(network, 3)
            self.failureResultOf(d, HTTPStatusError)
            self.assertEqual(len(handler.times), attempts)
            self.assertEqual([r.reason for r in seen], ["retrying all errors"] * (attempts - 1))


def fail_then_ok(failures: int, code: int = 503, headers: dict[str, str] | None = None) -> Any:
    """A C{twisted.web} resource that answers C{code} C{failures} times, then 200."""

    class FlakyResource(Resource):
        isLeaf = True
        requests = 0

        def render_GET(self, request: server.Request) -> bytes:
            self.requests += 1
            if self.requests <= failures:
                request.setResponseCode(code)
                for name, value in (headers or {}).items():
                    request.setHeader(name, value)
                return f"fail {self.requests}\n".encode()
            return b"ok\n"

    return FlakyResource()


def listen_flaky(test: TestCase, resource: Resource) -> str:
    """Serve C{resource} on 127.0.0.1 until the test ends; return its URL."""
    port = reactor.listenTCP(0, server.Site(resource), interface="127.0.0.1")
    test.addCleanup(port.stopListening)
    return f"http://127.0.0.1:{port.getHost().port}/"


def warnings(stderr: bytes) -> list[str]:
    """
    The warning lines of C{stderr}, curl's wrapped ones joined again (curl wraps its
    warnings at 79 columns, each piece prefixed C{Warning: }).
    """
    found: list[str] = []
    for line in stderr.decode().splitlines():
        if not line.startswith("Warning: "):
            continue
        text = line[len("Warning: ") :]
        if found and not text.startswith(("Problem", "The Retry-After")):
            found[-1] += text
        else:
            found.append(text)
    return found


def errors(stderr: bytes) -> list[int]:
    """The exit codes in the error lines (C{curl: (7) ...}, C{twistsock: (7) ...})."""
    return [
        int(line.split("(", 1)[1].split(")", 1)[0])
        for line in stderr.decode().splitlines()
        if line.startswith(("curl: (", "twistsock: ("))
    ]


class CommandTests(TestCase):
    """
    C{twistsock get --retry ...} and C{curl --retry ...}, each against its own copy of
    the same server, at the same time.
    """

    @inlineCallbacks
    def both(self, make: Callable[[], Resource], *args: str) -> Any:
        """
        Run curl and twistsock with C{args} (and the URL last), each against a fresh
        C{make()} server; fires with C{((out, err, status, requests), ...)} for curl, then
        twistsock.
        """
        require_curl()
        theirs, ours = make(), make()
        results = yield gatherResults(
            [
                run_curl(reactor, "--no-progress-meter", *args, listen_flaky(self, theirs)),
                run_get(reactor, *args, listen_flaky(self, ours)),
            ]
        )
        servers = (theirs, ours)
        return [(*result, s.requests) for result, s in zip(results, servers, strict=True)]

    @inlineCallbacks
    def test_503_then_200(self) -> Any:
        """
        Two 503s, then 200: the same three requests, waits and warnings as curl, and exit
        0.  To stdout, curl writes every attempt's body (it cannot take them back);
        twistsock writes the final one only.
        """
        curl, ours = yield self.both(lambda: fail_then_ok(2), "--retry", "3", "--retry-delay", "1")
        self.assertEqual((curl[0], curl[2], curl[3]), (b"fail 1\nfail 2\nok\n", 0, 3))
        self.assertEqual((ours[0], ours[2], ours[3]), (b"ok\n", 0, 3))
        expected = [
            "Problem : HTTP error. Will retry in 1 seconds. 3 retries left.",
            "Problem : HTTP error. Will retry in 1 seconds. 2 retries left.",
        ]
        self.assertEqual(warnings(curl[1]), expected)
        self.assertEqual(warnings(ours[1]), expected)

    @inlineCallbacks
    def test_output_file(self) -> Any:
        """
        With C{-o}, curl starts the file again at each retry; twistsock writes the final
        body only: both files hold C{ok}.  C{-s} silences the warnings, as curl's.
        """
        directory = temporary_directory(self)
        theirs, ours = directory / "curl.txt", directory / "ours.txt"
        require_curl()
        a, b = fail_then_ok(1), fail_then_ok(1)
        results = yield gatherResults(
            [
                run_curl(reactor, "-s", "--retry", "1", "-o", str(theirs), listen_flaky(self, a)),
                run_get(reactor, "-s", "--retry", "1", "-o", str(ours), listen_flaky(self, b)),
            ]
        )
        self.assertEqual(results, [(b"", b"", 0)] * 2)
        self.assertEqual((theirs.read_bytes(), ours.read_bytes()), (b"ok\n", b"ok\n"))
        self.assertEqual(sorted(os.listdir(directory)), ["curl.txt", "ours.txt"])

    @inlineCallbacks
    def test_include_verbose(self) -> Any:
        """
        With C{-i}, only the final response's head and body are written; C{-v} shows each
        attempt's headers and the warning between them.
        """
        out, err, status = yield run_get(
            reactor, "-i", "-v", "--retry", "1", listen_flaky(self, fail_then_ok(1))
        )
        self.assertEqual(status, 0)
        self.assertTrue(out.startswith(b"HTTP/1.1 200 OK\r\n"), out)
        self.assertTrue(out.endswith(b"\r\n\r\nok\n"), out)
        self.assertNotIn(b"503", out)
        lines = err.decode().splitlines()
        warning = "Warning: Problem : HTTP error. Will retry in 1 seconds. 1 retries left."
        first, second = lines.index("< HTTP/1.1 503 Service Unavailable"), lines.index(warning)
        self.assertLess(first, second)
        self.assertLess(second, lines.index("< HTTP/1.1 200 OK"))

    @inlineCallbacks
    def test_output_cut_short(self) -> Any:
        """
        An attempt cut short in the middle of its body leaves nothing behind with C{-o}:
        each attempt's temporary file is removed, and C{-m} fails the last one (28).
        """
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
        port, factory = listen_canned(self, reactor, reply, "stall")
        directory = temporary_directory(self)
        out, err, status = yield run_get(
            reactor, "-m", "0.5", "--retry", "1", "--retry-delay", "0.1",
            "-o", str(directory / "out"), f"http://127.0.0.1:{port}/",
        )  # fmt: skip
        self.assertEqual((status, out, len(factory.requests)), (28, b"", 2))
        self.assertEqual(os.listdir(directory), [])
        self.assertEqual(errors(err), [28, 28])

    @inlineCallbacks
    def test_show_error(self) -> Any:
        """
        C{-sS} prints each failure's error line but no warning, as curl.
        """
        require_curl()
        args = ["-sS", "--retry", "1", "--retry-connrefused", "--retry-delay", "1"]
        url = f"http://127.0.0.1:{closed_port(reactor)}/"
        (_, curl_err, curl_status), (_, err, status) = yield gatherResults(
            [run_curl(reactor, *args, url), run_get(reactor, *args, url)]
        )
        self.assertEqual((status, errors(err), warnings(err)), (7, [7, 7], []))
        self.assertEqual((curl_status, errors(curl_err), warnings(curl_err)), (7, [7, 7], []))

    @inlineCallbacks
    def test_retries_run_out_with_fail(self) -> Any:
        """
        With C{-f}, the last 503 exits 22 after the retries, as curl's; each 503 retried
        prints its error line (22) before the warning, as curl's.
        """
        curl, ours = yield self.both(
            lambda: fail_then_ok(5), "-f", "--retry", "1", "--retry-delay", "1"
        )
        self.assertEqual((curl[0], curl[2], curl[3]), (b"", 22, 2))
        self.assertEqual((ours[0], ours[2], ours[3]), (b"", 22, 2))
        self.assertEqual(warnings(ours[1]), warnings(curl[1]))
        self.assertEqual(errors(curl[1]), [22, 22])
        self.assertEqual(errors(ours[1]), errors(curl[1]))
        lines = ours[1].decode().splitlines()
        self.assertTrue(lines[0].startswith("twistsock: (22) "), lines)

    @inlineCallbacks
    def test_retry_after_over_max_time(self) -> Any:
        """
        A C{Retry-After} that would go past C{--retry-max-time} is not waited for; the
        warning is curl's.
        """
        curl, ours = yield self.both(
            lambda: fail_then_ok(5, headers={"Retry-After": "2"}),
            "--retry", "5", "--retry-max-time", "3",
        )  # fmt: skip
        self.assertEqual((curl[2], curl[3]), (0, 2))
        self.assertEqual((ours[0], ours[2], ours[3]), (b"fail 2\n", 0, 2))
        self.assertEqual(warnings(ours[1]), warnings(curl[1]))
        self.assertEqual(len(warnings(ours[1])), 2)

    @inlineCallbacks
    def test_connrefused(self) -> Any:
        """
        A refused connection: exit 7 at once, or with C{--retry-connrefused} after the
        retries, each failure's error line and a warning between them, as curl.
        """
        require_curl()
        url = f"http://127.0.0.1:{closed_port(reactor)}/"
        for extra, lines in [([], 1), (["--retry-connrefused"], 2)]:
            args = ["--retry", "1", "--retry-delay", "1", *extra, url]
            (_, curl_err, curl_status), (out, err, status) = yield gatherResults(
                [run_curl(reactor, "--no-progress-meter", *args), run_get(reactor, *args)]
            )
            self.assertEqual((status, out), (curl_status, b""))
            self.assertEqual(errors(err), errors(curl_err))
            self.assertEqual(errors(err), [7] * lines)
            self.assertEqual(warnings(err), warnings(curl_err))

    @inlineCallbacks
    def test_timeout_per_attempt(self) -> Any:
        """
        C{-m} bounds each attempt: a server that never answers sees two requests, and
        both commands exit 28.
        """
        require_curl()
        results = []
        for command in (run_curl, run_get):
            port, factory = listen_canned(self, reactor, b"HTTP/1.1 200 OK\r\n", "stall")
            args = ["-s", "-m", "1", "--retry", "1", "--retry-delay", "1"]
            results.append(command(reactor, *args, f"http://127.0.0.1:{port}/"))
            results.append(factory)
        curl, curl_server, ours, our_server = results
        (_, _, curl_status), (_, _, status) = yield gatherResults([curl, ours])
        self.assertEqual((status, len(our_server.requests)), (28, 2))
        self.assertEqual((curl_status, len(curl_server.requests)), (28, 2))

    @inlineCallbacks
    def test_all_errors(self) -> Any:
        """
        A reset (56) is retried with C{--retry-all-errors} only, as curl.
        """
        require_curl()
        for extra, requests in [([], 1), (["--retry-all-errors"], 2)]:
            runs = []
            for command in (run_curl, run_get):
                port, factory = listen_canned(self, reactor, b"HTTP/1.1 200 OK\r\n", "reset")
                args = ["--retry", "1", "--retry-delay", "1", *extra]
                if command is run_curl:
                    args.insert(0, "--no-progress-meter")
                runs.append((command(reactor, *args, f"http://127.0.0.1:{port}/"), factory))
            (curl, ours) = yield gatherResults([run for run, _ in runs])
            self.assertEqual(ours[2], curl[2])
            self.assertEqual([len(f.requests) for _, f in runs], [requests, requests])
            self.assertEqual(warnings(ours[1]), warnings(curl[1]))


class OptionTests(SynchronousTestCase):
    """
    The retry options are range-checked with one line and exit 2.
    """

    def test_values_checked(self) -> None:
        """
        C{--retry} takes 0 to 1000; C{--retry-delay} 0 to 600 seconds;
        C{--retry-max-time} seconds >= 0.
        """
        import io
        import sys

        from twistsock._cli import main

        for argv, expected in [
            (["--retry", "-1"], "argument --retry: expected an integer from 0 to 1000"),
            (["--retry", "1001"], "argument --retry: expected an integer from 0 to 1000"),
            (["--retry-delay", "601"], "argument --retry-delay: expected seconds from 0 to 600"),
            (["--retry-delay", "nan"], "argument --retry-delay: expected seconds from 0 to 600"),
            (["--retry-max-time", "-1"], "argument --retry-max-time: expected seconds >= 0"),
        ]:
            stderr = io.StringIO()
            self.patch(sys, "stderr", stderr)
            self.assertEqual(main(["get", *argv, "http://x/"]), 2, argv)
            self.assertIn(expected, stderr.getvalue())
            self.assertEqual(stderr.getvalue().count("\n"), 1)
