"""
An epoll reactor without the per-event logging context: C{twistd -r twistsock-epoll}.

Twisted's L{EPollReactor} hands every I/O event to its handler through
L{twisted.python.log.callWithLogger}, which asks the selectable for its log prefix, copies
the logging context dictionary, pushes it, calls the handler and pops it again: about 2 µs of
Python per event, a third of the server's CPU per reply in a ping-pong conversation (see
C{benchmarks/profile_echo.py}).  That context only sets the C{system} of I{legacy}
C{twisted.python.log} messages emitted while an event is handled; C{twisted.logger} events
(which is what twistsock and modern Twisted log) do not use it.

L{LeanEPollReactor} is Twisted's epoll reactor with only C{doPoll} replaced: the same poller,
the same C{_doReadOrWrite} for every event, and the same guarantee that an exception from a
handler is logged and never stops the loop.  The one visible difference: a legacy log line
written while handling an event shows C{[-]} instead of the connection's prefix.

Who installs it: C{twistd -n twistsock} does, on Linux, when the user names no reactor
(L{twistsock.tap.choose_reactor}); C{twistd --reactor=epoll} (or any other) keeps Twisted's
choice.  C{twistd -r twistsock-epoll} asks for it explicitly, and L{install} installs it in a
program of your own, before anything imports C{twisted.internet.reactor}.
"""

from __future__ import annotations

import errno

from twisted.internet.epollreactor import EPollReactor
from twisted.python import log

__all__ = ["LeanEPollReactor", "install"]


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
    Install L{LeanEPollReactor} as the global reactor.
    """
    from twisted.internet.main import installReactor

    installReactor(LeanEPollReactor())
