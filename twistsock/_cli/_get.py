"""
C{twistsock get URL}: fetch a URL and write the body (or the response, with C{-i} or
C{--raw}) to stdout or a file, the way curl does.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import suppress
from typing import IO, Any

from twisted.internet.defer import CancelledError, Deferred, gatherResults

from twistsock._cli._command import EXIT_INTERRUPTED, on_shutdown, run
from twistsock.http._errors import BodyTooLarge, BodyWriteError, FetchError, HTTPStatusError
from twistsock.http._fetch import fetch_with_observer
from twistsock.http._pool import Client
from twistsock.http._protocol import TransferObserver
from twistsock.http._proxy import Proxies
from twistsock.http._reader import ResponseHead
from twistsock.http._request import GetRequest, parse_header_line, parse_url
from twistsock.http._response import Response
from twistsock.http._retry import Retry, RetryPolicy

__all__ = ["EXIT_WRITE_ERROR", "AtomicFile", "get_command", "write_atomically"]

EXIT_WRITE_ERROR = 23
"""Exit status when the output cannot be written (curl's "write error")."""


def get_command(options: argparse.Namespace) -> int:
    """Check the arguments (no reactor needed for that), then fetch."""
    try:
        for url in options.urls:
            parse_url(url)
        headers = [parse_header_line(line) for line in options.header]
        _proxies(options)  # a bad proxy URL is reported before anything starts
    except FetchError as e:
        return _report(options, e)
    return run(_get, options, headers)


def _proxies(options: argparse.Namespace) -> Proxies:
    """The proxies, as curl takes them: C{-x} and C{--noproxy} win over the environment."""
    return Proxies.from_environment(os.environ, proxy=options.proxy, no_proxy=options.noproxy)


def _report(options: argparse.Namespace, e: FetchError) -> int:
    """Print the one error line (unless silenced) and return curl's exit code."""
    if not options.silent or options.show_error:
        sys.stderr.write(f"twistsock: ({e.curl_exit_code}) {e}\n")
    return e.curl_exit_code


class _Terminal(TransferObserver):
    """
    Shows a transfer on stderr: C{-v} request and response headers prefixed C{>} and C{<}
    as curl does, and a progress bar (tqdm) while C{-o} downloads to a terminal.

    @ivar heads: the heads of the responses received so far, as received (C{-i} writes
        those of the redirects before the final one).
    """

    def __init__(self, stream: IO[str], verbose: bool, progress: bool) -> None:
        self.heads: list[bytes] = []
        self._stream = stream
        self._verbose = verbose
        self._progress = progress
        self._bar: Any = None

    def request_sent(self, request: GetRequest, data: bytes) -> None:
        if self._verbose:
            self._stream.write(f"* GET {request.url.url}\n")
            self._lines(">", data)

    def response_head(self, head: bytes, content_length: int | None) -> None:
        self.heads.append(head)
        if self._verbose:
            self._lines("<", head)
        if self._progress:
            from tqdm import tqdm

            self.close()
            self._bar = tqdm(
                total=content_length, unit="B", unit_scale=True, file=self._stream, leave=False
            )

    def proxy_connect(self, request: bytes, head: bytes) -> None:
        # As curl: -v shows the CONNECT exchange, and -i writes the proxy's answer first.
        self.heads.append(head)
        if self._verbose:
            self._lines(">", request)
            self._lines("<", head)

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


class AtomicFile:
    """
    A file written through a temporary file in the same directory, flushed to disk
    (C{fsync}) and only then renamed over C{path} by L{commit}, so that C{path} is never a
    partial file, not even after a crash; the directory is then synced too (best effort),
    so that the rename itself is on disk.  L{discard} removes the temporary file instead.

    The file keeps the permission bits of the file it replaces (not set-user-ID,
    set-group-ID or sticky: downloaded bytes should not inherit those); a new file gets
    0666 less the umask, as curl's C{open()} would give it.
    """

    def __init__(self, path: str) -> None:
        """Create the temporary file (C{OSError} if the directory does not allow it)."""
        self.path = path
        self._directory = os.path.dirname(os.path.abspath(path))
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:  # no such file (or not ours to look at): a new file
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        fd, self._temporary = tempfile.mkstemp(
            dir=self._directory, prefix=f".{os.path.basename(path)}.", suffix=".part"
        )
        try:
            os.fchmod(fd, mode)
            self._file = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            os.unlink(self._temporary)
            raise

    def write(self, data: bytes) -> None:
        """Append C{data}."""
        self._file.write(data)

    def commit(self) -> None:
        """Flush to disk and rename over C{path}; on failure, L{discard}."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._temporary, self.path)
        except BaseException:
            self.discard()
            raise
        _sync_directory(self._directory)

    def discard(self) -> None:
        """Close and remove the temporary file: C{path} is left as it was."""
        self._file.close()
        with suppress(FileNotFoundError):
            os.unlink(self._temporary)


def write_atomically(path: str, data: bytes) -> None:
    """Write C{data} to C{path} through an L{AtomicFile}."""
    output = AtomicFile(path)
    try:
        output.write(data)
    except BaseException:
        output.discard()
        raise
    output.commit()


def _sync_directory(directory: str) -> None:
    """C{fsync} C{directory}, where the system allows it (not every one does)."""
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _Output:
    """
    Where C{get} writes as the final response arrives: its head (with C{-i}, after those of
    the redirects followed) and its body, piece by piece, to stdout or to an
    L{AtomicFile}; the body's size is bounded by C{--max-filesize}, not held in memory.
    """

    def __init__(
        self,
        options: argparse.Namespace,
        terminal: _Terminal,
        url: str,
        output: str | None,
        hold_stdout: bool = False,
    ) -> None:
        """
        @param output: the C{-o} name for this URL, if any (C{-} is stdout).
        @param hold_stdout: keep what goes to stdout until L{flush} (transfers in
            parallel must not interleave their bytes).
        """
        self._options = options
        self._terminal = terminal
        self._url = url
        self._output = output
        self.to_file = output is not None and output != "-"  # -o -: stdout, as curl
        self.file: AtomicFile | None = None
        self._written = 0
        self._held: list[bytes] | None = [] if hold_stdout else None

    @property
    def where(self) -> str:
        """The output's name in messages."""
        return self._output if self._output is not None and self.to_file else "stdout"

    def start(self, head: ResponseHead) -> _Output | None:
        """
        The final head arrived: write the heads asked for, and take the body, unless it
        is to be held (C{--fail} and an error status: nothing is written).
        """
        options = self._options
        if options.fail and head.code >= 400:
            return None
        if head.content_length is not None and head.content_length > options.max_filesize:
            raise BodyTooLarge(self._url, options.max_filesize)
        if self.to_file:
            assert self._output is not None
            try:
                self.file = AtomicFile(self._output)
            except OSError as e:
                # The file asked for, and why, not the temporary file's name OSError holds.
                raise BodyWriteError(self.where, e.strerror or str(e)) from None
        if options.include:
            self._write(b"".join(self._terminal.heads) + head.raw)
        return self

    def write(self, data: bytes) -> None:
        """A piece of the body arrived."""
        self._written += len(data)
        if self._written > self._options.max_filesize:
            raise BodyTooLarge(self._url, self._options.max_filesize)
        self._write(data)

    def restart(self) -> None:
        """
        The attempt is retried: drop its file, if any, and what was held for stdout, so
        that the next attempt starts afresh (what went to stdout already stays, as curl).
        """
        if self.file is not None:
            self.file.discard()
            self.file = None
        self._written = 0
        if self._held is not None:
            self._held = []

    def flush(self) -> None:
        """Write what was held for stdout."""
        held, self._held = self._held, None
        if held:
            sys.stdout.buffer.write(b"".join(held))
            sys.stdout.buffer.flush()

    def _write(self, data: bytes) -> None:
        try:
            if self.file is not None:
                self.file.write(data)
            elif self._held is not None:
                self._held.append(data)
            else:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
        except OSError as e:
            raise BodyWriteError(self.where, e.strerror or str(e)) from None


async def _get(reactor: Any, options: argparse.Namespace, headers: list[tuple[str, str]]) -> int:
    """
    Fetch every URL and write the results; return the exit status: 0, or that of the last
    transfer that failed.  One URL gets a connection of its own; several share a
    L{twistsock.http.Client}'s connections, one transfer at a time, or up to
    C{--parallel-max} at once with C{-Z}.
    """
    urls: list[str] = options.urls
    options.proxies = _proxies(options)
    outputs: list[str | None] = [*options.output, *[None] * len(urls)][: len(urls)]
    if len(urls) == 1:
        return await _transfer(reactor, options, headers, urls[0], outputs[0], None)
    width = options.parallel_max if options.parallel else 1
    client = Client(
        reactor=reactor,
        max_connections=width,
        max_connections_per_origin=width,
        max_idle=width,
        max_idle_per_origin=width,
        connect_timeout=options.connect_timeout,
        tls_verify=not options.insecure,
        proxy=options.proxies,
    )
    status = 0
    pending = iter(zip(urls, outputs, strict=True))
    stopped = False

    async def worker() -> None:
        nonlocal status, stopped
        for url, output in pending:
            if stopped:
                return
            code = await _transfer(reactor, options, headers, url, output, client)
            if code == EXIT_INTERRUPTED:
                stopped = True
            if code:
                status = code

    try:
        await gatherResults(
            [Deferred.fromCoroutine(worker()) for _ in range(min(width, len(urls)))]
        )
    finally:
        await client.close()
    return status


async def _transfer(
    reactor: Any,
    options: argparse.Namespace,
    headers: list[tuple[str, str]],
    url: str,
    output_name: str | None,
    client: Client | None,
) -> int:
    """Fetch C{url} and write its result; return the exit status."""
    to_file = output_name is not None and output_name != "-"  # -o -: stdout, as curl
    progress = to_file and client is None and not options.silent and sys.stderr.isatty()
    terminal = _Terminal(sys.stderr, options.verbose, progress)
    # The body is written as it arrives, except with --raw (the bytes as received, chunk
    # framing included, are written at the end), and to stdout in parallel transfers
    # (written whole, so that transfers do not interleave).
    parallel = client is not None and options.parallel
    output = _Output(options, terminal, url, output_name, hold_stdout=parallel)

    def on_retry(retry: Retry) -> None:
        # As curl: the failure's own line, then a warning, before each wait.
        if retry.error is not None:
            _report(options, retry.error)
        if not options.silent:
            sys.stderr.write(f"Warning: {retry.warning()}\n")
            sys.stderr.flush()
        if retry.wait is not None:
            terminal.close()
            terminal.heads.clear()
            output.restart()

    def check(response: Response) -> None:
        if options.fail and response.code >= 400:
            raise HTTPStatusError(response.url, response.code)

    fetching = fetch_with_observer(
        url,
        reactor=reactor,
        timeout=options.max_time,
        connect_timeout=options.connect_timeout,
        headers=headers,
        max_body_size=options.max_filesize,
        follow_redirects=options.location,
        max_redirects=options.max_redirs,
        tls_verify=not options.insecure,
        observer=terminal,
        stream=None if options.raw else output.start,
        client=client,
        retries=RetryPolicy(
            retries=options.retry,
            delay=options.retry_delay,
            max_time=options.retry_max_time,
            connection_refused=options.retry_connrefused,
            all_errors=options.retry_all_errors,
        ),
        auth=options.user,
        proxy=None if client is not None else options.proxies,
        on_retry=on_retry,
        check=check,
    )
    interrupted = on_shutdown(reactor, fetching.cancel)
    try:
        response = await fetching
        check(response)
    except CancelledError:
        if output.file is not None:
            output.file.discard()
        return EXIT_INTERRUPTED
    except FetchError as e:
        if output.file is not None:
            output.file.discard()
        output.flush()
        return _report(options, e)
    finally:
        terminal.close()
        interrupted(done=True)
    try:
        output.flush()
        if output.file is not None:
            output.file.commit()
        elif options.raw:
            data = b"".join(hop.raw for hop in (*response.history, response))
            if to_file:
                assert output_name is not None
                write_atomically(output_name, data)
            else:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
    except OSError as e:
        return _report(options, BodyWriteError(output.where, e.strerror or str(e)))
    return 0
