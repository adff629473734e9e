"""
Tests for L{twistsock.echo._workers}: C{--workers N}, in memory (the supervisor, the log
relay, the adoption of inherited sockets) and end to end (C{twistd -n twistsock --workers 2}
as a subprocess).
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import tcp
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, formatEvent
from twisted.protocols.haproxy._wrapper import HAProxyWrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests._certificates import make_self_signed
from tests._memory import MemoryReactorClock
from tests._sockets import WELCOME, recv_all, recv_exactly
from tests._twistd import Twistd
from twistsock import EchoSettings
from twistsock._twisted import share_listening_socket, stop_accepting
from twistsock.echo import tap
from twistsock.echo._workers import (
    PLAN_VARIABLE,
    Supervisor,
    WorkerPlan,
    WorkerPort,
    _WorkerProtocol,
    adopt_ports,
    decode_plan,
    describe_exit,
    encode_plan,
    json_log_observer,
)

LOCAL = "tcp:0:interface=127.0.0.1"
README = Path(__file__).resolve().parent.parent / "README.md"


class Spawner:
    """
    Stands in for starting worker processes: records each start, hands out pids.
    """

    def __init__(self) -> None:
        self.started: list[int] = []
        self.next_pid = 100
        self.fail = False

    def __call__(self, slot: int) -> int:
        if self.fail:
            raise OSError("no such file")
        self.started.append(slot)
        self.next_pid += 1
        return self.next_pid


class SupervisorTests(SynchronousTestCase):
    """
    L{Supervisor} keeps the workers running, with a bounded backoff.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.spawner = Spawner()
        self.given_up: list[str] = []
        self.supervisor = Supervisor(
            2,
            self.spawner,
            self.clock,
            self.given_up.append,
            first_delay=0.5,
            max_delay=4.0,
            stable_after=30.0,
            max_failures=5,
        )

    def test_start(self) -> None:
        """
        Every slot gets a worker at once.
        """
        self.supervisor.start()
        self.assertEqual(self.spawner.started, [0, 1])
        self.assertEqual(self.supervisor.pids, {0: 101, 1: 102})

    def test_restart_after_delay(self) -> None:
        """
        A worker that exits is restarted after the first delay, not before.
        """
        self.supervisor.start()
        self.supervisor.exited(1, "was killed by signal 9")
        self.assertEqual(self.supervisor.pids, {0: 101})
        self.clock.advance(0.49)
        self.assertEqual(self.spawner.started, [0, 1])
        self.clock.advance(0.01)
        self.assertEqual(self.spawner.started, [0, 1, 1])
        self.assertEqual(self.supervisor.pids, {0: 101, 1: 103})
        self.assertEqual(self.supervisor.restarts, 1)

    def test_backoff_doubles_up_to_max(self) -> None:
        """
        Each quick failure in a row doubles the delay, up to the maximum.
        """
        self.supervisor.start()
        delays = []
        for _ in range(5):
            self.supervisor.exited(0, "exited with status 1")
            before = len(self.spawner.started)
            waited = 0.0
            while len(self.spawner.started) == before:
                self.clock.advance(0.25)
                waited += 0.25
            delays.append(waited)
        self.assertEqual(delays, [0.5, 1.0, 2.0, 4.0, 4.0])

    def test_stable_worker_resets_backoff(self) -> None:
        """
        A worker that lived past C{stable_after} is restarted after the first delay again.
        """
        self.supervisor.start()
        for _ in range(3):
            self.supervisor.exited(0, "exited with status 1")
            self.clock.advance(10)
        self.clock.advance(30)
        self.supervisor.exited(0, "exited with status 1")
        self.clock.advance(0.5)
        self.assertEqual(self.spawner.started.count(0), 5)

    def test_gives_up(self) -> None:
        """
        After C{max_failures} quick failures in a row it gives up once, saying why, and
        restarts nothing more.
        """
        self.supervisor.start()
        for _ in range(5):
            self.supervisor.exited(0, "exited with status 1")
            self.clock.advance(10)
        self.assertEqual(self.given_up, [])
        self.supervisor.exited(0, "exited with status 1")
        self.assertEqual(len(self.given_up), 1)
        self.assertIn("exited with status 1", self.given_up[0])
        self.assertIn("giving up", self.given_up[0])
        started = len(self.spawner.started)
        self.clock.advance(100)
        self.assertEqual(len(self.spawner.started), started)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_spawn_failure_is_retried(self) -> None:
        """
        A worker that cannot be started at all is retried with the same backoff.
        """
        self.spawner.fail = True
        self.supervisor.start()
        self.assertEqual(self.supervisor.pids, {})
        self.spawner.fail = False
        self.clock.advance(0.5)
        self.assertEqual(self.spawner.started, [0, 1])

    def test_stop(self) -> None:
        """
        After L{Supervisor.stop} a pending restart is cancelled and an exit is not restarted.
        """
        self.supervisor.start()
        self.supervisor.exited(0, "was killed by signal 9")
        self.supervisor.stop()
        self.supervisor.exited(1, "exited with status 0")
        self.clock.advance(100)
        self.assertEqual(self.spawner.started, [0, 1])
        self.assertEqual(self.supervisor.pids, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])


