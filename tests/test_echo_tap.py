"""
Tests for L{twistsock.echo.tap}: the twistd plugin's options and service.
"""

from __future__ import annotations

import errno
import io
import os
import resource
import sys
from pathlib import Path

from twisted.internet.defer import fail, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from tests._certificates import make_self_signed
from tests._memory import MemoryReactorClock
from twistsock import EchoSettings, OKEchoFactory
from twistsock.echo import tap


def parse(*argv: str) -> tap.ServerOptions:
    """
    Parse C{argv} as the plugin's options.
    """
    options = tap.ServerOptions()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    """
    Every option parses, has a default, and rejects bad values with a clear message.
    """

    def test_defaults(self) -> None:
        """
        With no options the server listens on tcp:8888 with every default limit.
        """
        options = parse()
        self.assertEqual(options["ports"], ["tcp:8888"])
        self.assertEqual(
            options["settings"],
            EchoSettings(
                welcome=b"Welcome to the server. Type something and hit enter",
                prefix=b"OK...",
                mode="line",
                max_line_length=65536,
                idle_timeout=300.0,
                line_timeout=60.0,
                max_connections=10000,
                max_per_ip=0,
                close_timeout=10.0,
                direct_write=True,
            ),
        )

    def test_bare_port(self) -> None:
        """
        A bare number means TCP on all interfaces: C{serverFromString} would reject it.
        """
        self.assertEqual(parse("--port", "9999")["ports"], ["tcp:9999"])

    def test_repeatable_ports(self) -> None:
        """
        C{--port} and C{-p} can be given many times; endpoint descriptions pass through.
        """
        options = parse("-p", "1234", "--port", "tcp6:1235:interface=\\:\\:1", "-p", "unix:/tmp/x")
        self.assertEqual(
            options["ports"], ["tcp:1234", "tcp6:1235:interface=\\:\\:1", "unix:/tmp/x"]
        )

    def test_bad_endpoint(self) -> None:
        """
        An unknown endpoint type is a usage error naming the value.
        """
        error = self.assertRaises(usage.UsageError, parse, "--port", "bogus:1")
        self.assertIn("bogus:1", str(error))

    def test_all_options(self) -> None:
        """
        Every option reaches the server's settings.
        """
        options = parse(
            "--welcome", "hello", "--prefix", ">>", "--mode", "once",
            "--max-line-length", "10", "--idle-timeout", "0", "--line-timeout", "7",
            "--max-connections", "5",
            "--max-per-ip", "2", "--close-timeout", "1.5", "--no-direct-write",
        )  # fmt: skip
        settings = OKEchoFactory(options["settings"], reactor=Clock()).settings
        self.assertEqual(settings.welcome_line, b"hello\n")
        self.assertEqual(settings.prefix, b">>")
        self.assertEqual(settings.mode, "once")
        self.assertEqual(
            (settings.max_line_length, settings.idle_timeout, settings.max_connections),
            (10, 0.0, 5),
        )
        self.assertEqual((settings.max_per_ip, settings.close_timeout), (2, 1.5))
        self.assertFalse(settings.direct_write)
        self.assertEqual(settings.line_timeout, 7.0)

    def test_no_welcome(self) -> None:
        """
        C{--no-welcome} turns the greeting off; with C{--welcome} it is a contradiction.
        """
        self.assertIsNone(parse("--no-welcome")["settings"].welcome)
        self.assertRaises(usage.UsageError, parse, "--no-welcome", "--welcome", "x")

    def test_bad_values(self) -> None:
        """
        Each invalid value is a usage error that names the option.
        """
        for argv, needle in [
            (["--mode", "lines"], "--mode must be one of line, chunk, once"),
            (["--max-line-length", "0"], "--max-line-length must be at least 1"),
            (["--max-connections", "many"], "--max-connections must be a whole number"),
            (["--idle-timeout", "-1"], "--idle-timeout must be at least 0"),
            (["--idle-timeout", "nan"], "--idle-timeout must be a finite number"),
            (["--idle-timeout", "inf"], "--idle-timeout must be a finite number"),
            (["--close-timeout", "1e400"], "--close-timeout must be a finite number"),
            (["--max-per-ip", "1.5"], "--max-per-ip must be a whole number"),
            (["--close-timeout", "x"], "--close-timeout must be a number"),
            (["--port", ""], "--port must not be empty"),
        ]:
            error = self.assertRaises(usage.UsageError, parse, *argv)
            self.assertIn(needle, str(error))

    def test_one_line_error_for_twistd(self) -> None:
        """
        The options twistd uses turn a usage error into one line and exit status 1.
        """
        error = self.assertRaises(
            SystemExit, tap.Options().parseOptions, ["--max-connections", "x"]
        )
        message = str(error.code)
        self.assertEqual(message.count("\n"), 0)
        self.assertTrue(message.startswith("twistd twistsock: error: --max-connections"))

    def test_port_out_of_range(self) -> None:
        """
        A port number outside 0-65535 is a usage error at option time, however it is
        written: bare, C{tcp:}, C{tcp:port=}, C{tcp6:}, C{ssl:}, or wrapped in C{haproxy:}.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        key, cert = make_self_signed(directory)
        for value, description, number in [
            ("99999", "tcp:99999", 99999),
            ("65536", "tcp:65536", 65536),
            ("tcp:99999:interface=127.0.0.1", "tcp:99999:interface=127.0.0.1", 99999),
            ("tcp:port=70000", "tcp:port=70000", 70000),
            ("tcp:-1", "tcp:-1", -1),
            ("tcp6:99999", "tcp6:99999", 99999),
            ("haproxy:tcp:99999", "haproxy:tcp:99999", 99999),
            (f"ssl:99999:privateKey={key}:certKey={cert}", None, 99999),
        ]:
            error = self.assertRaises(usage.UsageError, parse, "--port", value)
            self.assertIn(f"port number {number} is out of range (0-65535)", str(error))
            self.assertIn(repr(description or value), str(error))

    def test_port_range_edges(self) -> None:
        """
        0 (any free port) and 65535 are valid, as are endpoints without a port number.
        """
        self.assertEqual(
            parse("--port", "0", "-p", "tcp:65535", "-p", "unix:/tmp/x")["ports"],
            ["tcp:0", "tcp:65535", "unix:/tmp/x"],
        )

    def test_port_out_of_range_one_line(self) -> None:
        """
        Under twistd an out-of-range port is one line and exit status 1.
        """
        error = self.assertRaises(SystemExit, tap.Options().parseOptions, ["--port", "99999"])
        self.assertEqual(
            error.code,
            "twistd twistsock: error: --port 'tcp:99999': port number 99999 is out of range "
            "(0-65535) (see twistd twistsock --help)",
        )

    def test_help_shows_defaults(self) -> None:
        """
        The help text lists every option with its default.
        """
        text = str(tap.ServerOptions())
        for needle in (
            "--port", "tcp:8888", "--welcome", "Welcome to the server", "--no-welcome",
            "--prefix", "OK...", "--mode", "[default: line]", "--max-line-length",
            "65536", "--idle-timeout", "300", "--line-timeout", "60", "--max-connections",
            "10000", "--max-per-ip",
            "--close-timeout", "--no-direct-write", "--backlog", "4096",
            "--shutdown-timeout", "--no-connection-log", "--metrics",
        ):  # fmt: skip
            self.assertIn(needle, text)

    def test_operator_options(self) -> None:
        """
        The listen backlog is 4096 and SIGTERM waits 10 seconds unless told otherwise;
        C{--no-connection-log} turns the connection lines off.
        """
        options = parse()
        self.assertEqual((options["backlog"], options["shutdown-timeout"]), (4096, 10.0))
        self.assertTrue(options["settings"].connection_log)
        options = parse("--backlog", "100", "--shutdown-timeout", "30", "--no-connection-log")
        self.assertEqual((options["backlog"], options["shutdown-timeout"]), (100, 30.0))
        self.assertFalse(options["settings"].connection_log)

    def test_operator_options_checked(self) -> None:
        """
        Bad operator values are one-line usage errors.
        """
        for argv, message in [
            (["--backlog", "0"], "--backlog must be from 1 to 65535"),
            (["--backlog", "x"], "--backlog must be a whole number"),
            (["--shutdown-timeout", "-1"], "--shutdown-timeout must be a finite number >= 0"),
            (["--shutdown-timeout", "inf"], "--shutdown-timeout must be a finite number >= 0"),
            (["--metrics", "bogus:1"], "--metrics 'bogus:1'"),
            (["--metrics", "99999"], "--metrics 'tcp:99999': port number 99999 is out of range"),
        ]:
            error = self.assertRaises(usage.UsageError, parse, *argv)
            self.assertIn(message, str(error))

    def test_metrics_needs_prometheus_client(self) -> None:
        """
        C{--metrics} without C{prometheus_client} installed says what to install.
        """
        import prometheus_client

        sys.modules["prometheus_client"] = None  # type: ignore[assignment]  # import fails
        self.addCleanup(sys.modules.__setitem__, "prometheus_client", prometheus_client)
        error = self.assertRaises(usage.UsageError, parse, "--metrics", "9100")
        self.assertIn("pip install 'twistsock[metrics]'", str(error))

    def test_with_backlog(self) -> None:
        """
        TCP, TLS and UNIX ports get the backlog unless they name one; others are left as
        they are.
        """
        self.assertEqual(tap.with_backlog("tcp:8888", 7), "tcp:8888:backlog=7")
        self.assertEqual(tap.with_backlog("unix:/x", 7), "unix:/x:backlog=7")
        self.assertEqual(tap.with_backlog("tcp:1:backlog=3", 7), "tcp:1:backlog=3")
        self.assertEqual(
            tap.with_backlog("systemd:domain=INET:index=0", 7), "systemd:domain=INET:index=0"
        )


@implementer(IListeningPort)
class FakePort:
    """
    A listening port that records whether it was stopped.
    """

    def __init__(self) -> None:
        self.stopped = False

    def startListening(self) -> None:
        pass

    def stopListening(self) -> None:
        self.stopped = True

    def getHost(self) -> object:
        from twisted.internet.address import IPv4Address

        return IPv4Address("TCP", "127.0.0.1", 1234)


@implementer(IStreamServerEndpoint)
class FakeEndpoint:
    """
    An endpoint whose C{listen} succeeds with a L{FakePort} or fails with C{error}.
    """

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.port = FakePort()

    def listen(self, factory: Factory) -> object:
        if self.error is not None:
            return fail(self.error)
        return succeed(self.port)


class ServiceTests(SynchronousTestCase):
    """
    L{tap.EchoServerService} listens, reports failures in one line and shuts down cleanly.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.factory = OKEchoFactory(reactor=self.reactor)

    def test_make_service(self) -> None:
        """
        C{makeService} builds a service that listens on every port given.
        """
        options = parse("--port", "0", "--port", "tcp:0:interface=127.0.0.1")
        service = tap.makeService(options)
        children = list(service)
        self.assertEqual(len(children), 1)
        echo = children[0]
        assert isinstance(echo, tap.EchoServerService)
        self.assertEqual([d for d, _ in echo.endpoints], ["tcp:0", "tcp:0:interface=127.0.0.1"])
        # The backlog reaches the endpoints (read from Twisted's private attribute).
        self.assertEqual([e._backlog for _, e in echo.endpoints], [4096, 4096])  # type: ignore[attr-defined]
        self.assertEqual(echo.shutdown_timeout, 10.0)
        options = parse("--port", "0", "--backlog", "7", "--shutdown-timeout", "2")
        (echo,) = list(tap.makeService(options))
        assert isinstance(echo, tap.EchoServerService)
        self.assertEqual([e._backlog for _, e in echo.endpoints], [7])  # type: ignore[attr-defined]
        self.assertEqual(echo.shutdown_timeout, 2.0)

    def test_listen_and_stop(self) -> None:
        """
        Starting listens on every endpoint; stopping stops listening and closes clients.
        """
        endpoint = FakeEndpoint()
        service = tap.EchoServerService([("tcp:1234", endpoint)], self.factory, self.reactor)
        service.privilegedStartService()
        service.startService()
        self.assertEqual(service.ports, [endpoint.port])
        client = self.factory.buildProtocol(None)
        assert client is not None
        transport = StringTransport()
        client.makeConnection(transport)
        stopped = service.stopService()
        self.assertTrue(endpoint.port.stopped)
        self.assertTrue(transport.disconnecting)
        self.assertNoResult(stopped)
        self.reactor.advance(tap.SHUTDOWN_TIMEOUT)
        self.assertTrue(transport.disconnected)
        client.connectionLost(None)  # type: ignore[arg-type]
        self.successResultOf(stopped)

    def test_port_in_use(self) -> None:
        """
        A port already in use ends startup with exit status 1 and one line on stderr that
        names the address.
        """
        stderr = io.StringIO()
        self.patch(sys, "__stderr__", stderr)
        in_use = OSError(errno.EADDRINUSE, "Address already in use")
        endpoint = FakeEndpoint(CannotListenError("", 8888, in_use))
        service = tap.EchoServerService([("tcp:8888", endpoint)], self.factory, self.reactor)
        error = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertEqual(error.code, 1)
        self.assertEqual(
            stderr.getvalue(),
            "twistd twistsock: cannot listen (address already in use) on tcp:8888\n",
        )


