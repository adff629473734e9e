"""
Tests for HTTP Basic authentication (C{fetch(auth=)}, user information in URLs,
C{twistsock get -u}): the header sent, to the original origin only, and credentials kept
out of URLs shown, error messages and C{-v}; in memory with L{twistsock.testing.FakeHTTP},
then the command beside curl 7.88 against local servers.
"""

from __future__ import annotations

import base64
import io
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twisted.internet import reactor as _reactor
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web import server
from twisted.web.resource import Resource

from tests._curl import require_curl, run_curl, run_get
from tests._http_servers import listen_canned
from twistsock import Client, MalformedURL, OperationTimeout, fetch
from twistsock._cli import main
from twistsock.http._request import parse_url
from twistsock.testing import FakeHTTP, Fault, StubRequest, StubResponse

reactor: Any = _reactor


def basic(credentials: str) -> str:
    """The C{Authorization} value for C{user:password}."""
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def redirector(request: StubRequest) -> StubResponse:
    """C{/go?to=URL} redirects to C{URL}; anything else is 200."""
    target = parse_qs(urlsplit(request.target).query).get("to")
    if target:
        return StubResponse(302, headers=(("Location", target[0]),))
    return StubResponse(200, b"ok")


class AuthTests(SynchronousTestCase):
    """
    C{auth=} and URL user information send C{Authorization: Basic}.
    """

    def sent(self, url: str, **kwargs: Any) -> list[str | None]:
        """Fetch C{url}; return the C{Authorization} of each request the network saw."""
        network = FakeHTTP(redirector)
        d = fetch(url, reactor=network.reactor, follow_redirects=True, **kwargs)
        network.flush()
        self.successResultOf(d)
        return [request.headers.get("Authorization") for request in network.requests]

    def test_auth(self) -> None:
        """
        C{auth=(user, password)} sends them base64-encoded, UTF-8 for non-ASCII.
        """
        self.assertEqual(
            self.sent("http://a.example/", auth=("joe", "s3cret")), [basic("joe:s3cret")]
        )
        self.assertEqual(
            self.sent("http://a.example/", auth=("joe", "pässword")), [basic("joe:pässword")]
        )
        self.assertEqual(self.sent("http://a.example/"), [None])

    def test_url_userinfo(self) -> None:
        """
        User information in the URL is percent-decoded and sent; a user name alone has
        an empty password (as curl).
        """
        self.assertEqual(self.sent("http://us%40er:p%3Aw@a.example/"), [basic("us@er:p:w")])
        self.assertEqual(self.sent("http://joe@a.example/"), [basic("joe:")])
        self.assertEqual(self.sent("http://:pw@a.example/"), [basic(":pw")])

    def test_precedence(self) -> None:
        """
        C{auth} wins over the URL's user information, an C{Authorization} header over
        both (as curl's C{-u} and C{-H}).
        """
        self.assertEqual(self.sent("http://u:p@a.example/", auth=("joe", "x")), [basic("joe:x")])
        self.assertEqual(
            self.sent("http://u:p@a.example/", auth=("joe", "x"), headers={"authorization": "Y"}),
            ["Y"],
        )

    def test_colon_in_user(self) -> None:
        """
        A user name with a colon cannot be sent in Basic authentication: C{ValueError}
        for C{auth}, L{MalformedURL} (a L{FetchError}: the command's one-line error, exit 3)
        for the URL's user information.
        """
        network = FakeHTTP(redirector)
        d = fetch("http://a.example/", reactor=network.reactor, auth=("a:b", "c"))
        self.failureResultOf(d, ValueError)
        d = fetch("http://a%3Ab:c@a.example/", reactor=network.reactor)
        failure = self.failureResultOf(d, MalformedURL)
        self.assertNotIn("c@", str(failure.value))
        self.assertEqual(network.requests, [])

    def test_redirects(self) -> None:
        """
        Credentials follow a redirect on the same scheme, host and port (and back to
        it), never to another host or port; a redirect's own user information is not
        used.
        """
        same = "http://a.example/go?to=/final"
        self.assertEqual(self.sent(same, auth=("j", "p")), [basic("j:p")] * 2)
        other_host = "http://a.example/go?to=http://b.example/"
        self.assertEqual(self.sent(other_host, auth=("j", "p")), [basic("j:p"), None])
        other_port = "http://a.example/go?to=http://a.example:8080/"
        self.assertEqual(self.sent(other_port, auth=("j", "p")), [basic("j:p"), None])
        back = "http://a.example/go?to=http://b.example/go%3Fto%3Dhttp://a.example/end"
        self.assertEqual(self.sent(back, auth=("j", "p")), [basic("j:p"), None, basic("j:p")])
        given = "http://a.example/go?to=http://x:y@b.example/"
        self.assertEqual(self.sent(given), [None, None])
        from_url = "http://j:p@a.example/go?to=http://b.example/"
        self.assertEqual(self.sent(from_url), [basic("j:p"), None])

    def test_client(self) -> None:
        """
        C{Client.get} takes C{auth}.
        """
        network = FakeHTTP(redirector)
        client = Client(reactor=network.reactor)
        d = client.get("http://a.example/", auth=("j", "p"))
        network.flush()
        self.successResultOf(d)
        self.assertEqual(network.requests[0].headers.get("Authorization"), basic("j:p"))
        client.close()
        network.flush()


