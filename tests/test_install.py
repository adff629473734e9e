"""
The environment the tests run in serves this tree to twistd.

The end-to-end tests start C{twistd} as a subprocess in a temporary directory, where only the
installed environment decides which plugins it finds and which C{twistsock} it imports. These
tests fail when that is not this tree: an install that hides the plugin from twistd (an
editable install through an import hook), or a stale non-editable install whose code is not
the code under test.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests._twistd import twistd_command

ROOT = Path(__file__).resolve().parent.parent

_WHERE = """\
import twistsock, twisted.plugins.twistsock_plugin as a, twisted.plugins.twistsock_reactor as b
print(twistsock.__file__); print(a.__file__); print(b.__file__)
"""


def run_elsewhere(*command: str) -> str:
    """
    Run C{command} in an empty temporary directory and return its standard output.
    """
    with tempfile.TemporaryDirectory(prefix="twistsock-install-") as directory:
        done = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"{command} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


class InstalledTreeTests(SynchronousTestCase):
    """
    twistd, started from another directory, sees this tree's plugins and code.
    """

    def test_twistd_lists_plugin(self) -> None:
        """
        C{twistd --help} lists the twistsock plugin.
        """
        output = run_elsewhere(*twistd_command(), "--help")
        self.assertRegex(output, re.compile(r"^\s+twistsock\s", re.MULTILINE))

    def test_twistd_lists_reactor(self) -> None:
        """
        C{twistd --help-reactors} lists the twistsock-epoll reactor.
        """
        output = run_elsewhere(*twistd_command(), "--help-reactors")
        self.assertRegex(output, re.compile(r"^\s+twistsock-epoll\s", re.MULTILINE))

    def test_same_code(self) -> None:
        """
        A process started elsewhere imports the same twistsock and plugin sources as this
        tree holds (the same files, or byte-identical copies).
        """
        package, plugin, reactor = (
            Path(line) for line in run_elsewhere(sys.executable, "-c", _WHERE).splitlines()
        )
        pairs = [
            (plugin, ROOT / "twisted" / "plugins" / "twistsock_plugin.py"),
            (reactor, ROOT / "twisted" / "plugins" / "twistsock_reactor.py"),
        ] + [
            (package.parent / source.relative_to(ROOT / "twistsock"), source)
            for source in sorted((ROOT / "twistsock").rglob("*.py"))
        ]
        stale = [
            str(ours.relative_to(ROOT))
            for theirs, ours in pairs
            if not theirs.exists() or theirs.read_bytes() != ours.read_bytes()
        ]
        self.assertEqual(
            stale,
            [],
            f"twistd subprocesses would run {package.parent}, not this tree "
            f"({ROOT}): reinstall, or install with pip install -e",
        )


class TrialShimTests(SynchronousTestCase):
    """
    C{trial twistsock} runs the suite from a checkout, and says where the tests are
    elsewhere.
    """

    def test_checkout(self) -> None:
        """
        In a checkout, the suite C{trial twistsock} runs is the C{tests} package's.
        """
        from twistsock._trial import test_checkout

        suite = test_checkout.testSuite()
        self.assertGreater(suite.countTestCases(), 100)

    def test_installed(self) -> None:
        """
        Away from a checkout, C{trial twistsock} runs one test, which fails saying where
        the tests are.
        """
        from twisted.trial.reporter import TestResult

        from twistsock._trial import test_checkout

        self.patch(test_checkout, "_ROOT", Path(self.mktemp()))
        suite = test_checkout.testSuite()
        self.assertEqual(suite.countTestCases(), 1)
        result = TestResult()
        suite.run(result)
        self.assertEqual(len(result.failures), 1)
        self.assertIn("tests/ directory of a source checkout", str(result.failures[0][1]))


class FloorsTests(SynchronousTestCase):
    """
    The constraints CI installs for its floors run are pyproject.toml's floors.
    """

    def test_floors_match(self) -> None:
        """
        Every runtime and test dependency has a floor in pyproject.toml, and
        C{.ci/floors.txt} pins each at exactly that version.
        """
        pyproject = (ROOT / "pyproject.toml").read_text()
        sections = re.findall(r"^(?:dependencies|test) = \[(.*?)^\]", pyproject, re.M | re.S)
        declared = {}
        for name, version in re.findall(
            r'^\s*"([A-Za-z0-9_.-]+)(?:\[\w+\])?>=([\w.]+)"', "".join(sections), re.M
        ):
            declared[name.lower().replace("_", "-")] = version
        pinned = {}
        for line in (ROOT / ".ci" / "floors.txt").read_text().splitlines():
            if line and not line.startswith("#"):
                name, version = line.split("==")
                pinned[name.lower()] = version

        def release(version: str) -> list[str]:
            # 24.7 and 24.7.0 name the same release.
            parts = version.split(".")
            while len(parts) > 1 and parts[-1] == "0":
                parts.pop()
            return parts

        self.assertEqual(set(declared), set(pinned))
        for name, version in declared.items():
            self.assertEqual(release(version), release(pinned[name]), name)
