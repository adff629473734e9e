"""
Runs curl and C{twistsock get} as subprocesses, for the tests that check the command
against curl's own behaviour on the same local server.

curl is optional on a developer's machine (C{.ci/run} installs it): where it is missing,
L{require_curl} skips the comparison with a message that says so, and the twistsock half
of such a test still runs in its own test.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest

#: The environment of both commands: no proxy settings, so that neither may leave
#: 127.0.0.1 (a test that wants a proxy passes it explicitly).
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def require_curl() -> str:
    """The path of curl; skip the calling test, saying why, when it is not installed."""
    curl = shutil.which("curl")
    if curl is None:
        raise SkipTest("curl is not installed: the comparison with curl is skipped")
    return curl


def run_curl(
    reactor: Any, *args: str, env: dict[str, str] | None = None
) -> Deferred[tuple[bytes, bytes, int]]:
    """Run curl with C{args}; fires with C{(stdout, stderr, exit status)}."""
    return getProcessOutputAndValue(
        require_curl(), list(args), env=ENV if env is None else env, reactor=reactor
    )


def run_get(
    reactor: Any, *args: str, env: dict[str, str] | None = None
) -> Deferred[tuple[bytes, bytes, int]]:
    """Run C{python -m twistsock get} with C{args}; fires with C{(stdout, stderr, status)}."""
    return getProcessOutputAndValue(
        sys.executable,
        ["-m", "twistsock", "get", *args],
        env=ENV if env is None else env,
        reactor=reactor,
    )
