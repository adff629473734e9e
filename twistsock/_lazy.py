"""
Lazy public names for twistsock's facades (PEP 562).

A facade lists which module holds each of its public names; a name's module is imported
the first time the name is asked for.  So C{import twistsock} or C{import twistsock.http}
costs almost nothing, and a program loads only the product it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    facade: str, namespace: dict[str, Any], homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """
    The C{__getattr__} and C{__dir__} of a facade module.

    @param facade: the facade's module name, for the error message.
    @param namespace: the facade's C{globals()}: an imported name is stored there, so
        that the next lookup is an ordinary one.
    @param homes: each public name, and the module that defines it.
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {facade!r} has no attribute {name!r}")
        value = getattr(import_module(home), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        # The public names and the module's own dunders, not its private helpers.
        own = {name for name in namespace if name.startswith("__") and name.endswith("__")}
        return sorted(own | set(homes) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
