"""
Tests for L{twistsock._twisted}: sending at once when nothing is queued.
"""

from __future__ import annotations

import errno

from twisted.internet import tcp
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from twistsock._twisted import can_send_directly, send_now


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
    The attributes of a L{tcp.Server} that L{send_now} reads, and a recording C{write}.
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
    L{send_now} sends directly only when that cannot reorder bytes.
    """

    def test_empty_buffer_sends_at_once(self) -> None:
        """
        With nothing queued the bytes go straight to the socket.
        """
        connection = FakeConnection(FakeSocket())
        send_now(connection, b"OK...hi\n")
        self.assertEqual((connection.socket.sent, connection.written), ([b"OK...hi\n"], []))

    def test_partial_send_queues_the_rest(self) -> None:
        """
        What the kernel does not take is queued with C{transport.write}, in order.
        """
        connection = FakeConnection(FakeSocket(accept=3))
        send_now(connection, b"abcdef")
        self.assertEqual((connection.socket.sent, connection.written), ([b"abc"], [b"def"]))

    def test_queued_data_goes_first(self) -> None:
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
            send_now(connection, b"x")
            self.assertEqual((connection.socket.sent, connection.written), ([], [b"x"]))

    def test_socket_errors_left_to_the_reactor(self) -> None:
        """
        A send error (full buffer, reset) queues the bytes; the reactor reports the error.
        """
        for code in (errno.EAGAIN, errno.EPIPE, errno.ECONNRESET):
            connection = FakeConnection(FakeSocket(error=OSError(code, "x")))
            send_now(connection, b"data")
            self.assertEqual(connection.written, [b"data"])

    def test_only_plain_tcp(self) -> None:
        """
        Only Twisted's plain TCP server transport qualifies.
        """
        self.assertFalse(can_send_directly(StringTransport()))
        self.assertFalse(can_send_directly(FakeConnection(FakeSocket())))

    def test_twisted_attributes_exist(self) -> None:
        """
        The installed Twisted still has the buffer attributes this relies on (the
        per-instance C{_tempDataLen} is checked on a live connection by the socket tests).
        """
        for name in ("dataBuffer", "offset", "disconnecting", "_writeDisconnecting"):
            self.assertTrue(hasattr(tcp.Server, name), name)
        self.assertIs(tcp.Server.TLS, False)
