"""
Tests for streaming a body as it arrives, to a callable, a file or an C{IConsumer} with
flow control, instead of holding it in memory.
"""

from __future__ import annotations

import io
import tracemalloc
from typing import Any

from twisted.internet import error
from twisted.internet.interfaces import IConsumer
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from tests._memory import MemoryReactorClock
from tests.test_http_fetch import connect, reply
from twistsock import BodyTooLarge, BodyWriteError, HTTPGetProtocol, Response, fetch
from twistsock.http._reader import ResponseHead, ResponseReader
from twistsock.http._request import build_request, parse_url

URL = "http://example.com/"
REQUEST = build_request(parse_url(URL))
HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"


@implementer(IConsumer)
class Consumer:
    """An C{IConsumer} that records what it is given and its producer."""

    def __init__(self) -> None:
        self.producer: Any = None
        self.streaming: bool | None = None
        self.data: list[bytes] = []
        self.unregistered = 0

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer, self.streaming = producer, streaming

    def unregisterProducer(self) -> None:
        self.producer = None
        self.unregistered += 1

    def write(self, data: bytes) -> None:
        self.data.append(data)


def streaming(target: Any, max_body_size: int = 10) -> tuple[HTTPGetProtocol, StringTransport]:
    """A protocol that streams every body to C{target}, connected to a memory transport."""
    protocol = HTTPGetProtocol(REQUEST, max_body_size=max_body_size, stream=lambda head: target)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


class StreamTests(SynchronousTestCase):
    """
    A streamed body goes to its target as it arrives and is not held.
    """

    def test_as_it_arrives(self) -> None:
        """
        Each piece reaches the callable as it arrives, before the end; the body is not
        bounded by C{max_body_size} (nothing is held), the L{Response}'s C{body} is empty
        and its C{raw} is the head.
        """
        pieces: list[bytes] = []
        protocol, _ = streaming(pieces.append)
        protocol.dataReceived(HEAD + b"a" * 1000)
        self.assertEqual(pieces, [b"a" * 1000])
        protocol.dataReceived(b"b" * 4000)
        response = self.successResultOf(protocol.response)
        self.assertEqual(b"".join(pieces), b"a" * 1000 + b"b" * 4000)
        self.assertEqual((response.body, response.raw, response.code), (b"", HEAD, 200))

    def test_chunked_and_close_delimited(self) -> None:
        """
        Chunked and close-delimited bodies stream too, chunk framing removed.
        """
        file = io.BytesIO()
        protocol, _ = streaming(file)
        protocol.dataReceived(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"8\r\nabcdefgh\r\n8\r\nijklmnop\r\n0\r\n\r\n"
        )
        self.assertEqual(self.successResultOf(protocol.response).body, b"")
        self.assertEqual(file.getvalue(), b"abcdefghijklmnop")
        file = io.BytesIO()
        protocol, _ = streaming(file)
        protocol.dataReceived(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 100)
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.successResultOf(protocol.response)
        self.assertEqual(file.getvalue(), b"x" * 100)

    def test_held_when_told(self) -> None:
        """
        C{stream} is asked with the head; C{None} holds the body, within
        C{max_body_size}.
        """
        heads: list[ResponseHead] = []

        def decide(head: ResponseHead) -> None:
            heads.append(head)

        protocol = HTTPGetProtocol(REQUEST, max_body_size=10, stream=decide)
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(HEAD)
        self.failureResultOf(protocol.response, BodyTooLarge)
        self.assertEqual([(h.code, h.content_length) for h in heads], [(200, 5000)])

    def test_write_errors(self) -> None:
        """
        A writer that raises C{OSError} fails the transfer with L{BodyWriteError} (23), a
        L{twistsock.FetchError} it raises is the outcome; the connection is aborted.
        """

        def full(data: bytes) -> None:
            raise OSError(28, "No space left on device")

        protocol, transport = streaming(full)
        protocol.dataReceived(HEAD + b"x")
        failure = self.failureResultOf(protocol.response, BodyWriteError)
        self.assertEqual(str(failure.value), "Failed writing the body: No space left on device")
        self.assertEqual(failure.value.curl_exit_code, 23)  # type: ignore[union-attr]
        self.assertTrue(transport.disconnected)

        def bounded(data: bytes) -> None:
            raise BodyTooLarge(URL, 1)

        protocol, _ = streaming(bounded)
        protocol.dataReceived(HEAD + b"x")
        self.failureResultOf(protocol.response, BodyTooLarge)

    def test_constant_memory(self) -> None:
        """
        A streamed body of 64 MiB (in 64 KiB reads) is never held: the reader's memory
        stays under 1 MiB whatever the size.
        """
        received = 0

        def count(data: bytes) -> None:
            nonlocal received
            received += len(data)

        size = 64 * 2**20
        reader = ResponseReader(URL, max_body_size=10, on_head=lambda head: count)
        piece = b"x" * 65536
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(piece)):
            reader.feed(piece)
        _, peak = tracemalloc.get_traced_memory()
        self.assertIsInstance(reader.result, Response)
        self.assertEqual(received, size)
        self.assertLess(peak, 2**20)


