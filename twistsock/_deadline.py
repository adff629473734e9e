"""
L{with_deadline}: one deadline for a Deferred, reported as an error of the caller's kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

__all__ = ["with_deadline"]

_T = TypeVar("_T")


def with_deadline(
    deferred: Deferred[_T],
    seconds: float,
    clock: IReactorTime,
    timed_out: Callable[[float], Exception],
) -> Deferred[_T]:
    """
    Cancel C{deferred} if it has not fired within C{seconds}, and fail it with
    C{timed_out(seconds)}.

    This is L{Deferred.addTimeout}, except for what a timeout reports.  Cancelling does
    not always fail with C{CancelledError}: a cancelled C{HostnameEndpoint} attempt fails
    with C{ConnectingCancelledError}, for one.  Whatever failure the cancellation
    produced, the caller learns that the time ran out.

    @return: C{deferred}, with the deadline set; firing it cancels the timer.
    """

    def report(result: _T | Failure, seconds: float) -> _T | Failure:
        if isinstance(result, Failure):
            return Failure(timed_out(seconds))
        return result

    return deferred.addTimeout(seconds, clock, report)
