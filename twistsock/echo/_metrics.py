"""
Prometheus metrics of the OK-echo server, with C{prometheus_client}.

The server counts in plain integers (L{twistsock.echo._factory.EchoStats}), so that
counting costs nothing on the path of a reply.  L{EchoMetrics} turns a factory's totals
into Prometheus metrics: it adds what changed since it last looked to C{prometheus_client}
counters, when the metrics are scraped and once a second.  Those counters are ordinary
ones in a single process, and C{prometheus_client}'s multiprocess files when
C{PROMETHEUS_MULTIPROC_DIR} is set (several worker processes, each adding its own; the
process that serves the scrape adds them up).

C{prometheus_client} is an optional dependency (C{pip install 'twistsock[metrics]'}); this
module imports it, so import this module only when metrics are asked for.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from twistsock.echo._factory import EchoTotals, OKEchoFactory

__all__ = ["EchoMetrics", "WorkersMetrics", "metrics_site", "worker_exited"]

_MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"


class EchoMetrics:
    """
    The Prometheus metrics of one factory (one process's share, with workers).

    @ivar registry: the registry to serve: the metrics of this process, or, in
        multiprocess mode, a registry that adds up every process's files.
    """

    def __init__(
        self,
        factory: OKEchoFactory,
        clock: IReactorTime,
        registry: CollectorRegistry | None = None,
    ) -> None:
        """
        @param factory: whose totals to export.
        @param clock: runs the once-a-second update.
        @param registry: where the metrics are registered; a new one by default.
        """
        self._factory = factory
        self._last = EchoTotals(0, 0, {}, {}, 0, 0, 0)
        multiprocess = bool(os.environ.get(_MULTIPROCESS))
        own = registry if registry is not None else CollectorRegistry()
        self.registry = own
        if multiprocess:
            from prometheus_client import multiprocess as mp

            self.registry = CollectorRegistry()
            mp.MultiProcessCollector(self.registry)
        self._accepted = Counter(
            "twistsock_connections_accepted", "Connections admitted.", registry=own
        )
        self._current = Gauge(
            "twistsock_connections_current",
            "Connections being served now.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self._refused = Counter(
            "twistsock_connections_refused",
            "Connections refused, by reason.",
            ["reason"],
            registry=own,
        )
        self._limits = Counter(
            "twistsock_limits_hit", "Limits hit, by kind.", ["kind"], registry=own
        )
        self._lines = Counter("twistsock_lines", "Lines (or chunks) answered.", registry=own)
        self._bytes_in = Counter(
            "twistsock_received_bytes", "Bytes received from clients.", registry=own
        )
        self._bytes_out = Counter("twistsock_sent_bytes", "Bytes sent to clients.", registry=own)
        for reason in ("max_connections", "max_per_ip"):
            self._refused.labels(reason=reason)
        for kind in ("line_too_long", "idle_timeout", "line_timeout"):
            self._limits.labels(kind=kind)
        self._updates = LoopingCall(self.update)
        self._updates.clock = clock

    def start(self) -> None:
        """
        Update the metrics once a second from now on.
        """
        self._updates.start(1.0, now=True)

    def stop(self) -> None:
        """
        Stop the updates, after one last one.
        """
        if self._updates.running:
            self._updates.stop()
        self.update()

    def update(self) -> None:
        """
        Add what the factory has done since the last update.
        """
        now = self._factory.totals()
        last = self._last
        self._accepted.inc(now.accepted - last.accepted)
        self._current.set(now.current)
        for reason, count in now.refused.items():
            self._refused.labels(reason=reason).inc(count - last.refused.get(reason, 0))
        for kind, count in now.limits.items():
            self._limits.labels(kind=kind).inc(count - last.limits.get(kind, 0))
        self._lines.inc(now.lines - last.lines)
        self._bytes_in.inc(now.bytes_in - last.bytes_in)
        self._bytes_out.inc(now.bytes_out - last.bytes_out)
        self._last = now

    def scrape(self) -> bytes:
        """
        The metrics in Prometheus' text format, up to date.
        """
        self.update()
        text: bytes = generate_latest(self.registry)
        return text


class WorkersMetrics:
    """
    The metrics of C{--workers N}, served by the main process: the sum of every worker's
    files (C{prometheus_client}'s multiprocess mode), and the main process's own count of
    worker restarts.
    """

    def __init__(self) -> None:
        from prometheus_client import multiprocess

        self.registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(self.registry)
        _restarts()  # present from the start, at 0

    def scrape(self) -> bytes:
        """
        Every process's metrics, added up, in Prometheus' text format.
        """
        text: bytes = generate_latest(self.registry)
        return text


_RESTARTS: list[Counter] = []


def _restarts() -> Counter:
    """
    The counter of worker restarts (made once, in the main process's file).
    """
    if not _RESTARTS:
        _RESTARTS.append(
            Counter("twistsock_worker_restarts", "Worker processes restarted.", registry=None)
        )
    return _RESTARTS[0]


def worker_exited(pid: int | None, restarted: int) -> None:
    """
    A worker process has exited: its gauges no longer count (its counters still do), and
    C{restarted} restarts (0 or 1) are counted.
    """
    from prometheus_client import multiprocess

    if pid is not None:
        multiprocess.mark_process_dead(pid)
    if restarted:
        _restarts().inc(restarted)


class _MetricsPage(Resource):
    """
    C{/metrics}, and every other path: the metrics.
    """

    isLeaf = True

    def __init__(self, metrics: EchoMetrics | WorkersMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        """
        Answer with the current metrics.
        """
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return self._metrics.scrape()


def metrics_site(metrics: EchoMetrics | WorkersMetrics) -> Any:
    """
    A C{twisted.web} site that serves C{metrics} (listen on it with any endpoint).
    """
    site = Site(_MetricsPage(metrics))
    site.noisy = False
    site.displayTracebacks = False
    return site
