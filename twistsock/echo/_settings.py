"""
L{EchoSettings}: every setting of the OK-echo server in one frozen value, checked once.

The command line (L{twistsock.echo.tap}) and the Python API (L{OKEchoFactory}'s keyword
arguments) both build one, so a value is range-checked in exactly one place, and a server
made of several processes can hand the same settings to each of them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from typing import Literal

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_PROXY_FROM",
    "DEFAULT_WELCOME",
    "EchoSettings",
    "InvalidSetting",
    "MODES",
    "Mode",
]

Mode = Literal["line", "chunk", "once"]
MODES: tuple[Mode, ...] = ("line", "chunk", "once")

DEFAULT_WELCOME = b"Welcome to the server. Type something and hit enter"
DEFAULT_PREFIX = b"OK..."
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
"""Seconds a server shutdown waits for clients to take their replies before aborting them."""
DEFAULT_PROXY_FROM = ("127.0.0.0/8", "::1/128")
"""Where PROXY headers are accepted from by default: this machine only."""


class InvalidSetting(ValueError):
    """
    A setting is out of its range or of the wrong type.

    @ivar name: the setting's name (C{max_line_length}); the command-line option is the
        same name with dashes (C{--max-line-length}).
    @ivar value: the value given.
    @ivar requirement: what the value must be (C{"must be at least 1"}).
    """

    def __init__(self, name: str, value: object, requirement: str) -> None:
        super().__init__(f"{name} {requirement}, got {value!r}")
        self.name = name
        self.value = value
        self.requirement = requirement

    @property
    def option(self) -> str:
        """
        The command-line option that sets this value (C{--max-line-length}).
        """
        return "--" + self.name.replace("_", "-")


def _as_bytes(name: str, value: object) -> bytes:
    """
    C{value} as bytes: C{str} is encoded as UTF-8, C{bytes} kept as it is.
    """
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    raise InvalidSetting(name, value, "must be bytes or str")


@dataclasses.dataclass(frozen=True)
class EchoSettings:
    """
    How the OK-echo server greets, frames, answers and limits its clients.

    Every limit is on by default.  Strings are accepted for C{welcome} and C{prefix} and
    stored as UTF-8 bytes; numbers are checked when the settings are made, and a bad one
    raises L{InvalidSetting}.

    @ivar welcome: the greeting sent on connect, without its terminator (a C{b"\\n"} is
        added); C{None} sends nothing.
    @ivar prefix: put before every reply.
    @ivar mode: C{"line"} (answer every line), C{"chunk"} (answer every received chunk, as
        the tutorial did) or C{"once"} (answer the first line, then close).
    @ivar max_line_length: the longest line accepted, in bytes, terminator included.
    @ivar idle_timeout: seconds without input before a client is closed; C{0} disables.
    @ivar line_timeout: seconds a line may take to arrive (bounds slow senders, which
        reset the idle clock with every byte); C{0} disables.
    @ivar max_connections: clients served at once; more get C{ERROR server busy}.
    @ivar max_per_ip: clients served at once from one IP address; C{0} means no limit.
    @ivar close_timeout: seconds a closing connection gets to flush before it is aborted.
    @ivar direct_write: on plain TCP, send a reply at once when nothing is queued ahead
        of it (see L{twistsock._twisted.send_now}).
    @ivar connection_log: log a line when each client connects and one when it leaves;
        C{False} keeps only limit hits, refusals and connections that end in an error.
    @ivar proxy_protocol: every connection starts with a PROXY protocol header (version 1
        or 2, from a load balancer such as HAProxy); the client it names is the one that
        is admitted, counted, logged and greeted (see L{twistsock.echo._proxy}).
    @ivar proxy_from: with C{proxy_protocol}, the networks (CIDR notation) whose
        connections may send a header; a connection from anywhere else is refused, since
        a header can claim any address.  A bare address means that address alone;
        host bits are dropped (C{10.1.2.3/8} is C{10.0.0.0/8}).
    @ivar proxy_header_timeout: with C{proxy_protocol}, seconds the header may take to
        arrive before the connection is closed.
    """

    welcome: bytes | None = DEFAULT_WELCOME
    prefix: bytes = DEFAULT_PREFIX
    mode: Mode = "line"
    max_line_length: int = 65536
    idle_timeout: float = 300.0
    line_timeout: float = 60.0
    max_connections: int = 10000
    max_per_ip: int = 0
    close_timeout: float = 10.0
    direct_write: bool = True
    connection_log: bool = True
    # -- PROXY protocol ---------------------------------------------------------------
    proxy_protocol: bool = False
    proxy_from: tuple[str, ...] = DEFAULT_PROXY_FROM
    proxy_header_timeout: float = 5.0

    def __post_init__(self) -> None:
        """
        Normalise text to bytes and check every number against its range.
        """
        set_ = object.__setattr__  # the dataclass is frozen: normalise in place, once
        if self.welcome is not None:
            set_(self, "welcome", _as_bytes("welcome", self.welcome))
        set_(self, "prefix", _as_bytes("prefix", self.prefix))
        if self.mode not in MODES:
            raise InvalidSetting("mode", self.mode, f"must be one of {', '.join(MODES)}")
        for name, least in (("max_line_length", 1), ("max_connections", 1), ("max_per_ip", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidSetting(name, value, "must be a whole number")
            if value < least:
                raise InvalidSetting(name, value, f"must be at least {least}")
        for name in ("idle_timeout", "line_timeout", "close_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidSetting(name, value, "must be a number")
            if not math.isfinite(value):
                raise InvalidSetting(name, value, "must be a finite number")
            if value < 0:
                raise InvalidSetting(name, value, "must be at least 0")
            set_(self, name, float(value))
        self._check_proxy()

    def _check_proxy(self) -> None:
        """
        Check the PROXY protocol settings, and write C{proxy_from} as normalised networks.
        """
        set_ = object.__setattr__
        networks = self.proxy_from
        if isinstance(networks, str):
            networks = (networks,)
        requirement = "must be IP networks in CIDR notation (192.0.2.0/24, ::1/128)"
        if (
            not isinstance(networks, (tuple, list))
            or not networks
            or not all(isinstance(n, str) for n in networks)
        ):
            raise InvalidSetting("proxy_from", self.proxy_from, requirement)
        try:
            set_(
                self,
                "proxy_from",
                tuple(str(ipaddress.ip_network(n, strict=False)) for n in networks),
            )
        except (TypeError, ValueError):
            raise InvalidSetting("proxy_from", self.proxy_from, requirement) from None
        timeout = self.proxy_header_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise InvalidSetting("proxy_header_timeout", timeout, "must be a number")
        if not (math.isfinite(timeout) and timeout > 0):
            raise InvalidSetting("proxy_header_timeout", timeout, "must be more than 0")
        set_(self, "proxy_header_timeout", float(timeout))

    @property
    def welcome_line(self) -> bytes | None:
        """
        The greeting as sent, with its C{b"\\n"}; C{None} when there is none.
        """
        return None if self.welcome is None else self.welcome + b"\n"

    @property
    def sweep_interval(self) -> float:
        """
        How often connections are checked for the idle and line timeouts (and, with
        C{proxy_protocol}, the header timeout): once a second, or four times per timeout
        when that is shorter.  A client is closed between the
        timeout and the timeout plus two intervals after it last made progress.
        """
        timeouts = [self.idle_timeout, self.line_timeout]
        if self.proxy_protocol:
            timeouts.append(self.proxy_header_timeout)
        return min([1.0] + [t / 4 for t in timeouts if t > 0])