class FakeProcess:
    """
    The transport of a worker process, as far as L{_WorkerProtocol} uses it.
    """

    pid = 4242


class WorkerProtocolTests(SynchronousTestCase):
    """
    The main process relays each worker's log, with the worker's pid, and reports exits.
    """

    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.exits: list[tuple[int, str]] = []
        self.protocol = _WorkerProtocol(
            1, lambda slot, why: self.exits.append((slot, why)), self.events.append
        )
        self.protocol.makeConnection(FakeProcess())  # type: ignore[arg-type]

    def worker_log(self, *emit: tuple[str, dict[str, Any]]) -> bytes:
        """
        What a worker writes to its standard output when it logs C{emit}.
        """
        out = io.StringIO()
        observer = json_log_observer(out)
        log = Logger(namespace="twistsock", observer=observer)
        for text, fields in emit:
            log.info(text, **fields)
        return out.getvalue().encode()

    def test_relay(self) -> None:
        """
        A worker's event, split anywhere, is published whole with its message formatted
        as in the worker (format specifications included) and the worker's pid as the
        system.
        """
        data = self.worker_log(
            ("Disconnected {peer} after {duration:.1f} s", {"peer": "a", "duration": 0.123}),
            ("Connected with {peer}", {"peer": "b"}),
        )
        for i in range(len(data)):
            self.protocol.childDataReceived(1, data[i : i + 1])
        self.assertEqual(
            [formatEvent(e) for e in self.events],
            ["Disconnected a after 0.1 s", "Connected with b"],
        )
        self.assertEqual(self.events[0]["log_system"], "twistsock worker 4242#info")
        self.assertEqual(self.events[0]["log_level"], LogLevel.info)

    def test_text_is_logged(self) -> None:
        """
        Anything that is not a log event (a traceback on standard error) is logged line
        by line as errors of that worker, the last line even without a newline.
        """
        from twisted.logger import globalLogPublisher

        seen: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(seen.append)
        self.addCleanup(globalLogPublisher.removeObserver, seen.append)
        self.protocol.childDataReceived(2, b"Traceback (most recent call last):\n  Fi")
        self.protocol.childDataReceived(2, b"le x\nValueError")
        self.protocol.childConnectionLost(2)
        ours = [e for e in seen if e.get("log_system") == "twistsock worker 4242#error"]
        self.assertEqual(
            [formatEvent(e) for e in ours],
            ["Traceback (most recent call last):", "  File x", "ValueError"],
        )
        self.assertEqual({e["log_level"] for e in ours}, {LogLevel.error})

    def test_exit(self) -> None:
        """
        The worker's exit is reported with its slot and how it ended, and C{ended} fires.
        """
        self.assertFalse(self.protocol.ended.called)
        self.protocol.processEnded(Failure(ProcessTerminated(None, signal.SIGKILL)))
        self.assertEqual(self.exits, [(1, f"was killed by signal {signal.SIGKILL}")])
        self.assertTrue(self.protocol.ended.called)

    def test_describe_exit(self) -> None:
        """
        Exit statuses and signals in a few words.
        """
        self.assertEqual(describe_exit(Failure(ProcessDone(0))), "exited with status 0")
        self.assertEqual(describe_exit(Failure(ProcessTerminated(3))), "exited with status 3")


