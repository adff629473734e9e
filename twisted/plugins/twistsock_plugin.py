"""
The C{twistsock} twistd plugin: C{twistd -n twistsock --port 8888}.

This file holds only the L{ServiceMaker}; options and service construction live in
L{twistsock.echo.tap}, so importing the plugin (which twistd does for C{--help}) stays cheap.
"""

from twisted.application.service import ServiceMaker

twistsock = ServiceMaker(
    "twistsock",
    "twistsock.echo.tap",
    "An OK-echo server: greets each client, answers every line with OK... + the line.",
    "twistsock",
)