class MaskingTests(SynchronousTestCase):
    """
    User information never shows: not in C{Response.url}, an error or a C{repr}.
    """

    def test_response_url(self) -> None:
        """
        C{Response.url} (and the redirects' in C{history}) have no user information.
        """
        network = FakeHTTP(redirector)
        d = fetch(
            "http://joe:secret@a.example/go?to=/end",
            reactor=network.reactor,
            follow_redirects=True,
        )
        network.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.url, "http://a.example/end")
        self.assertEqual(response.history[0].url, "http://a.example/go?to=/end")

    def test_errors(self) -> None:
        """
        A malformed URL's error and a timeout's name the URL without its password.
        """
        e = self.assertRaises(MalformedURL, parse_url, "http://joe:secret@a.example:99999/")
        self.assertNotIn("secret", str(e))
        self.assertEqual(e.url, "http://a.example:99999/")
        e = self.assertRaises(MalformedURL, parse_url, "joe:secret@a.example/")
        self.assertNotIn("secret", str(e))
        network = FakeHTTP(redirector)
        network.fault("a.example", Fault.stall_after(0))
        d = fetch("http://joe:secret@a.example/", reactor=network.reactor, timeout=1)
        network.advance(2)
        failure = self.failureResultOf(d, OperationTimeout)
        self.assertEqual(str(failure.value), "Operation timed out after 1 s: http://a.example/")

    def test_repr(self) -> None:
        """
        A parsed URL's C{repr} shows neither the user name nor the password.
        """
        parsed = parse_url("http://joe:secret@a.example/")
        self.assertEqual((parsed.username, parsed.password), ("joe", "secret"))
        self.assertNotIn("secret", repr(parsed))
        self.assertNotIn("joe", repr(parsed))


