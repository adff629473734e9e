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
from urllib.parse import urljoin

from twisted.internet.defer import CancelledError, Deferred, gatherResults

from twistsock._cli._command import EXIT_INTERRUPTED, on_shutdown, run
from twistsock._cli._write_out import STDOUT, TransferInfo, parse_head, read_format, write_out
from twistsock.http._decoding import accept_encoding
from twistsock.http._errors import (
    BodyTooLarge,
    BodyWriteError,
    FetchError,
    HTTPStatusError,
    RangeNotSupported,
    TooManyRedirects,
    UnsupportedScheme,
)
from twistsock.http._fetch import REDIRECT_CODES, fetch_with_observer
from twistsock.http._pool import Client
from twistsock.http._protocol import TransferObserver
from twistsock.http._proxy import Proxies
from twistsock.http._reader import ResponseHead
from twistsock.http._request import GetRequest, parse_header_line, parse_url, without_userinfo
from twistsock.http._response import Response, Timings
from twistsock.http._retry import Retry, RetryPolicy

__all__ = [
    "EXIT_WRITE_ERROR",
    "AppendFile",
    "AtomicFile",
    "get_command",
    "resume_offset",
    "write_atomically",
]

EXIT_WRITE_ERROR = 23
"""Exit status when the output cannot be written (curl's "write error")."""


def get_command(options: argparse.Namespace) -> int:
    """Check the arguments (no reactor needed for that), then fetch."""
    if options.write_out is not None and options.write_out.startswith("@"):
        options.write_out = _read_write_out(options, options.write_out[1:])
    try:
        if len(options.urls) == 1:  # of several, a bad URL fails its own transfer (curl's)
            parse_url(options.urls[0])
        headers = [parse_header_line(line) for line in options.header]
        _proxies(options)  # a bad proxy URL is reported before anything starts
    except FetchError as e:
        status = _report(options, e)
        if isinstance(e, UnsupportedScheme) and options.write_out is not None:
            # curl gets as far as a transfer with such a URL, and writes its -w.
            urlnum = options.urls.index(e.url) if e.url in options.urls else 0
            info = TransferInfo(
                url=e.url, urlnum=urlnum, url_effective=e.url, exitcode=status, errormsg=str(e)
            )
            _write_pieces(write_out(options.write_out, info))
        return status
    return run(_get, options, headers)


def _read_write_out(options: argparse.Namespace, name: str) -> str:
    """
    The C{-w} format in the file C{name} (C{-}: stdin), read as curl reads it; a file
    that cannot be read gives a warning (unless C{-s}) and an empty format, as curl.
    """
    try:
        if name == "-":
            data = sys.stdin.read()
        else:
            with open(name, encoding="utf-8", errors="surrogateescape") as f:
                data = f.read()
    except (OSError, UnicodeError) as e:
        if not options.silent:
            sys.stderr.write(f"twistsock: Warning: Failed to read {name}: {e}\n")
        return ""
    return read_format(data)


def _proxies(options: argparse.Namespace) -> Proxies:
    """The proxies, as curl takes them: C{-x} and C{--noproxy} win over the environment."""
    return Proxies.from_environment(os.environ, proxy=options.proxy, no_proxy=options.noproxy)


