"""
The C{twistsock} command: C{twistsock get URL} and C{twistsock probe HOST:PORT ...}.

C{get} follows curl's conventions: the body goes to stdout (binary-safe), failures print one
line, C{twistsock: (CODE) MESSAGE}, on stderr and exit with curl's code for them.  Neither a
network failure nor a bad argument ever prints a traceback.

The reactor is run by L{twisted.internet.task.react}; L{main} catches the C{SystemExit} it
raises and returns the exit status, so that it can be called (and tested) as a function.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import IO, Any, NoReturn

from twisted.internet import error
from twisted.internet.defer import CancelledError, Deferred, DeferredSemaphore
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import react

from twistsock._client import DEFAULT_MAX_BODY_SIZE, TransferObserver
from twistsock._errors import FetchError, HTTPStatusError
from twistsock._fetch import fetch_with_observer, tcp_endpoint
from twistsock._request import GetRequest, parse_header_line, parse_url
from twistsock._response import Response
from twistsock._version import __version__

__all__ = ["main"]

EXIT_USAGE = 2
"""Exit status for bad arguments (curl's "failed to initialize")."""

EXIT_WRITE_ERROR = 23
"""Exit status when the output cannot be written (curl's "write error")."""

EXIT_INTERRUPTED = 130
"""Exit status when the reactor is stopped (Ctrl-C, SIGTERM) before the work is done."""


def _on_shutdown(reactor: Any, interrupt: Any) -> Any:
    """
    Call C{interrupt()} if the reactor starts shutting down (Ctrl-C, SIGTERM) while the
    work runs.  Returns C{check()}: whether C{interrupt} was called; C{check(done=True)}
    also stops watching (the trigger stays registered, but does nothing any more).
    """
    state = {"interrupted": False, "watching": True}

    def fire() -> None:
        if state["watching"]:
            state["interrupted"] = True
            interrupt()

    reactor.addSystemEventTrigger("before", "shutdown", fire)

    def check(done: bool = False) -> bool:
        if done:
            state["watching"] = False
        return state["interrupted"]

    return check


class _UsageError(Exception):
    """A bad command line; reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An C{ArgumentParser} whose errors are one line and exit status 2, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (try '{self.prog} --help')")


def _shown(text: str) -> str:
    """C{text} quoted for an error line, cut short if long (the line stays one line)."""
    return repr(text if len(text) <= 20 else text[:20] + "...")


def _seconds(text: str) -> float:
    """A finite, strictly positive number of seconds (not 0, negative, NaN or infinite)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected seconds > 0, not {_shown(text)}")
    return value


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """The argument type of an integer from C{low} to C{high} (no upper bound if C{None})."""
    wanted = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {wanted}, not {_shown(text)}")
        return value

    return parse


def _parser() -> _Parser:
    """The command line of C{twistsock get} and C{twistsock probe}."""
    parser = _Parser(prog="twistsock", description="Fetch URLs and probe ports, curl-style.")
    parser.add_argument("--version", action="version", version=f"twistsock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    get = commands.add_parser("get", help="GET a URL and write the body to stdout")
    get.add_argument("url", help="an http:// or https:// URL")
    get.add_argument("-i", "--include", action="store_true", help="write status and headers")
    get.add_argument("--raw", action="store_true", help="write the exact bytes received")
    get.add_argument("-L", "--location", action="store_true", help="follow redirects")
    get.add_argument(
        "--max-redirs", type=_integer(0), default=10, metavar="N", help="(default 10)"
    )
    get.add_argument(
        "-m", "--max-time", type=_seconds, default=30.0, metavar="S",
        help="seconds for the whole transfer (default 30)",
    )  # fmt: skip
    get.add_argument(
        "--connect-timeout", type=_seconds, default=10.0, metavar="S",
        help="seconds to connect (default 10)",
    )  # fmt: skip
    get.add_argument(
        "--max-filesize", type=_integer(0), default=DEFAULT_MAX_BODY_SIZE, metavar="BYTES",
        help=f"largest body accepted (default {DEFAULT_MAX_BODY_SIZE})",
    )  # fmt: skip
    get.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
        help="extra request header (repeatable)",
    )  # fmt: skip
    get.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE (atomically); - is stdout"
    )
    get.add_argument("-f", "--fail", action="store_true", help="exit 22 on status >= 400")
    get.add_argument("-s", "--silent", action="store_true", help="no progress, no errors")
    get.add_argument("-S", "--show-error", action="store_true", help="errors even with -s")
    get.add_argument("-v", "--verbose", action="store_true", help="headers on stderr")
    get.add_argument("-k", "--insecure", action="store_true", help="skip TLS verification")

    probe = commands.add_parser("probe", help="check whether TCP ports accept connections")
    probe.add_argument("targets", nargs="+", metavar="HOST:PORT", help="e.g. [::1]:80")
    probe.add_argument(
        "-t", "--timeout", type=_seconds, default=3.0, metavar="S",
        help="seconds per target (default 3)",
    )  # fmt: skip
    probe.add_argument(
        "-c", "--concurrency", type=_integer(1, 1000), default=50, metavar="N",
        help="targets probed at once, 1 to 1000 (default 50)",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the command line C{argv} (C{sys.argv[1:]} by default) and return the exit status.
    """
    try:
        options = _parser().parse_args(argv)
    except _UsageError as e:
        sys.stderr.write(f"twistsock: {e}\n")
        return EXIT_USAGE
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0
    if options.command == "get":
        return _get_command(options)
    return _probe_command(options)


def _run(function: Any, *args: Any) -> int:
    """Run C{function(reactor, *args)} (a coroutine returning an int) in the reactor."""

    async def body(reactor: Any) -> None:
        raise SystemExit(await function(reactor, *args))

    try:
        react(lambda reactor: Deferred.fromCoroutine(body(reactor)))
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    raise AssertionError("react() always exits")  # pragma: no cover


# --- twistsock get ----------------------------------------------------------------------


def _get_command(options: argparse.Namespace) -> int:
    """Check the arguments (no reactor needed for that), then fetch."""
    try:
        parse_url(options.url)
        headers = [parse_header_line(line) for line in options.header]
    except FetchError as e:
        return _report(options, e)
    return _run(_get, options, headers)


def _report(options: argparse.Namespace, e: FetchError) -> int:
    """Print the one error line (unless silenced) and return curl's exit code."""
    if not options.silent or options.show_error:
        sys.stderr.write(f"twistsock: ({e.curl_exit_code}) {e}\n")
    return e.curl_exit_code


class _Terminal(TransferObserver):
    """
    Shows a transfer on stderr: C{-v} request and response headers prefixed C{>} and C{<}
    as curl does, and a progress bar (tqdm) while C{-o} downloads to a terminal.
    """

    def __init__(self, stream: IO[str], verbose: bool, progress: bool) -> None:
        self._stream = stream
        self._verbose = verbose
        self._progress = progress
        self._bar: Any = None

    def request_sent(self, request: GetRequest, data: bytes) -> None:
        if self._verbose:
            self._stream.write(f"* GET {request.url.url}\n")
            self._lines(">", data)

    def response_head(self, head: bytes, content_length: int | None) -> None:
        if self._verbose:
            self._lines("<", head)
        if self._progress:
            from tqdm import tqdm

            self.close()
            self._bar = tqdm(
                total=content_length, unit="B", unit_scale=True, file=self._stream, leave=False
            )

    def body_received(self, received: int) -> None:
        if self._bar is not None:
            self._bar.update(received - self._bar.n)

    def close(self) -> None:
        """Remove the progress bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _lines(self, prefix: str, data: bytes) -> None:
        for line in data.decode("latin-1").splitlines():
            self._stream.write(f"{prefix} {line}".rstrip() + "\n")
        self._stream.flush()


def _output(options: argparse.Namespace, response: Response) -> bytes:
    """What C{get} writes: the body, after the headers with C{-i}, or all bytes (C{--raw})."""
    hops = (*response.history, response)
    if options.raw:
        return b"".join(hop.raw for hop in hops)
    if options.include:
        return b"".join(hop.head for hop in hops) + response.body
    return response.body


def write_atomically(path: str, data: bytes) -> None:
    """
    Write C{data} to C{path} through a temporary file in the same directory, flushed to
    disk (C{fsync}) and only then renamed over C{path}, so that C{path} is never a partial
    file, not even after a crash; the directory is then synced too (best effort), so that
    the rename itself is on disk.

    The file keeps the permission bits of the file it replaces (not set-user-ID,
    set-group-ID or sticky: downloaded bytes should not inherit those); a new file gets
    0666 less the umask, as curl's C{open()} would give it.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:  # no such file (or not ours to look at): a new file
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".part"
    )
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    _sync_directory(directory)