class PidfileTests(SynchronousTestCase):
    """
    A failure to listen removes twistd's pid file before it ends startup: twistd leaves
    it behind after a C{SystemExit} (C{-n}), and a daemonizing twistd removes it only after
    its parent has been told, and may have exited.
    """

    def setUp(self) -> None:
        self.patch(sys, "__stderr__", io.StringIO())
        self.factory = OKEchoFactory(reactor=MemoryReactorClock())
        directory = Path(self.mktemp())
        directory.mkdir()
        self.pidfile = directory / "twistd.pid"

    def service(
        self, twistd_options: dict[str, object], foreground: bool
    ) -> tap.EchoServerService:
        in_use = OSError(errno.EADDRINUSE, "Address already in use")
        endpoint = FakeEndpoint(CannotListenError("", 8888, in_use))
        return tap.EchoServerService(
            [("tcp:8888", endpoint)],
            self.factory,
            MemoryReactorClock(),
            foreground=foreground,
            twistd_options=twistd_options,
        )

    def test_foreground(self) -> None:
        """
        In the foreground the pid file is gone by the time C{SystemExit} is raised, and
        twistd is told it has none left to remove.
        """
        self.pidfile.write_bytes(b"%d" % (os.getpid(),))
        options: dict[str, object] = {"nodaemon": True, "pidfile": str(self.pidfile)}
        service = self.service(options, foreground=True)
        error = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertEqual(error.code, 1)
        self.assertFalse(self.pidfile.exists())
        self.assertEqual(options["pidfile"], "")

    def test_daemon(self) -> None:
        """
        Daemonizing, the pid file is gone by the time the exception twistd reports through
        its status pipe is raised, and twistd is told it has none left to remove.
        """
        self.pidfile.write_bytes(b"%d" % (os.getpid(),))
        options: dict[str, object] = {"nodaemon": False, "pidfile": str(self.pidfile)}
        service = self.service(options, foreground=False)
        self.assertRaises(tap.ListenFailed, service.privilegedStartService)
        self.assertFalse(self.pidfile.exists())
        self.assertEqual(options["pidfile"], "")

    def test_not_ours(self) -> None:
        """
        A pid file that names another process is left alone, to twistd.
        """
        self.pidfile.write_bytes(b"%d" % (os.getpid() + 1,))
        options: dict[str, object] = {"nodaemon": True, "pidfile": str(self.pidfile)}
        service = self.service(options, foreground=True)
        self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertTrue(self.pidfile.exists())
        self.assertEqual(options["pidfile"], str(self.pidfile))

    def test_no_pidfile(self) -> None:
        """
        With C{--pidfile=} (or under C{twist}, which has none) nothing is removed.
        """
        for options in [{"nodaemon": True, "pidfile": ""}, {}]:
            service = self.service(dict(options), foreground=True)
            self.assertRaises(SystemExit, service.privilegedStartService)