class PlanTests(SynchronousTestCase):
    """
    The plan a worker gets survives the trip through the environment.
    """

    def test_round_trip(self) -> None:
        """
        L{decode_plan} gives back what L{encode_plan} was given, settings and all.
        """
        plan = WorkerPlan(
            EchoSettings(prefix=b"X ", max_per_ip=3),
            (WorkerPort("tcp:0", 7, socket.AF_INET), WorkerPort("systemd:x", 3, 1, True)),
            2.5,
            lean_reactor=True,
        )
        self.assertEqual(decode_plan(encode_plan(plan)), plan)

    def test_not_a_plan(self) -> None:
        """
        Anything else in the variable is refused.
        """
        import base64
        import pickle

        with self.assertRaises(TypeError):
            decode_plan(base64.b64encode(pickle.dumps([1])).decode())
        self.assertEqual(PLAN_VARIABLE, "TWISTSOCK_WORKER_PLAN")


class WorkersOptionTests(SynchronousTestCase):
    """
    C{--workers N}.
    """

    def test_default(self) -> None:
        """
        One process, as before, unless asked.
        """
        options = tap.ServerOptions()
        options.parseOptions([])
        self.assertEqual(options["workers"], 1)

    def test_count(self) -> None:
        """
        A whole number of at least 1.
        """
        options = tap.ServerOptions()
        options.parseOptions(["--workers", "3"])
        self.assertEqual(options["workers"], 3)
        for bad, message in [("0", "at least 1"), ("two", "a whole number")]:
            with self.assertRaises(usage.UsageError) as caught:
                tap.ServerOptions().parseOptions(["--workers", bad])
            self.assertIn(f"--workers must be {message}", str(caught.exception))

    def test_help_says_per_worker(self) -> None:
        """
        The help of both limits says they hold per worker.
        """
        text = " ".join(str(tap.ServerOptions()).split())
        self.assertIn("each worker process counts its own (N times this in all)", text)
        self.assertIn("With --workers, each worker process counts its own.", text)


class AdoptionTests(SynchronousTestCase):
    """
    A worker serves each inherited socket wrapped as its C{--port} description says.
    """

    def adopt(self, *ports: WorkerPort) -> list[tuple[int, int, Any]]:
        """
        Adopt C{ports} on a reactor that records each adoption; return the records.
        """
        adopted: list[tuple[int, int, Any]] = []

        class Reactor:
            def adoptStreamPort(self, fd: int, family: int, factory: Any) -> object:
                adopted.append((fd, family, factory))
                return object()

        self.factory = Factory()
        adopt_ports(Reactor(), ports, self.factory)
        return adopted

    def test_tcp_unix_systemd(self) -> None:
        """
        TCP, TCP6, UNIX and systemd sockets are adopted with the factory itself, on the
        inherited descriptor (whatever port number or path the description names).
        """
        adopted = self.adopt(
            WorkerPort("tcp:0:interface=127.0.0.1", 7, socket.AF_INET),
            WorkerPort("tcp6:8888", 8, socket.AF_INET6),
            WorkerPort("unix:/nowhere/echo.sock", 9, socket.AF_UNIX),
            WorkerPort("systemd:domain=INET:index=0", 3, socket.AF_INET, plain=True),
        )
        self.assertEqual(
            adopted,
            [
                (7, socket.AF_INET, self.factory),
                (8, socket.AF_INET6, self.factory),
                (9, socket.AF_UNIX, self.factory),
                (3, socket.AF_INET, self.factory),
            ],
        )

    def test_tls(self) -> None:
        """
        An C{ssl:} socket is adopted with the factory wrapped in TLS, as C{listenSSL}
        wraps it.
        """
        directory = Path(tempfile.mkdtemp())
        key, cert = make_self_signed(directory)
        [(fd, family, factory)] = self.adopt(
            WorkerPort(f"ssl:0:privateKey={key}:certKey={cert}", 7, socket.AF_INET)
        )
        self.assertEqual((fd, family), (7, socket.AF_INET))
        self.assertIsInstance(factory, TLSMemoryBIOFactory)
        self.assertIs(factory.wrappedFactory, self.factory)

    def test_tls_after_proxy_header(self) -> None:
        """
        With the PROXY protocol an C{ssl:} socket is plain TCP: it is adopted with the
        factory that starts TLS after each connection's header, with the port's
        certificate.
        """
        from twistsock import OKEchoFactory

        directory = Path(tempfile.mkdtemp())
        key, cert = make_self_signed(directory)
        adopted: list[tuple[int, int, Any]] = []

        class Reactor:
            def adoptStreamPort(self, fd: int, family: int, factory: Any) -> object:
                adopted.append((fd, family, factory))
                return object()

        echo = OKEchoFactory(proxy_protocol=True, reactor=Clock())
        port = WorkerPort(
            f"ssl:0:privateKey={key}:certKey={cert}", 7, socket.AF_INET, tls_after_header=True
        )
        adopt_ports(Reactor(), [port], echo)
        [(fd, family, factory)] = adopted
        self.assertEqual((fd, family), (7, socket.AF_INET))
        self.assertNotIsInstance(factory, TLSMemoryBIOFactory)
        self.assertIs(factory.factory, echo)
        self.assertIsNotNone(factory.context)

    def test_haproxy(self) -> None:
        """
        A C{haproxy:} socket is adopted with the factory wrapped in the PROXY protocol.
        """
        [(fd, _, factory)] = self.adopt(WorkerPort("haproxy:tcp:0", 7, socket.AF_INET))
        self.assertEqual(fd, 7)
        self.assertIsInstance(factory, HAProxyWrappingFactory)
        self.assertIs(factory.wrappedFactory, self.factory)


