"""
L{with_deadline}: one deadline for a Deferred, reported as an error of the caller's kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

__all__ = ["with_deadline"]

_T = TypeVar("_T")


class _Deadline:
    """
    The timer of one L{with_deadline}: it cancels the Deferred when it expires, and is
    cancelled when the Deferred fires first.  One object with one callback, where
    L{Deferred.addTimeout} makes three closures and two callbacks: the client sets a
    deadline on every request, so this is on its hot path.
    """

    __slots__ = ("_call", "_deferred", "_expired", "_seconds", "_timed_out")

    def __init__(
        self,
        deferred: Deferred[Any],
        seconds: float,
        clock: IReactorTime,
        timed_out: Callable[[float], Exception],
    ) -> None:
        self._deferred = deferred
        self._seconds = seconds
        self._timed_out = timed_out
        self._expired = False
        self._call = clock.callLater(seconds, self._expire)

    def _expire(self) -> None:
        self._expired = True
        self._deferred.cancel()

    def settle(self, result: object) -> object:
        """The Deferred fired: stop the timer, or report that the time ran out."""
        if not self._expired:
            self._call.cancel()
        elif isinstance(result, Failure):
            return Failure(self._timed_out(self._seconds))
        return result


def with_deadline(
    deferred: Deferred[_T],
    seconds: float,
    clock: IReactorTime,
    timed_out: Callable[[float], Exception],
) -> Deferred[_T]:
    """
    Cancel C{deferred} if it has not fired within C{seconds}, and fail it with
    C{timed_out(seconds)}.

    This is L{Deferred.addTimeout}, except for what a timeout reports, and cheaper.
    Cancelling does not always fail with C{CancelledError}: a cancelled
    C{HostnameEndpoint} attempt fails with C{ConnectingCancelledError}, for one.  Whatever
    failure the cancellation produced, the caller learns that the time ran out.  A result
    that is not a failure, even after the time ran out, stays as it is.

    @return: C{deferred}, with the deadline set; firing it cancels the timer.
    """
    return deferred.addBoth(_Deadline(deferred, seconds, clock, timed_out).settle)