class ConsumerTests(SynchronousTestCase):
    """
    Streamed to an C{IConsumer}, the protocol is its streaming producer.
    """

    def test_flow_control(self) -> None:
        """
        The protocol registers as a streaming producer when the body starts; pausing it
        pauses the transport (reading stops), resuming resumes it; it is unregistered
        when the body is complete.
        """
        consumer = Consumer()
        protocol, transport = streaming(consumer)
        protocol.dataReceived(HEAD + b"a")
        self.assertEqual((consumer.producer, consumer.streaming), (protocol, True))
        consumer.producer.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        consumer.producer.resumeProducing()
        self.assertEqual(transport.producerState, "producing")
        protocol.dataReceived(b"b" * 4999)
        self.successResultOf(protocol.response)
        self.assertEqual((b"".join(consumer.data), consumer.unregistered), (b"a" + b"b" * 4999, 1))

    def test_failure_unregisters(self) -> None:
        """
        A transfer that fails unregisters the producer too.
        """
        consumer = Consumer()
        protocol, _ = streaming(consumer)
        protocol.dataReceived(HEAD + b"a")
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.failureResultOf(protocol.response)
        self.assertEqual(consumer.unregistered, 1)

    def test_consumer_stops(self) -> None:
        """
        A consumer that stops the producer fails the transfer (23) and aborts the
        connection.
        """
        consumer = Consumer()
        protocol, transport = streaming(consumer)
        protocol.dataReceived(HEAD + b"a")
        consumer.producer.stopProducing()
        self.failureResultOf(protocol.response, BodyWriteError)
        self.assertTrue(transport.disconnected)

    def test_paused_at_the_end_reads_again(self) -> None:
        """
        A body that ends while its consumer has paused the connection leaves the
        connection reading again (a pool reuses it for the next response).
        """
        consumer = Consumer()
        protocol, transport = streaming(consumer)
        protocol.dataReceived(HEAD + b"a")
        consumer.producer.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        protocol.dataReceived(b"b" * 4999)
        self.successResultOf(protocol.response)
        self.assertEqual(transport.producerState, "producing")

    def test_writer_raises(self) -> None:
        """
        A body writer that raises anything (a closed file raises C{ValueError}) fails the
        transfer with L{BodyWriteError} (23); nothing is raised to the caller of
        C{dataReceived}, the reactor.
        """
        file = io.BytesIO()
        file.close()
        protocol, transport = streaming(file)
        protocol.dataReceived(HEAD + b"a")
        failure = self.failureResultOf(protocol.response, BodyWriteError)
        self.assertIn("closed file", str(failure.value))
        self.assertTrue(transport.disconnected)

    def test_consumer_refuses_producer(self) -> None:
        """
        A consumer whose C{registerProducer} raises (it has a producer already) fails
        the transfer with L{BodyWriteError}.
        """
        consumer = Consumer()

        def refuse(producer: Any, streaming: bool) -> None:
            raise RuntimeError("a producer is registered already")

        consumer.registerProducer = refuse  # type: ignore[method-assign]
        protocol, _ = streaming(consumer)
        protocol.dataReceived(HEAD + b"a")
        self.failureResultOf(protocol.response, BodyWriteError)


class FetchStreamTests(SynchronousTestCase):
    """
    C{fetch(stream_to=...)} streams the final body; the bodies of redirects are held.
    """

    def test_redirect_bodies_held(self) -> None:
        """
        With redirects followed, only the final response's body reaches the target.
        """
        memory = MemoryReactorClock()
        file = io.BytesIO()
        d = fetch(URL, reactor=memory, follow_redirects=True, stream_to=file)
        reply(
            connect(memory, 0),
            b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 5\r\n\r\nmoved",
        )
        reply(connect(memory, 1), b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
        response = self.successResultOf(d)
        self.assertEqual((file.getvalue(), response.body), (b"final", b""))
        self.assertEqual(response.history[0].body, b"moved")
