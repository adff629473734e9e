"""
The differential test of the response reader: twistsock's client before the reader (h11,
kept in C{tests/_h11_protocol.py}) and after it read every response of the corpus
(C{tests/_corpus.py}) to the same outcome, except where a difference is listed in
L{CHANGES} with its reason.  Error messages are compared apart: they are meant to change
(plain HTTP words instead of h11's).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests import _h11_protocol
from tests._corpus import CORPUS, Sample
from twistsock.http._protocol import HTTPGetProtocol
from twistsock.http._request import build_request, parse_url

REQUEST = build_request(parse_url("http://example.com/"))

_ACCEPTED = "accepted"

CHANGES: dict[str, tuple[str, str, str]] = {
    # name: (before, after, why); "accepted" stands for a Response, "pending" for no
    # outcome yet (the connection held open: only a deadline would end it).
    "chunk size with whitespace before extension": (
        "MalformedResponse",
        _ACCEPTED,
        "RFC 9112 section 7.1.1: BWS before ';' must be parsed",
    ),
    "chunk size with tab before extension": (
        "MalformedResponse",
        _ACCEPTED,
        "RFC 9112 section 7.1.1: BWS before ';' must be parsed",
    ),
    "chunk size 21 digits": (
        "MalformedResponse",
        _ACCEPTED,
        "a chunk size's value is bounded, not its count of leading zeros",
    ),
    "chunk size line LF-only, held open": (
        "pending",
        "MalformedResponse",
        "a chunk size line with an LF inside can never become valid",
    ),
    "one chunk over the limit, held open": (
        "pending",
        "BodyTooLarge",
        "a body over the limit fails as soon as that is known",
    ),
    "chunk size 2^64, held open": (
        "pending",
        "BodyTooLarge",
        "a chunk size of 2^64 or more is too large as soon as it is known",
    ),
    "chunk size 2^64 with more data": (
        "PartialBody",
        "BodyTooLarge",
        "a chunk size of 2^64 or more is too large as soon as it is known",
    ),
    "HTTP/0.9-style reply, held open": (
        "pending",
        "MalformedResponse",
        "a reply that does not begin with HTTP/1.x can never become valid",
    ),
    "HTTP/2.0 status line": (_ACCEPTED, "MalformedResponse", "only HTTP/1.x is spoken"),
    "HTTP/5.6, closed": (_ACCEPTED, "MalformedResponse", "only HTTP/1.x is spoken"),
    "HTTP/5.6, held open": ("pending", "MalformedResponse", "only HTTP/1.x is spoken"),
    "HTTP/0.9 status line": (_ACCEPTED, "MalformedResponse", "only HTTP/1.x is spoken"),
    "interim then close": ("MalformedResponse", "EmptyReply", "curl says 52, empty reply"),
}
"""The responses read differently by the new reader, each with the issue's reason."""


def outcome(protocol_class: Any, sample: Sample) -> tuple[str, Any, str]:
    """
    Deliver C{sample} in one read to a new C{protocol_class} and return what it gave:
    C{("accepted", fields, "")}, C{(error class name, None, message)} or
    C{("pending", None, "")}.
    """
    protocol = protocol_class(REQUEST, max_body_size=sample.max_body_size)
    protocol.makeConnection(StringTransport())
    protocol.dataReceived(sample.reply)
    if sample.end is not None:
        protocol.connectionLost(Failure(sample.end()))
    results: list[Any] = []
    protocol.response.addBoth(results.append)
    if not results:
        return "pending", None, ""
    result = results[0]
    if isinstance(result, Failure):
        return type(result.value).__name__, None, str(result.value)
    fields = (
        result.code,
        result.http_version,
        result.phrase,
        tuple(result.headers),
        result.body,
        result.raw,
        result.head_length,
        tuple(result.trailers),
    )
    return _ACCEPTED, fields, ""


class DifferentialTests(SynchronousTestCase):
    """
    The reader agrees with the h11-based client it replaces, except where listed.
    """

    def test_corpus_size(self) -> None:
        """
        The corpus holds at least 100 responses, and every listed change is one of them.
        """
        self.assertGreaterEqual(len(CORPUS), 100)
        self.assertLessEqual(set(CHANGES), set(CORPUS))

    def test_same_outcome(self) -> None:
        """
        Every response outside L{CHANGES} gives the same outcome before and after: the
        same L{twistsock.Response}, field by field, or the same error class, or no outcome
        yet.  Every response in L{CHANGES} changes exactly as listed.
        """
        for name, sample in CORPUS.items():
            before = outcome(_h11_protocol.HTTPGetProtocol, sample)
            after = outcome(HTTPGetProtocol, sample)
            if name in CHANGES:
                was, now, _ = CHANGES[name]
                self.assertEqual((before[0], after[0]), (was, now), name)
            else:
                self.assertEqual(before[:2], after[:2], name)

    def test_plain_messages(self) -> None:
        """
        No error message shows h11's internals or Python reprs of bytes: they speak HTTP.
        """
        leaks = ("bytearray", "(b'", "h11", "role=", "_SWITCH", "event", "Informational")
        for name, sample in CORPUS.items():
            kind, _, message = outcome(HTTPGetProtocol, sample)
            for leak in leaks:
                self.assertNotIn(leak, message, name)
