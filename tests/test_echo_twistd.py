"""
End-to-end tests: C{twistd -n twistsock} as a subprocess, talked to over real sockets.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests._certificates import make_self_signed
from tests._sockets import WELCOME, recv_all, recv_exactly
from tests._twistd import Twistd, twistd_command

LOCAL = "tcp:0:interface=127.0.0.1"


class ServerProcessTests(SynchronousTestCase):
    """
    The plugin as users run it.
    """

    def taken_port(self) -> int:
        """
        A port on 127.0.0.1 that another socket listens on for the rest of the test.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        return int(taken.getsockname()[1])

    def start(
        self,
        *arguments: str,
        file_limit: int | None = None,
        reactor: str | None = None,
        pidfile: bool = False,
    ) -> Twistd:
        server = Twistd(*arguments, file_limit=file_limit, reactor=reactor, pidfile=pidfile)
        self.addCleanup(server.stop)
        return server

    def client(self, server: Twistd) -> socket.socket:
        sock = server.connect()
        self.addCleanup(sock.close)
        return sock

    def test_conversation(self) -> None:
        """
        C{printf 'hi\\r\\nasd\\n' | nc 127.0.0.1 PORT}: the welcome, C{OK...hi}, C{OK...asd},
        and the connection is logged as the tutorial printed it.
        """
        server = self.start("--port", LOCAL)
        sock = self.client(server)
        sock.sendall(b"hi\r\nasd\n")
        sock.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_all(sock), WELCOME + b"OK...hi\r\nOK...asd\n")
        server.wait_for_line(r"Connected with 127\.0\.0\.1:\d+")
        server.wait_for_line(r"Disconnected 127\.0\.0\.1:\d+ after .* 2 lines, 8 bytes in")

    def test_reactors(self) -> None:
        """
        C{twistd -n twistsock} runs on the lean epoll reactor; C{twistd -r epoll} (any
        reactor the user names) is respected; both hold the same conversation.
        """
        for reactor, expected in [
            (None, r"twistsock\._twisted\.LeanEPollReactor"),
            ("twistsock-epoll", r"twistsock\._twisted\.LeanEPollReactor"),
            ("epoll", r"twisted\.internet\.epollreactor\.EPollReactor"),
        ]:
            server = self.start("--port", LOCAL, reactor=reactor)
            server.wait_for_line(f"reactor class: {expected}")
            sock = self.client(server)
            sock.sendall(b"hi\r\nasd\n")
            sock.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(sock), WELCOME + b"OK...hi\r\nOK...asd\n")

    def test_twist_runner(self) -> None:
        """
        Twisted's newer runner, C{twist twistsock}, runs the same server.
        """
        server = Twistd("--port", LOCAL, twist=True)
        self.addCleanup(server.stop)
        sock = self.client(server)
        sock.sendall(b"hi\n")
        sock.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_all(sock), WELCOME + b"OK...hi\n")

    def test_three_concurrent_clients(self) -> None:
        """
        Three clients connected at once each get their own replies, interleaved.
        """
        server = self.start("--port", LOCAL)
        clients = [self.client(server) for _ in range(3)]
        for sock in clients:
            self.assertEqual(recv_exactly(sock, len(WELCOME)), WELCOME)
        for round in range(3):
            for number, sock in enumerate(clients):
                sock.sendall(f"client {number} round {round}\n".encode())
            for number, sock in enumerate(clients):
                expected = f"OK...client {number} round {round}\n".encode()
                self.assertEqual(recv_exactly(sock, len(expected)), expected)

    def test_port_in_use(self) -> None:
        """
        A port already taken: exit status 1 and exactly one line on stderr, naming the
        address; no traceback anywhere.
        """
        port = self.taken_port()
        server = self.start("--port", f"tcp:{port}:interface=127.0.0.1")
        self.assertEqual(server.finish(), 1)
        self.assertEqual(
            server.stderr.decode(),
            f"twistd twistsock: cannot listen (address already in use) on "
            f"tcp:{port}:interface=127.0.0.1\n",
        )
        self.assertNotIn("Traceback", "\n".join(server.lines))

    def test_port_in_use_leaves_no_pidfile(self) -> None:
        """
        C{twistd -n twistsock} without C{--pidfile=} writes C{twistd.pid}; a port in use
        ends it with exit status 1 and one line on stderr, and removes the pid file.
        """
        port = self.taken_port()
        server = self.start("--port", f"tcp:{port}:interface=127.0.0.1", pidfile=True)
        self.assertEqual(server.finish(), 1)
        self.assertEqual(
            server.stderr.decode(),
            f"twistd twistsock: cannot listen (address already in use) on "
            f"tcp:{port}:interface=127.0.0.1\n",
        )
        self.assertEqual(os.listdir(server.directory), [])

    def test_port_out_of_range(self) -> None:
        """
        C{--port 99999} is rejected before twistd starts: one line on stderr, exit status
        1, and no pid file left behind.
        """
        server = self.start("--port", "99999", pidfile=True)
        self.assertEqual(server.finish(), 1)
        self.assertEqual(
            server.stderr.decode(),
            "twistd twistsock: error: --port 'tcp:99999': port number 99999 is out of range "
            "(0-65535) (see twistd twistsock --help)\n",
        )
        self.assertEqual(os.listdir(server.directory), [])

    def test_bad_option(self) -> None:
        """
        An invalid option value is one line on stderr and a non-zero exit.
        """
        server = self.start("--max-line-length", "-5")
        self.assertEqual(server.finish(), 1)
        lines = server.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("--max-line-length must be at least 1", lines[0])

    def test_sigterm(self) -> None:
        """
        On SIGTERM the server flushes pending replies, closes every connection, aborts a
        client that does not read once C{--shutdown-timeout} has passed, and exits
        reporting the signal, well before the default timeout of 10 seconds.
        """
        server = self.start("--port", LOCAL, "--shutdown-timeout", "1")
        talker = self.client(server)
        silent = self.client(server)
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.assertEqual(recv_exactly(talker, len(WELCOME)), WELCOME)
        talker.sendall(b"before shutdown\n")
        self.assertEqual(recv_exactly(talker, 21), b"OK...before shutdown\n")
        # Make the silent client owe more replies than the socket buffers hold: the
        # server stops reading from it and can only get rid of it by aborting.
        silent.setblocking(False)
        block = b"y" * 31 + b"\n"
        stuck = 0
        while stuck < 20:
            try:
                silent.send(block * 2048)
                stuck = 0
            except BlockingIOError:
                stuck += 1
                time.sleep(0.01)
        server.wait_for_line("Connected with .*")
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.finish(timeout=10)
        elapsed = time.monotonic() - signalled
        self.assertEqual(code, -signal.SIGTERM)
        self.assertLess(elapsed, 5.0)
        self.assertEqual(recv_all(talker), b"")
        self.assertNotIn("Traceback", "\n".join(server.lines))

    def test_port_in_use_daemon(self) -> None:
        """
        Without C{-n}, twistd daemonizes: a port in use still ends it promptly with exit
        status 1 and the reason on stderr, and leaves no pid file behind.
        """
        port = self.taken_port()
        directory = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, directory, True)
        pidfile = directory / "twistd.pid"
        result = subprocess.run(
            [
                *twistd_command(),
                *_daemon_arguments(directory, port),
            ],
            cwd=directory,
            capture_output=True,
            timeout=30,
        )
        self.assertEqual(result.returncode, 1)
        # twistd passes the parent only the first 100 bytes of the child's message: the
        # reason comes first so that it survives, with the start of the address.
        self.assertIn(
            f"cannot listen (address already in use) on tcp:{port}:", result.stderr.decode()
        )
        self.assertFalse(pidfile.exists())

    def test_port_in_use_daemon_pidfile_gone_first(self) -> None:
        """
        Daemonizing, the pid file is gone before the parent exits: twistd's own removal,
        which comes after the child has told the parent, is held back here until the test
        has looked, so the order is checked, not the timing.
        """
        port = self.taken_port()
        directory = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, directory, True)
        pidfile = directory / "twistd.pid"
        go, done = directory / "go", directory / "done"
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                _HELD_REMOVE_PID,
                str(go),
                str(done),
                *_daemon_arguments(directory, port),
            ],
            cwd=directory,
            capture_output=True,
            timeout=30,
        )
        pidfile_at_exit = pidfile.exists()
        go.touch()
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertTrue(done.exists(), "the daemon never reached twistd's removePID")
        self.assertFalse(pidfile_at_exit)
        self.assertFalse(pidfile.exists())

    def test_tls(self) -> None:
        """
        Over a TLS endpoint with a self-signed certificate the welcome and replies arrive
        (the welcome waits for the handshake), and a client that sends 64 MiB without
        reading still gets every reply, while the server stops reading from it.
        """
        directory = Path(tempfile.mkdtemp())
        key, cert = make_self_signed(directory)
        server = self.start("--port", f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}")
        context = ssl.create_default_context(cafile=str(cert))
        sock = context.wrap_socket(self.client(server), server_hostname="localhost")
        sock.sendall(b"over tls\r\n")
        self.assertEqual(recv_exactly(sock, len(WELCOME) + 15), WELCOME + b"OK...over tls\r\n")
        count = 64 * 1024 * 1024 // 16
        sock.settimeout(1)
        sent = 0
        block = b"0123456789abcde\n" * 4096
        try:
            while sent < count * 16:
                sock.sendall(block)
                sent += len(block)
        except TimeoutError:
            pass  # the server stopped reading: backpressure over TLS
        self.assertLess(sent, count * 16, "the server never pushed back over TLS")
        sock.settimeout(30)
        lines = sent // 16
        received = recv_exactly(sock, lines * 21)
        self.assertTrue(received == b"OK...0123456789abcde\n" * lines)

    def test_out_of_file_descriptors(self) -> None:
        """
        With too few file descriptors for C{--max-connections} the server warns at start,
        keeps serving the clients it has when descriptors run out, and serves new ones
        once descriptors are free again.
        """
        server = self.start("--port", LOCAL, "--max-connections", "10000", file_limit=64)
        server.wait_for_line(r"open-files limit is 64, below the 10032 that --max-connections")
        first = self.client(server)
        self.assertEqual(recv_exactly(first, len(WELCOME)), WELCOME)
        extra = []
        for _ in range(100):
            try:
                extra.append(socket.create_connection(server.address(), timeout=5))
            except OSError:
                break
        server.wait_for_line("EMFILE")  # the server did run out of descriptors
        try:
            first.sendall(b"still served\n")
            self.assertEqual(recv_exactly(first, 18), b"OK...still served\n")
        finally:
            for sock in extra:
                sock.close()
        server.wait_for_line("Disconnected")
        # Descriptors are free again: a new client is served normally.
        deadline = time.monotonic() + 10
        while True:
            late = self.client(server)
            greeting = recv_exactly(late, len(WELCOME))
            if greeting == WELCOME or time.monotonic() > deadline:
                break
        self.assertEqual(greeting, WELCOME)
        late.sendall(b"late\n")
        self.assertEqual(recv_exactly(late, 10), b"OK...late\n")


#: twistd, with its pid file removal held until the file named by argv[1] exists; it then
#: creates the file named by argv[2].
_HELD_REMOVE_PID = """
import os, sys, time
from twisted.scripts import _twistd_unix
from twisted.scripts.twistd import run

go, done = sys.argv[1:3]
del sys.argv[1:3]
sys.argv[0] = "twistd"
removePID = _twistd_unix.UnixApplicationRunner.removePID

def held_remove_pid(self, pidfile):
    deadline = time.monotonic() + 30
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.01)
    removePID(self, pidfile)
    open(done, "w").close()

_twistd_unix.UnixApplicationRunner.removePID = held_remove_pid
run()
"""


def _daemon_arguments(directory: Path, port: int) -> list[str]:
    """
    twistd's arguments to daemonize C{twistsock} on C{port} (taken), with its pid and log
    files in C{directory}.
    """
    return [
        f"--pidfile={directory / 'twistd.pid'}",
        f"--logfile={directory / 'twistd.log'}",
        "twistsock",
        "--port",
        f"tcp:{port}:interface=127.0.0.1",
    ]
