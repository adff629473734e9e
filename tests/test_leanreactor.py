"""
Tests for L{twistsock._twisted.LeanEPollReactor}: Twisted's own reactor tests, run against it.

The lean reactor replaces one method of L{EPollReactor}; the strongest evidence that it
behaves the same is Twisted's reactor test suite for TCP, UNIX sockets, TLS, timed calls and
file descriptors, run on it here, plus a check that a failing handler is logged and does not
stop the loop.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.protocol import Factory, Protocol
from twisted.internet.test import test_core, test_fdset, test_tcp, test_time, test_unix
from twisted.trial.unittest import SynchronousTestCase

from twistsock._twisted import LeanEPollReactor

LEAN = "twistsock._twisted.LeanEPollReactor"


def _skipped(reason: str) -> Any:
    def test(self: object) -> None:
        pass

    test.skip = reason  # type: ignore[attr-defined]
    return test


#: The two Twisted tests that do not apply, and why.
_NOT_APPLICABLE = {
    "test_logPrefix": _skipped(
        "the legacy log prefix during event handling is what this reactor leaves out"
    ),
    "test_lostFileDescriptor": _skipped(
        "no epoll reactor can detect lost descriptors (Twisted skips it for EPollReactor)"
    ),
}


def _lean_cases(builder: type) -> dict[str, type]:
    """
    Test case classes that run the Twisted reactor tests of C{builder} on the lean reactor.
    """
    attributes = {"_reactors": [LEAN], "__module__": __name__}
    attributes.update({k: v for k, v in _NOT_APPLICABLE.items() if hasattr(builder, k)})
    lean = type(builder.__name__, (builder,), attributes)
    return lean.makeTestCaseClasses()  # type: ignore[attr-defined,no-any-return]


for _builder in (
    test_core.SystemEventTestsBuilder,
    test_fdset.ReactorFDSetTestsBuilder,
    test_time.TimeTestsBuilder,
    test_tcp.TCP4ClientTestsBuilder,
    test_tcp.TCP6ClientTestsBuilder,
    test_tcp.TCPPortTestsBuilder,
    test_tcp.TCPConnectionTestsBuilder,
    test_tcp.TCPTransportTestsBuilder,
    test_tcp.AbortConnectionTests,
    test_unix.UNIXTestsBuilder,
):
    globals().update(_lean_cases(_builder))


class FailingHandlerTests(SynchronousTestCase):
    """
    A handler that raises is logged and disconnected; the loop goes on.
    """

    def test_exception_in_data_received(self) -> None:
        """
        An exception from C{dataReceived} is logged and closes that connection only.
        """
        reactor: Any = LeanEPollReactor()
        self.addCleanup(reactor.disconnectAll)
        received: list[bytes] = []

        class Broken(Protocol):
            def dataReceived(self, data: bytes) -> None:
                received.append(data)
                raise RuntimeError("boom")

        port = reactor.listenTCP(0, Factory.forProtocol(Broken), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=5)
        self.addCleanup(client.close)
        client.sendall(b"x")
        for _ in range(50):
            reactor.iterate(0.01)
            if received and not [s for s in reactor.getReaders() if s is not port]:
                break
        self.assertEqual(received, [b"x"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)  # logged
        self.assertEqual(client.recv(10), b"")  # that connection was closed
        self.assertIn(port, reactor.getReaders())  # and the server goes on listening

    def test_exception_escaping_the_handler(self) -> None:
        """
        An exception that escapes the event handler itself (here from C{connectionLost},
        which Twisted calls outside its own error handling) is logged by the lean loop,
        which goes on serving.
        """
        reactor: Any = LeanEPollReactor()
        self.addCleanup(reactor.disconnectAll)

        class BrokenTwice(Protocol):
            def dataReceived(self, data: bytes) -> None:
                raise RuntimeError("in dataReceived")

            def connectionLost(self, reason: object = None) -> None:
                raise ValueError("in connectionLost")

        port = reactor.listenTCP(0, Factory.forProtocol(BrokenTwice), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        address = ("127.0.0.1", port.getHost().port)
        for _ in range(2):  # the loop survives the first one and serves the second
            client = socket.create_connection(address, timeout=5)
            self.addCleanup(client.close)
            client.sendall(b"x")
            for _ in range(50):
                reactor.iterate(0.01)
                if self.flushLoggedErrors(ValueError):
                    break
            else:
                self.fail("the escaping exception was not logged")
        self.flushLoggedErrors(RuntimeError)