def _status_first(options: argparse.Namespace, e: FetchError) -> FetchError:
    """
    C{e}, or with C{--fail} the status error of a resumed request refused with an error
    status: curl checks the status before the range.
    """
    if options.fail and isinstance(e, RangeNotSupported) and e.code >= 400:
        status_error = HTTPStatusError(e.url, e.code)
        status_error.timings = e.timings
        return status_error
    return e


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
    @ivar urls: the URLs requested so far (the redirects followed, after the first).
    @ivar connects: the new connections made.
    @ivar request_bytes: the bytes of the requests sent.
    @ivar received: the body bytes of the last response received so far.
    @ivar remote: the IP address and port of the last connection's peer (C{("", 0)}
        before any).
    @ivar local: the IP address and port of the last connection's own end.
    """

    def __init__(self, stream: IO[str], verbose: bool, progress: bool) -> None:
        self.heads: list[bytes] = []
        self.urls: list[str] = []
        self.connects = 0
        self.request_bytes = 0
        self.received = 0
        self.remote: tuple[str, int] = ("", 0)
        self.local: tuple[str, int] = ("", 0)
        self._stream = stream
        self._verbose = verbose
        self._progress = progress
        self._bar: Any = None

    def forget(self) -> None:
        """The transfer starts over (a retry): what was seen of it so far is forgotten."""
        self.heads.clear()
        self.urls.clear()
        self.connects = self.request_bytes = self.received = 0
        self.remote = self.local = ("", 0)

    def request_started(self, url: str) -> None:
        self.urls.append(url)

    def connected(self, transport: Any, reused: bool) -> None:
        if not reused:
            self.connects += 1
        self.remote = _address(transport.getPeer())
        self.local = _address(transport.getHost())

    def request_sent(self, request: GetRequest, data: bytes) -> None:
        self.request_bytes += len(data)
        if self._verbose:
            self._stream.write(f"* GET {request.url.url}\n")
            self._lines(">", data)

    def response_head(self, head: bytes, content_length: int | None) -> None:
        self.heads.append(head)
        self.received = 0
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
        self.received = received
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


def _address(address: object) -> tuple[str, int]:
    """The IP address and port of C{address} (an C{IPv4Address} or C{IPv6Address})."""
    return str(getattr(address, "host", "")), int(getattr(address, "port", 0))


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

    def drop(self) -> None:
        """The attempt is retried: what it wrote goes, as with L{discard}."""
        self.discard()


class AppendFile:
    """
    A file appended to in place, for a resumed download (C{-C}): L{commit} flushes it to
    disk; L{discard} only closes it, keeping what was appended (as curl does), so that
    another C{-C -} continues from there.
    """

    def __init__(self, path: str) -> None:
        """Open C{path} for appending (C{OSError} if it cannot be)."""
        self.path = path
        self._file = open(path, "ab")  # noqa: SIM115 - closed by commit, discard or drop
        self._start = self._file.tell()

    def write(self, data: bytes) -> None:
        """Append C{data}."""
        self._file.write(data)

    def commit(self) -> None:
        """Flush to disk and close."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def discard(self) -> None:
        """Close, keeping what was appended."""
        with suppress(OSError):
            self._file.close()

    def drop(self) -> None:
        """
        Cut the file back to where this append started, and close it: the attempt is
        retried with the same C{Range}, so what it appended must not stay twice.
        """
        with suppress(OSError):
            self._file.truncate(self._start)
        self.discard()


