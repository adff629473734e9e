"""
The public facade: L{twistsock.__all__} names exactly what users may import.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from twisted.trial.unittest import SynchronousTestCase

import twistsock


class PublicAPITests(SynchronousTestCase):
    """
    One facade with C{__all__}; implementation lives in private modules.
    """

    def test_all_is_importable(self) -> None:
        """
        Every name in C{__all__} exists and is documented.
        """
        for name in twistsock.__all__:
            value = getattr(twistsock, name)
            if name != "__version__":
                self.assertTrue(inspect.getdoc(value), f"{name} has no docstring")

    def test_main_names(self) -> None:
        """
        The names the README promises are exported.
        """
        for name in (
            "OKEchoFactory",
            "OKEchoProtocol",
            "HTTPGetProtocol",
            "HTTPGetFactory",
            "fetch",
            "Response",
            "__version__",
        ):
            self.assertIn(name, twistsock.__all__)

    def test_implementation_modules_are_private(self) -> None:
        """
        Every module in the package is private, except the facade's companions that
        tools need by name: C{tap} (twistd) and C{__main__} (C{python -m}).
        """
        public = {
            info.name
            for info in pkgutil.iter_modules(twistsock.__path__)
            if not info.name.startswith("_")
        }
        self.assertEqual(public, {"tap"})

    def test_version_matches_metadata(self) -> None:
        """
        C{__version__} is the version the package is installed as.
        """
        from importlib.metadata import version

        self.assertEqual(twistsock.__version__, version("twistsock"))

    def test_no_global_reactor_at_import(self) -> None:
        """
        Importing the library modules does not import the global reactor at module level.
        """
        for info in pkgutil.iter_modules(twistsock.__path__):
            module = importlib.import_module(f"twistsock.{info.name}")
            source = inspect.getsource(module)
            for line in source.splitlines():
                self.assertFalse(
                    line.startswith("from twisted.internet import reactor"),
                    f"{info.name} imports the reactor at module level",
                )