class Recorder(Resource):
    """Records the C{Authorization} of each request; C{/away} redirects to C{away}."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bytes, bytes | None]] = []
        self.away = b""

    def render_GET(self, request: server.Request) -> bytes:
        self.seen.append((request.path, request.getHeader(b"authorization")))
        if request.path == b"/away":
            request.redirect(self.away)
        return b"ok\n"


def listen_recorder(test: TestCase) -> tuple[str, Recorder]:
    """Serve a L{Recorder} on 127.0.0.1 until the test ends."""
    recorder = Recorder()
    port = reactor.listenTCP(0, server.Site(recorder), interface="127.0.0.1")
    test.addCleanup(port.stopListening)
    return f"127.0.0.1:{port.getHost().port}", recorder


class CommandTests(TestCase):
    """
    C{twistsock get -u} and user information in URLs, beside curl.
    """

    @inlineCallbacks
    def same_requests(self, *args: str, url: str, redirect_to_other: bool = False) -> Any:
        """
        Run curl and twistsock with C{args} and C{url} (C{{}} is the server's address);
        the servers must see the same requests.  Returns twistsock's result.
        """
        require_curl()
        runs = []
        for command in (run_curl, run_get):
            address, recorder = listen_recorder(self)
            other, elsewhere = listen_recorder(self)
            recorder.away = f"http://{other if redirect_to_other else address}/end".encode()
            runs.append((command(reactor, *args, url.format(address)), recorder, elsewhere))
        results = yield gatherResults([run for run, _, _ in runs])
        (curl, recorder, elsewhere), (_, our_recorder, our_elsewhere) = runs
        self.assertEqual(results[0][2], 0)
        self.assertEqual(results[1][2], 0)
        self.assertEqual(our_recorder.seen, recorder.seen)
        self.assertEqual(our_elsewhere.seen, elsewhere.seen)
        return results[1], our_recorder.seen + our_elsewhere.seen

    @inlineCallbacks
    def test_user(self) -> Any:
        """
        C{-u user:password} sends what curl sends.
        """
        _, seen = yield self.same_requests("-s", "-u", "joe:s3c:ret", url="http://{}/")
        self.assertEqual(seen, [(b"/", basic("joe:s3c:ret").encode())])

    @inlineCallbacks
    def test_url_userinfo(self) -> Any:
        """
        Percent-encoded user information in the URL sends what curl sends.
        """
        _, seen = yield self.same_requests("-s", url="http://us%40er:p%3Aw@{}/")
        self.assertEqual(seen, [(b"/", basic("us@er:p:w").encode())])

    @inlineCallbacks
    def test_redirects(self) -> Any:
        """
        With C{-L}, credentials go on to the same origin, not to another port, as curl.
        """
        _, seen = yield self.same_requests("-s", "-L", "-u", "j:p", url="http://{}/away")
        self.assertEqual(
            seen, [(b"/away", basic("j:p").encode()), (b"/end", basic("j:p").encode())]
        )
        _, seen = yield self.same_requests(
            "-s", "-L", "-u", "j:p", url="http://{}/away", redirect_to_other=True
        )
        self.assertEqual(seen, [(b"/away", basic("j:p").encode()), (b"/end", None)])

    @inlineCallbacks
    def test_verbose_masks_url(self) -> Any:
        """
        C{-v} shows the URL without its user information; the password is not in the
        clear anywhere on stderr (the C{Authorization} header is shown, as curl shows it).
        """
        (out, err, status), _ = yield self.same_requests("-v", url="http://joe:secret@{}/")
        self.assertEqual((status, out), (0, b"ok\n"))
        self.assertNotIn(b"secret", err)
        self.assertNotIn(b"joe", err)
        self.assertIn(b"* GET http://127.0.0.1:", err)
        self.assertIn(b"> Authorization: " + basic("joe:secret").encode() + b"\n", err)

    @inlineCallbacks
    def test_error_masks_url(self) -> Any:
        """
        An error line names the URL without its user information.
        """
        port, _ = listen_canned(self, reactor, b"HTTP/1.1 200 OK\r\n", "stall")
        out, err, status = yield run_get(
            reactor, "-m", "0.5", f"http://joe:secret@127.0.0.1:{port}/"
        )
        self.assertEqual(
            (status, out, err),
            (
                28,
                b"",
                f"twistsock: (28) Operation timed out after 0.5 s: http://127.0.0.1:{port}/\n".encode(),
            ),
        )


class ColonInURLUserTests(TestCase):
    """
    A URL whose user name holds a (percent-encoded) colon is one error line, not a
    traceback.
    """

    @inlineCallbacks
    def test_one_line(self) -> Any:
        """
        C{get} exits 3 with one line that does not show the password.
        """
        out, err, status = yield run_get(reactor, "http://a%3Ab:secret@127.0.0.1:1/")
        self.assertEqual(
            (status, out, err),
            (
                3,
                b"",
                b"twistsock: (3) URL rejected: a user name holding ':' cannot be sent in "
                b"Basic auth: 'http://127.0.0.1:1/'\n",
            ),
        )


class OptionTests(SynchronousTestCase):
    """
    C{-u} without a password is an option error: there is no password prompt.
    """

    def test_no_prompt(self) -> None:
        """
        C{-u user} exits 2 with one line that does not repeat the value; C{-u user:}
        is an empty password.
        """
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        self.assertEqual(main(["get", "-u", "joe", "http://x/"]), 2)
        self.assertEqual(
            stderr.getvalue(),
            "twistsock: argument -u/--user: expected USER:PASSWORD (there is no password "
            "prompt; use USER: for none) (try 'twistsock get --help')\n",
        )
        from twistsock._cli import _parser

        self.assertEqual(_parser().parse_args(["get", "-u", "joe:", "u"]).user, ("joe", ""))
        self.assertEqual(_parser().parse_args(["get", "-u", "a:b:c", "u"]).user, ("a", "b:c"))
