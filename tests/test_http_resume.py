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
from twistsock import Client, RangeNotSupported, Response, fetch
from twistsock.http._fetch import _range_start, fetch_with_observer
from twistsock.http._protocol import TransferObserver
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
