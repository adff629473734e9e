"""
Servers for the HTTP client's real-socket tests, all on 127.0.0.1 port 0.

  - L{listen_canned}: a raw server that sends fixed bytes, then closes, resets, or stalls;
  - L{listen_web}: a C{twisted.web} site with static files, a chunked resource and redirects.
"""

from __future__ import annotations

import shutil
import socket
import struct
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web import server
from twisted.web.resource import Resource
from twisted.web.static import File
from twisted.web.util import Redirect


class CannedProtocol(Protocol):
    """
    Waits for the request, answers with the factory's C{reply}, then does C{after}:
    C{"close"} (a clean FIN), C{"reset"} (an RST, by SO_LINGER 0) or C{"stall"} (nothing:
    the connection stays open until the client gives up).
    """

    factory: Any

    def dataReceived(self, data: bytes) -> None:
        if self.factory.answered.get(self):
            return
        self.factory.answered[self] = True
        self.factory.requests.append(data)
        after = self.factory.after
        if after == "reset":
            # Send synchronously (abortConnection would drop buffered data), then close
            # with SO_LINGER 0 and no shutdown(): the kernel sends an RST, not a FIN.
            sock = self.transport.getHandle()  # type: ignore[union-attr]
            sock.sendall(self.factory.reply)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        self.transport.write(self.factory.reply)  # type: ignore[union-attr]
        if after == "close":
            self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: object = None) -> None:
        self.factory.open.discard(self)

    def connectionMade(self) -> None:
        self.factory.open.add(self)


class CannedFactory(Factory):
    """Holds the reply, what to do after it, the requests seen and the open connections."""

    protocol = CannedProtocol

    def __init__(self, reply: bytes, after: str) -> None:
        self.reply = reply
        self.after = after
        self.requests: list[bytes] = []
        self.answered: dict[Protocol, bool] = {}
        self.open: set[Protocol] = set()


def listen_canned(
    test: TestCase, reactor: Any, reply: bytes, after: str = "close"
) -> tuple[int, CannedFactory]:
    """
    Listen on 127.0.0.1 with a L{CannedFactory}; stop listening and abort any connection
    left open when the test ends.

    @return: the port number and the factory.
    """
    factory = CannedFactory(reply, after)
    port: IListeningPort = reactor.listenTCP(0, factory, interface="127.0.0.1")

    def cleanup() -> object:
        for protocol in list(factory.open):
            protocol.transport.abortConnection()  # type: ignore[attr-defined]
        return port.stopListening()

    test.addCleanup(cleanup)
    return port.getHost().port, factory  # type: ignore[attr-defined]


def temporary_directory(test: TestCase | SynchronousTestCase) -> Path:
    """
    A new empty directory, removed when the test ends.  (C{TestCase.mktemp} would put it
    in the working directory under pytest, which is the checkout.)
    """
    path = Path(tempfile.mkdtemp(prefix="twistsock-test-"))
    test.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path


def closed_port(reactor: Any) -> int:
    """A port number on 127.0.0.1 on which nothing listens (it was just released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    number: int = sock.getsockname()[1]
    sock.close()
    return number


class Chunked(Resource):
    """Writes its body in three pieces without a length: twisted.web sends it chunked."""

    isLeaf = True

    def render_GET(self, request: server.Request) -> int:
        for piece in (b"first ", b"second ", b"third"):
            request.write(piece)
        request.finish()
        return server.NOT_DONE_YET  # type: ignore[no-any-return]


class Status(Resource):
    """Answers with a fixed status code and a small body, for C{--fail}."""

    isLeaf = True

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    def render_GET(self, request: server.Request) -> bytes:
        request.setResponseCode(self.code)
        return b"status body\n"


BINARY = bytes(range(256)) * 64
"""A static file's content: every byte value, so that nothing may be decoded."""


def listen_web(test: TestCase, reactor: Any, directory: Path) -> int:
    """
    Serve a C{twisted.web} site on 127.0.0.1: C{/static/} from C{directory} (which gets
    C{hello.txt} and C{binary.bin}), C{/chunked}, C{/redirect} (302 to a relative
    C{static/hello.txt}), C{/absolute} (301 to an absolute URL), C{/loop} (a redirect to
    itself), and C{/missing} (404).

    @return: the port number.
    """
    (directory / "hello.txt").write_bytes(b"hello, world\n")
    (directory / "binary.bin").write_bytes(BINARY)
    root = Resource()
    root.putChild(b"static", File(str(directory)))
    root.putChild(b"chunked", Chunked())
    root.putChild(b"redirect", Redirect(b"static/hello.txt"))
    root.putChild(b"loop", Redirect(b"/loop"))
    root.putChild(b"missing", Status(404))
    site = server.Site(root)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    number: int = port.getHost().port
    root.putChild(b"absolute", Redirect(f"http://127.0.0.1:{number}/chunked".encode()))
    test.addCleanup(port.stopListening)
    return number


class NeverResolves:
    """A name resolver (for a memory reactor) that never answers."""

    def resolveHostName(self, receiver: Any, hostName: str, *args: Any, **kwargs: Any) -> None:
        receiver.resolutionBegan(None)
