"""
Smoke tests for the benchmark suite in C{benchmarks/}: the load generator's reply checker on
in-memory bytes, and two reference peers on in-memory or socket-pair connections.

No timing is asserted: these only keep the benchmark's pieces honest (a checker that accepted
wrong replies, or a peer that framed lines wrongly, would make every figure meaningless).
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
from pathlib import Path
from types import ModuleType

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_module(name: str) -> ModuleType:
    """
    Import C{benchmarks/<name>.py} by path (C{benchmarks/} is not a package).
    """
    spec = importlib.util.spec_from_file_location(
        f"_twistsock_bench_{name}", BENCHMARKS / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def expected_replies(lines: list[bytes]) -> bytes:
    """
    The OK-echo replies to C{lines}, computed the obvious way.
    """
    return b"".join(b"OK..." + line for line in lines)


class ReplyCheckerTests(SynchronousTestCase):
    """
    The load generator's checker accepts exactly the protocol's bytes.
    """

    def setUp(self) -> None:
        self.load = load_module("_load")
        self.lines, self.period = self.load.make_lines()

    def test_lines(self) -> None:
        """
        The request lines are 32 bytes each, distinct, and some end in CRLF.
        """
        self.assertEqual({len(line) for line in self.lines}, {32})
        self.assertEqual(len(set(self.lines)), len(self.lines))
        self.assertTrue(any(line.endswith(b"\r\n") for line in self.lines))
        self.assertEqual(self.period, expected_replies(self.lines))

    def test_accepts_split_stream(self) -> None:
        """
        The welcome and two periods of replies, split at every few bytes, are accepted and
        counted.
        """
        stream = self.load.WELCOME + expected_replies(self.lines * 2)
        checker = self.load.ReplyChecker()
        total = 0
        for i in range(0, len(stream), 7):
            total += checker.feed(stream[i : i + 7])
        self.assertTrue(checker.welcomed)
        self.assertEqual(total, 2 * len(self.lines))

    def test_accepts_large_chunk(self) -> None:
        """
        A chunk longer than the receive size is checked piece by piece.
        """
        count = (self.load.RECV_SIZE // len(self.period) + 3) * len(self.lines)
        stream = self.load.WELCOME + expected_replies(self.lines * (count // len(self.lines)))
        self.assertEqual(self.load.ReplyChecker().feed(stream), count)

    def test_rejects_wrong_welcome(self) -> None:
        """
        A different welcome line is a mismatch.
        """
        checker = self.load.ReplyChecker()
        self.assertRaises(self.load.ReplyMismatch, checker.feed, b"Hello\n")

    def test_rejects_reordered_replies(self) -> None:
        """
        Replies out of order, or with a wrong terminator, are mismatches.
        """
        swapped = [self.lines[1], self.lines[0]]
        checker = self.load.ReplyChecker()
        checker.feed(self.load.WELCOME)
        self.assertRaises(self.load.ReplyMismatch, checker.feed, expected_replies(swapped))
        crlf = self.lines[3]
        checker = self.load.ReplyChecker()
        stream = (
            self.load.WELCOME + expected_replies(self.lines[:3]) + b"OK..." + crlf[:-2] + b"\n"
        )
        self.assertRaises(self.load.ReplyMismatch, checker.feed, stream)


class PeerTests(SynchronousTestCase):
    """
    The reference peers speak the protocol byte for byte.
    """

    conversation = [b"hi\r\n", b"as", b"d\n\n", b"x\xff\x00y\r", b"\n", b"tail"]
    replies = b"OK...hi\r\nOK...asd\nOK...\nOK...x\xff\x00y\r\n"

    def test_twisted_line_receiver(self) -> None:
        """
        The LineReceiver peer and the chunk-framing peer answer split lines with their own
        terminators.
        """
        peer = load_module("peer_twisted_linereceiver")
        for cls in (peer.OKEchoLine, peer.OKEchoChunk):
            proto = cls()
            transport = StringTransport()
            proto.makeConnection(transport)
            for piece in self.conversation:
                proto.dataReceived(piece)
            self.assertEqual(transport.value(), peer.WELCOME + self.replies, cls.__name__)

    def test_threads(self) -> None:
        """
        The thread-per-client peer answers a conversation over a socket pair.
        """
        peer = load_module("peer_threads")
        server, client = socket.socketpair()
        thread = threading.Thread(target=peer.client_thread, args=(server,), daemon=True)
        thread.start()
        with client:
            client.settimeout(10)
            for piece in self.conversation:
                client.sendall(piece)
            client.shutdown(socket.SHUT_WR)
            received = b""
            while True:
                data = client.recv(4096)
                if not data:
                    break
                received += data
        thread.join(10)
        self.assertEqual(received, peer.WELCOME + self.replies)