class ChooseReactorTests(SynchronousTestCase):
    """
    Under twistd, the lean epoll reactor is used unless the user chose a reactor.
    """

    def setUp(self) -> None:
        self.installed: list[bool] = []

    def choose(self, parent: object, modules: dict[str, object]) -> bool:
        options = parse()
        options.parent = parent  # type: ignore[assignment]
        return tap.choose_reactor(options, modules, lambda: self.installed.append(True))

    def test_installed_under_twistd(self) -> None:
        """
        Under twistd with no reactor installed yet, the lean reactor is installed.
        """
        self.assertTrue(self.choose({"nodaemon": True}, {}))
        self.assertEqual(self.installed, [True])

    def test_user_choice_wins(self) -> None:
        """
        A reactor installed already (twistd --reactor does it while parsing) is kept.
        """
        self.assertFalse(self.choose({"nodaemon": True}, {"twisted.internet.reactor": object()}))
        self.assertEqual(self.installed, [])

    def test_not_outside_twistd(self) -> None:
        """
        Options parsed outside twistd (tests, embedding) never install a reactor.
        """
        self.assertFalse(self.choose(None, {}))
        self.assertEqual(self.installed, [])


class LateListenFailureTests(SynchronousTestCase):
    """
    An endpoint that fails to listen after startup stops the server, with one log line.
    """

    def test_late_failure_stops_the_reactor(self) -> None:
        """
        A listen that fails asynchronously is logged as critical and stops the reactor.
        """
        from twisted.internet.defer import Deferred
        from twisted.logger import capturedLogs, formatEvent

        reactor = MemoryReactorClock()
        reactor.running = True
        pending: Deferred[object] = Deferred()

        @implementer(IStreamServerEndpoint)
        class Slow:
            def listen(self, factory: Factory) -> Deferred[object]:
                return pending

        factory = OKEchoFactory(reactor=reactor)
        service = tap.EchoServerService([("systemd:0", Slow())], factory, reactor)
        service.startService()
        with capturedLogs() as events:
            in_use = OSError(errno.EADDRINUSE, "Address already in use")
            pending.errback(CannotListenError("", 8888, in_use))
        self.assertTrue(reactor.hasStopped)
        self.assertEqual(
            [formatEvent(e) for e in events if e["log_level"].name == "critical"],
            ["cannot listen (address already in use) on systemd:0"],
        )

    def test_stop_while_listening(self) -> None:
        """
        Stopping the service while a listen is pending cancels it quietly.
        """
        from twisted.internet.defer import Deferred
        from twisted.logger import capturedLogs

        reactor = MemoryReactorClock()
        reactor.running = True

        @implementer(IStreamServerEndpoint)
        class Never:
            def listen(self, factory: Factory) -> Deferred[object]:
                return Deferred()

        factory = OKEchoFactory(reactor=reactor)
        service = tap.EchoServerService([("systemd:0", Never())], factory, reactor)
        service.startService()
        with capturedLogs() as events:
            service.stopService()
        self.assertFalse(reactor.hasStopped)
        self.assertEqual([e for e in events if e["log_level"].name == "critical"], [])


