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

from twisted.internet.defer import CancelledError

from twistsock._cli._command import EXIT_INTERRUPTED, on_shutdown, run
from twistsock.http._errors import FetchError, HTTPStatusError
from twistsock.http._fetch import fetch_with_observer
from twistsock.http._protocol import TransferObserver
from twistsock.http._request import GetRequest, parse_header_line, parse_url
from twistsock.http._response import Response

__all__ = ["EXIT_WRITE_ERROR", "get_command", "write_atomically"]

EXIT_WRITE_ERROR = 23
"""Exit status when the output cannot be written (curl's "write error")."""


def get_command(options: argparse.Namespace) -> int:
    """Check the arguments (no reactor needed for that), then fetch."""
    try:
        parse_url(options.url)
        headers = [parse_header_line(line) for line in options.header]
    except FetchError as e:
        return _report(options, e)
    return run(_get, options, headers)


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
    interrupted = on_shutdown(reactor, fetching.cancel)
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
            # The file asked for, and why, not the temporary file's name that OSError holds.
            where = options.output if to_file else "stdout"
            why = e.strerror or str(e)
            sys.stderr.write(f"twistsock: ({EXIT_WRITE_ERROR}) Failed writing {where}: {why}\n")
        return EXIT_WRITE_ERROR
    return 0
