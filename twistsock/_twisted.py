"""
Every use of Twisted's private or undocumented internals in twistsock, in one place.

Each is a deliberate trade of stability for speed or for behaviour Twisted offers no
public way to get, and each is checked against the installed Twisted by the tests
(C{tests/test_twisted_privates.py} and Twisted's own reactor tests in
C{tests/test_leanreactor.py}).  What each one touches:

  - L{send_now} (the OK-echo server's direct write, and the HTTP client's requests)
    reads and relies on L{twisted.internet.abstract.FileDescriptor}'s buffer attributes
    C{dataBuffer}, C{_tempDataLen} and C{_writeDisconnecting}, and writes to
    C{transport.socket} of a L{twisted.internet.tcp.Server} or L{twisted.internet.tcp.Client}.
    Turned off in the server by C{direct_write=False} (C{--no-direct-write}).
  - L{LeanEPollReactor} overrides L{EPollReactor.doPoll} and uses the reactor's
    C{_poller}, C{_selectables} and C{_doReadOrWrite}.  Used only when installed
    (C{twistd -r twistsock-epoll}, or by default under C{twistd twistsock} on Linux).
  - L{reactor_installed} relies on twistd's order of work: it installs the reactor named
    by C{--reactor} while parsing options, and its default reactor only when something
    first imports C{twisted.internet.reactor}, after the plugin's service is made.
  - L{remove_own_pidfile} relies on twistd's runner reading C{config["pidfile"]} again
    when it removes the pid file after a failed start (C{removePID}).
  - L{read_directly} (the HTTP client's direct body reads) replaces C{doRead} on a
    L{twisted.internet.tcp.Client} instance, reads from its C{socket}, and returns
    Twisted's C{CONNECTION_DONE} and C{CONNECTION_LOST} as its own C{doRead} does.  Used
    only where L{can_read_directly} says so: plain TCP, the protocol connected straight to
    the transport (no TLS, no endpoint wrapper).
  - L{endpoint_port} reads the C{_port} attribute of Twisted's TCP, TCP6 and SSL server
    endpoints, and C{_wrappedEndpoint} of wrappers such as C{haproxy:}.
  - L{ssl_endpoint_parts} reads C{_port}, C{_backlog}, C{_interface} and
    C{_sslContextFactory} of a parsed C{ssl:} server endpoint, so that with the PROXY
    protocol the same port listens as plain TCP and starts TLS after the header.
  - L{tls_received} hands bytes already read from a connection to the TLS layer that
    C{startTLS} put in front of its protocol, through the connection's C{protocol}
    attribute (which C{startTLS} replaces with that layer).
  - L{share_listening_socket} and L{stop_accepting} (C{--workers}) read the C{socket}
    attribute of a L{twisted.internet.tcp.Port} (which TLS, UNIX and adopted ports also
    are) and call its C{stopReading}: L{twisted.internet.interfaces.IListeningPort} promises
    neither.

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

Direct body reads
=================
Twisted's C{doRead} receives into a new C{bytes} of up to 64 KiB and hands it to
C{dataReceived}: for a body of known length that is a fresh allocation per read and a
second copy into the body's buffer.  While the HTTP client's reader knows that the next
bytes are body bytes and where they go (L{twistsock.http._reader.ResponseReader.body_window}),
L{read_directly} has the socket write them there (C{recv_into}), up to the rest of the body
in one call: the kernel's copy is the only one.  Whenever the reader has no such place
(the head, chunked or close-delimited bodies, the end of the body), Twisted's own
C{doRead} runs unchanged.

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
import os
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from twisted.internet import main, tcp
from twisted.python import log

__all__ = [
    "LeanEPollReactor",
    "can_read_directly",
    "can_send_directly",
    "endpoint_port",
    "install",
    "read_directly",
    "reactor_installed",
    "remove_own_pidfile",
    "send_now",
    "ssl_endpoint_parts",
    "tls_received",
    "share_listening_socket",
    "stop_accepting",
]


_PLAIN_TCP = (tcp.Server, tcp.Client)
"""Twisted's plain TCP transports, accepted and connected: nothing wraps their socket."""