class MakeServiceUnderRunnersTests(SynchronousTestCase):
    """
    The plugin works under both of Twisted's runners, twistd and twist.
    """

    def test_twist_options(self) -> None:
        """
        Under C{twist}, whose options have no C{nodaemon}, the service runs in the
        foreground.
        """
        from twisted.application.twist._options import TwistOptions

        self.patch(tap, "choose_reactor", lambda config: False)
        options = parse("--port", "tcp:0:interface=127.0.0.1")
        options.parent = TwistOptions()
        (service,) = list(tap.makeService(options))
        assert isinstance(service, tap.EchoServerService)
        self.assertTrue(service.foreground)


class FileLimitTests(SynchronousTestCase):
    """
    The plugin raises the open-files limit so that C{--max-connections} is reachable.
    """

    def test_raises_toward_hard_limit(self) -> None:
        """
        A soft limit below what is needed is raised, but never above the hard limit.
        """
        calls: list[tuple[int, int]] = []
        limits = [(1024, 4096)]

        def getrlimit(which: int) -> tuple[int, int]:
            return limits[-1]

        def setrlimit(which: int, value: tuple[int, int]) -> None:
            calls.append(value)
            limits.append(value)

        self.patch(resource, "getrlimit", getrlimit)
        self.patch(resource, "setrlimit", setrlimit)
        self.assertEqual(tap.raise_file_limit(2000), (1024, 2000))
        self.assertEqual(tap.raise_file_limit(100000), (2000, 4096))
        self.assertEqual(calls, [(2000, 4096), (4096, 4096)])
        self.assertEqual(tap.raise_file_limit(10), (4096, 4096))
        self.assertEqual(len(calls), 2)
