"""
Tests for L{twistsock._twisted}: sending at once when nothing is queued, receiving a body
straight into its buffer.
"""

from __future__ import annotations

import errno
import inspect

from twisted.internet import main, tcp
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from twistsock._twisted import can_read_directly, can_send_directly, read_directly, send_now


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
        Only Twisted's plain TCP transports, server or client, qualify.
        """
        self.assertFalse(can_send_directly(StringTransport()))
        self.assertFalse(can_send_directly(FakeConnection(FakeSocket())))
        for kind in (tcp.Server, tcp.Client):
            connection = kind.__new__(kind)
            connection._tempDataLen = 0
            self.assertTrue(can_send_directly(connection), kind)

    def test_twisted_attributes_exist(self) -> None:
        """
        The installed Twisted still has the buffer attributes this relies on (the
        per-instance C{_tempDataLen} is checked on a live connection by the socket tests).
        """
        for name in ("dataBuffer", "offset", "disconnecting", "_writeDisconnecting"):
            self.assertTrue(hasattr(tcp.Server, name), name)
        self.assertIs(tcp.Server.TLS, False)


class RecvSocket:
    """A socket whose C{recv_into} gives C{data} (at most what fits), or raises C{error}."""

    def __init__(self, data: bytes = b"", error: OSError | None = None) -> None:
        self.data = data
        self.error = error

    def recv_into(self, target: memoryview) -> int:
        if self.error is not None:
            raise self.error
        size = min(len(target), len(self.data))
        target[:size] = self.data[:size]
        self.data = self.data[size:]
        return size


class FakeClient:
    """The C{socket} and C{doRead} of a L{tcp.Client} that L{read_directly} uses."""

    def __init__(self, socket: RecvSocket) -> None:
        self.socket = socket
        self.twisted_reads = 0

    def doRead(self) -> object:
        self.twisted_reads += 1
        return None


class ReadDirectlyTests(SynchronousTestCase):
    """
    L{read_directly} receives into the window it is given, or lets Twisted read.
    """

    def test_into_the_window(self) -> None:
        """
        With a window, the socket writes into it, at most its size, and the size is
        reported; Twisted's own read is not used.
        """
        buffer = bytearray(4)
        filled: list[int] = []
        client = FakeClient(RecvSocket(b"abcdef"))
        read_directly(client, lambda: memoryview(buffer)[sum(filled) :], filled.append)
        self.assertIsNone(client.doRead())  # type: ignore[func-returns-value]
        self.assertEqual((bytes(buffer), filled, client.twisted_reads), (b"abcd", [4], 0))

    def test_no_window(self) -> None:
        """
        Without a window, Twisted's C{doRead} reads as usual.
        """
        client = FakeClient(RecvSocket(b"abc"))
        read_directly(client, lambda: None, self.fail)
        client.doRead()
        self.assertEqual(client.twisted_reads, 1)

    def test_end_and_errors(self) -> None:
        """
        The end of the stream is Twisted's C{CONNECTION_DONE}, a would-block is nothing,
        and any other error is C{CONNECTION_LOST}, as Twisted's own C{doRead} says them.
        """
        for socket, expected in [
            (RecvSocket(b""), main.CONNECTION_DONE),
            (RecvSocket(error=OSError(errno.EWOULDBLOCK, "x")), None),
            (RecvSocket(error=OSError(errno.ECONNRESET, "x")), main.CONNECTION_LOST),
        ]:
            client = FakeClient(socket)
            read_directly(client, lambda: memoryview(bytearray(4)), self.fail)
            self.assertIs(client.doRead(), expected)

    def test_only_plain_tcp_to_the_protocol(self) -> None:
        """
        Only a plain TCP client transport whose protocol is the one asking qualifies: not
        a memory transport, not a transport whose protocol wraps it (TLS, endpoints).
        """
        protocol = object()
        client = tcp.Client.__new__(tcp.Client)
        client.socket = None
        client.protocol = protocol
        self.assertTrue(can_read_directly(client, protocol))
        self.assertFalse(can_read_directly(client, object()))
        self.assertFalse(can_read_directly(StringTransport(), protocol))
        self.assertFalse(can_read_directly(FakeClient(RecvSocket()), protocol))

    def test_twisted_read_as_assumed(self) -> None:
        """
        The installed Twisted's TCP client reads in C{doRead} from its C{socket} with
        C{recv}, as L{read_directly} replaces it.
        """
        source = inspect.getsource(tcp.Connection.doRead)
        self.assertIn("self.socket.recv(", source)
        self.assertIn("CONNECTION_LOST", source)
        self.assertIs(tcp.Client.doRead, tcp.Connection.doRead)
