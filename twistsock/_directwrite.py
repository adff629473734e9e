"""
Send straight to the socket when a plain TCP transport has nothing queued.

Twisted's C{transport.write} only queues the bytes: the reactor sends them on its next turn,
after registering the socket for writability and before unregistering it again (two
C{epoll_ctl} calls and one more reactor iteration for every reply of a ping-pong
conversation).  When nothing is queued, sending at once is equivalent and cheaper: nothing
can be reordered, because there is nothing ahead of these bytes.  Whatever the kernel does
not take at once goes through C{transport.write} as usual, so buffering, flow control
(C{pauseProducing} past the high-water mark), half-close and C{loseConnection} keep working
exactly as Twisted implements them.

This is confined to L{twisted.internet.tcp.Server}, the transport of a plain TCP connection
accepted by the reactor.  TLS (memory-BIO or C{startTLS}), UNIX sockets and wrapping
transports (HAProxy, policies) use their own C{write} untouched.  It relies on
L{twisted.internet.abstract.FileDescriptor}'s buffer attributes (C{dataBuffer},
C{_tempDataLen}), which have been stable for many years; the tests check it against the
installed Twisted, and C{OKEchoFactory(direct_write=False)} (C{--no-direct-write}) turns it off.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp

__all__ = ["can_send_directly", "send_now"]


def can_send_directly(transport: object) -> bool:
    """
    Is C{transport} a plain TCP connection whose socket L{send_now} may write to?
    """
    return (
        type(transport) is tcp.Server
        and hasattr(transport, "_tempDataLen")
        and hasattr(transport, "dataBuffer")
        and not getattr(transport, "TLS", False)
    )


def send_now(transport: Any, data: bytes) -> None:
    """
    Write C{data} to a transport accepted by L{can_send_directly}: at once when its buffer is
    empty, the remainder (or everything, otherwise) through C{transport.write}.
    """
    if not (
        transport._tempDataLen
        or transport.dataBuffer
        or transport.disconnecting
        or transport._writeDisconnecting
        or transport.TLS
        or not transport.connected
    ):
        try:
            sent = transport.socket.send(data)
        except OSError:
            # EAGAIN: the kernel buffer is full; EPIPE, ECONNRESET: the connection is
            # going; either way transport.write queues the bytes and the reactor sorts it out.
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)
