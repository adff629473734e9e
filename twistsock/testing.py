"""
In-memory fakes for testing code that uses twistsock's HTTP client, with no sockets, no
threads, no real name lookups and no global reactor.

L{FakeHTTP} is a network with HTTP servers in it: its C{reactor} (a memory reactor and a
C{task.Clock}) is what the code under test passes to C{twistsock.fetch} or
C{twistsock.Client}.  Every host name resolves; every connection reaches a
C{twisted.web} server in memory that answers with your function or resource.  Faults are
injected per host: a name that does not resolve, a refused connection, a connection that
never completes, a reply that stalls or is reset after some bytes or trickles in slowly,
a TLS handshake that fails.  Nothing moves until the test says so: L{FakeHTTP.flush}
delivers everything that can be delivered now, L{FakeHTTP.advance} moves time on::

    def test_title(self):
        network = FakeHTTP(lambda request: StubResponse(body=b"<title>Hi</title>"))
        d = page_title("http://example.com/", reactor=network.reactor)
        network.flush()
        self.assertEqual(self.successResultOf(d), "Hi")

Plain C{http} URLs are served; an C{https} URL meets a server that does not speak TLS,
so that only L{Fault.tls_failure} makes sense for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import error
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import (
    IHostnameResolver,
    IHostResolution,
    IReactorPluggableNameResolver,
)
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

from twistsock.http._response import Headers

__all__ = ["FakeHTTP", "Fault", "StubRequest", "StubResponse"]


@dataclass(frozen=True)
class StubRequest:
    """
    A request as the fake server received it.

    @ivar method: C{"GET"}.
    @ivar url: the URL, rebuilt from C{Host} and the target.
    @ivar target: the request target (path and query).
    @ivar headers: the header fields.
    """

    method: str
    url: str
    target: str
    headers: Headers


@dataclass(frozen=True)
class StubResponse:
    """
    What a handler function answers.

    @ivar code: the status code.
    @ivar body: the body; sent with a C{Content-Length}.
    @ivar headers: extra header fields.
    """

    code: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Fault:
    """
    A fault injected for a host; make one with the class methods.

    @ivar kind: what goes wrong.
    @ivar after: how many bytes of the reply get through first (stall, reset).
    @ivar interval: seconds between pieces of a trickled reply.
    @ivar size: bytes per piece of a trickled reply.
    """

    kind: str
    after: int = 0
    interval: float = 0.0
    size: int = 1

    @classmethod
    def unresolvable(cls) -> Fault:
        """The host name has no address (C{CouldNotResolve}, 6)."""
        return cls("unresolvable")

    @classmethod
    def refused(cls) -> Fault:
        """The connection is refused (C{ConnectionRefused}, 7)."""
        return cls("refused")

    @classmethod
    def connect_timeout(cls) -> Fault:
        """The connection never completes: the client's connect timeout fires (28)."""
        return cls("connect-timeout")

    @classmethod
    def stall_after(cls, after: int) -> Fault:
        """The reply stops after C{after} bytes; the connection stays open."""
        return cls("stall", after=after)

    @classmethod
    def reset_after(cls, after: int) -> Fault:
        """The connection is reset after C{after} bytes of the reply."""
        return cls("reset", after=after)

    @classmethod
    def trickle(cls, interval: float, size: int = 1) -> Fault:
        """The reply arrives C{size} bytes every C{interval} seconds."""
        return cls("trickle", interval=interval, size=size)

    @classmethod
    def tls_failure(cls) -> Fault:
        """The server answers the TLS handshake with plain bytes (TLS error, 35)."""
        return cls("tls")


class _Handler(Resource):
    """A resource that answers every request with a handler function's L{StubResponse}."""

    isLeaf = True

    def __init__(self, network: FakeHTTP, handler: Callable[[StubRequest], StubResponse]):
        super().__init__()
        self._network = network
        self._handler = handler

    def render(self, request: Request) -> bytes:
        stub = self._network.requests[-1]
        response = self._handler(stub)
        request.setResponseCode(response.code)
        for name, value in response.headers:
            request.responseHeaders.addRawHeader(name, value)
        return response.body