def resume_offset(continue_at: int | str | None, output: str | None) -> int:
    """
    The offset C{-C} asks for: C{-} is the size of the C{-o} file (0 when it does not
    exist, or when the output is stdout: nothing to continue, as curl).
    """
    if continue_at != "-":
        return int(continue_at or 0)
    if output is None or output == "-":
        return 0
    try:
        return os.stat(output).st_size
    except OSError:
        return 0


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
        append: int = 0,
    ) -> None:
        """
        @param output: the C{-o} name for this URL, if any (C{-} is stdout).
        @param hold_stdout: keep what goes to stdout until L{flush} (transfers in
            parallel must not interleave their bytes).
        @param append: append to the C{-o} file in place (a resumed download) instead of
            replacing it, unless the answer is the whole resource (a 200 whose body is not
            the C{append} bytes the file holds already): then the download starts over.
        """
        self._options = options
        self._terminal = terminal
        self._url = url
        self._output = output
        self.to_file = output is not None and output != "-"  # -o -: stdout, as curl
        self.file: AtomicFile | AppendFile | None = None
        self._append = append
        self._written = 0
        self._held: list[bytes] | None = [] if hold_stdout else None
        self.head: ResponseHead | None = None  # the final head, once it arrived

    @property
    def written(self) -> int:
        """The body bytes written so far (streamed bodies only)."""
        return self._written

    @property
    def where(self) -> str:
        """The output's name in messages."""
        return self._output if self._output is not None and self.to_file else "stdout"

    def start(self, head: ResponseHead) -> _Output | None:
        """
        The final head arrived: write the heads asked for, and take the body, unless it
        is to be held (C{--fail} and an error status: nothing is written).
        """
        self.head = head
        options = self._options
        if options.fail and head.code >= 400:
            return None
        if head.content_length is not None and head.content_length > options.max_filesize:
            raise BodyTooLarge(self._url, options.max_filesize)
        if self.to_file:
            assert self._output is not None
            try:
                # A 200 to a resumed request is the whole resource: the download starts
                # over, through a temporary file as without -C.
                whole = (
                    head.code == 200
                    and "Content-Range" not in head.headers
                    and head.content_length != self._append
                )
                append = bool(self._append) and not whole
                self.file = (AppendFile if append else AtomicFile)(self._output)
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
            self.file.drop()
            self.file = None
        self._written = 0
        self.head = None
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
        return await _transfer(reactor, options, headers, urls[0], outputs[0], None, 0)
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
    pending = iter(enumerate(zip(urls, outputs, strict=True)))
    stopped = False

    async def worker() -> None:
        nonlocal status, stopped
        for number, (url, output) in pending:
            if stopped:
                return
            code = await _transfer(reactor, options, headers, url, output, client, number)
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
    urlnum: int,
) -> int:
    """
    Fetch C{url} (number C{urlnum} of the command's URLs) and write its result, then the
    C{-w} format; return the exit status.
    """
    to_file = output_name is not None and output_name != "-"  # -o -: stdout, as curl
    progress = to_file and client is None and not options.silent and sys.stderr.isatty()
    terminal = _Terminal(sys.stderr, options.verbose, progress)
    # The body is written as it arrives, except with --raw (the bytes as received, chunk
    # framing included, are written at the end), and to stdout in parallel transfers
    # (written whole, so that transfers do not interleave).
    parallel = client is not None and options.parallel
    resume = resume_offset(options.continue_at, output_name)
    append = resume if to_file else 0
    output = _Output(options, terminal, url, output_name, hold_stdout=parallel, append=append)
    # --raw writes the bytes as received: a compressed body is asked for, not decoded.
    compressed = options.compressed and not options.raw
    if options.compressed and options.raw:
        if not any(name.lower() == "accept-encoding" for name, _ in headers):
            headers = [*headers, ("Accept-Encoding", accept_encoding())]

    def on_retry(retry: Retry) -> None:
        # As curl: the failure's own line (with -f, that of the status), then a
        # warning, before each wait.
        if retry.error is not None and retry.wait is not None:
            _report(options, _status_first(options, retry.error))
        elif options.fail and retry.wait is not None and retry.response is not None:
            _report(options, HTTPStatusError(retry.response.url, retry.response.code))
        if not options.silent:
            sys.stderr.write(f"Warning: {retry.warning()}\n")
            sys.stderr.flush()
        if retry.wait is not None:
            terminal.close()
            terminal.forget()
            output.restart()

    def check(response: Response) -> None:
        # A resumed transfer's 416 says the file is complete: success, as curl.
        if options.fail and response.code >= 400 and not (resume and response.code == 416):
            raise HTTPStatusError(response.url, response.code)
        # --raw holds the body: the whole resource cannot start over on stdout, as curl.
        if options.raw and resume and not to_file and _raw_whole(response):
            raise RangeNotSupported(response.url, resume, 200, None)

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
        compressed=compressed,
        resume_from=resume,
        restart_on_whole=to_file,
        status_before_range=options.fail,
    )
    interrupted = on_shutdown(reactor, fetching.cancel)
    response: Response | None = None
    failure: FetchError | None = None
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
        failure = _status_first(options, e)
    finally:
        terminal.close()
        interrupted(done=True)
    if failure is None:
        assert response is not None
        try:
            output.flush()
            if output.file is not None:
                output.file.commit()
            elif options.raw:
                data = b"".join(hop.raw for hop in (*response.history, response))
                if to_file:
                    assert output_name is not None
                    if append and not _raw_whole(response):
                        with open(output_name, "ab") as appended:
                            appended.write(data)
                    else:
                        write_atomically(output_name, data)
                else:
                    sys.stdout.buffer.write(data)
                    sys.stdout.buffer.flush()
        except OSError as e:
            failure = BodyWriteError(output.where, e.strerror or str(e))
    status = 0 if failure is None else _report(options, failure)
    if options.write_out is not None:
        # The body's size: held in the response, or streamed out (or, cut short, what
        # arrived of it); a decoded body's is that of the encoded bytes received, as curl.
        received = len(response.body) if response is not None else 0
        received = max(received, output.written, terminal.received)
        if compressed:
            received = terminal.received
        if isinstance(failure, HTTPStatusError | TooManyRedirects):
            received = 0  # curl stops at the head: no body was downloaded
        info = _transfer_info(
            terminal, output.head, url, urlnum, output_name, response, failure, received
        )
        _write_pieces(write_out(options.write_out, info))
    return status


