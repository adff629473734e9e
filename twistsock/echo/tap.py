"""
The C{twistsock} twistd plugin: command-line options and the service they build.

C{twistd -n twistsock} serves the OK-echo protocol on C{tcp:8888} (all interfaces, like the
tutorial's C{HOST = ''}).  See C{twistd twistsock --help} for every option.
"""

from __future__ import annotations

import errno
import importlib.util
import math
import os
import resource
import select
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from functools import partial
from typing import Any, cast

from twisted.application.service import MultiService, Service
from twisted.internet.defer import CancelledError, Deferred, DeferredList, maybeDeferred
from twisted.internet.endpoints import TCP4ServerEndpoint, serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IOpenSSLContextFactory,
    IProtocolFactory,
    IReactorCore,
    IReactorTCP,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure
from zope.interface import implementer

from twistsock._twisted import (
    endpoint_port,
    reactor_installed,
    remove_own_pidfile,
    ssl_endpoint_parts,
)
from twistsock.echo._factory import OKEchoFactory
from twistsock.echo._protocol import format_address
from twistsock.echo._settings import (
    DEFAULT_PREFIX,
    DEFAULT_PROXY_FROM,
    DEFAULT_SHUTDOWN_TIMEOUT,
    DEFAULT_WELCOME,
    EchoSettings,
    InvalidSetting,
)

_DEFAULTS = EchoSettings()

__all__ = [
    "EchoServerService",
    "ListenFailed",
    "TLSAfterHeaderEndpoint",
    "Options",
    "ServerOptions",
    "choose_reactor",
    "makeService",
]

_log = Logger(namespace="twistsock")

DEFAULT_PORT = "tcp:8888"
MAX_PORT = 65535
"""The largest TCP port number."""
SHUTDOWN_TIMEOUT = DEFAULT_SHUTDOWN_TIMEOUT
"""Seconds SIGTERM waits for clients before it aborts them, unless told otherwise."""
DEFAULT_BACKLOG = 4096
"""The listen backlog of ports that name none."""
#: Descriptors the process needs besides one per client: the listening sockets, stdio,
#: the log file, the reactor's own (epoll, waker) and the spare one Twisted keeps for EMFILE.
FD_RESERVE = 32


def endpoint_description(port: str) -> str:
    """
    Turn a C{--port} value into an endpoint description.

    A bare number means TCP on all interfaces (C{8888} -> C{tcp:8888}), because
    C{serverFromString} rejects bare numbers; anything else is passed through.
    """
    port = port.strip()
    if port.isdigit():
        return f"tcp:{port}"
    return port


def _number(name: str, text: str, kind: type[int] | type[float]) -> Any:
    """
    The value of option C{--name}, converted from C{text} to C{kind}; its range is
    L{EchoSettings}' to check.
    """
    try:
        return kind(text)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise usage.UsageError(f"--{name} must be {noun}, got {text!r}") from None


def worker_count(text: str) -> int:
    """
    The value of C{--workers}: a whole number, at least 1.
    """
    count = _number("workers", text, int)
    if count < 1:
        raise usage.UsageError(f"--workers must be at least 1, got {text!r}")
    return int(count)