class _Recorder(Site):
    """A C{Site} that records each request it is given as a L{StubRequest}."""

    def __init__(self, network: FakeHTTP, resource: IResource) -> None:
        super().__init__(resource, reactor=network.reactor)
        self._network = network

    def getResourceFor(self, request: Request) -> Any:
        raw = tuple(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, values in request.requestHeaders.getAllRawHeaders()
            for value in values
        )
        headers = Headers(raw)
        target = request.uri.decode("latin-1")
        self._network.requests.append(
            StubRequest(
                method=request.method.decode("ascii"),
                url=f"http://{headers.get('Host', '')}{target}",
                target=target,
                headers=headers,
            )
        )
        return super().getResourceFor(request)


class _ServerTransport(iosim.FakeTransport):
    """The server's side of a connection, where reply faults are applied."""

    def __init__(self, protocol: Any, fault: Fault | None, network: FakeHTTP) -> None:
        super().__init__(protocol, isServer=True)
        self._fault = fault
        self._network = network
        self._sent = 0
        self.client: iosim.FakeTransport | None = None

    def write(self, data: bytes) -> None:
        fault = self._fault
        if fault is None or fault.kind not in ("stall", "reset", "trickle"):
            super().write(data)
            return
        if fault.kind == "trickle":
            for start in range(0, len(data), fault.size):
                self._network.reactor.callLater(
                    fault.interval * (self._sent // fault.size + 1),
                    super().write,
                    data[start : start + fault.size],
                )
                self._sent += len(data[start : start + fault.size])
            return
        room = max(0, fault.after - self._sent)
        self._sent += len(data)
        if room:
            super().write(data[:room])
        if self._sent >= fault.after and fault.kind == "reset" and self.client is not None:
            self.client.disconnectReason = error.ConnectionLost()  # type: ignore[assignment]
            self.loseConnection()

    def loseConnection(self) -> None:
        if self._fault is not None and self._fault.kind == "stall":
            return  # the server never finishes
        if self._fault is not None and self._fault.kind == "trickle":
            self._network.reactor.callLater(
                self._fault.interval * (self._sent // self._fault.size + 1),
                super().loseConnection,
            )
            return
        super().loseConnection()


class _PlainBytes(Protocol):
    """A server that answers whatever it receives (a TLS ClientHello) with plain HTTP."""

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")  # type: ignore[union-attr]


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:  # pragma: no cover - resolution is immediate
        pass


@implementer(IHostnameResolver)
class _Resolver:
    """Gives every name an address of its own (127.1.x.y), except unresolvable ones."""

    def __init__(self, network: FakeHTTP) -> None:
        self._network = network

    def resolveHostName(
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        fault = self._network._faults.get(hostName)
        if fault is None or fault.kind != "unresolvable":
            address = self._network._address_of(hostName)
            resolutionReceiver.addressResolved(IPv4Address("TCP", address, portNumber))
        resolutionReceiver.resolutionComplete()
        return resolution


@implementer(IReactorPluggableNameResolver)
class _Reactor(MemoryReactorClock):
    """A memory reactor whose TCP connections reach the fake network's servers."""

    def __init__(self, network: FakeHTTP) -> None:
        super().__init__()
        self._network = network
        self.nameResolver: Any = _Resolver(network)
        # Before Twisted 26 a new memory reactor already says it ran and stopped.
        self.hasRun = False
        self.hasStopped = False

    def installNameResolver(self, resolver: Any) -> Any:
        previous, self.nameResolver = self.nameResolver, resolver
        return previous

    def addSystemEventTrigger(
        self, phase: str, eventType: str, callable: Any, *args: Any, **kw: Any
    ) -> Any:
        """Record the trigger (as the memory reactor does) and return its handle."""
        entry = (callable, args, kw)
        self.triggers.setdefault(phase, {}).setdefault(eventType, []).append(entry)
        return (phase, eventType, entry)

    def removeSystemEventTrigger(self, triggerID: Any) -> None:
        """Remove a trigger added with L{addSystemEventTrigger}."""
        phase, eventType, entry = triggerID
        self.triggers[phase][eventType].remove(entry)

    def connectTCP(
        self, host: str, port: int, factory: Any, timeout: float = 30, bindAddress: Any = None
    ) -> Any:
        connector = super().connectTCP(host, port, factory, timeout, bindAddress)
        attempt = _Attempt(connector, factory)
        self.callLater(0, self._network._connect, host, port, factory, attempt, timeout)
        return attempt


class _Attempt:
    """
    A connection attempt that can be stopped, as a real connector's: stopping it fails
    the attempt (C{clientConnectionFailed} with C{UserError}) and the network does not
    connect it.
    """

    def __init__(self, connector: Any, factory: Any) -> None:
        self._connector = connector
        self._factory = factory
        self.stopped = False
        self.connected = False

    def stopConnecting(self) -> None:
        """Stop the attempt before it connects."""
        if self.stopped or self.connected:
            raise error.NotConnectingError()
        self.stopped = True
        self._factory.clientConnectionFailed(self, Failure(error.UserError()))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connector, name)


class FakeHTTP:
    """
    A network of in-memory HTTP servers for tests; see the module's description.

    @ivar reactor: the reactor to give the code under test (also a C{task.Clock}).
    @ivar requests: every request received, in order.
    """

    def __init__(self, handler: Callable[[StubRequest], StubResponse] | IResource) -> None:
        """
        @param handler: a function from L{StubRequest} to L{StubResponse}, or a
            C{twisted.web} resource, that answers every request on every host.
        """
        self.requests: list[StubRequest] = []
        self._faults: dict[str, Fault] = {}
        self._names: dict[str, str] = {}
        self._pumps: list[iosim.IOPump] = []
        self.reactor = _Reactor(self)
        resource = handler if IResource.providedBy(handler) else _Handler(self, handler)
        self._site = _Recorder(self, resource)

    def fault(self, host: str, fault: Fault) -> None:
        """Make C{fault} happen to the connections to C{host} (a name or an address)."""
        self._faults[host] = fault

    def flush(self) -> None:
        """Deliver every byte and run every call that is due now, until nothing moves."""
        moved = True
        while moved:
            moved = False
            self.reactor.advance(0)
            for pump in list(self._pumps):
                if pump.pump(advanceClock=False):
                    moved = True
            self._pumps = [
                p for p in self._pumps if not (p.clientIO.disconnected and p.serverIO.disconnected)
            ]
            if self.reactor.getDelayedCalls() and any(
                call.getTime() <= self.reactor.seconds() for call in self.reactor.getDelayedCalls()
            ):
                moved = True

    def advance(self, seconds: float) -> None:
        """Move time on by C{seconds}, delivering what is due on the way."""
        self.flush()
        self.reactor.advance(seconds)
        self.flush()

    def _address_of(self, name: str) -> str:
        address = self._names.get(name)
        if address is None:
            count = len(self._names) + 1
            address = self._names[name] = f"127.1.{count // 256}.{count % 256}"
        return address

    def _host_of(self, address: str) -> str:
        for name, known in self._names.items():
            if known == address:
                return name
        return address

    def _connect(self, host: str, port: int, factory: Any, connector: Any, timeout: float) -> None:
        """A client's connection attempt arrives: fault it, or connect it to a server."""
        if getattr(connector, "stopped", False):
            return  # stopped (cancelled, or the client closed) before it arrived
        connector.connected = True
        name = self._host_of(host)
        fault = self._faults.get(name) or self._faults.get(host)
        kind = fault.kind if fault is not None else None
        if kind == "refused":
            factory.clientConnectionFailed(connector, Failure(error.ConnectionRefusedError()))
            return
        if kind == "connect-timeout":
            self.reactor.callLater(
                timeout, factory.clientConnectionFailed, connector, Failure(error.TimeoutError())
            )
            return
        client = factory.buildProtocol(IPv4Address("TCP", host, port))
        if kind == "tls":
            server_protocol: Protocol = _PlainBytes()
        else:
            server_protocol = self._site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        server = _ServerTransport(server_protocol, fault, self)
        client_transport = iosim.FakeTransport(
            client, isServer=False, peerAddress=IPv4Address("TCP", host, port)
        )
        server.client = client_transport
        server_protocol.makeConnection(server)
        client.makeConnection(client_transport)
        # Bytes move when the network is flushed, not from inside this call (which runs
        # in the middle of the network's own pending calls).
        pump = iosim.IOPump(
            client, server_protocol, client_transport, server, False, clock=Clock()
        )
        self._pumps.append(pump)
