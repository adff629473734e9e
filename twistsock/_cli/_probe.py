"""
C{twistsock probe HOST:PORT ...}: the tutorial's "try port 81" remark as a tool.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twisted.internet import defer, error
from twisted.internet.defer import Deferred, DeferredSemaphore
from twisted.internet.protocol import Factory, Protocol

from twistsock._cli._command import EXIT_INTERRUPTED, EXIT_USAGE, on_shutdown, run
from twistsock._deadline import with_deadline
from twistsock.http._fetch import tcp_endpoint

__all__ = ["parse_target", "probe", "probe_command"]


def parse_target(target: str) -> tuple[str, int]:
    """
    Split C{HOST:PORT} (C{[v6]:PORT} for IPv6 literals) into host and port.

    @raise ValueError: when it is not of that form or the port is not 1-65535.
    """
    if "://" in target or "/" in target:
        raise ValueError("expected HOST:PORT, not a URL (e.g. 127.0.0.1:8080)")
    host, colon, port = target.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("write IPv6 addresses in brackets, e.g. [::1]:80")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected HOST:PORT")
    return host, int(port)


def probe_command(options: argparse.Namespace) -> int:
    """Check every target's syntax, then probe them all."""
    targets = []
    for target in options.targets:
        try:
            targets.append((target, *parse_target(target)))
        except ValueError as e:
            sys.stderr.write(f"twistsock: bad target {target!r}: {e}\n")
            return EXIT_USAGE
    return run(_probe_all, targets, options.timeout, options.concurrency)


def _outcome(reason: Exception) -> str:
    """The word for a failed connection attempt's outcome."""
    if isinstance(reason, error.DNSLookupError):
        return "unresolvable"
    if isinstance(reason, error.ConnectionRefusedError):
        return "refused"
    if isinstance(reason, (error.TimeoutError, defer.TimeoutError)):
        return "timeout"
    return f"unreachable ({reason})"


async def probe(reactor: Any, host: str, port: int, timeout: float) -> tuple[str, float]:
    """
    Try to connect to C{host:port} within C{timeout} seconds (resolution included); return
    C{open}, C{refused}, C{timeout}, C{unresolvable} or C{unreachable (...)}, and the
    seconds it took.  An open connection is closed at once.
    """
    started = reactor.seconds()
    endpoint = tcp_endpoint(reactor, host, port, timeout)
    attempt = endpoint.connect(Factory.forProtocol(Protocol))
    with_deadline(attempt, timeout, reactor, lambda _: defer.TimeoutError())
    try:
        protocol = await attempt
    except Exception as e:
        word = _outcome(e)
    else:
        protocol.transport.abortConnection()
        word = "open"
    return word, reactor.seconds() - started


async def _probe_all(
    reactor: Any, targets: list[tuple[str, str, int]], timeout: float, concurrency: int
) -> int:
    """Probe concurrently (at most C{concurrency} at once); print in argument order."""
    semaphore = DeferredSemaphore(concurrency)
    pending = [
        semaphore.run(lambda h, p: Deferred.fromCoroutine(probe(reactor, h, p, timeout)), h, p)
        for _, h, p in targets
    ]

    def cancel_all() -> None:
        for each in pending:
            each.cancel()

    interrupted = on_shutdown(reactor, cancel_all)
    status = 0
    for (target, _, _), result in zip(targets, pending, strict=True):
        word, seconds = await result
        if interrupted():
            return EXIT_INTERRUPTED
        sys.stdout.write(f"{target} {word} {seconds * 1000:.1f} ms\n")
        sys.stdout.flush()
        if word != "open":
            status = 1
    interrupted(done=True)
    return status
