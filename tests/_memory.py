"""
The memory reactor of the in-memory tests, the same on every supported Twisted, and able
to remove the system event triggers it records.

Twisted's L{twisted.internet.testing.MemoryReactorClock} gained a name resolver (every
name resolves at once to 127.0.0.1) and C{installNameResolver} only in Twisted 25.5:
before that, C{HostnameEndpoint} on it falls back to the real C{getaddrinfo}, in a thread
of the global reactor's pool, so a test's C{example.com} was looked up for real.  And
before Twisted 26 a new memory reactor already says C{hasRun} and C{hasStopped}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import testing
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import (
    IHostnameResolver,
    IHostResolution,
    IReactorPluggableNameResolver,
)
from zope.interface import implementer


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        raise RuntimeError("already resolved")  # pragma: no cover


@implementer(IHostnameResolver)
class LoopbackResolver:
    """Resolves every name at once to 127.0.0.1 (as Twisted's own, from 25.5 on)."""

    def resolveHostName(
        self,
        receiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        resolution = _Resolution(hostName)
        receiver.resolutionBegan(resolution)
        receiver.addressResolved(IPv4Address("TCP", "127.0.0.1", portNumber))
        receiver.resolutionComplete()
        return resolution


@implementer(IReactorPluggableNameResolver)
class MemoryReactorClock(testing.MemoryReactorClock):
    """
    L{twisted.internet.testing.MemoryReactorClock} that never looks a name up for real and
    has neither run nor stopped when made.
    """

    def __init__(self) -> None:
        super().__init__()
        self.nameResolver: Any = LoopbackResolver()
        self.hasRun = False
        self.hasStopped = False

    def addSystemEventTrigger(
        self, phase: str, eventType: str, callable: Any, *args: Any, **kw: Any
    ) -> Any:
        """
        Record the trigger, as Twisted's memory reactor does, and return an ID that
        L{removeSystemEventTrigger} takes (Twisted's returns nothing, and cannot remove).
        """
        super().addSystemEventTrigger(phase, eventType, callable, *args, **kw)
        return (phase, eventType, len(self.triggers[phase][eventType]) - 1)

    def removeSystemEventTrigger(self, triggerID: Any) -> None:
        """
        Remove a trigger recorded by L{addSystemEventTrigger} (its place stays, empty).
        """
        phase, eventType, index = triggerID
        self.triggers[phase][eventType][index] = (lambda: None, (), {})

    def installNameResolver(self, resolver: Any) -> Any:
        previous, self.nameResolver = self.nameResolver, resolver
        return previous