def can_send_directly(transport: object) -> bool:
    """
    Is C{transport} a plain TCP connection whose socket L{send_now} may write to?
    """
    return (
        type(transport) in _PLAIN_TCP
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


def can_read_directly(transport: object, protocol: object) -> bool:
    """
    Is C{transport} a plain TCP client connection that hands its bytes to C{protocol}
    itself, whose reads L{read_directly} may take over?
    """
    return (
        type(transport) is tcp.Client
        and getattr(transport, "protocol", None) is protocol
        and hasattr(transport, "socket")
        and not getattr(transport, "TLS", False)
    )


def read_directly(
    transport: Any,
    window: Callable[[], memoryview | None],
    filled: Callable[[int], None],
) -> None:
    """
    Make a transport accepted by L{can_read_directly} receive straight into C{window()}
    when it is not C{None}, and report the size received to C{filled}; otherwise it reads
    as Twisted does.
    """
    original = transport.doRead
    sock = transport.socket

    def doRead() -> object:
        target = window()
        if target is None:
            return original()
        try:
            with target:
                received = sock.recv_into(target)
        except OSError as e:
            if e.args[0] == errno.EWOULDBLOCK:
                return None
            return main.CONNECTION_LOST
        if not received:
            return main.CONNECTION_DONE
        filled(received)
        return None

    transport.doRead = doRead


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


def remove_own_pidfile(twistd_options: MutableMapping[str, Any] | None) -> None:
    """
    Remove twistd's pid file if it names this process, and clear C{"pidfile"} in twistd's
    options, so that twistd neither leaves it behind nor tries (and fails, loudly) to
    remove it again.

    Why: after a failure to start, twistd removes the pid file only for an ordinary
    exception, and a daemonizing twistd only after it has told its parent process through
    the status pipe, so the parent can exit while the file is still there.  Removed here,
    before the failure is raised, the file is gone before anyone learns of the failure.
    A file that holds another process's id, or cannot be read, is left to twistd.

    @param twistd_options: twistd's own options (the runner reads C{"pidfile"} from
        them); C{None}, or options without a pid file (C{twist}), do nothing.
    """
    if twistd_options is None:
        return
    path = twistd_options.get("pidfile")
    if not path:
        return
    try:
        with open(path, "rb") as f:
            ours = f.read().strip() == b"%d" % (os.getpid(),)
        if ours:
            os.unlink(path)
    except FileNotFoundError:
        ours = True
    except OSError:
        return
    if ours:
        twistd_options["pidfile"] = ""


def endpoint_port(endpoint: object) -> int | None:
    """
    The port number a parsed TCP, TCP6 or SSL server endpoint (or a wrapper of one, such
    as C{haproxy:tcp:...}) will listen on, or C{None} for endpoints without one.

    C{serverFromString} parses every syntax (C{tcp:N}, C{tcp:port=N}, escapes) but accepts
    any integer, leaving the range to C{bind} at listen time; the number is read back from
    the endpoint it built.  If Twisted's attributes ever change, this returns C{None} and
    C{bind} still rejects the number, later.
    """
    from twisted.internet.endpoints import (
        SSL4ServerEndpoint,
        TCP4ServerEndpoint,
        TCP6ServerEndpoint,
    )

    while True:
        if isinstance(endpoint, (TCP4ServerEndpoint, TCP6ServerEndpoint, SSL4ServerEndpoint)):
            port = getattr(endpoint, "_port", None)
            return port if isinstance(port, int) else None
        wrapped = getattr(endpoint, "_wrappedEndpoint", None)
        if wrapped is None:
            return None
        endpoint = wrapped


# -- PROXY protocol before TLS ------------------------------------------------------------


def ssl_endpoint_parts(endpoint: object) -> tuple[int, int, str, Any] | None:
    """
    The port, backlog, interface and TLS context factory of a parsed C{ssl:} server
    endpoint, or C{None} for any other endpoint.

    C{serverFromString} is what reads every C{ssl:} option (certificate, key, chain, DH
    parameters, ciphers); with the PROXY protocol the port must accept plain TCP and
    start TLS only after the header, so the parsed parts are read back from the
    endpoint.
    """
    from twisted.internet.endpoints import SSL4ServerEndpoint

    if not isinstance(endpoint, SSL4ServerEndpoint):
        return None
    parts = (
        getattr(endpoint, "_port", None),
        getattr(endpoint, "_backlog", None),
        getattr(endpoint, "_interface", None),
        getattr(endpoint, "_sslContextFactory", None),
    )
    if (
        not (isinstance(parts[0], int) and isinstance(parts[1], int) and isinstance(parts[2], str))
        or parts[3] is None
    ):
        raise RuntimeError("this Twisted's ssl: endpoint has no port, backlog or context")
    return parts  # type: ignore[return-value]


def tls_received(transport: Any, data: bytes) -> None:
    """
    Hand C{data}, read from C{transport} before C{transport.startTLS} was called, to the
    TLS layer that call started.

    A protocol that starts TLS in the middle of a read (after a PROXY header, with the
    client's handshake right behind it in the same segment) holds bytes that belong to
    the TLS layer; C{startTLS} made that layer the connection's C{protocol}, which the
    reactor feeds everything read from now on.
    """
    transport.protocol.dataReceived(data)


def share_listening_socket(port: object) -> tuple[int, int] | None:
    """
    Stop a listening port from accepting in this process, and return its socket's file
    descriptor and address family, for worker processes to accept on (C{--workers}).

    Twisted's TCP, TCP6, TLS, UNIX and adopted (systemd) ports are all
    L{twisted.internet.tcp.Port}s with a C{socket}; the port stays open, so the socket
    stays bound (and a UNIX socket's file and lock stay in place) until C{stopListening}.

    @return: C{(fd, family)}, or C{None} for a port that is not one of Twisted's socket
        ports (it is left as it was).
    """
    if not isinstance(port, tcp.Port):
        return None
    sock = getattr(port, "socket", None)
    if sock is None:
        return None
    port.stopReading()
    return sock.fileno(), sock.family


def stop_accepting(port: object) -> None:
    """
    Stop a listening port from accepting new connections, without closing its socket.

    A worker stops this way instead of C{stopListening}: closing an adopted UNIX port
    removes the socket's file, which the main process and the other workers still serve.
    """
    if isinstance(port, tcp.Port):
        port.stopReading()


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
