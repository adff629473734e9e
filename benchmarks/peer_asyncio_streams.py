"""
Reference peer: an asyncio streams OK-echo server (C{reader.readline()}).

The high-level asyncio API as its documentation teaches it: one coroutine per client that
reads a line, writes the reply and awaits C{drain()} for flow control.

Run: C{python benchmarks/peer_asyncio_streams.py --port 8888}
"""

from __future__ import annotations

import argparse
import asyncio

WELCOME = b"Welcome to the server. Type something and hit enter\n"
PREFIX = b"OK..."


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """
    Greet the client, then answer each line until it closes.
    """
    try:
        writer.write(WELCOME)
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line.endswith(b"\n"):
                break  # EOF (an unterminated tail gets no reply)
            writer.write(PREFIX + line)
            await writer.drain()
    except (OSError, asyncio.LimitOverrunError, ValueError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int) -> None:
    """
    Listen until the process is killed.
    """
    server = await asyncio.start_server(handle, host, port)
    async with server:
        await server.serve_forever()


def main() -> None:
    """
    Parse the options and run the server.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
