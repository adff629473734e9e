"""
Tests for C{fetch(resume_from=N)}: a C{Range: bytes=N-} request whose answer must
continue at N, as curl 7.88's C{-C} checks it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from tests._memory import MemoryReactorClock
from tests.test_http_fetch import connect, reply
from twistsock import Client, RangeNotSupported, Response, RetryPolicy, fetch
from twistsock.http._fetch import _range_start, fetch_with_observer
from twistsock.http._protocol import TransferObserver
from twistsock.http._retry import Retry
from twistsock.testing import FakeHTTP, StubRequest, StubResponse

URL = "http://example.com/"
PARTIAL = (
    b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 4-9/10\r\nContent-Length: 6\r\n\r\n"
)


class ResumeTests(SynchronousTestCase):
    """
    L{fetch} with C{resume_from}, against a memory reactor.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.pieces: list[bytes] = []

    def get(self, resume_from: int = 4, **kwargs: Any) -> tuple[Any, StringTransport]:
        kwargs.setdefault("stream_to", self.pieces.append)
        d = fetch(URL, reactor=self.reactor, resume_from=resume_from, **kwargs)
        return d, connect(self.reactor)

    def test_range_sent(self) -> None:
        """
        C{Range: bytes=N-} is sent, replacing a C{Range} among C{headers}; C{0} sends
        none (as curl's C{-C 0}).
        """
        _, transport = self.get(headers={"range": "bytes=0-1"})
        self.assertIn(b"\r\nRange: bytes=4-\r\n", transport.value())
        self.assertNotIn(b"bytes=0-1", transport.value())
        _, transport = self.get(0)
        self.assertNotIn(b"Range", transport.value())

    def test_negative(self) -> None:
        """
        A negative offset fails the Deferred with C{ValueError}; nothing connects.
        """
        d = fetch(URL, reactor=self.reactor, resume_from=-1)
        self.failureResultOf(d, ValueError)
        self.assertEqual(self.reactor.tcpClients, [])

    def test_continues(self) -> None:
        """
        A 206 whose C{Content-Range} starts at the offset: its body is the rest,
        streamed or held.
        """
        d, transport = self.get()
        reply(transport, PARTIAL + b"456789")
        self.assertEqual(self.successResultOf(d).code, 206)
        self.assertEqual(self.pieces, [b"456789"])
        d, transport = self.get(stream_to=None)
        reply(transport, PARTIAL + b"456789")
        self.assertEqual(self.successResultOf(d).body, b"456789")

    def test_refused(self) -> None:
        """
        A 206 that starts elsewhere, one without C{Content-Range}, a 200 with the whole
        body (streamed: a C{stream_to} cannot be rewound), a 404: L{RangeNotSupported}
        (33), before any body is streamed, whatever the status (as curl).
        """
        for data in [
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-9/10\r\n"
            b"Content-Length: 8\r\n\r\n23456789",
            b"HTTP/1.1 206 Partial Content\r\nContent-Length: 6\r\n\r\n456789",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope\n",
        ]:
            d, transport = self.get()
            reply(transport, data)
            error = self.failureResultOf(d, RangeNotSupported).value
            self.assertEqual((error.curl_exit_code, error.offset, error.url), (33, 4, URL))
            self.assertEqual(
                str(error), "HTTP server doesn't seem to support byte ranges. Cannot resume."
            )
            self.assertEqual(self.pieces, [])
        self.assertEqual((error.code, error.content_range), (404, None))

    def test_200_starts_over_when_held(self) -> None:
        """
        A 200 with the whole resource, to a resumed request whose body is held: the
        download starts over, and the L{Response} has code 200 and the whole body.
        """
        d, transport = self.get(stream_to=None)
        reply(transport, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
        response: Response = self.successResultOf(d)
        self.assertEqual((response.code, response.body), (200, b"0123456789"))

    def test_200_that_continues(self) -> None:
        """
        curl looks at the C{Content-Range}, not the status: a 200 whose range starts at
        the offset continues.
        """
        d, transport = self.get()
        reply(
            transport,
            b"HTTP/1.1 200 OK\r\nContent-Range: bytes 4-9/10\r\nContent-Length: 6\r\n\r\n456789",
        )
        self.assertEqual((self.successResultOf(d).code, self.pieces), (200, [b"456789"]))

    def test_already_complete(self) -> None:
        """
        A 416, or a whole body of exactly the offset's length: the resource is complete
        already.  The transfer stops at the head (the connection is aborted, as curl
        closes it), and fires with the response, its body empty; nothing is streamed.
        """
        for data in [
            b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */4\r\n"
            b"Content-Length: 4\r\n\r\nnope",
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n0123",
        ]:
            for stream_to in (self.pieces.append, None):
                d, transport = self.get(stream_to=stream_to)
                reply(transport, data)
                response: Response = self.successResultOf(d)
                self.assertEqual(response.body, b"")
                self.assertEqual(response.raw, data[: data.index(b"\r\n\r\n") + 4])
                self.assertEqual(response.head, response.raw)
                self.assertTrue(transport.disconnecting)
        self.assertEqual(self.pieces, [])

    def test_head_shown(self) -> None:
        """
        The observer (C{-v}) is told about a head that stops the transfer, complete or
        refused, as about any other.
        """
        heads: list[bytes] = []

        class Observer(TransferObserver):
            def response_head(self, head: bytes, content_length: int | None) -> None:
                heads.append(head)

        for data in [
            b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
        ]:
            d = fetch_with_observer(
                URL,
                reactor=self.reactor,
                timeout=30,
                connect_timeout=10,
                headers=None,
                max_body_size=100,
                follow_redirects=False,
                max_redirects=0,
                tls_verify=True,
                observer=Observer(),
                resume_from=4,
            )
            reply(connect(self.reactor), data)
            self.assertEqual(heads[-1], data[: data.index(b"\r\n\r\n") + 4])
            d.addErrback(lambda f: f.trap(RangeNotSupported))
        self.assertEqual(len(heads), 2)

    def test_redirects(self) -> None:
        """
        Each hop of a redirect chain gets the C{Range} (as curl); a redirect that is
        followed is not checked.
        """
        d, transport = self.get(follow_redirects=True)
        reply(transport, b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n")
        transport = connect(self.reactor)
        self.assertIn(b"\r\nRange: bytes=4-\r\n", transport.value())
        reply(transport, PARTIAL + b"456789")
        self.assertEqual(self.successResultOf(d).code, 206)

    def test_range_start(self) -> None:
        """
        The first byte position is read as curl reads it: C{bytes N-M/T}, C{bytes: N-},
        C{N-M/T}; C{*/T} and nothing give none.
        """
        self.assertEqual(_range_start("bytes 5-9/10"), 5)
        self.assertEqual(_range_start("bytes: 5-"), 5)
        self.assertEqual(_range_start(" 5-9/10"), 5)
        self.assertIsNone(_range_start("bytes */10"))
        self.assertIsNone(_range_start(None))


DATA = bytes(range(256)) * 10


def ranges(request: StubRequest) -> StubResponse:
    """Serve C{DATA}, answering C{Range: bytes=N-} as a static file server does."""
    wanted = request.headers.get("Range")
    if wanted is None:
        return StubResponse(body=DATA)
    start = int(wanted.removeprefix("bytes=").rstrip("-"))
    if start >= len(DATA):
        return StubResponse(416, headers=(("Content-Range", f"bytes */{len(DATA)}"),))
    content_range = f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"
    return StubResponse(206, DATA[start:], (("Content-Range", content_range),))


class FakeServerTests(SynchronousTestCase):
    """
    Resuming from a server function that answers ranges.
    """

    def test_resume(self) -> None:
        """
        The rest of the resource from the offset, over a L{Client} too; at its end,
        the 416 is the complete answer.
        """
        network = FakeHTTP(ranges)
        d = fetch(URL, reactor=network.reactor, resume_from=1000)
        network.flush()
        response = self.successResultOf(d)
        self.assertEqual((response.code, response.body), (206, DATA[1000:]))
        client = Client(reactor=network.reactor)
        d = client.get(URL, resume_from=len(DATA))
        network.flush()
        response = self.successResultOf(d)
        self.assertEqual((response.code, response.body), (416, b""))
        self.assertEqual(network.requests[-1].headers.get("Range"), f"bytes={len(DATA)}-")
        client.close()
        network.flush()


class BusyThenRanges:
    """
    A handler for L{FakeHTTP}: answers C{code} to the first C{failures} requests, then
    as L{ranges}; records the time of each request on the network's clock.
    """

    def __init__(
        self, failures: int, code: int = 503, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.failures = failures
        self.code = code
        self.headers = headers
        self.times: list[float] = []
        self.network = FakeHTTP(self)

    def __call__(self, request: StubRequest) -> StubResponse:
        self.times.append(self.network.reactor.seconds())
        if len(self.times) <= self.failures:
            return StubResponse(self.code, b"busy\n", self.headers)
        return ranges(request)


class RetriedResumeTests(SynchronousTestCase):
    """
    C{resume_from} with C{retries}: a transient status is retried before the range is
    checked (as curl's C{-C} with C{--fail} and C{--retry}).
    """

    def fetch(
        self,
        failures: int,
        code: int = 503,
        headers: tuple[tuple[str, str], ...] = (),
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """
        Fetch from L{BusyThenRanges} at offset 1000 (with L{fetch_with_observer}, given
        C{kwargs}) and run the clock for 10 s.
        """
        handler = BusyThenRanges(failures, code, headers)
        network = handler.network
        kwargs.setdefault("retries", 1)
        d = fetch_with_observer(
            URL, reactor=network.reactor, timeout=30, connect_timeout=10, headers=None,
            max_body_size=10**6, follow_redirects=False, max_redirects=0, tls_verify=True,
            observer=None, resume_from=1000, **kwargs,
        )  # fmt: skip
        network.flush()
        for _ in range(10):
            network.advance(1)
        return d, handler

    def test_transient_retried(self) -> None:
        """
        A 503 to a resumed request is retried after 1 s; the 206 that follows is the
        result, its body held or streamed (the 503's body goes nowhere).
        """
        pieces: list[bytes] = []
        for stream_to in (None, pieces.append):
            handler = BusyThenRanges(1)
            network = handler.network
            d = fetch(
                URL, reactor=network.reactor, resume_from=1000, retries=1, stream_to=stream_to
            )
            network.flush()
            network.advance(1)
            response = self.successResultOf(d)
            self.assertEqual((response.code, handler.times), (206, [0, 1]))
            self.assertEqual(response.body or b"".join(pieces), DATA[1000:])
        self.assertEqual(b"".join(pieces), DATA[1000:])

    def test_retries_run_out(self) -> None:
        """
        When the retries run out, the last transient status fails the range check:
        L{RangeNotSupported} with its code.
        """
        d, handler = self.fetch(5, retries=2)
        self.assertEqual(self.failureResultOf(d, RangeNotSupported).value.code, 503)
        self.assertEqual(handler.times, [0, 1, 3])

    def test_other_status_not_retried(self) -> None:
        """
        A status that is not transient fails at once, as without C{retries}.
        """
        d, handler = self.fetch(1, code=404)
        self.assertEqual(self.failureResultOf(d, RangeNotSupported).value.code, 404)
        self.assertEqual(handler.times, [0])

    def test_range_before_status(self) -> None:
        """
        With C{status_before_range} false (the command without C{--fail}, as curl),
        the range is checked first: a 503 fails at once.
        """
        d, handler = self.fetch(1, status_before_range=False)
        self.assertEqual(self.failureResultOf(d, RangeNotSupported).value.code, 503)
        self.assertEqual(handler.times, [0])

    def test_retry_after_too_long(self) -> None:
        """
        A C{Retry-After} past L{MAX_WAIT} is not waited for: C{on_retry} hears it, and
        the range check fails; with C{all_errors}, the failure is retried as any other.
        """
        for all_errors, times in [(False, [0]), (True, [0, 1])]:
            seen: list[Retry] = []
            d, handler = self.fetch(
                1,
                headers=(("Retry-After", "1000"),),
                retries=RetryPolicy(1, all_errors=all_errors),
                on_retry=seen.append,
            )
            self.assertEqual(handler.times, times)
            if all_errors:
                self.assertEqual(self.successResultOf(d).code, 206)
                self.assertEqual([r.reason for r in seen], ["retrying all errors"])
            else:
                self.failureResultOf(d, RangeNotSupported)
                self.assertEqual([(r.reason, r.wait) for r in seen], [("HTTP error", None)])
