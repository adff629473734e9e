"""
The public facades: C{twistsock}, C{twistsock.echo} and C{twistsock.http} name exactly what
users may import, and each product loads without the other.
"""

from __future__ import annotations

import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import twistsock
import twistsock.echo
import twistsock.http

_PACKAGE = Path(twistsock.__file__).parent


def _modules_loaded_by(statement: str) -> set[str]:
    """
    The modules a fresh interpreter has loaded after running C{statement}.
    """
    code = f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return set(output.split())


class PublicAPITests(SynchronousTestCase):
    """
    One facade per product, with C{__all__}; implementation lives in private modules.
    """

    def test_all_is_importable(self) -> None:
        """
        Every name in each facade's C{__all__} exists and is documented.
        """
        for facade in (twistsock, twistsock.echo, twistsock.http):
            for name in facade.__all__:
                value = getattr(facade, name)
                if name != "__version__":
                    self.assertTrue(inspect.getdoc(value), f"{name} has no docstring")

    def test_top_level_is_the_products(self) -> None:
        """
        C{twistsock.__all__} is both products' names and C{__version__}, each the very
        object its product exports.
        """
        self.assertEqual(
            set(twistsock.__all__),
            {"__version__", *twistsock.echo.__all__, *twistsock.http.__all__},
        )
        for facade in (twistsock.echo, twistsock.http):
            for name in facade.__all__:
                if name in twistsock.__all__:
                    self.assertIs(getattr(twistsock, name), getattr(facade, name))

    def test_main_names(self) -> None:
        """
        The names the README promises are exported.
        """
        for name in (
            "OKEchoFactory",
            "OKEchoProtocol",
            "EchoSettings",
            "HTTPGetProtocol",
            "HTTPGetFactory",
            "fetch",
            "Response",
            "Timings",
            "FetchError",
            "__version__",
        ):
            self.assertIn(name, twistsock.__all__)

    def test_unknown_name(self) -> None:
        """
        Asking a facade for a name it does not have is an L{AttributeError}.
        """
        self.assertRaises(AttributeError, getattr, twistsock, "nothing_here")
        self.assertRaises(AttributeError, getattr, twistsock.http, "nothing_here")
        self.assertIn("fetch", dir(twistsock))

    def test_implementation_modules_are_private(self) -> None:
        """
        Every module is private except the facades and what tools need by name: the
        product packages, C{echo.tap} (twistd), C{__main__} (C{python -m}) and
        C{testing} (the in-memory fakes for users' tests).
        """
        public = set()
        for info in pkgutil.walk_packages([str(_PACKAGE)], "twistsock."):
            if not any(part.startswith("_") for part in info.name.split(".")[1:]):
                public.add(info.name)
        self.assertEqual(
            public,
            {"twistsock.echo", "twistsock.echo.tap", "twistsock.http", "twistsock.testing"},
        )

    def test_version_matches_metadata(self) -> None:
        """
        C{__version__} is the version the package is installed as.
        """
        from importlib.metadata import version

        self.assertEqual(twistsock.__version__, version("twistsock"))

    def test_no_global_reactor_at_import(self) -> None:
        """
        Importing every module of the package installs no reactor: the reactor is the
        caller's to choose (C{reactor=}), or imported only when a default is needed.
        """
        names = [info.name for info in pkgutil.walk_packages([str(_PACKAGE)], "twistsock.")]
        self.assertIn("twistsock.echo.tap", names)
        statement = "import importlib\n" + "".join(
            f"importlib.import_module({name!r})\n" for name in names
        )
        self.assertNotIn("twisted.internet.reactor", _modules_loaded_by(statement))


class ImportIsolationTests(SynchronousTestCase):
    """
    Each product loads only what it needs.
    """

    def test_echo_loads_no_client(self) -> None:
        """
        C{import twistsock.echo}, and the plugin's C{tap}, import neither h11 nor the client.
        """
        for statement in ("import twistsock.echo", "import twistsock.echo.tap"):
            loaded = _modules_loaded_by(statement)
            self.assertIn("twistsock.echo._protocol", loaded)
            self.assertNotIn("h11", loaded)
            self.assertEqual({m for m in loaded if m.startswith("twistsock.http")}, set())

    def test_http_loads_no_server(self) -> None:
        """
        C{twistsock.http}, even with every name used, imports nothing of the server.
        """
        statement = "import twistsock.http as h\nfor n in h.__all__: getattr(h, n)"
        loaded = _modules_loaded_by(statement)
        self.assertIn("h11", loaded)
        self.assertEqual({m for m in loaded if m.startswith("twistsock.echo")}, set())

    def test_facade_is_lazy(self) -> None:
        """
        C{import twistsock} loads neither product until one of its names is used.
        """
        loaded = _modules_loaded_by("import twistsock")
        self.assertEqual(
            {m for m in loaded if m.startswith("twistsock.")},
            {"twistsock._lazy", "twistsock._version"},
        )
        loaded = _modules_loaded_by("from twistsock import fetch")
        self.assertEqual({m for m in loaded if m.startswith("twistsock.echo")}, set())

    def test_get_help_loads_neither(self) -> None:
        """
        C{twistsock get --help} imports neither product's implementation nor Twisted.
        """
        statement = (
            "from twistsock._cli import main\n"
            "import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()): main(['get', '--help'])"
        )
        loaded = _modules_loaded_by(statement)
        self.assertEqual({m for m in loaded if m.startswith("twisted")}, set())
        self.assertNotIn("h11", loaded)
