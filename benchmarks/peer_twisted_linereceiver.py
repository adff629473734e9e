"""
Reference peer: the plain Twisted way, a C{LineReceiver} OK-echo server.

C{delimiter = b"\\n"} so that clients sending bare C{\\n} (netcat) are answered too; a line
that arrived with C{\\r\\n} keeps its C{\\r}, so C{prefix + line + b"\\n"} gives back the
client's own terminator.  With C{--chunk}, a plain C{Protocol} that frames each chunk with
C{bytes} operations and answers it with one C{write} instead.

Run: C{python benchmarks/peer_twisted_linereceiver.py --port 8888 [--chunk]}
"""

from __future__ import annotations

import argparse

from twisted.internet import protocol
from twisted.protocols.basic import LineReceiver

WELCOME = b"Welcome to the server. Type something and hit enter\n"
PREFIX = b"OK..."
JOINER = b"\n" + PREFIX


class OKEchoLine(LineReceiver):
    """
    Greets the client, then answers each line with C{OK...} + the line + its terminator.
    """

    delimiter = b"\n"

    def connectionMade(self) -> None:
        """
        Send the welcome line.
        """
        self.transport.write(WELCOME)

    def lineReceived(self, line: bytes) -> None:
        """
        Answer one line; C{line} still ends with C{\\r} when the client sent C{\\r\\n}.
        """
        self.transport.write(PREFIX + line + b"\n")


class OKEchoChunk(protocol.Protocol):
    """
    Greets the client, then answers all the lines of each chunk with one write.
    """

    buffer = b""

    def connectionMade(self) -> None:
        """
        Send the welcome line.
        """
        self.transport.write(WELCOME)

    def dataReceived(self, data: bytes) -> None:
        """
        Frame the chunk with bytes operations and answer its complete lines at once.
        """
        buffer = self.buffer + data if self.buffer else data
        end = buffer.rfind(b"\n")
        if end < 0:
            self.buffer = buffer
            return
        self.buffer = buffer[end + 1 :]
        self.transport.write((PREFIX + buffer[: end + 1].replace(b"\n", JOINER))[: -len(PREFIX)])


def main() -> None:
    """
    Parse the options and run the reactor.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--chunk", action="store_true", help="plain Protocol, chunk framing")
    args = parser.parse_args()
    from twisted.internet import reactor

    factory = protocol.Factory.forProtocol(OKEchoChunk if args.chunk else OKEchoLine)
    reactor.listenTCP(args.port, factory, interface=args.host)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