def _sync_directory(directory: str) -> None:
    """C{fsync} C{directory}, where the system allows it (not every one does)."""
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


async def _get(reactor: Any, options: argparse.Namespace, headers: list[tuple[str, str]]) -> int:
    """Fetch C{options.url} and write the result; return the exit status."""
    to_file = options.output is not None and options.output != "-"  # -o -: stdout, as curl
    progress = to_file and not options.silent and sys.stderr.isatty()
    terminal = _Terminal(sys.stderr, options.verbose, progress)
    fetching = fetch_with_observer(
        options.url,
        reactor=reactor,
        timeout=options.max_time,
        connect_timeout=options.connect_timeout,
        headers=headers,
        max_body_size=options.max_filesize,
        follow_redirects=options.location,
        max_redirects=options.max_redirs,
        tls_verify=not options.insecure,
        observer=terminal,
    )
    interrupted = _on_shutdown(reactor, fetching.cancel)
    try:
        response = await fetching
        if options.fail and response.code >= 400:
            raise HTTPStatusError(response.url, response.code)
    except CancelledError:
        return EXIT_INTERRUPTED
    except FetchError as e:
        return _report(options, e)
    finally:
        terminal.close()
        interrupted(done=True)
    data = _output(options, response)
    try:
        if to_file:
            write_atomically(options.output, data)
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
    except OSError as e:
        if not options.silent or options.show_error:
            where = options.output if to_file else "stdout"
            sys.stderr.write(f"twistsock: ({EXIT_WRITE_ERROR}) Failed writing {where}: {e}\n")
        return EXIT_WRITE_ERROR
    return 0


