"""
C{trial twistsock} runs twistsock's tests, which are not in this package.

The tests are the top-level C{tests} package of a source checkout or unpacked sdist. trial,
given a package, loads the C{test_*} modules under it and takes from each the suite its
C{testSuite()} returns, if it has one: this module's returns the C{tests} package's suite
when that package sits beside this copy of C{twistsock} (a checkout, an editable install),
and otherwise a single failing test that says where the tests are (an installed wheel).
"""

from __future__ import annotations

import importlib.util
import unittest
from pathlib import Path

from twisted.trial import runner
from twisted.trial.unittest import SynchronousTestCase

#: The checkout (or unpacked sdist) this copy of twistsock is in, if it is in one.
_ROOT = Path(__file__).resolve().parent.parent.parent

WHERE = (
    "twistsock's tests are not part of the installed package: they are the tests/ directory "
    "of a source checkout or unpacked sdist. Run them there with `python -m twisted.trial "
    "tests` or `python -m pytest`."
)


def _checkout_tests() -> bool:
    """
    Whether the C{tests} package that imports would find is the one beside this twistsock.
    """
    if not (_ROOT / "pyproject.toml").is_file():
        return False
    spec = importlib.util.find_spec("tests")
    return (
        spec is not None
        and spec.origin is not None
        and Path(spec.origin).resolve() == _ROOT / "tests" / "__init__.py"
    )


class TestsAreElsewhere(SynchronousTestCase):
    """
    Stands in for the test suite where there is none.
    """

    __test__ = False  # for trial only: pytest would run it, and it fails even in a checkout

    def test_where_the_tests_are(self) -> None:
        """
        Fail, saying where the tests are.
        """
        self.fail(WHERE)


def testSuite() -> unittest.TestSuite:
    """
    The suite trial runs for C{trial twistsock}.
    """
    loader = runner.TestLoader()
    if _checkout_tests():
        suite: unittest.TestSuite = loader.loadByName("tests", recurse=True)
        return suite
    suite = loader.loadClass(TestsAreElsewhere)
    return suite


# For trial only: pytest would collect it as a test function (its name starts with "test").
testSuite.__test__ = False  # type: ignore[attr-defined]
