"""
What both commands share: one-line usage errors, argument types, and running a coroutine
in the reactor until it returns an exit status.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "Parser",
    "UsageError",
    "integer",
    "offset",
    "on_shutdown",
    "run",
    "seconds",
    "seconds_or_zero",
]

EXIT_USAGE = 2
"""Exit status for bad arguments (curl's "failed to initialize")."""

EXIT_INTERRUPTED = 130
"""Exit status when the reactor is stopped (Ctrl-C, SIGTERM) before the work is done."""


class UsageError(Exception):
    """A bad command line; reported as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """An C{ArgumentParser} whose errors are one line and exit status 2, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (try '{self.prog} --help')")


def _shown(text: str) -> str:
    """C{text} quoted for an error line, cut short if long (the line stays one line)."""
    return repr(text if len(text) <= 20 else text[:20] + "...")


def seconds(text: str) -> float:
    """A finite, strictly positive number of seconds (not 0, negative, NaN or infinite)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected seconds > 0, not {_shown(text)}")
    return value


def seconds_or_zero(high: float | None = None) -> Callable[[str], float]:
    """
    The argument type of finite seconds from 0 to C{high} (no upper bound if C{None}),
    for options where 0 means "the default" or "no limit".
    """
    wanted = "seconds >= 0" if high is None else f"seconds from 0 to {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 <= value <= (math.inf if high is None else high)):
            raise argparse.ArgumentTypeError(f"expected {wanted}, not {_shown(text)}")
        return value

    return parse


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
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


def offset(text: str) -> int | str:
    """
    The argument type of C{-C}: a byte offset, an integer >= 0, or C{"-"} (the size of
    the output file).
    """
    return text if text == "-" else integer(0)(text)


def on_shutdown(reactor: Any, interrupt: Any) -> Any:
    """
    Call C{interrupt()} if the reactor starts shutting down (Ctrl-C, SIGTERM) while the
    work runs.  Returns C{check()}: whether C{interrupt} was called; C{check(done=True)}
    also stops watching (the trigger is removed).
    """
    state = {"interrupted": False, "watching": True}

    def fire() -> None:
        if state["watching"]:
            state["interrupted"] = True
            interrupt()

    trigger = reactor.addSystemEventTrigger("before", "shutdown", fire)

    def check(done: bool = False) -> bool:
        if done and state["watching"]:
            state["watching"] = False
            if not state["interrupted"]:
                reactor.removeSystemEventTrigger(trigger)
        return state["interrupted"]

    return check


def run(function: Any, *args: Any) -> int:
    """Run C{function(reactor, *args)} (a coroutine returning an int) in the reactor."""

    async def body(reactor: Any) -> None:
        raise SystemExit(await function(reactor, *args))

    from twisted.internet.defer import Deferred
    from twisted.internet.task import react

    try:
        react(lambda reactor: Deferred.fromCoroutine(body(reactor)))
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    raise AssertionError("react() always exits")  # pragma: no cover
