"""
Blocking-socket helpers for tests that talk to a real server, the way the tutorial's
clients do.
"""

from __future__ import annotations

import socket

#: The OK-echo server's default greeting, as it arrives on the wire.
WELCOME = b"Welcome to the server. Type something and hit enter\n"


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    """
    Read exactly C{count} bytes, or fewer if the server closes first.
    """
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def recv_all(sock: socket.socket) -> bytes:
    """
    Read until the server closes the connection.
    """
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)
