"""
The OK-echo server: the tutorial's threaded server on one reactor.

L{OKEchoFactory} serves any stream server endpoint; L{OKEchoProtocol} is one client;
L{EchoSettings} holds every setting, checked once.  The twistd plugin
(C{twistd -n twistsock}) is built in L{twistsock.echo.tap}.

Importing this package loads nothing of the HTTP client.
"""

from twistsock.echo._factory import OKEchoFactory
from twistsock.echo._protocol import OKEchoProtocol
from twistsock.echo._settings import EchoSettings, InvalidSetting

__all__ = ["EchoSettings", "InvalidSetting", "OKEchoFactory", "OKEchoProtocol"]
