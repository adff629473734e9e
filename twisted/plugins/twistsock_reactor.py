"""
The C{twistsock-epoll} reactor for C{twistd -r}: see L{twistsock._twisted.LeanEPollReactor}.
"""

from twisted.application.reactors import Reactor

twistsock_epoll = Reactor(
    "twistsock-epoll",
    "twistsock._twisted",
    "epoll(4) reactor without the per-event logging context (faster; from twistsock).",
)
