"""
Retrying a GET after a transient failure, by curl's rules (C{curl --retry}).

L{RetryPolicy} says how often and how long; L{RetryState} decides, attempt after attempt,
whether to retry and how long to wait first (sans-IO: it is told the time, it never reads
a clock); L{run_with_retries} runs the attempts and sleeps on the injected reactor
(C{task.deferLater}), so that a test drives the waits with a C{task.Clock}.

Transient, as curl 7.88 counts it: a timeout (curl's 28), a name that does not resolve
(curl's 6, which curl files under timeouts: a resolver may fail for a moment), and the HTTP
statuses 408, 429, 500, 502, 503 and 504.  A refused connection is transient only with
L{RetryPolicy.connection_refused}; with L{RetryPolicy.all_errors}, every failure is.  Only
GET is ever sent, so repeating a request is always safe.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from twistsock.http._errors import (
    ConnectionRefused,
    CouldNotResolve,
    FetchError,
    FetchTimeout,
    RangeNotSupported,
)
from twistsock.http._reader import ResponseHead
from twistsock.http._response import Headers, Response

__all__ = [
    "FIRST_WAIT",
    "MAX_WAIT",
    "TRANSIENT_STATUSES",
    "Retry",
    "RetryPolicy",
    "RetryState",
    "as_policy",
    "retry_after",
    "run_with_retries",
]

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""The HTTP statuses retried (as curl)."""

FIRST_WAIT = 1.0
"""Seconds before the first retry, without a fixed delay or C{Retry-After}."""

MAX_WAIT = 600.0
"""The longest wait between attempts: the doubling stops there (as curl), and a
C{Retry-After} asking for longer is not waited for (the response is final)."""


