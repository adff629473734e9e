"""
The HTTP client's default limits, in a module that imports nothing, so that the command
line can show them in C{--help} without loading the client.
"""

__all__ = ["DEFAULT_MAX_BODY_SIZE", "DEFAULT_TIMEOUT", "MIN_FRAMING_LIMIT"]

DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024
"""
The default limit on a body, 64 MiB.  The whole body is held in memory (twice once C{raw}
is read, or for a chunked body), so the default protects a caller that forgot to think
about it; pass a larger limit to download larger files.
"""

DEFAULT_TIMEOUT = 30.0
"""Seconds a whole transfer may take unless told otherwise."""

MIN_FRAMING_LIMIT = 1024 * 1024
"""
The least framing (see L{HTTPGetProtocol}'s C{framing_limit}) allowed whatever the body
limit: 20,000 one-byte chunks take 100 kB of chunk framing, for a 20 kB body.
"""
