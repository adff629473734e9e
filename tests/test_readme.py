"""
The README's Python snippets run: each is extracted and run as a program against a local
server, so that an example that no longer works fails the suite.

Every C{```python} block in the README follows a marker that says how to run it:

  - C{<!-- snippet: server PORT -->}: a server program.  It is run with C{PORT} replaced by
    a free port on 127.0.0.1, must answer the OK-echo conversation there, and is then
    stopped.
  - C{<!-- snippet: client PORT -->}: a client program.  It is run with C{PORT} replaced by
    the port of a local twisted.web server, and must exit 0 having printed the status 200.
  - C{<!-- snippet: test -->}: a test module.  It is run by trial, and must pass.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests._http_servers import listen_web, temporary_directory
from tests._sockets import WELCOME, recv_exactly

reactor: Any = _reactor

README = Path(__file__).resolve().parent.parent / "README.md"
_SNIPPET = re.compile(r"<!-- snippet: (server|client) (\d+) -->\n```python\n(.*?)```", re.S)
_TEST_SNIPPET = re.compile(r"<!-- snippet: test -->\n```python\n(.*?)```", re.S)
_ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def snippets(kind: str) -> list[tuple[int, str]]:
    """
    The README's snippets of C{kind}: the port each uses, and its code.
    """
    return [
        (int(port), code) for found, port, code in _SNIPPET.findall(README.read_text())
        if found == kind
    ]  # fmt: skip


def free_port() -> int:
    """
    A TCP port on 127.0.0.1 that nothing listens on now.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SnippetMarkerTests(SynchronousTestCase):
    """
    No Python snippet escapes being run.
    """

    def test_every_block_is_marked(self) -> None:
        """
        Every C{```python} block follows a snippet marker.
        """
        text = README.read_text()
        marked = len(_SNIPPET.findall(text)) + len(_TEST_SNIPPET.findall(text))
        self.assertEqual(text.count("```python"), marked)
        self.assertTrue(snippets("server"))
        self.assertTrue(snippets("client"))


class ServerSnippetTests(SynchronousTestCase):
    """
    The server snippets serve the OK-echo conversation.
    """

    def test_server_snippets(self) -> None:
        """
        Each server snippet, on a free port of 127.0.0.1, greets a client and answers
        its line.
        """
        for port, code in snippets("server"):
            free = free_port()
            program = code.replace(f'"tcp:{port}"', f'"tcp:{free}:interface=127.0.0.1"')
            self.assertNotEqual(program, code, "the snippet does not listen on its port")
            process = subprocess.Popen(
                [sys.executable, "-c", program], stderr=subprocess.PIPE, env=_ENV
            )
            try:
                sock = self._connect(free, process)
                with sock:
                    self.assertEqual(recv_exactly(sock, len(WELCOME)), WELCOME)
                    sock.sendall(b"hi\n")
                    self.assertEqual(recv_exactly(sock, 8), b"OK...hi\n")
            finally:
                process.kill()
                _, stderr = process.communicate(timeout=30)
            self.assertNotIn(b"Traceback", stderr)

    def _connect(self, port: int, process: subprocess.Popen[bytes]) -> socket.socket:
        """
        Connect to the snippet's port once it listens (within 30 seconds).
        """
        deadline = time.monotonic() + 30
        while True:
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=10)
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the snippet never listened") from None
                time.sleep(0.05)


class TestSnippetTests(SynchronousTestCase):
    """
    The test snippets pass under trial.
    """

    def test_test_snippets(self) -> None:
        """
        Each test snippet, saved as a test module, passes under trial.
        """
        codes = _TEST_SNIPPET.findall(README.read_text())
        self.assertTrue(codes)
        for code in codes:
            directory = temporary_directory(self)
            (directory / "test_readme_snippet.py").write_text(code)
            result = subprocess.run(
                [sys.executable, "-m", "twisted.trial", "test_readme_snippet"],
                cwd=directory,
                capture_output=True,
                env=_ENV,
                timeout=120,
            )
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn(b"PASSED", result.stdout)


class ClientSnippetTests(TestCase):
    """
    The client snippets fetch from a local server.
    """

    @inlineCallbacks
    def test_client_snippets(self) -> Any:
        """
        Each client snippet, pointed at a local twisted.web server, exits 0 and prints
        the status 200.
        """
        directory = temporary_directory(self)
        web = listen_web(self, reactor, directory)
        for port, code in snippets("client"):
            program = code.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{web}/static/hello.txt")
            program = program.replace(str(port), str(web))
            self.assertNotEqual(program, code, "the snippet does not use its port")
            out, err, status = yield getProcessOutputAndValue(
                sys.executable, ["-c", program], env=_ENV, reactor=reactor
            )
            self.assertEqual((status, err), (0, b""), out)
            self.assertIn(b"200", out)