class ServerOptions(usage.Options):
    """
    The plugin's options, raising L{usage.UsageError} on bad values (what tests check).
    """

    synopsis = "[--port PORT ...] [options]"
    longdesc = (
        "An OK-echo server: greets each client with a welcome line, then answers every "
        "line with the prefix, the line and the line's own terminator. "
        "PORT is a number (tcp:N on all interfaces) or any Twisted endpoint description: "
        "tcp:8888:interface=127.0.0.1:backlog=50, tcp6:8888, unix:/run/echo.sock, "
        "ssl:8443:privateKey=key.pem:certKey=cert.pem, systemd:domain=INET:index=0. "
        "Behind a load balancer (HAProxy send-proxy, send-proxy-v2, ssl send-proxy) use "
        "--proxy-protocol, not haproxy: ports."
    )

    optFlags = [
        ["no-welcome", None, "Send no welcome line."],
        [
            "no-connection-log",
            None,
            "Log no line when a client connects or leaves; limit hits, refusals and "
            "connections that end in an error are still logged.",
        ],
        [
            "no-direct-write",
            None,
            "Always queue replies with transport.write, instead of sending them at once on "
            "plain TCP connections when nothing is queued.",
        ],
        # -- PROXY protocol --
        [
            "proxy-protocol",
            None,
            "Every --port expects a PROXY protocol header (v1 or v2, as HAProxy's "
            "send-proxy and send-proxy-v2 send it) before anything else, in clear even on "
            "ssl: ports (HAProxy's ssl send-proxy); the client it names is the one limited, "
            "logged and greeted.",
        ],
    ]

    optParameters = [
        [
            "welcome",
            None,
            None,
            f"The line sent to each client on connect [default: {DEFAULT_WELCOME.decode()}]",
        ],
        ["prefix", None, DEFAULT_PREFIX.decode(), "Put before every reply."],
        [
            "mode",
            None,
            "line",
            "line: answer every line; chunk: answer every received chunk (the tutorial's "
            "framing, unsafe: TCP splits and merges messages); once: answer the first line, "
            "then close.",
        ],
        [
            "max-line-length",
            None,
            str(_DEFAULTS.max_line_length),
            "Longest line accepted, in bytes, terminator included.",
        ],
        [
            "idle-timeout",
            None,
            f"{_DEFAULTS.idle_timeout:g}",
            "Seconds without input before a client is disconnected; 0 disables.",
        ],
        [
            "line-timeout",
            None,
            f"{_DEFAULTS.line_timeout:g}",
            "Seconds a line may take to arrive (bounds slow senders); 0 disables.",
        ],
        [
            "max-connections",
            None,
            str(_DEFAULTS.max_connections),
            "Clients served at once; more are told the server is busy. With --workers N, "
            "each worker process counts its own (N times this in all).",
        ],
        [
            "max-per-ip",
            None,
            str(_DEFAULTS.max_per_ip),
            "Clients served at once from one IP address; 0 means no limit. With --workers, "
            "each worker process counts its own.",
        ],
        [
            "close-timeout",
            None,
            f"{_DEFAULTS.close_timeout:g}",
            "Seconds a closing connection gets to flush its replies before it is aborted.",
        ],
        [
            "backlog",
            None,
            str(DEFAULT_BACKLOG),
            "Listen backlog of every TCP, TLS and UNIX port that does not name its own "
            "(capped by the kernel's net.core.somaxconn).",
        ],
        [
            "shutdown-timeout",
            None,
            f"{SHUTDOWN_TIMEOUT:g}",
            "Seconds SIGTERM waits for clients to take their replies before it aborts them.",
        ],
        [
            "metrics",
            None,
            None,
            "Serve Prometheus metrics here: an endpoint description, such as "
            "tcp:9100:interface=127.0.0.1 (needs prometheus_client: twistsock[metrics]).",
        ],
        # -- PROXY protocol --
        [
            "proxy-header-timeout",
            None,
            f"{_DEFAULTS.proxy_header_timeout:g}",
            "With --proxy-protocol: seconds the PROXY header may take to arrive.",
        ],
        # --workers: see twistsock.echo._workers.
        [
            "workers",
            None,
            1,
            "Worker processes serving the same ports (1: this process serves them). Limits "
            "hold per worker.",
            worker_count,
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["ports"] = []
        self["proxy-from"] = []

    def opt_port(self, port: str) -> None:
        """
        Listen here; repeatable. A number or an endpoint description [default: tcp:8888]
        """
        if not port.strip():
            raise usage.UsageError("--port must not be empty")
        self["ports"].append(endpoint_description(port))

    opt_p = opt_port

    def opt_proxy_from(self, network: str) -> None:
        """
        With --proxy-protocol, accept headers only from this network (CIDR: 10.0.0.0/8,
        or one address); repeatable [default: 127.0.0.0/8 and ::1/128]
        """
        self["proxy-from"].append(network.strip())

    def postOptions(self) -> None:
        """
        Check every value and build the server's L{EchoSettings} (C{self["settings"]}).
        """
        if not self["ports"]:
            self["ports"] = [DEFAULT_PORT]
        if self["no-welcome"] and self["welcome"] is not None:
            raise usage.UsageError("--welcome and --no-welcome contradict each other")
        welcome: str | bytes | None = DEFAULT_WELCOME
        if self["no-welcome"]:
            welcome = None
        elif self["welcome"] is not None:
            welcome = self["welcome"]
        numbers = {
            name: _number(name, self[name], type(getattr(_DEFAULTS, name.replace("-", "_"))))
            for name in _NUMBER_OPTIONS
        }
        self["backlog"] = _number("backlog", self["backlog"], int)
        if not 1 <= self["backlog"] <= 65535:
            raise usage.UsageError(f"--backlog must be from 1 to 65535, got {self['backlog']}")
        self["shutdown-timeout"] = _number("shutdown-timeout", self["shutdown-timeout"], float)
        shutdown = self["shutdown-timeout"]
        if not (math.isfinite(shutdown) and shutdown >= 0):
            raise usage.UsageError(
                f"--shutdown-timeout must be a finite number >= 0, got {shutdown}"
            )
        if self["metrics"] is not None:
            self["metrics"] = endpoint_description(self["metrics"])
            _check_endpoint("--metrics", self["metrics"])
            # Looked for, not imported: prometheus_client chooses where its values live
            # (memory, or the files shared by worker processes) when it is imported.
            if importlib.util.find_spec("prometheus_client") is None:
                raise usage.UsageError(
                    "--metrics needs prometheus_client: pip install 'twistsock[metrics]'"
                )
        try:
            self["settings"] = EchoSettings(
                welcome=welcome,  # type: ignore[arg-type]  # text is encoded by EchoSettings
                prefix=self["prefix"],
                mode=self["mode"],
                direct_write=not self["no-direct-write"],
                connection_log=not self["no-connection-log"],
                **{name.replace("-", "_"): value for name, value in numbers.items()},
                **self._proxy_settings(),
            )
        except InvalidSetting as e:
            option = e.option
            shown = self[option[2:]] if option[2:] in self else e.value
            raise usage.UsageError(f"{option} {e.requirement}, got {shown!r}") from None
        for description in self["ports"]:
            _check_endpoint("--port", description)
            _refuse_haproxy_port(description)

    def _proxy_settings(self) -> dict[str, Any]:
        """
        The PROXY protocol's L{EchoSettings} fields, from C{--proxy-protocol},
        C{--proxy-from} and C{--proxy-header-timeout}.
        """
        return {
            "proxy_protocol": bool(self["proxy-protocol"]),
            "proxy_from": tuple(self["proxy-from"]) or DEFAULT_PROXY_FROM,
            "proxy_header_timeout": _number(
                "proxy-header-timeout", self["proxy-header-timeout"], float
            ),
        }


def _refuse_haproxy_port(description: str) -> None:
    """
    Refuse C{haproxy:} ports: Twisted's wrapper greets, counts and logs the proxy instead
    of the client, drops a header split before its 8th or 16th byte, turns a client's
    half-close into lost replies, and under TLS loses the greeting and flow control.
    C{--proxy-protocol} does it right.
    """
    if description.split(":", 1)[0].strip().lower() == "haproxy":
        rest = description.split(":", 1)[1] if ":" in description else ""
        raise usage.UsageError(
            f"--port {description!r}: haproxy: ports are not supported; use "
            f"--proxy-protocol --port {rest or 'tcp:PORT'} instead"
        )


def _check_endpoint(option: str, description: str) -> None:
    """
    Parse C{description} as C{option}'s server endpoint, and check its port's range.

    @raise usage.UsageError: naming the option and the value, when either is wrong.
    """
    try:
        # Parsing needs no reactor; the endpoint built here is thrown away.
        endpoint = serverFromString(None, description)
    except Exception as e:  # every parser raises its own kind; report them all
        raise usage.UsageError(f"{option} {description!r}: {e}") from None
    port = endpoint_port(endpoint)
    if port is not None and not 0 <= port <= MAX_PORT:
        raise usage.UsageError(
            f"{option} {description!r}: port number {port} is out of range (0-{MAX_PORT})"
        )


_NUMBER_OPTIONS = (
    "max-line-length",
    "idle-timeout",
    "line-timeout",
    "max-connections",
    "max-per-ip",
    "close-timeout",
)
"""The options whose values are numbers, converted by L{_number}."""


class Options(ServerOptions):
    """
    The options twistd parses: a bad value is one line on stderr and exit status 1.

    twistd itself would print the whole help text and then the error; one line that names
    the problem is easier to read.
    """

    def parseOptions(self, options: list[str] | None = None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            raise SystemExit(
                f"twistd twistsock: error: {e} (see twistd twistsock --help)"
            ) from None


def _listen_error(description: str, failure: Failure) -> str:
    """
    One line that says which address could not be listened on and why.
    """
    error = failure.value
    if isinstance(error, CannotListenError):
        socket_error = error.socketError
        code = getattr(socket_error, "errno", None)
        if code == errno.EADDRINUSE:
            why = "address already in use"
        elif code == errno.EACCES:
            why = "permission denied"
        elif code == errno.EADDRNOTAVAIL:
            why = "address not available on this machine"
        else:
            why = str(getattr(socket_error, "strerror", None) or socket_error)
    else:
        why = failure.getErrorMessage()
    # The reason comes first: a daemonizing twistd passes only the first 100 bytes of this
    # message to the parent process, and an endpoint description can be long.
    return f"cannot listen ({why}) on {description}"


class _FirstOutcome:
    """
    Holds a failure that arrives while C{listen} is being called, and hands one that
    arrives later to C{later}.
    """

    def __init__(self) -> None:
        self.failure: Failure | None = None
        self.later: Callable[[Failure], None] | None = None

    def record(self, failure: Failure) -> None:
        """
        The errback: keep the failure, or pass it on once C{later} is set.
        """
        if self.later is None:
            self.failure = failure
        else:
            self.later(failure)


class ListenFailed(Exception):
    """
    An endpoint could not listen: its description and the reason, in one line.
    """


class EchoServerService(Service):
    """
    Listens on every endpoint with one L{OKEchoFactory}, and closes clients on shutdown.

    Unlike C{strports.service}, a failure to listen is not a traceback: a synchronous
    failure (the usual case: port in use, permission denied) ends startup with one line on
    stderr and exit status 1; a later one is logged and stops the reactor.
    """

    def __init__(
        self,
        endpoints: list[tuple[str, IStreamServerEndpoint]],
        factory: OKEchoFactory,
        reactor: IReactorCore,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
        foreground: bool = True,
        twistd_options: MutableMapping[str, Any] | None = None,
        others: Sequence[tuple[str, IStreamServerEndpoint, IProtocolFactory]] = (),
    ) -> None:
        """
        @param twistd_options: twistd's own options, whose pid file a failure to listen
            removes (see L{_cannot_listen}); C{None} outside twistd.
        @param others: more endpoints to listen on, each with its own factory (the
            metrics), listened on and reported like the echo endpoints.
        """
        self.others = others
        self.twistd_options = twistd_options
        self.foreground = foreground
        self.endpoints = endpoints
        self.factory = factory
        self.reactor = reactor
        self.shutdown_timeout = shutdown_timeout
        self.ports: list[IListeningPort] = []
        self._listening: list[Deferred[IListeningPort]] = []

    def privilegedStartService(self) -> None:
        """
        Listen before privileges are dropped, so ports below 1024 work with C{--uid}.
        """
        super().privilegedStartService()
        self._listen()

    def startService(self) -> None:
        super().startService()
        if not self._listening:
            self._listen()

    def _listen(self) -> None:
        everything = [(d, e, self.factory) for d, e in self.endpoints] + list(self.others)
        for description, endpoint, factory in everything:
            d = endpoint.listen(factory)
            d.addCallback(self._listened, description, factory is self.factory)
            failed = _FirstOutcome()
            d.addErrback(failed.record)
            if failed.failure is not None:
                self._cannot_listen(ListenFailed(_listen_error(description, failed.failure)))
            # From now on a failure is a late one (an endpoint that listens asynchronously).
            failed.later = partial(self._late_failure, description=description)
            self._listening.append(d)

    def _cannot_listen(self, error: ListenFailed) -> None:
        """
        End startup because an endpoint could not listen.

        In the foreground (C{twistd -n}) the user's terminal gets exactly one line on the
        real stderr (twistd has redirected C{sys.stderr} into its log) and the exit status
        is 1.  A daemonizing twistd needs an ordinary exception instead: it reports that
        through its status pipe to the parent, which prints it and exits 1; a
        C{SystemExit} would skip that and leave the parent waiting forever.  Either way
        the pid file is removed first (L{remove_own_pidfile}), so that none is left
        behind when the command has exited.
        """
        remove_own_pidfile(self.twistd_options)
        if not self.foreground:
            _log.critical("{problem}", problem=str(error))
            raise error
        real_stderr = sys.__stderr__ or sys.stderr
        real_stderr.write(f"twistd twistsock: {error}\n")
        real_stderr.flush()
        raise SystemExit(1)

    def _listened(
        self, port: IListeningPort, description: str, echo: bool = True
    ) -> IListeningPort:
        self.ports.append(port)
        _log.info(
            "twistsock listening on {description} ({address})",
            description=description,
            address=format_address(port.getHost()),
        )
        return port

    def _late_failure(self, failure: Failure, description: str) -> None:
        """
        An endpoint failed to listen after startup: log it and stop the server.
        """
        if failure.check(CancelledError):
            return  # stopService cancelled a pending listen
        _log.critical("{problem}", problem=_listen_error(description, failure))
        if self.reactor.running:
            self.reactor.stop()

    def stopService(self) -> Deferred[Any]:
        """
        Stop listening, then flush and close every client, aborting after the timeout.
        """
        super().stopService()
        stopping = [maybeDeferred(port.stopListening) for port in self.ports]
        self.ports = []
        for d in self._listening:
            d.cancel()
        self._listening = []
        stopping.append(self.factory.shutdown(self.shutdown_timeout))
        return DeferredList(stopping, consumeErrors=True)


def with_backlog(description: str, backlog: int) -> str:
    """
    Give a TCP, TLS or UNIX endpoint description the listen backlog C{backlog}, unless it
    names one itself (C{tcp:8888:backlog=10}).

    Twisted's default backlog is 50: under a flood of connections, well-behaved clients
    then wait for the kernel to retry their handshakes.
    """
    kind = description.split(":", 1)[0]
    if kind not in ("tcp", "tcp6", "ssl", "unix") or "backlog=" in description:
        return description
    return f"{description}:backlog={backlog}"


def raise_file_limit(needed: int) -> tuple[int, int]:
    """
    Raise the open-files soft limit toward the hard limit so C{needed} descriptors fit.

    @return: the soft limit before and after.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            except (ValueError, OSError):
                pass
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def choose_reactor(
    config: ServerOptions,
    modules: Mapping[str, object] = sys.modules,
    install: Callable[[], None] | None = None,
) -> bool:
    """
    Under twistd, install twistsock's lean epoll reactor unless a reactor is chosen already.

    twistd installs the reactor named by C{--reactor} while it parses its options, and its
    default reactor only when something first imports C{twisted.internet.reactor}, which
    happens after the service is made.  So when nothing is installed yet, the user asked for
    no reactor in particular, and the server gets the one that costs less CPU per reply
    (L{twistsock._twisted.LeanEPollReactor}); C{twistd --reactor=epoll} (or any
    other) still wins.
    Outside twistd (C{config.parent} is C{None}: tests, embedding) nothing is installed.

    @param modules: where to look for an installed reactor (tests pass their own).
    @param install: what installs the lean reactor (tests pass their own).
    @return: whether the lean reactor was installed.
    """
    if getattr(config, "parent", None) is None or reactor_installed(modules):
        return False
    if not hasattr(select, "epoll"):
        return False
    if install is None:
        from twistsock._twisted import install as install_lean

        install = install_lean
    install()
    _log.info("using twistsock's lean epoll reactor (choose another with twistd --reactor)")
    return True


def makeService(config: ServerOptions) -> MultiService:
    """
    Build the twistsock service from parsed options.
    """
    choose_reactor(config)
    from twisted.internet import reactor

    settings: EchoSettings = config["settings"]
    factory = OKEchoFactory(settings, reactor=reactor)
    needed = settings.max_connections + FD_RESERVE
    before, after = raise_file_limit(needed)
    if after != resource.RLIM_INFINITY and after < needed:
        _log.warn(
            "open-files limit is {limit}, below the {needed} that --max-connections "
            "{max_connections} needs: clients beyond about {usable} will be refused by the "
            "operating system (raise it with ulimit -n)",
            limit=after,
            needed=needed,
            max_connections=settings.max_connections,
            usable=max(after - FD_RESERVE, 0),
        )
    elif after != before:
        _log.info(
            "raised the open-files limit from {before} to {after}", before=before, after=after
        )
    backlog = config.get("backlog", DEFAULT_BACKLOG)
    endpoints = [(d, serverFromString(reactor, with_backlog(d, backlog))) for d in config["ports"]]
    others: list[tuple[str, IStreamServerEndpoint, IProtocolFactory]] = []
    if settings.proxy_protocol:
        endpoints = [(d, _proxied(e, cast(IReactorTCP, reactor))) for d, e in endpoints]
    top = MultiService()
    workers = config.get("workers", 1)
    if config.get("metrics") is not None and workers > 1:
        # Every worker counts in files of a directory made for this server, which
        # prometheus_client adds up when this process serves a scrape.  The variable must
        # be set before prometheus_client is first imported, here and in the workers.
        directory = tempfile.mkdtemp(prefix="twistsock-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        _RemoveDirectory(directory).setServiceParent(top)
        from twistsock.echo._metrics import WorkersMetrics, metrics_site

        workers_metrics = WorkersMetrics()
        others.append(
            (
                config["metrics"],
                serverFromString(reactor, config["metrics"]),
                metrics_site(workers_metrics),
            )
        )
    elif config.get("metrics") is not None:
        from twistsock.echo._metrics import EchoMetrics, metrics_site

        metrics = EchoMetrics(factory, reactor)
        others.append(
            (
                config["metrics"],
                serverFromString(reactor, config["metrics"]),
                metrics_site(metrics),
            )
        )
        _MetricsUpdates(metrics).setServiceParent(top)
    parent = getattr(config, "parent", None)
    # twistd's options have "nodaemon"; those of `twist` (which also runs twistd plugins)
    # do not, and twist always runs in the foreground.
    foreground = bool(parent.get("nodaemon", True)) if parent is not None else True
    # --workers N: this process listens, N worker processes serve (twistsock.echo._workers).
    if workers > 1:
        from twistsock.echo._workers import WorkersService

        WorkersService(
            endpoints,
            factory,
            cast(IReactorCore, reactor),
            count=workers,
            shutdown_timeout=config.get("shutdown-timeout", SHUTDOWN_TIMEOUT),
            foreground=foreground,
            twistd_options=parent,
            others=others,
        ).setServiceParent(top)
        return top
    EchoServerService(
        endpoints,
        factory,
        cast(IReactorCore, reactor),
        foreground=foreground,
        twistd_options=parent,
        others=others,
        shutdown_timeout=config.get("shutdown-timeout", SHUTDOWN_TIMEOUT),
    ).setServiceParent(top)
    return top


class _RemoveDirectory(Service):
    """
    Removes a directory, and what it holds, when the server stops.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        shutil.rmtree(self.directory, ignore_errors=True)
        return None


class _MetricsUpdates(Service):
    """
    Updates the metrics once a second while the server runs.
    """

    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics

    def startService(self) -> None:
        super().startService()
        self.metrics.start()

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        self.metrics.stop()
        return None


# -- PROXY protocol before TLS --------------------------------------------------------------


def _proxied(endpoint: IStreamServerEndpoint, reactor: IReactorTCP) -> IStreamServerEndpoint:
    """
    With C{--proxy-protocol}, the endpoint to listen on for a parsed C{--port}: an
    C{ssl:} port listens as plain TCP and starts TLS after the header (HAProxy's
    C{ssl send-proxy} sends the header in clear); any other is unchanged.
    """
    parts = ssl_endpoint_parts(endpoint)
    if parts is None:
        return endpoint
    port, backlog, interface, context = parts
    return TLSAfterHeaderEndpoint(TCP4ServerEndpoint(reactor, port, backlog, interface), context)


@implementer(IStreamServerEndpoint)
class TLSAfterHeaderEndpoint:
    """
    A plain TCP endpoint whose connections start TLS after their PROXY header (see
    L{OKEchoFactory.tls_after_header}).
    """

    def __init__(self, endpoint: IStreamServerEndpoint, context: IOpenSSLContextFactory) -> None:
        self.endpoint = endpoint
        self.context = context

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen with C{protocolFactory}, an L{OKEchoFactory}, starting TLS after headers.
        """
        factory = cast(OKEchoFactory, protocolFactory)
        return self.endpoint.listen(factory.tls_after_header(self.context))
