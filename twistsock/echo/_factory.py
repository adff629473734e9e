"""
L{OKEchoFactory}: admission of clients, the timers they share, and shutdown.

One factory serves any number of listening endpoints.  It counts clients (in all and per
IP address), refuses those over a limit with one C{ERROR server busy} line, sweeps every
client for the idle and line timeouts with one timer for the whole server, and closes
them all on shutdown.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, cast

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from twistsock.echo._protocol import OKEchoProtocol
from twistsock.echo._settings import EchoSettings

__all__ = ["OKEchoFactory", "REFUSALS_LOGGED_PER_SECOND"]

REFUSALS_LOGGED_PER_SECOND = 10
"""Refused connections logged one by one in any second; more are counted, not logged."""

_log = Logger(namespace="twistsock")


class OKEchoFactory(Factory):
    """
    Builds L{OKEchoProtocol} instances and holds the limits they share.

    Works with any stream server endpoint (TCP, TLS, UNIX, HAProxy, systemd)::

        serverFromString(reactor, "tcp:8888").listen(OKEchoFactory())

    Every limit is on by default.  The settings come from an L{EchoSettings}, from
    keyword arguments named like its fields (C{OKEchoFactory(max_connections=100)}), or
    from both (the keywords then override the settings given).

    @ivar settings: the L{EchoSettings} in force.
    @ivar clock: the L{IReactorTime} the timers run on.
    """

    protocol = OKEchoProtocol  # type: ignore[assignment]
    noisy = False

    def __init__(
        self,
        settings: EchoSettings | None = None,
        *,
        reactor: IReactorTime | None = None,
        **changes: Any,
    ) -> None:
        """
        @param settings: the server's settings; L{EchoSettings()} (every default) if
            C{None}.
        @param reactor: the clock for the timers (any L{IReactorTime}, such as
            L{twisted.internet.task.Clock} in tests); the global reactor by default.
        @param changes: settings to change, by the names of L{EchoSettings}' fields.
        @raise twistsock.echo.InvalidSetting: when a value is out of its range.
        @raise TypeError: when a keyword names no setting.
        """
        if settings is None:
            settings = EchoSettings(**changes)
        elif changes:
            settings = dataclasses.replace(settings, **changes)
        self.settings = settings
        self._sweep_interval = settings.sweep_interval  # computed once
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = cast(IReactorTime, global_reactor)
        self.clock: IReactorTime = reactor
        self._clients: set[OKEchoProtocol] = set()
        self._per_ip: dict[str, int] = {}
        self._sweep_call: IDelayedCall | None = None
        self._refusal_window = -math.inf
        self._refusals_in_window = 0
        self._refusals_unlogged = 0

    @property
    def connections(self) -> int:
        """
        The number of clients being served now (refused connections are not counted).
        """
        return len(self._clients)

    def _admit(self, protocol: OKEchoProtocol) -> str | None:
        """
        Count a new client in, or return why it is refused.
        """
        settings = self.settings
        if len(self._clients) >= settings.max_connections:
            return f"server busy (max {settings.max_connections} connections)"
        ip = protocol._ip
        if ip is not None and settings.max_per_ip:
            if self._per_ip.get(ip, 0) >= settings.max_per_ip:
                return f"server busy (max {settings.max_per_ip} connections per IP)"
            self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        self._clients.add(protocol)
        if (settings.idle_timeout or settings.line_timeout) and self._sweep_call is None:
            self._sweep_call = self.clock.callLater(self._sweep_interval, self._sweep)
        return None

    def _sweep(self) -> None:
        """
        Check every client for idleness; one timer for the whole server.
        """
        self._sweep_call = None
        if not self._clients:
            return
        now = self.clock.seconds()
        for client in list(self._clients):
            client._sweep_check(now)
        if self._clients:
            self._sweep_call = self.clock.callLater(self._sweep_interval, self._sweep)

    def _log_refusal(self, peer: str, refusal: str) -> None:
        """
        Log a refused connection: one line each, up to L{REFUSALS_LOGGED_PER_SECOND} in a
        second; past that a flood of connections must not become a flood of log lines,
        so the rest are counted, and the next line logged says how many were not.
        """
        now = self.clock.seconds()
        if now - self._refusal_window >= 1.0:
            self._refusal_window = now
            self._refusals_in_window = 0
        if self._refusals_in_window >= REFUSALS_LOGGED_PER_SECOND:
            self._refusals_unlogged += 1
            return
        self._refusals_in_window += 1
        unlogged, self._refusals_unlogged = self._refusals_unlogged, 0
        _log.warn(
            "Refused {peer}: {refusal}{more}",
            peer=peer,
            refusal=refusal,
            more=f" (and {unlogged} more not logged)" if unlogged else "",
            limit=True,
        )

    def _release(self, protocol: OKEchoProtocol) -> None:
        """
        Count a client out: it is gone.
        """
        self._clients.discard(protocol)
        if not self._clients and self._sweep_call is not None:
            self._sweep_call.cancel()
            self._sweep_call = None
        ip = protocol._ip
        if ip is not None and self.settings.max_per_ip:
            left = self._per_ip.get(ip, 0) - 1
            if left > 0:
                self._per_ip[ip] = left
            else:
                self._per_ip.pop(ip, None)

    def shutdown(self, timeout: float = 1.0) -> Deferred[Any]:
        """
        Close every client: pending replies are flushed, stragglers aborted after C{timeout}.

        @return: a L{Deferred} that fires when every connection is gone.
        """
        waiting = [client.shutdown(timeout) for client in list(self._clients)]
        return DeferredList(waiting, consumeErrors=True)
