"""
Reference peer: the tutorial's thread-per-client server, ported to Python 3.

Program 12 of the tutorial accepts in a loop and starts one thread per client; the thread
sends the welcome line and answers every C{recv} with C{b"OK..." + data}.  That answer is
framing-unsafe (a line split across segments gets two replies), so this port keeps a buffer
and answers complete lines only, each with the terminator it arrived with.  The lines of one
C{recv} are framed with C{bytes} operations and answered with one C{sendall}, the way a
careful programmer would write the loop.

Run: C{python benchmarks/peer_threads.py --port 8888}
"""

from __future__ import annotations

import argparse
import socket
import threading

WELCOME = b"Welcome to the server. Type something and hit enter\n"
PREFIX = b"OK..."
JOINER = b"\n" + PREFIX


def client_thread(conn: socket.socket) -> None:
    """
    Serve one client until it closes: welcome, then C{OK...} + each complete line.
    """
    buffer = b""
    with conn:
        try:
            conn.sendall(WELCOME)
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                buffer += data
                end = buffer.rfind(b"\n")
                if end < 0:
                    continue
                complete, buffer = buffer[: end + 1], buffer[end + 1 :]
                # PREFIX before the first line, JOINER after every terminator; drop the last.
                conn.sendall((PREFIX + complete.replace(b"\n", JOINER))[: -len(PREFIX)])
        except OSError:
            pass


def main() -> None:
    """
    Listen on 127.0.0.1 and start a thread for every accepted client.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((args.host, args.port))
    # The tutorial used listen(10); a longer queue keeps 10,000 connects from overflowing it.
    server.listen(128)
    while True:
        conn, _addr = server.accept()
        threading.Thread(target=client_thread, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
