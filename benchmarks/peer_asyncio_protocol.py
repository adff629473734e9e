"""
Reference peer: an C{asyncio.Protocol} OK-echo server (optionally on uvloop).

The protocol keeps the unterminated tail of the stream, frames every chunk with C{bytes}
operations (C{rfind}, C{replace}) instead of a Python loop per line, and answers all the
lines of a chunk with one C{transport.write}: what a good asyncio programmer would write.

Run: C{python benchmarks/peer_asyncio_protocol.py --port 8888 [--uvloop]}
"""

from __future__ import annotations

import argparse
import asyncio
from typing import cast

WELCOME = b"Welcome to the server. Type something and hit enter\n"
PREFIX = b"OK..."
JOINER = b"\n" + PREFIX


class OKEcho(asyncio.Protocol):
    """
    Greets the client, then answers every complete line with C{OK...} + the line.
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.transport = cast(asyncio.WriteTransport, None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """
        Send the welcome line.
        """
        # No isinstance check: uvloop's transports do not subclass asyncio's.
        self.transport = cast(asyncio.WriteTransport, transport)
        self.transport.write(WELCOME)

    def data_received(self, data: bytes) -> None:
        """
        Answer every line the chunk completes with one write.
        """
        buffer = self.buffer + data if self.buffer else data
        end = buffer.rfind(b"\n")
        if end < 0:
            self.buffer = buffer
            return
        self.buffer = buffer[end + 1 :]
        self.transport.write((PREFIX + buffer[: end + 1].replace(b"\n", JOINER))[: -len(PREFIX)])


async def serve(host: str, port: int) -> None:
    """
    Listen until the process is killed.
    """
    loop = asyncio.get_running_loop()
    server = await loop.create_server(OKEcho, host, port)
    async with server:
        await server.serve_forever()


def main() -> None:
    """
    Parse the options and run the server on asyncio's default loop or on uvloop.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(serve(args.host, args.port))
    else:
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