@dataclass(frozen=True)
class RetryPolicy:
    """
    When and how a failed GET is tried again (curl's C{--retry} options).

    @ivar retries: how many times to retry after the first attempt (C{--retry N}); 0,
        the default, never retries.
    @ivar delay: a fixed wait in seconds before each retry (C{--retry-delay}); C{None}
        (or 0, as curl) waits 1 s, then twice as long each time, up to L{MAX_WAIT}.  A
        C{Retry-After} header on a transient HTTP status overrides either.
    @ivar max_time: no retry starts once this many seconds have passed since the first
        attempt began, and a C{Retry-After} that would end its wait past it is not waited
        for (C{--retry-max-time}); C{None} (or 0, as curl) sets no such limit.  Each
        attempt still has the fetch's whole C{timeout}.
    @ivar connection_refused: count a refused connection as transient
        (C{--retry-connrefused}).
    @ivar all_errors: retry after any failure (C{--retry-all-errors}): every
        L{FetchError}, not only the transient ones.
    """

    retries: int = 0
    delay: float | None = None
    max_time: float | None = None
    connection_refused: bool = False
    all_errors: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise TypeError(f"retries must be an int, not {self.retries!r}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, not {self.retries!r}")
        for name in ("delay", "max_time"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite seconds >= 0, not {value!r}")
        if self.delay is not None and self.delay > MAX_WAIT:
            raise ValueError(f"delay must be at most {MAX_WAIT:g} s, not {self.delay!r}")


def as_policy(retries: int | RetryPolicy | None) -> RetryPolicy:
    """C{fetch}'s C{retries}: a L{RetryPolicy}, or a number of retries with curl's defaults."""
    if retries is None:
        return RetryPolicy()
    if isinstance(retries, RetryPolicy):
        return retries
    return RetryPolicy(retries=retries)


@dataclass(frozen=True)
class Retry:
    """
    A decision to retry (or, with C{wait} C{None}, why a transient failure is not retried).

    @ivar reason: curl's words for the kind of failure: C{"timeout"},
        C{"connection refused"}, C{"HTTP error"} or C{"retrying all errors"}.
    @ivar wait: seconds to wait before the next attempt; C{None} when a C{Retry-After}
        asks for more time than L{RetryPolicy.max_time} or L{MAX_WAIT} allow.
    @ivar left: the retries left before this one.
    @ivar error: the failure retried, if the attempt failed.
    @ivar response: the response retried, if it was a transient HTTP status.
    """

    reason: str
    wait: float | None
    left: int
    error: FetchError | None = None
    response: Response | None = None

    def warning(self) -> str:
        """The line curl prints for this decision (without C{"Warning: "})."""
        if self.wait is None:
            return (
                "The Retry-After: time would make this command line exceed the maximum "
                "allowed time for retries."
            )
        if self.reason == "retrying all errors":
            problem = f"({self.reason})"
        else:
            problem = f": {self.reason}"
        return f"Problem {problem}. Will retry in {self.wait:g} seconds. {self.left} retries left."


def retry_after(headers: Headers, now: float) -> float | None:
    """
    The wait a C{Retry-After} header asks for, in seconds: a number of seconds (its
    leading digits, as curl reads it), or an HTTP-date (counted from C{now}, seconds since
    the epoch).  C{None} when there is no such header, it is not valid, or it asks for no
    wait at all (0, a date in the past): then the ordinary wait applies, as curl does.
    """
    value = (headers.get("Retry-After") or "").strip(" \t")
    if not value:
        return None
    digits = len(value) - len(value.lstrip("0123456789"))
    if digits:
        # The leading digits, as curl reads the field (strtol): "1.5" and "10abc" are 1
        # and 10.  A dozen digits is ~31,000 years: bound the int.
        seconds = float(int(value[: min(digits, 12)]))
    else:
        try:
            date = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if date.tzinfo is None:
            return None
        seconds = math.ceil(date.timestamp() - now)
    return seconds if seconds > 0 else None


class RetryState:
    """
    The retries of one fetch: how many are left, the next ordinary wait, and when the
    first attempt began.  L{for_status} and L{for_error} decide (without changing
    anything); L{commit} spends a retry.
    """

    def __init__(self, policy: RetryPolicy, started: float) -> None:
        self.policy = policy
        self.started = started
        self.left = policy.retries
        self.next_wait = policy.delay or FIRST_WAIT

    def _may_retry(self, now: float) -> bool:
        if not self.left:
            return False
        limit = self.policy.max_time
        return not limit or now - self.started < limit

    def for_status(self, response: Response | ResponseHead, now: float) -> Retry | None:
        """The decision for a complete response (or its head): retry a transient status."""
        if response.code not in TRANSIENT_STATUSES or not self._may_retry(now):
            return None
        wait: float | None = self.next_wait
        asked = retry_after(response.headers, now)
        if asked is not None:
            limit = self.policy.max_time
            too_long = asked > MAX_WAIT or (limit and now - self.started + asked > limit)
            wait = None if too_long else asked
        final = response if isinstance(response, Response) else None
        return Retry("HTTP error", wait, self.left, response=final)

    def for_error(
        self, error: FetchError, now: float, status_before_range: bool = True
    ) -> Retry | None:
        """
        The decision for a failed attempt.  With C{status_before_range}, a resumed
        request refused with a transient status (a L{RangeNotSupported} with its head)
        is decided as that status, as curl does with C{--fail}, which checks the status
        before the range.
        """
        if not self._may_retry(now):
            return None
        head = error.head if isinstance(error, RangeNotSupported) else None
        if status_before_range and head is not None:
            status = self.for_status(head, now)
            if status is not None and (status.wait is not None or not self.policy.all_errors):
                return dataclasses.replace(status, error=error)
        if isinstance(error, (FetchTimeout, CouldNotResolve)):
            reason = "timeout"
        elif isinstance(error, ConnectionRefused) and self.policy.connection_refused:
            reason = "connection refused"
        elif self.policy.all_errors:
            reason = "retrying all errors"
        else:
            return None
        return Retry(reason, self.next_wait, self.left, error=error)

    def commit(self, retry: Retry) -> None:
        """Spend a retry; the ordinary wait doubles (up to L{MAX_WAIT}) unless fixed."""
        self.left -= 1
        if not self.policy.delay:
            self.next_wait = min(self.next_wait * 2, MAX_WAIT)


async def run_with_retries(
    reactor: Any,
    policy: RetryPolicy,
    attempt: Callable[[Callable[[ResponseHead], object] | None], Deferred[Response]],
    stream: Callable[[ResponseHead], object] | None,
    on_retry: Callable[[Retry], object] | None = None,
    check: Callable[[Response], object] | None = None,
    status_before_range: bool = True,
) -> Response:
    """
    Make attempts until one succeeds, fails for good, or the retries run out.

    The body of a response that is going to be retried is never streamed: the head is
    decided on as it arrives, and C{stream} is only asked about heads that may be final,
    so that what the caller writes is the final response alone (a timeout in the middle
    of a streamed body cannot take back what was written, of course).

    @param attempt: makes one attempt, given where its final body goes (as C{stream}).
    @param on_retry: told each decision before its wait (and a C{Retry-After} that is not
        waited for).
    @param check: called with each response that is not retried; a L{FetchError} it
        raises counts as the attempt's failure (C{--fail} with C{--retry-all-errors}).
    @param status_before_range: see L{RetryState.for_error}.
    """
    state = RetryState(policy, reactor.seconds())
    held: list[Retry] = []  # the decision taken on this attempt's head, if any

    def hold(head: ResponseHead) -> object:
        assert stream is not None
        decision = state.for_status(head, reactor.seconds())
        if decision is not None and decision.wait is not None:
            held.append(decision)
            return None  # kept in memory (bounded by max_body_size), then dropped
        return stream(head)

    while True:
        held.clear()
        try:
            response = await attempt(None if stream is None else hold)
            if held:  # decided on the head: its body was not streamed
                decision: Retry | None = dataclasses.replace(held[0], response=response)
            else:
                decision = state.for_status(response, reactor.seconds())
            if decision is None or decision.wait is None:
                if decision is not None and on_retry is not None:
                    on_retry(decision)
                if check is not None:
                    check(response)
                return response
        except FetchError as e:
            decision = state.for_error(e, reactor.seconds(), status_before_range)
            if decision is None or decision.wait is None:
                if decision is not None and on_retry is not None:
                    on_retry(decision)  # a Retry-After not waited for
                raise
        if on_retry is not None:
            on_retry(decision)
        assert decision.wait is not None
        state.commit(decision)
        await deferLater(reactor, decision.wait)
