"""
Tests for L{twistsock._directwrite}: sending at once when nothing is queued.
"""

from __future__ import annotations

import errno

from twisted.internet import tcp
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from twistsock._directwrite import canSendDirectly, sendNow


class FakeSocket:
    """
    A socket whose C{send} takes at most C{accept} bytes, or raises C{error}.
    """

    def __init__(self, accept: int = 1 << 30, error: OSError | None = None) -> None:
        self.accept = accept
        self.error = error
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        taken = bytes(data[: self.accept])
        self.sent.append(taken)
        return len(taken)


class FakeConnection:
    """
    The attributes of a L{tcp.Server} that L{sendNow} reads, and a recording C{write}.
    """

    def __init__(self, socket: FakeSocket) -> None:
        self.socket = socket
        self._tempDataLen = 0
        self.dataBuffer = b""
        self.disconnecting = False
        self._writeDisconnecting = False
        self.TLS = False
        self.connected = 1
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


class SendNowTests(SynchronousTestCase):
    """
    L{sendNow} sends directly only when that cannot reorder bytes.
    """

    def test_emptyBufferSendsAtOnce(self) -> None:
        """
        With nothing queued the bytes go straight to the socket.
        """
        connection = FakeConnection(FakeSocket())
        sendNow(connection, b"OK...hi\n")
        self.assertEqual((connection.socket.sent, connection.written), ([b"OK...hi\n"], []))

    def test_partialSendQueuesTheRest(self) -> None:
        """
        What the kernel does not take is queued with C{transport.write}, in order.
        """
        connection = FakeConnection(FakeSocket(accept=3))
        sendNow(connection, b"abcdef")
        self.assertEqual((connection.socket.sent, connection.written), ([b"abc"], [b"def"]))

    def test_queuedDataGoesFirst(self) -> None:
        """
        When anything is queued, the bytes are queued behind it.
        """
        for attribute, value in [
            ("_tempDataLen", 5),
            ("dataBuffer", b"pending"),
            ("disconnecting", True),
            ("_writeDisconnecting", True),
            ("TLS", True),
            ("connected", 0),
        ]:
            connection = FakeConnection(FakeSocket())
            setattr(connection, attribute, value)
            sendNow(connection, b"x")
            self.assertEqual((connection.socket.sent, connection.written), ([], [b"x"]))

    def test_socketErrorsLeftToTheReactor(self) -> None:
        """
        A send error (full buffer, reset) queues the bytes; the reactor reports the error.
        """
        for code in (errno.EAGAIN, errno.EPIPE, errno.ECONNRESET):
            connection = FakeConnection(FakeSocket(error=OSError(code, "x")))
            sendNow(connection, b"data")
            self.assertEqual(connection.written, [b"data"])

    def test_onlyPlainTCP(self) -> None:
        """
        Only Twisted's plain TCP server transport qualifies.
        """
        self.assertFalse(canSendDirectly(StringTransport()))
        self.assertFalse(canSendDirectly(FakeConnection(FakeSocket())))

    def test_twistedAttributesExist(self) -> None:
        """
        The installed Twisted still has the buffer attributes this relies on (the
        per-instance C{_tempDataLen} is checked on a live connection by the socket tests).
        """
        for name in ("dataBuffer", "offset", "disconnecting", "_writeDisconnecting"):
            self.assertTrue(hasattr(tcp.Server, name), name)
        self.assertIs(tcp.Server.TLS, False)
