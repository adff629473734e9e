"""
Tests for L{twistsock._deadline.with_deadline}: one deadline for a Deferred, reported as the
caller's timeout error.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twistsock._deadline import with_deadline


class Late(Exception):
    """The caller's timeout error, carrying the limit."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class WithDeadlineTests(SynchronousTestCase):
    """
    The deadline cancels and reports a timeout; anything else passes through.
    """

    def setUp(self) -> None:
        self.clock = Clock()

    def test_result_in_time(self) -> None:
        """
        A result before the deadline passes through, and the timer is cancelled.
        """
        d: Deferred[str] = Deferred()
        with_deadline(d, 5, self.clock, Late)
        d.callback("done")
        self.assertEqual(self.successResultOf(d), "done")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failure_in_time(self) -> None:
        """
        A failure before the deadline passes through unchanged.
        """
        d: Deferred[str] = Deferred()
        with_deadline(d, 5, self.clock, Late)
        d.errback(ValueError("no"))
        self.failureResultOf(d, ValueError)

    def test_timeout(self) -> None:
        """
        At the deadline the Deferred is cancelled (its canceller runs) and fails with the
        caller's error, made with the limit.
        """
        cancelled: list[object] = []
        d: Deferred[str] = Deferred(cancelled.append)
        with_deadline(d, 5, self.clock, Late)
        self.clock.advance(4.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertEqual(self.failureResultOf(d, Late).value.seconds, 5)  # type: ignore[attr-defined]
        self.assertEqual(len(cancelled), 1)

    def test_timeout_whatever_the_cancellation_fails_with(self) -> None:
        """
        A canceller that fails with its own error (as C{HostnameEndpoint}'s does, with
        C{ConnectingCancelledError}) is still reported as a timeout.
        """

        def canceller(d: Deferred[str]) -> None:
            d.errback(ConnectingCancelledError(None))

        d: Deferred[str] = Deferred(canceller)
        with_deadline(d, 1, self.clock, Late)
        self.clock.advance(1)
        self.failureResultOf(d, Late)

    def test_caller_cancels(self) -> None:
        """
        A cancellation by the caller before the deadline stays a cancellation.
        """
        d: Deferred[str] = Deferred()
        with_deadline(d, 5, self.clock, Late)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_result_after_the_deadline(self) -> None:
        """
        A canceller that gives a result rather than a failure (the work was done after
        all) keeps it: only a failure is reported as the time running out.
        """
        d: Deferred[str] = Deferred(lambda d: d.callback("finished anyway"))
        with_deadline(d, 1, self.clock, Late)
        self.clock.advance(1)
        self.assertEqual(self.successResultOf(d), "finished anyway")

    def test_fired_already(self) -> None:
        """A Deferred that has fired already keeps its result and leaves no timer."""
        d: Deferred[str] = Deferred()
        d.callback("early")
        with_deadline(d, 5, self.clock, Late)
        self.assertEqual(self.successResultOf(d), "early")
        self.assertEqual(self.clock.getDelayedCalls(), [])
