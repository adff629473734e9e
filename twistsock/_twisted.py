"""
Every use of Twisted's private or undocumented internals in twistsock, in one place.

Each is a deliberate trade of stability for speed or for behaviour Twisted offers no
public way to get, and each is checked against the installed Twisted by the tests
(C{tests/test_twisted_privates.py} and Twisted's own reactor tests in
C{tests/test_leanreactor.py}).  What each one touches:

  - L{send_now} (the OK-echo server's direct write) reads and relies on
    L{twisted.internet.abstract.FileDescriptor}'s buffer attributes C{dataBuffer},
    C{_tempDataLen} and C{_writeDisconnecting}, and writes to C{transport.socket} of a
    L{twisted.internet.tcp.Server}.  Turned off by C{direct_write=False}
    (C{--no-direct-write}).
  - L{LeanEPollReactor} overrides L{EPollReactor.doPoll} and uses the reactor's
    C{_poller}, C{_selectables} and C{_doReadOrWrite}.  Used only when installed
    (C{twistd -r twistsock-epoll}, or by default under C{twistd twistsock} on Linux).
  - L{reactor_installed} relies on twistd's order of work: it installs the reactor named
    by C{--reactor} while parsing options, and its default reactor only when something
    first imports C{twisted.internet.reactor}, after the plugin's service is made.

Direct write
============
Twisted's C{transport.write} only queues the bytes: the reactor sends them on its next
turn, after registering the socket for writability and before unregistering it again (two
C{epoll_ctl} calls and one more reactor iteration for every reply of a ping-pong
conversation).  When nothing is queued, sending at once is equivalent and cheaper: nothing
can be reordered, because there is nothing ahead of these bytes.  Whatever the kernel does
not take at once goes through C{transport.write} as usual, so buffering, flow control
(C{pauseProducing} past the high-water mark), half-close and C{loseConnection} keep working
exactly as Twisted implements them.  TLS (memory-BIO or C{startTLS}), UNIX sockets and
wrapping transports (HAProxy, policies) are never written to directly.

The lean reactor
================
Twisted's L{EPollReactor} hands every I/O event to its handler through
L{twisted.python.log.callWithLogger}, which asks the selectable for its log prefix, copies
the logging context dictionary, pushes it, calls the handler and pops it again: Python work
on every event, a large share of the server's CPU per reply in a ping-pong conversation
(C{benchmarks/profile_echo.py} measures it).  That context only sets the C{system} of
I{legacy} C{twisted.python.log} messages emitted while an event is handled;
C{twisted.logger} events (which twistsock and modern Twisted log) do not use it.
L{LeanEPollReactor} is Twisted's epoll reactor with only C{doPoll} replaced: the same
poller, the same C{_doReadOrWrite} for every event, and the same guarantee that an
exception from a handler is logged and never stops the loop.  The one visible difference:
a legacy log line written while handling an event shows C{[-]} instead of the
connection's prefix.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Mapping
from typing import Any

from twisted.internet import tcp
from twisted.python import log

__all__ = [
    "LeanEPollReactor",
    "can_send_directly",
    "install",
    "reactor_installed",
    "send_now",
]


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


def reactor_installed(modules: Mapping[str, object] = sys.modules) -> bool:
    """
    Has a reactor been installed yet?

    Under twistd this tells whether the user chose one: twistd installs the reactor named
    by C{--reactor} while it parses its options, and its default only when something
    first imports C{twisted.internet.reactor}, which happens after the plugin's service is
    made.  Installing a reactor is what puts C{twisted.internet.reactor} in
    C{sys.modules}.

    @param modules: where to look (tests pass their own).
    """
    return "twisted.internet.reactor" in modules


if sys.platform == "linux":  # epoll(4) is Linux's
    from twisted.internet.epollreactor import EPollReactor

    class LeanEPollReactor(EPollReactor):
        """
        L{EPollReactor} that dispatches events without C{log.callWithLogger}.
        """

        def doPoll(self, timeout: float | None) -> None:
            """
            Poll for events and handle each, as L{EPollReactor.doPoll} does, minus the
            logging context around every handler.
            """
            if timeout is None:
                timeout = -1  # wait indefinitely
            try:
                events = self._poller.poll(timeout, len(self._selectables))
            except OSError as e:
                if e.errno == errno.EINTR:
                    return
                raise
            handle = self._doReadOrWrite
            selectables = self._selectables
            for fd, event in events:
                selectable = selectables.get(fd)
                if selectable is None:
                    continue
                try:
                    handle(selectable, fd, event)
                except KeyboardInterrupt:
                    raise
                except BaseException:
                    # callWithLogger's promise: a handler's failure is logged, the loop goes on.
                    log.err(None, "Unhandled error while handling an I/O event")

        doIteration = doPoll

    def install() -> None:
        """
        Install L{LeanEPollReactor} as the global reactor: what C{twistd -r twistsock-epoll}
        calls (the reactor plugin in C{twisted/plugins/twistsock_reactor.py} names this
        module), and what a program of your own calls before anything imports
        C{twisted.internet.reactor}.
        """
        from twisted.internet.main import installReactor

        installReactor(LeanEPollReactor())