def _raw_whole(response: Response) -> bool:
    """
    Is C{response}, held for C{--raw} in answer to a resumed request, the whole resource
    (a 200 without C{Content-Range}, with a body: one complete already has none)?
    """
    return (
        response.code == 200
        and "Content-Range" not in response.headers
        and len(response.raw) > response.head_length
    )


def _transfer_info(
    terminal: _Terminal,
    final: ResponseHead | None,
    url: str,
    urlnum: int,
    output_name: str | None,
    response: Response | None,
    failure: FetchError | None,
    received: int,
) -> TransferInfo:
    """
    What the transfer of C{url} did, for C{-w}: from what C{terminal} saw, the C{final}
    head that the output saw (the terminal does not when taking it failed), and how it
    ended.
    """
    urls = terminal.urls or [without_userinfo(url)]  # never a password, as the others
    effective = _as_curl_writes(urls[-1])
    heads = terminal.heads
    if final is not None and len(heads) < len(urls):
        heads = [*heads, final.raw]
    version, code, fields = "0", 0, tuple[tuple[str, str], ...]()
    if len(heads) >= len(urls):  # the last request got its response's head
        version, code, fields = parse_head(heads[-1])
    redirect_url = None
    location = next((v for n, v in fields if n.lower() == "location"), "")
    if code in REDIRECT_CODES and location:
        with suppress(ValueError):
            redirect_url = urljoin(effective, location)
    timings = None if failure is None else failure.timings
    if timings is None:
        timings = response.timings if response is not None else Timings()
    return TransferInfo(
        url=url,
        urlnum=urlnum,
        url_effective=effective,
        exitcode=0 if failure is None else failure.curl_exit_code,
        errormsg=None if failure is None else str(failure),
        http_code=code,
        http_version=version,
        headers=fields,
        size_download=received,
        size_header=sum(map(len, heads)),
        size_request=terminal.request_bytes,
        num_connects=terminal.connects,
        num_redirects=len(urls) - 1,
        redirect_url=redirect_url,
        filename_effective=None if output_name in (None, "-") else output_name,
        remote_ip=terminal.remote[0],
        remote_port=terminal.remote[1],
        local_ip=terminal.local[0],
        local_port=terminal.local[1],
        scheme=effective.partition(":")[0].upper() if terminal.request_bytes else None,
        timings=timings,
    )


def _as_curl_writes(url: str) -> str:
    """
    C{url} (absolute, http or https) as curl writes an effective URL: the scheme in lower
    case, and C{/} for an empty path.
    """
    scheme, _, rest = url.partition("://")
    end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    if rest[end : end + 1] != "/":
        rest = rest[:end] + "/" + rest[end:]
    return f"{scheme.lower()}://{rest}"


def _write_pieces(pieces: list[tuple[str, str]]) -> None:
    """Write what L{write_out} made, each piece to stdout or stderr."""
    for target, text in pieces:
        if target == STDOUT:
            sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
            sys.stdout.buffer.flush()
        else:
            sys.stderr.write(text)
            sys.stderr.flush()