class ShareListeningSocketTests(SynchronousTestCase):
    """
    L{share_listening_socket} and L{stop_accepting} on Twisted's ports.
    """

    def test_tcp_port(self) -> None:
        """
        A listening TCP port stops accepting and hands over its descriptor and family;
        the socket stays open.
        """
        reactor = MemoryReactorClock()
        port = tcp.Port(0, Factory(), interface="127.0.0.1", reactor=reactor)
        port.startListening()
        self.addCleanup(port.socket.close)
        self.assertIn(port, reactor.getReaders())
        self.assertEqual(share_listening_socket(port), (port.socket.fileno(), socket.AF_INET))
        self.assertNotIn(port, reactor.getReaders())
        port.startReading()
        stop_accepting(port)
        self.assertNotIn(port, reactor.getReaders())

    def test_other_port(self) -> None:
        """
        Anything else is not shared.
        """
        self.assertIsNone(share_listening_socket(object()))


def worker_pids(server: Twistd) -> list[int]:
    """
    The pids of the first two workers, once both serve.
    """
    server.wait_for_line(r"started worker \d+ \(2 of 2\)")
    pids = [
        int(m.group(1))
        for line in list(server.lines)
        if (m := re.search(r"started worker (\d+) \(", line))
    ][:2]
    for pid in pids:
        server.wait_for_line(rf"\[twistsock worker {pid}#info\] worker serving")
    return pids


def alive(pid: int) -> bool:
    """
    Is process C{pid} running (neither gone nor a zombie)?
    """
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def served_by(server: Twistd, port: int) -> int:
    """
    The pid of the worker that logged the connection of the client on local C{port}.
    """
    line = server.wait_for_line(
        rf"\[twistsock worker (\d+)#info\] Connected with 127\.0\.0\.1:{port}\b", timeout=10
    )
    return int(line.group(1))


def converse(server: Twistd) -> int:
    """
    One conversation: connect, get the welcome, send a line, get its reply, close.

    @return: the client's local port.
    """
    with server.connect() as sock:
        sock.sendall(b"hi\n")
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == WELCOME + b"OK...hi\n"
        return int(sock.getsockname()[1])


