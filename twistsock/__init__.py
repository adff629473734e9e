"""
twistsock: the classic blocking-socket tutorial made real on Twisted.

An OK-echo server (L{OKEchoFactory}, also the C{twistsock} twistd plugin) and an HTTP GET
client (L{fetch}, L{HTTPGetFactory}) that reads the whole response correctly.
"""

from twistsock._echo import OKEchoFactory, OKEchoProtocol
from twistsock._version import __version__

__all__ = [
    "__version__",
    "OKEchoFactory",
    "OKEchoProtocol",
]
