"""
The C{twistsock} command: C{twistsock get URL} and C{twistsock probe HOST:PORT ...}.

C{get} follows curl's conventions: the body goes to stdout (binary-safe), failures print one
line, C{twistsock: (CODE) MESSAGE}, on stderr and exit with curl's code for them.  Neither a
network failure nor a bad argument ever prints a traceback.

The reactor is run by L{twisted.internet.task.react}; L{main} catches the C{SystemExit} it
raises and returns the exit status, so that it can be called (and tested) as a function.
Each command's module is imported only when that command runs, and Twisted only once the
arguments are checked: C{twistsock get --help} loads neither.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from twistsock._cli._command import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Parser,
    UsageError,
    integer,
    offset,
    seconds,
    seconds_or_zero,
)
from twistsock._limits import DEFAULT_MAX_BODY_SIZE
from twistsock._version import __version__

__all__ = ["main"]


def _parser() -> Parser:
    """The command line of C{twistsock get} and C{twistsock probe}."""
    parser = Parser(prog="twistsock", description="Fetch URLs and probe ports, curl-style.")
    parser.add_argument("--version", action="version", version=f"twistsock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    get = commands.add_parser("get", help="GET URLs and write the bodies to stdout")
    get.add_argument(
        "urls", nargs="+", metavar="URL",
        help="http:// or https:// URLs; several share connections",
    )  # fmt: skip
    get.add_argument("-i", "--include", action="store_true", help="write status and headers")
    get.add_argument("--raw", action="store_true", help="write the exact bytes received")
    get.add_argument(
        "--compressed", action="store_true",
        help="ask for a compressed body and decode it (gzip, deflate, br, zstd)",
    )  # fmt: skip
    get.add_argument(
        "-C", "--continue-at", type=offset, default=None, metavar="OFFSET",
        help="resume at byte OFFSET; - for the size of the -o file",
    )  # fmt: skip
    get.add_argument("-L", "--location", action="store_true", help="follow redirects")
    get.add_argument("--max-redirs", type=integer(0), default=10, metavar="N", help="(default 10)")
    get.add_argument(
        "-m", "--max-time", type=seconds, default=30.0, metavar="S",
        help="seconds for the whole transfer (default 30)",
    )  # fmt: skip
    get.add_argument(
        "--connect-timeout", type=seconds, default=10.0, metavar="S",
        help="seconds to connect (default 10)",
    )  # fmt: skip
    get.add_argument(
        "--max-filesize", type=integer(0), default=DEFAULT_MAX_BODY_SIZE, metavar="BYTES",
        help=f"largest body accepted (default {DEFAULT_MAX_BODY_SIZE})",
    )  # fmt: skip
    get.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
        help="extra request header (repeatable)",
    )  # fmt: skip
    get.add_argument(
        "-o", "--output", action="append", default=[], metavar="FILE",
        help="write to FILE (atomically); - is stdout; one per URL, in order",
    )  # fmt: skip
    get.add_argument(
        "-Z", "--parallel", action="store_true", help="transfer the URLs concurrently"
    )
    get.add_argument(
        "--parallel-max", type=integer(1, 1000), default=50, metavar="N",
        help="transfers at once with -Z, 1 to 1000 (default 50)",
    )  # fmt: skip
    get.add_argument("-f", "--fail", action="store_true", help="exit 22 on status >= 400")
    get.add_argument("-s", "--silent", action="store_true", help="no progress, no errors")
    get.add_argument("-S", "--show-error", action="store_true", help="errors even with -s")
    get.add_argument("-v", "--verbose", action="store_true", help="headers on stderr")
    get.add_argument("-k", "--insecure", action="store_true", help="skip TLS verification")
    get.add_argument(
        "-u", "--user", type=user_password, metavar="USER:PASSWORD",
        help="HTTP Basic authentication, sent to the URL's origin only",
    )  # fmt: skip
    get.add_argument(
        "-x", "--proxy", metavar="URL",
        help="use this HTTP proxy, http://[user:password@]host[:port] (port 1080 by "
        "default), instead of the environment's; \"\" for none",
    )  # fmt: skip
    get.add_argument(
        "--noproxy", metavar="LIST",
        help="comma-separated hosts, domains and IPv4 ranges never proxied, or \"*\", "
        "instead of the environment's no_proxy",
    )  # fmt: skip
    get.add_argument(
        "--retry", type=integer(0, 1000), default=0, metavar="N",
        help="retry transient failures N times, 0 to 1000 (default 0)",
    )  # fmt: skip
    get.add_argument(
        "--retry-delay", type=seconds_or_zero(600), default=0.0, metavar="S",
        help="fixed wait before each retry, 0 to 600 (default 0: 1 s, doubling)",
    )  # fmt: skip
    get.add_argument(
        "--retry-max-time", type=seconds_or_zero(), default=0.0, metavar="S",
        help="start no retry after S seconds (default 0: no limit)",
    )  # fmt: skip
    get.add_argument(
        "--retry-connrefused", action="store_true", help="retry refused connections too"
    )
    get.add_argument("--retry-all-errors", action="store_true", help="retry on any error")
    get.add_argument(
        "-w", "--write-out", metavar="FORMAT",
        help="write FORMAT after each transfer, curl's %%{variables}; @FILE, @- stdin",
    )  # fmt: skip

    probe = commands.add_parser("probe", help="check whether TCP ports accept connections")
    probe.add_argument("targets", nargs="+", metavar="HOST:PORT", help="e.g. [::1]:80")
    probe.add_argument(
        "-t", "--timeout", type=seconds, default=3.0, metavar="S",
        help="seconds per target (default 3)",
    )  # fmt: skip
    probe.add_argument(
        "-c", "--concurrency", type=integer(1, 1000), default=50, metavar="N",
        help="targets probed at once, 1 to 1000 (default 50)",
    )  # fmt: skip
    return parser


def user_password(text: str) -> tuple[str, str]:
    """
    C{-u USER:PASSWORD}, split at the first colon (as curl).  Without a colon curl would
    prompt for the password; there is no prompt here, so it is an option error (which
    does not repeat the value).
    """
    user, colon, password = text.partition(":")
    if not colon:
        raise argparse.ArgumentTypeError(
            "expected USER:PASSWORD (there is no password prompt; use USER: for none)"
        )
    return user, password


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the command line C{argv} (C{sys.argv[1:]} by default) and return the exit status.
    """
    try:
        options = _parser().parse_args(argv)
    except UsageError as e:
        sys.stderr.write(f"twistsock: {e}\n")
        return EXIT_USAGE
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0
    try:
        return _command(options)
    except KeyboardInterrupt:
        # Ctrl-C before the reactor runs (while Twisted and the client are imported):
        # the same exit as during a transfer, without a traceback.
        return EXIT_INTERRUPTED


def _command(options: argparse.Namespace) -> int:
    """Run the subcommand that C{options} names."""
    if options.command == "get":
        from twistsock._cli._get import get_command

        return get_command(options)
    from twistsock._cli._probe import probe_command

    return probe_command(options)