class WorkersProcessTests(SynchronousTestCase):
    """
    C{twistd -n twistsock --workers 2}, as users run it.
    """

    def start(self, *arguments: str, pidfile: bool = False) -> Twistd:
        server = Twistd(*arguments, pidfile=pidfile)
        self.addCleanup(server.stop)
        return server

    def test_both_workers_serve(self) -> None:
        """
        Connections are served by both workers, each logged with the worker's pid.
        """
        server = self.start("--port", LOCAL, "--workers", "2")
        pids = worker_pids(server)
        self.assertEqual(len(set(pids)), 2)
        seen = set()
        for _ in range(200):
            seen.add(served_by(server, converse(server)))
            if seen == set(pids):
                break
        self.assertEqual(seen, set(pids))

    def test_killed_worker_is_restarted(self) -> None:
        """
        C{kill -9} of one worker: the port keeps answering, and the worker is restarted
        (logged) and serves again.
        """
        server = self.start("--port", LOCAL, "--workers", "2")
        first, second = worker_pids(server)
        os.kill(first, signal.SIGKILL)
        for _ in range(10):
            self.assertEqual(served_by(server, converse(server)), second)
        server.wait_for_line(
            rf"worker {first} was killed by signal 9 after .* s; restarting it in 0\.5 s"
        )
        restarted = int(
            server.wait_for_line(
                rf"started worker (?!{first}\b|{second}\b)(\d+) \(1 of 2\)"
            ).group(1)
        )
        self.assertNotIn(restarted, (first, second))
        server.wait_for_line(rf"\[twistsock worker {restarted}#info\] worker serving")
        seen = set()
        for _ in range(200):
            seen.add(served_by(server, converse(server)))
            if restarted in seen:
                break
        self.assertIn(restarted, seen)

    def test_workers_exit_with_main_process(self) -> None:
        """
        When the main process is killed, the workers drain and exit by themselves.
        """
        server = self.start("--port", LOCAL, "--workers", "2")
        pids = worker_pids(server)
        server.process.kill()
        server.finish()
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([pid for pid in pids if alive(pid)], [])

    def test_sigterm_drains(self) -> None:
        """
        SIGTERM to the main process: each worker flushes its clients' pending replies (to
        the lines it has read) and closes them, then everything exits, reporting the
        signal.
        """
        server = self.start("--port", LOCAL, "--workers", "2")
        pids = worker_pids(server)
        client = server.connect()
        self.addCleanup(client.close)
        self.assertEqual(recv_exactly(client, len(WELCOME)), WELCOME)
        lines = b"".join(b"line %04d\n" % i for i in range(2000))
        client.sendall(lines)
        served_by(server, client.getsockname()[1])
        # The worker has read the lines once the first reply is here (they fit in one
        # read): the drain owes the client every reply from then on.
        first = recv_exactly(client, 15)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        received = first + recv_all(client)
        self.assertEqual(received, b"".join(b"OK...line %04d\n" % i for i in range(2000)))
        self.assertEqual(server.finish(timeout=20), -signal.SIGTERM)
        self.assertLess(time.monotonic() - signalled, 10)
        for pid in pids:
            server.wait_for_line(rf"worker {pid} exited with status 0")
        self.assertNotIn("Traceback", "\n".join(server.lines))

    def test_port_in_use(self) -> None:
        """
        A port in use with C{--workers 2}: one line on stderr, exit status 1, no worker
        started and no pid file left.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        server = self.start(
            "--port", f"tcp:{port}:interface=127.0.0.1", "--workers", "2", pidfile=True
        )
        self.assertEqual(server.finish(), 1)
        self.assertEqual(
            server.stderr.decode(),
            f"twistd twistsock: cannot listen (address already in use) on "
            f"tcp:{port}:interface=127.0.0.1\n",
        )
        self.assertNotIn("started worker", "\n".join(server.lines))
        self.assertEqual(os.listdir(server.directory), [])

    def test_tls_and_unix(self) -> None:
        """
        TLS and UNIX ports are served by the workers too.
        """
        directory = Path(tempfile.mkdtemp())
        key, cert = make_self_signed(directory)
        path = directory / "echo.sock"
        server = self.start(
            "--port",
            f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
            "--port",
            f"unix:{path}",
            "--workers",
            "2",
        )
        worker_pids(server)
        context = ssl.create_default_context(cafile=str(cert))
        with context.wrap_socket(server.connect(), server_hostname="localhost") as sock:
            sock.sendall(b"over tls\n")
            self.assertEqual(recv_exactly(sock, len(WELCOME) + 14), WELCOME + b"OK...over tls\n")
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            sock.sendall(b"over unix\n")
            sock.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(sock), WELCOME + b"OK...over unix\n")
        server.wait_for_line(r"\[twistsock worker \d+#info\] Connected with unix:")

    def test_readme_command(self) -> None:
        """
        The README's "Several cores" command, on a local port: two workers serve.
        """
        text = README.read_text()
        command = re.search(r"<!-- workers-command -->\n```\n\$ (.*)\n", text)
        assert command is not None, "README.md has no workers command"
        words = command.group(1).split()
        arguments = words[words.index("twistsock") + 1 :]
        arguments[arguments.index("8888")] = LOCAL
        server = self.start(*arguments)
        self.assertEqual(len(set(worker_pids(server))), 2)
        served_by(server, converse(server))
