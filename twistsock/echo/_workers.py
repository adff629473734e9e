"""
C{--workers N}: one main process that listens, and N worker processes that serve.

The main process listens on every C{--port} exactly as a single-process server does (so a
port in use is one line on stderr and exit status 1 before any worker starts), then stops
accepting on those sockets itself and starts N workers that inherit them
(L{twisted.internet.interfaces.IReactorProcess.spawnProcess}'s C{childFDs}).  Each
worker adopts every inherited socket
(L{twisted.internet.interfaces.IReactorSocket.adoptStreamPort}) and serves it with its
own L{OKEchoFactory}; the kernel hands each new connection to whichever worker accepts it
first.

Why inherited sockets rather than C{SO_REUSEPORT}: there is one socket per port, bound
once, so a port in use is found before anything starts; a worker that dies loses no
connection waiting in a backlog (with C{SO_REUSEPORT} each socket has its own, and a
dead one's queued connections are reset); UNIX sockets and systemd's sockets are shared
the same way; and Twisted's endpoints have no C{SO_REUSEPORT} option (Twisted #9101).

The main process (L{WorkersService}) keeps the workers running (L{Supervisor}: a worker
that exits is restarted after a delay that doubles with each quick failure), relays their
log events into its own log with the worker's pid as the system (C{[twistsock worker
1234#info]}), and on shutdown (SIGTERM) asks every worker to drain: stop accepting, flush
and close its clients within the shutdown timeout, and exit.  A worker
(L{run_worker}) also drains when its standard input reaches end-of-file, which is what it
sees when the main process is gone.

Limits are per worker: each worker counts its own clients, so C{--max-connections} and
C{--max-per-ip} hold in each worker, not across them.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import pickle
import signal
import sys
from collections.abc import Callable, MutableMapping, Sequence
from json import JSONDecodeError
from typing import IO, Any, cast

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import AdoptedStreamServerEndpoint, serverFromString
from twisted.internet.error import ProcessExitedAlready, ReactorNotRunning
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IProtocolFactory,
    IReactorCore,
    IReactorProcess,
    IReactorTime,
    IReadDescriptor,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import (
    ILogObserver,
    LogEvent,
    Logger,
    LogLevel,
    eventFromJSON,
    formatEvent,
    globalLogBeginner,
    globalLogPublisher,
    jsonFileLogObserver,
)
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python import reflect
from twisted.python.failure import Failure
from zope.interface import implementer

from twistsock._twisted import share_listening_socket, ssl_endpoint_parts, stop_accepting
from twistsock.echo._factory import OKEchoFactory
from twistsock.echo._settings import EchoSettings
from twistsock.echo.tap import EchoServerService, ListenFailed, TLSAfterHeaderEndpoint

__all__ = [
    "PLAN_VARIABLE",
    "Supervisor",
    "WorkerPlan",
    "WorkerPort",
    "WorkersService",
    "adopt_ports",
    "decode_plan",
    "encode_plan",
    "run_worker",
]

_log = Logger(namespace="twistsock")

PLAN_VARIABLE = "TWISTSOCK_WORKER_PLAN"
"""The environment variable that hands a worker its L{WorkerPlan}."""

KILL_GRACE = 5.0
"""Seconds past the shutdown timeout after which a worker that has not exited is killed."""

_WORKER_MAIN = "from twistsock.echo._workers import run_worker; run_worker()"
_LEAN_REACTOR = "twistsock._twisted.LeanEPollReactor"


@dataclasses.dataclass(frozen=True)
class WorkerPort:
    """
    One listening socket that a worker inherits.

    @ivar description: the C{--port} endpoint description, parsed again in the worker to
        learn how to wrap the factory (TLS, HAProxy).
    @ivar fd: the socket's file descriptor, the same number in every process.
    @ivar family: its address family (C{socket.AF_INET}, C{AF_INET6}, C{AF_UNIX}).
    @ivar plain: adopt the socket with the bare factory instead of parsing
        C{description} (systemd's sockets, whose description only the first parse in
        the main process can resolve).
    @ivar tls_after_header: an C{ssl:} port with the PROXY protocol: the socket is plain
        TCP, and each connection starts TLS after its header (see
        L{OKEchoFactory.tls_after_header}).
    """

    description: str
    fd: int
    family: int
    plain: bool = False
    tls_after_header: bool = False


@dataclasses.dataclass(frozen=True)
class WorkerPlan:
    """
    Everything a worker needs, handed to it in L{PLAN_VARIABLE}.

    @ivar settings: the server's settings.
    @ivar ports: the sockets to serve.
    @ivar shutdown_timeout: seconds a draining worker gives its clients.
    @ivar lean_reactor: run on L{twistsock._twisted.LeanEPollReactor}, as the main
        process does.
    @ivar metrics: count for C{--metrics}, in C{prometheus_client}'s files shared with
        the main process (see L{twistsock.echo._metrics}).
    """

    settings: EchoSettings
    ports: tuple[WorkerPort, ...]
    shutdown_timeout: float
    lean_reactor: bool = False
    metrics: bool = False


def encode_plan(plan: WorkerPlan) -> str:
    """
    C{plan} as text for an environment variable (a pickle, in base64: the settings are
    frozen dataclasses that any later field keeps picklable).
    """
    return base64.b64encode(pickle.dumps(plan)).decode("ascii")


def decode_plan(text: str) -> WorkerPlan:
    """
    The L{WorkerPlan} that L{encode_plan} turned into C{text}.

    The text comes from the main process, through the environment it gave the worker.
    """
    plan = pickle.loads(base64.b64decode(text))  # noqa: S301  # from our own parent
    if not isinstance(plan, WorkerPlan):
        raise TypeError(f"{PLAN_VARIABLE} holds a {type(plan).__name__}, not a WorkerPlan")
    return plan


class Supervisor:
    """
    Keeps C{count} workers running.

    A worker that exits while the server runs is restarted after a delay.  The delay
    starts at C{first_delay} and doubles with each quick failure (a worker that lived
    less than C{stable_after} seconds), up to C{max_delay}; a worker that lived longer
    starts the count again.  After C{max_failures} quick failures in a row of one worker
    (it cannot start: a certificate it cannot read, a broken installation) the supervisor
    stops restarting and calls C{give_up} with the reason.

    Sans-IO apart from the clock: C{spawn} starts a worker and returns its pid, and
    whoever watches the process calls L{exited}.

    @ivar pids: the pid of the running worker in each slot.
    @ivar restarts: how many workers have been restarted.
    """

    def __init__(
        self,
        count: int,
        spawn: Callable[[int], int],
        clock: IReactorTime,
        give_up: Callable[[str], None],
        *,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
        stable_after: float = 30.0,
        max_failures: int = 8,
    ) -> None:
        """
        @param count: how many workers to keep running.
        @param spawn: starts the worker of a slot (0 to C{count - 1}) and returns its pid.
        @param clock: times lives and delays.
        @param give_up: called once, with one line of explanation, when a worker keeps
            failing.
        """
        self.count = count
        self.spawn = spawn
        self.clock = clock
        self.give_up = give_up
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.stable_after = stable_after
        self.max_failures = max_failures
        self.pids: dict[int, int] = {}
        self.restarts = 0
        self.stopping = False
        self._started: dict[int, float] = {}
        self._failures: dict[int, int] = {}
        self._pending: dict[int, IDelayedCall] = {}

    def start(self) -> None:
        """
        Start every worker.
        """
        for slot in range(self.count):
            self._start(slot)

    def _start(self, slot: int) -> None:
        self._pending.pop(slot, None)
        if self.stopping:
            return
        self._started[slot] = self.clock.seconds()
        try:
            pid = self.spawn(slot)
        except Exception as e:
            self._retry(slot, f"worker {slot + 1} could not be started ({e})")
            return
        self.pids[slot] = pid
        _log.info(
            "started worker {pid} ({number} of {count})",
            pid=pid,
            number=slot + 1,
            count=self.count,
        )

    def exited(self, slot: int, reason: str) -> None:
        """
        The worker of C{slot} has exited, for C{reason} (C{"exited with status 1"}).
        """
        pid = self.pids.pop(slot, None)
        if self.stopping:
            _log.info("worker {pid} {reason}", pid=pid, reason=reason)
            return
        self._retry(slot, f"worker {pid} {reason}")

    def _retry(self, slot: int, what: str) -> None:
        """
        Schedule the restart of C{slot}'s worker, or give up.
        """
        lived = self.clock.seconds() - self._started.get(slot, self.clock.seconds())
        failures = 1 if lived >= self.stable_after else self._failures.get(slot, 0) + 1
        self._failures[slot] = failures
        if failures > self.max_failures:
            self.stopping = True
            self.give_up(
                f"{what} after {lived:.1f} s, its {failures}th quick failure in a row: giving up"
            )
            return
        delay = min(self.first_delay * 2 ** (failures - 1), self.max_delay)
        _log.warn(
            "{what} after {lived:.1f} s; restarting it in {delay:g} s",
            what=what,
            lived=lived,
            delay=delay,
        )
        self.restarts += 1
        self._pending[slot] = self.clock.callLater(delay, self._start, slot)

    def stop(self) -> None:
        """
        Restart nothing from now on.
        """
        self.stopping = True
        for call in self._pending.values():
            call.cancel()
        self._pending.clear()


def describe_exit(reason: Failure) -> str:
    """
    How a process ended, in a few words: C{"exited with status 1"}, C{"was killed by
    signal 9"}.
    """
    code = getattr(reason.value, "exitCode", None)
    number = getattr(reason.value, "signal", None)
    if number is not None:
        return f"was killed by signal {number}"
    return f"exited with status {code or 0}"


class _WorkerProtocol(ProcessProtocol):
    """
    The main process's end of one worker: relays its log, reports its exit.

    The worker writes its log events as JSON, one a line, to its standard output; each
    is published here with the worker's pid as its system.  Anything else it writes
    (standard error, a traceback before logging started) is logged line by line.
    """

    def __init__(
        self,
        slot: int,
        exited: Callable[[int, str], None],
        publisher: ILogObserver = globalLogPublisher,
    ) -> None:
        self.slot = slot
        self.exited = exited
        self.publisher = publisher
        self.pid: int | None = None
        self.ended: Deferred[None] = Deferred()
        self._partial: dict[int, bytes] = {}

    @property
    def system(self) -> str:
        """
        What the log shows for this worker: C{twistsock worker PID}.
        """
        return f"twistsock worker {self.pid}"

    def connectionMade(self) -> None:
        self.pid = getattr(self.transport, "pid", None)

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        *lines, self._partial[childFD] = (self._partial.get(childFD, b"") + data).split(b"\n")
        for line in lines:
            self.relay(childFD, line)

    def childConnectionLost(self, childFD: int) -> None:
        rest = self._partial.pop(childFD, b"")
        if rest:
            self.relay(childFD, rest)

    def relay(self, fd: int, line: bytes) -> None:
        """
        Log one line the worker wrote to C{fd}.
        """
        text = line.decode("utf-8", "replace").strip("\x1e\r")
        if not text:
            return
        if fd == 1:
            try:
                event = eventFromJSON(text)
            except (JSONDecodeError, ValueError):
                event = None
            if isinstance(event, dict) and "log_time" in event:
                level = event.get("log_level")
                name = level.name if isinstance(level, type(LogLevel.info)) else "-"
                event["log_system"] = f"{self.system}#{name}"
                self.publisher(event)
                return
        _log.error("{line}", line=text, log_system=f"{self.system}#error")

    def processEnded(self, reason: Failure) -> None:
        for fd in list(self._partial):
            self.childConnectionLost(fd)
        self.exited(self.slot, describe_exit(reason))
        self.ended.callback(None)


class _SharedListener(EchoServerService):
    """
    Listens on every endpoint as a single-process server does, then stops accepting in
    this process: the workers accept on the same sockets (L{WorkerPort}).

    @ivar shared: a L{WorkerPort} for every port listened on.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared: list[WorkerPort] = []

    def _listened(
        self, port: IListeningPort, description: str, echo: bool = True
    ) -> IListeningPort:
        if not echo:  # --metrics: served by this process
            return super()._listened(port, description, echo)
        socket = share_listening_socket(port)
        if socket is None:
            port.stopListening()
            raise ListenFailed("worker processes cannot share this kind of port")
        endpoint = dict(self.endpoints).get(description)
        plain = isinstance(endpoint, AdoptedStreamServerEndpoint)
        tls_after_header = isinstance(endpoint, TLSAfterHeaderEndpoint)
        self.shared.append(
            WorkerPort(description, *socket, plain=plain, tls_after_header=tls_after_header)
        )
        return super()._listened(port, description)


class WorkersService(Service):
    """
    The main process of C{--workers N}: listens, keeps N workers serving, drains them
    on shutdown.
    """

    def __init__(
        self,
        endpoints: list[tuple[str, IStreamServerEndpoint]],
        factory: OKEchoFactory,
        reactor: IReactorCore,
        count: int,
        shutdown_timeout: float,
        foreground: bool = True,
        twistd_options: MutableMapping[str, Any] | None = None,
        others: Sequence[tuple[str, IStreamServerEndpoint, IProtocolFactory]] = (),
    ) -> None:
        """
        @param endpoints: C{(description, endpoint)} for every C{--port}.
        @param factory: its settings are the workers'; it serves nobody itself.
        @param reactor: runs the workers (an L{IReactorProcess} too) and their timers.
        @param count: how many workers.
        @param shutdown_timeout: seconds each worker gives its clients when draining.
        @param foreground: see L{EchoServerService}.
        @param twistd_options: see L{EchoServerService}.
        @param others: endpoints this process serves itself, each with its factory (the
            C{--metrics} endpoint); the workers then count for the metrics.
        """
        self.reactor = reactor
        self.metrics = bool(others)
        self.settings = factory.settings
        self.shutdown_timeout = shutdown_timeout
        self.listener = _SharedListener(
            endpoints,
            factory,
            reactor,
            shutdown_timeout=shutdown_timeout,
            foreground=foreground,
            twistd_options=twistd_options,
            others=others,
        )
        self.supervisor = Supervisor(
            count, self._spawn, cast(IReactorTime, reactor), self._give_up
        )
        self.workers: dict[int, _WorkerProtocol] = {}
        self.plan: WorkerPlan | None = None

    def privilegedStartService(self) -> None:
        """
        Listen before privileges are dropped; the workers start as the unprivileged user.
        """
        super().privilegedStartService()
        self.listener.privilegedStartService()

    def startService(self) -> None:
        super().startService()
        self.listener.startService()
        self.plan = WorkerPlan(
            settings=self.settings,
            ports=tuple(self.listener.shared),
            shutdown_timeout=self.shutdown_timeout,
            lean_reactor=reflect.qual(type(self.reactor)) == _LEAN_REACTOR,
            metrics=self.metrics,
        )
        self.supervisor.start()

    def _spawn(self, slot: int) -> int:
        """
        Start the worker of C{slot}; return its pid.
        """
        assert self.plan is not None
        environment = dict(os.environ)
        environment[PLAN_VARIABLE] = encode_plan(self.plan)
        # The worker imports twistsock from where this process did.
        environment["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
        child_fds: dict[int, int | str] = {0: "w", 1: "r", 2: "r"}
        child_fds.update({port.fd: port.fd for port in self.plan.ports})
        protocol = _WorkerProtocol(slot, self._exited)
        process = cast(IReactorProcess, self.reactor).spawnProcess(
            protocol,
            sys.executable,
            [sys.executable, "-c", _WORKER_MAIN],
            env=environment,
            childFDs=child_fds,
        )
        self.workers[slot] = protocol
        return int(process.pid)

    def _exited(self, slot: int, reason: str) -> None:
        pid = self.supervisor.pids.get(slot)
        self.workers.pop(slot, None)
        restarts = self.supervisor.restarts
        self.supervisor.exited(slot, reason)
        if self.metrics:
            from twistsock.echo._metrics import worker_exited

            worker_exited(pid, self.supervisor.restarts - restarts)

    def _give_up(self, why: str) -> None:
        """
        A worker keeps failing: say why and stop the whole server.
        """
        _log.critical("{why}; stopping the server", why=why)
        try:
            self.reactor.stop()
        except ReactorNotRunning:
            pass

    def stopService(self) -> Deferred[Any]:
        """
        Drain every worker (SIGTERM: each stops accepting, flushes and closes its
        clients within the shutdown timeout, and exits); kill those still running
        L{KILL_GRACE} seconds later; then stop listening.
        """
        super().stopService()
        self.supervisor.stop()
        workers = list(self.workers.values())
        for worker in workers:
            _signal(worker, "TERM")
        drained = DeferredList([worker.ended for worker in workers], consumeErrors=True)
        deadline = self.reactor_time.callLater(
            self.shutdown_timeout + KILL_GRACE, _kill_all, workers
        )

        def cancel_deadline(result: object) -> object:
            if deadline.active():
                deadline.cancel()
            return result

        drained.addBoth(cancel_deadline)
        # Closing this process's listening sockets only now leaves each worker to stop
        # accepting by itself: a TCP socket closed here is shut down for every process.
        drained.addBoth(lambda _: self.listener.stopService())
        return drained

    @property
    def reactor_time(self) -> IReactorTime:
        """
        The reactor as the clock it also is.
        """
        return cast(IReactorTime, self.reactor)


def _signal(worker: _WorkerProtocol, name: str) -> None:
    transport = worker.transport
    if transport is None:
        return
    try:
        transport.signalProcess(name)
    except ProcessExitedAlready:
        pass


def _kill_all(workers: Sequence[_WorkerProtocol]) -> None:
    for worker in workers:
        if not worker.ended.called:
            _log.warn("worker {pid} did not drain in time; killing it", pid=worker.pid)
            _signal(worker, "KILL")


class _AdoptingReactor:
    """
    Stands in for the reactor while a worker listens on an endpoint parsed from a
    C{--port} description: every listen call adopts the inherited socket instead of
    binding a new one, with the factory wrapped as the endpoint asked (TLS as
    C{IReactorSSL.listenSSL} wraps it; HAProxy wrappers wrap it before calling here).
    Everything else is the real reactor's.
    """

    def __init__(self, reactor: Any, port: WorkerPort) -> None:
        self._reactor = reactor
        self._port = port

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def _adopt(self, factory: IProtocolFactory) -> IListeningPort:
        return cast(
            IListeningPort,
            self._reactor.adoptStreamPort(self._port.fd, self._port.family, factory),
        )

    def listenTCP(self, port: int, factory: IProtocolFactory, *args: Any, **kw: Any) -> Any:
        return self._adopt(factory)

    def listenUNIX(self, address: str, factory: IProtocolFactory, *args: Any, **kw: Any) -> Any:
        return self._adopt(factory)

    def listenSSL(
        self, port: int, factory: IProtocolFactory, contextFactory: Any, *args: Any, **kw: Any
    ) -> Any:
        return self._adopt(TLSMemoryBIOFactory(contextFactory, False, factory))

    def adoptStreamPort(self, fd: int, family: int, factory: IProtocolFactory) -> Any:
        return self._adopt(factory)


def adopt_ports(
    reactor: Any, ports: Sequence[WorkerPort], factory: IProtocolFactory
) -> list[IListeningPort]:
    """
    Serve C{factory} on every inherited socket of C{ports}, each wrapped as its
    description says (C{ssl:} in TLS, C{haproxy:} in the PROXY protocol).
    """
    adopted: list[IListeningPort] = []
    for port in ports:
        if port.plain:
            adopted.append(reactor.adoptStreamPort(port.fd, port.family, factory))
            continue
        if port.tls_after_header:
            parts = ssl_endpoint_parts(serverFromString(reactor, port.description))
            assert parts is not None, port.description
            echo = cast(OKEchoFactory, factory)
            tls = echo.tls_after_header(parts[3])
            adopted.append(reactor.adoptStreamPort(port.fd, port.family, tls))
            continue
        endpoint = serverFromString(_AdoptingReactor(reactor, port), port.description)
        outcome: list[Any] = []
        endpoint.listen(factory).addBoth(outcome.append)
        if not outcome:
            raise RuntimeError(f"{port.description} did not listen at once")
        if isinstance(outcome[0], Failure):
            outcome[0].raiseException()
        adopted.append(outcome[0])
    return adopted


@implementer(IReadDescriptor)
class _Lifeline:
    """
    The worker's standard input, a pipe from the main process: end-of-file means the
    main process is gone, and the worker drains and exits.
    """

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def fileno(self) -> int:
        return 0

    def logPrefix(self) -> str:
        return "twistsock-lifeline"

    def doRead(self) -> None:
        if os.read(0, 4096):
            return
        self.reactor.removeReader(self)
        self.connectionLost(Failure(EOFError()))

    def connectionLost(self, reason: Failure) -> None:
        """
        The pipe is closed (the reactor calls this on a hang-up without data): drain.
        """
        # Stop first: the log below goes nowhere now, and must not keep the worker alive.
        try:
            self.reactor.stop()
        except ReactorNotRunning:
            pass
        _log.warn("the main process is gone; draining")


def _drain(
    ports: Sequence[IListeningPort], factory: OKEchoFactory, timeout: float
) -> Deferred[Any]:
    """
    Stop accepting and close every client within C{timeout} seconds.
    """
    for port in ports:
        stop_accepting(port)
    return factory.shutdown(timeout)


def json_log_observer(out: IO[Any]) -> ILogObserver:
    """
    A worker's log: each event as JSON on one line of C{out}, its message already
    formatted.

    Twisted's JSON flattening keeps a field's value but not its format specification
    (C{{duration:.1f}} would come out unrounded in the main process), so the message is
    formatted here and sent as the event's whole format; every other field goes along.
    """
    write = jsonFileLogObserver(out)

    @implementer(ILogObserver)
    def observe(event: LogEvent) -> None:
        text = formatEvent(event)
        try:
            write({**event, "log_format": text.replace("{", "{{").replace("}", "}}")})
        except OSError:
            pass  # the main process is gone (EPIPE): there is no log to write to

    return cast(ILogObserver, observe)


def run_worker(
    environ: MutableMapping[str, str] = os.environ, stdout: IO[Any] | None = None
) -> None:
    """
    A worker process: serve the inherited sockets of the L{WorkerPlan} in C{environ}
    until SIGTERM or the main process goes, then drain and return.

    Its log events go to C{stdout} (the real standard output by default), as JSON for
    the main process to relay.  SIGINT is ignored: a Ctrl-C in a terminal reaches the
    main process too, which then drains the workers.
    """
    plan = decode_plan(environ.pop(PLAN_VARIABLE))
    if plan.lean_reactor and sys.platform == "linux":
        from twistsock._twisted import install

        install()
    from twisted.internet import reactor as global_reactor

    reactor: Any = global_reactor
    globalLogBeginner.beginLoggingTo([json_log_observer(stdout or sys.stdout)])
    factory = OKEchoFactory(plan.settings, reactor=reactor)
    ports = adopt_ports(reactor, plan.ports, factory)
    if plan.metrics:
        from twistsock.echo._metrics import EchoMetrics

        metrics = EchoMetrics(factory, reactor)
        metrics.start()
        reactor.addSystemEventTrigger("after", "shutdown", metrics.stop)
    reactor.addSystemEventTrigger(
        "before", "shutdown", _drain, ports, factory, plan.shutdown_timeout
    )
    reactor.addReader(_Lifeline(reactor))

    def running() -> None:
        # The reactor's signal handlers are in place now: SIGTERM drains from here on.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _log.info("worker serving {count} port(s)", count=len(ports))

    reactor.callWhenRunning(running)
    reactor.run()
