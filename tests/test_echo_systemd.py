"""
End-to-end: C{twistd -n twistsock --port systemd:...} serves a socket it inherits the way
systemd's socket activation hands it over (descriptor 3, C{LISTEN_FDS}, C{LISTEN_FDNAMES}
and C{LISTEN_PID} naming the process), in one process and with C{--workers 2}.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from twisted.trial.unittest import SynchronousTestCase

from tests._sockets import WELCOME, recv_exactly
from tests._twistd import twistd_command


class SocketActivationTests(SynchronousTestCase):
    """
    The server answers on a socket that systemd would have bound.
    """

    def serve(self, *arguments: str) -> tuple[int, subprocess.Popen[bytes]]:
        """
        Bind a socket on 127.0.0.1, start twistd with it as descriptor 3 and systemd's
        variables, and return the port and the process.
        """
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(50)
        port = int(listener.getsockname()[1])
        fd = listener.fileno()
        command = [*twistd_command(), "-n", "--pidfile=", "twistsock", "--port",
                   "systemd:domain=INET:index=0", *arguments]  # fmt: skip
        # A small launcher moves the socket to descriptor 3, as systemd passes it, names
        # itself in LISTEN_PID, and becomes twistd (exec keeps the pid).
        launcher = (
            "import os, sys\n"
            f"os.dup2({fd}, 3)\n"
            f"os.close({fd})\n"
            "os.environ['LISTEN_PID'] = str(os.getpid())\n"
            "os.execv(sys.argv[1], sys.argv[1:])\n"
        )
        environment = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="echo")
        process = subprocess.Popen(
            [sys.executable, "-c", launcher, *command],
            env=environment,
            pass_fds=(fd,),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        listener.close()
        self.addCleanup(self.stop, process)
        return port, process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """
        End the server and its workers (SIGTERM drains them), within bounds.
        """
        if process.poll() is None:
            process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()

    def converse(self, port: int, process: subprocess.Popen[bytes]) -> None:
        """
        Six clients in turn are greeted and answered.
        """
        deadline = time.monotonic() + 30
        for _ in range(6):
            while True:
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                    with sock:
                        self.assertEqual(recv_exactly(sock, len(WELCOME)), WELCOME)
                        sock.sendall(b"hi\n")
                        self.assertEqual(recv_exactly(sock, 8), b"OK...hi\n")
                    break
                except (TimeoutError, ConnectionError):
                    # Until a worker serves it, the kernel queues (or the test retries).
                    self.assertIsNone(process.poll(), "the server exited")
                    self.assertLess(time.monotonic(), deadline, "never served")
                    time.sleep(0.1)

    def test_one_process(self) -> None:
        """
        A single process serves the inherited socket.
        """
        self.converse(*self.serve())

    def test_workers(self) -> None:
        """
        With C{--workers 2} the workers serve the socket the main process inherited.
        """
        self.converse(*self.serve("--workers", "2"))
