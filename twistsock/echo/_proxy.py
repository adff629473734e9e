"""
The PROXY protocol, versions 1 and 2, as bytes in and a header (or a need for more) out.

A load balancer such as HAProxy (C{server ... send-proxy} or C{send-proxy-v2}) opens its
own connection to the server and sends, before anything else, one header that names the
client it is relaying: U{https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt}.
Nothing here touches a transport or a clock, so the parser can be tested exhaustively and
fuzzed apart from the protocol that feeds it (L{twistsock.echo._protocol}).

Every header is bounded: a version 1 header is at most 107 bytes, a version 2 header 16
bytes plus at most L{MAX_V2_LENGTH} bytes of addresses and TLVs.  Garbage is reported as
soon as the bytes received cannot begin a header, so that a client that is not a proxy is
not kept waiting for a timeout.

Twisted has parsers of its own (C{twisted.protocols.haproxy._v1parser} and
C{_v2parser}), but they are private, they reject a header split before its 8th (v1) or
16th (v2) byte, and they turn unsupported address families into errors or C{None}
addresses that a caller cannot tell from C{LOCAL}; this one is small enough to own.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import struct
from typing import Literal

from twisted.internet.address import IPv4Address, IPv6Address

__all__ = [
    "MAX_V1_LENGTH",
    "MAX_V2_LENGTH",
    "InvalidProxyHeader",
    "ProxyHeader",
    "ProxyHeaderReader",
    "parse_proxy_header",
]

MAX_V1_LENGTH = 107
"""The longest version 1 header, C{"\\r\\n"} included (the specification's bound)."""

MAX_V2_LENGTH = 4096
"""
The largest version 2 length field accepted (addresses and TLVs, after the 16 fixed
bytes).  The format allows 65,535; what HAProxy sends (addresses, and TLVs for ALPN, the
TLS version and cipher, the SNI name, a unique id) fits well within this.
"""

V1_SIGNATURE = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

Kind = Literal["PROXY", "LOCAL", "UNKNOWN"]


class InvalidProxyHeader(ValueError):
    """
    The bytes received are not a PROXY protocol header.

    @ivar reason: what is wrong with them, for a log line (C{"not a PROXY header"}).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class ProxyHeader:
    """
    One parsed PROXY protocol header.

    @ivar version: C{1} (text) or C{2} (binary).
    @ivar kind: C{"PROXY"}: the header names the client in C{source}; C{"LOCAL"}: a
        version 2 connection the proxy made on its own behalf (HAProxy's health checks);
        C{"UNKNOWN"}: a relayed connection whose addresses the header does not give
        (version 1 C{UNKNOWN}, version 2 C{UNSPEC}, UNIX or datagram families).  For
        C{LOCAL} and C{UNKNOWN} the connection's own addresses are the ones to use.
    @ivar source: the client's address (C{kind} C{"PROXY"} only).
    @ivar destination: the address the client connected to (C{kind} C{"PROXY"} only).
    """

    version: Literal[1, 2]
    kind: Kind
    source: IPv4Address | IPv6Address | None = None
    destination: IPv4Address | IPv6Address | None = None


def parse_proxy_header(data: bytes) -> tuple[ProxyHeader, int] | None:
    """
    Parse the PROXY header at the start of C{data}.

    @param data: every byte received on the connection so far.
    @return: the header and its length in bytes (what follows is the client's own
        data), or C{None} when C{data} is the beginning of a header that is not complete
        yet.
    @raise InvalidProxyHeader: when C{data} cannot be, or begin, a header.
    """
    if data[:1] == b"P":
        return _parse_v1(data)
    if data[:1] == b"\r":
        return _parse_v2(data)
    if not data:
        return None
    raise InvalidProxyHeader("not a PROXY header")


def _parse_v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    """
    Parse a version 1 (text) header: C{PROXY TCP4 192.0.2.7 198.51.100.1 5555 80\\r\\n}.
    """
    if not data.startswith(V1_SIGNATURE[: len(data)]):
        raise InvalidProxyHeader("not a PROXY header")
    end = data.find(b"\r\n", 0, MAX_V1_LENGTH)
    if end < 0:
        if len(data) >= MAX_V1_LENGTH:
            raise InvalidProxyHeader(f"version 1 header longer than {MAX_V1_LENGTH} bytes")
        if b"\n" in data:
            raise InvalidProxyHeader("version 1 header not ended by CRLF")
        return None
    line = data[len(V1_SIGNATURE) : end]
    length = end + 2
    if line == b"UNKNOWN" or line.startswith(b"UNKNOWN "):
        return ProxyHeader(1, "UNKNOWN"), length
    fields = line.split(b" ")
    if len(fields) != 5 or fields[0] not in (b"TCP4", b"TCP6"):
        raise InvalidProxyHeader("version 1 header is not TCP4, TCP6 or UNKNOWN")
    address: type[IPv4Address] | type[IPv6Address]
    if fields[0] == b"TCP4":
        version, address = 4, IPv4Address
    else:
        version, address = 6, IPv6Address
    try:
        source_ip, destination_ip = (
            ipaddress.ip_address(field.decode("ascii")) for field in fields[1:3]
        )
    except (ValueError, UnicodeDecodeError):
        raise InvalidProxyHeader("version 1 header has a bad address") from None
    if source_ip.version != version or destination_ip.version != version:
        raise InvalidProxyHeader(f"version 1 header's addresses are not {fields[0].decode()}")
    ports = [_v1_port(field) for field in fields[3:5]]
    return (
        ProxyHeader(
            1,
            "PROXY",
            address("TCP", str(source_ip), ports[0]),
            address("TCP", str(destination_ip), ports[1]),
        ),
        length,
    )


def _v1_port(field: bytes) -> int:
    """
    A version 1 port number: decimal digits, no leading zero, 0 to 65535.
    """
    if (
        not field.isdigit()
        or len(field) > 5
        or (len(field) > 1 and field.startswith(b"0"))
        or int(field) > 65535
    ):
        raise InvalidProxyHeader("version 1 header has a bad port")
    return int(field)


# Version 2: the 13th byte holds the version (high nibble, 2) and the command (low
# nibble); the 14th the address family (high) and the transport (low); then the length.
_LOCAL, _PROXY = 0x0, 0x1
_UNSPEC, _INET, _INET6, _UNIX = 0x0, 0x1, 0x2, 0x3
_STREAM = 0x1
_FIXED = struct.Struct("!BBH")
_INET_ADDRESSES = struct.Struct("!4s4sHH")
_INET6_ADDRESSES = struct.Struct("!16s16sHH")


def _parse_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    """
    Parse a version 2 (binary) header: the signature, 4 fixed bytes, then C{length}
    bytes of addresses and TLVs (the TLVs are skipped).
    """
    if not data.startswith(V2_SIGNATURE[: len(data)]):
        raise InvalidProxyHeader("not a PROXY header")
    if len(data) > 12 and data[12] >> 4 != 2:
        raise InvalidProxyHeader(f"version 2 header has version {data[12] >> 4}")
    if len(data) > 12 and data[12] & 0xF not in (_LOCAL, _PROXY):
        raise InvalidProxyHeader(f"version 2 header has command {data[12] & 0xF}")
    if len(data) > 13 and (data[13] >> 4 > _UNIX or data[13] & 0xF > 2):
        raise InvalidProxyHeader(f"version 2 header has address family {data[13]:#04x}")
    if len(data) < 16:
        return None
    command_byte, family_byte, length = _FIXED.unpack_from(data, 12)
    if length > MAX_V2_LENGTH:
        raise InvalidProxyHeader(f"version 2 header longer than {MAX_V2_LENGTH} + 16 bytes")
    total = 16 + length
    if len(data) < total:
        return None
    if command_byte & 0xF == _LOCAL:
        return ProxyHeader(2, "LOCAL"), total
    family, transport = family_byte >> 4, family_byte & 0xF
    if transport != _STREAM or family not in (_INET, _INET6):
        return ProxyHeader(2, "UNKNOWN"), total
    layout = _INET_ADDRESSES if family == _INET else _INET6_ADDRESSES
    if length < layout.size:
        raise InvalidProxyHeader("version 2 header too short for its addresses")
    source, destination, source_port, destination_port = layout.unpack_from(data, 16)
    address = IPv4Address if family == _INET else IPv6Address
    return (
        ProxyHeader(
            2,
            "PROXY",
            address("TCP", str(ipaddress.ip_address(source)), source_port),
            address("TCP", str(ipaddress.ip_address(destination)), destination_port),
        ),
        total,
    )


class ProxyHeaderReader:
    """
    Collects the bytes of a header as they arrive, in pieces of any size.

    Holds at most one header's bytes (L{MAX_V1_LENGTH}, or 16 + L{MAX_V2_LENGTH}):
    anything longer is garbage, reported by L{parse_proxy_header}.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> tuple[ProxyHeader, bytes] | None:
        """
        Add received bytes.

        @return: the header and the bytes received after it (the client's own data, to
            be handled as if just received), or C{None} while the header is incomplete.
        @raise InvalidProxyHeader: when the bytes received cannot be, or begin, a header.
        """
        buffer = self._buffer + data if self._buffer else data
        parsed = parse_proxy_header(buffer)
        if parsed is None:
            self._buffer = buffer
            return None
        self._buffer = b""
        header, length = parsed
        return header, buffer[length:]