# --- twistsock probe --------------------------------------------------------------------


def parse_target(target: str) -> tuple[str, int]:
    """
    Split C{HOST:PORT} (C{[v6]:PORT} for IPv6 literals) into host and port.

    @raise ValueError: when it is not of that form or the port is not 1-65535.
    """
    host, colon, port = target.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("write IPv6 addresses in brackets, e.g. [::1]:80")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected HOST:PORT")
    return host, int(port)


def _probe_command(options: argparse.Namespace) -> int:
    """Check every target's syntax, then probe them all."""
    targets = []
    for target in options.targets:
        try:
            targets.append((target, *parse_target(target)))
        except ValueError as e:
            sys.stderr.write(f"twistsock: bad target {target!r}: {e}\n")
            return EXIT_USAGE
    return _run(_probe_all, targets, options.timeout, options.concurrency)


def _outcome(reason: Exception | None) -> str:
    """The word for a connection attempt's outcome."""
    if reason is None:
        return "open"
    if isinstance(reason, error.DNSLookupError):
        return "unresolvable"
    if isinstance(reason, error.ConnectionRefusedError):
        return "refused"
    if isinstance(reason, error.TimeoutError):
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
    expired = []

    def expire() -> None:
        expired.append(True)
        attempt.cancel()

    deadline = reactor.callLater(timeout, expire)
    reason = None
    try:
        protocol = await attempt
        protocol.transport.abortConnection()
    except Exception as e:
        reason = e
    if deadline.active():
        deadline.cancel()
    word = "timeout" if expired else _outcome(reason)
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

    interrupted = _on_shutdown(reactor, cancel_all)
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
