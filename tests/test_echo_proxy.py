"""
Tests for L{twistsock.echo._proxy}: the PROXY protocol header parser, sans-IO.
"""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.trial.unittest import SynchronousTestCase

from tests.test_echo_framing import split_at
from twistsock.echo._proxy import (
    MAX_V2_LENGTH,
    V2_SIGNATURE,
    InvalidProxyHeader,
    ProxyHeader,
    ProxyHeaderReader,
    parse_proxy_header,
)


def v1(source: str = "192.0.2.7", port: int = 5555, family: str = "TCP4") -> bytes:
    """
    A version 1 header from C{source}:C{port} to the server at 127.0.0.1:19002 (or ::1).
    """
    destination = "127.0.0.1" if family == "TCP4" else "::1"
    return f"PROXY {family} {source} {destination} {port} 19002\r\n".encode()


def v2(
    source: str = "192.0.2.7",
    port: int = 5555,
    command: int = 1,
    family: int | None = None,
    tlvs: bytes = b"",
) -> bytes:
    """
    A version 2 header (C{command} 1: PROXY, 0: LOCAL) from C{source}:C{port}, then C{tlvs}.
    """
    ip = ipaddress.ip_address(source)
    destination = ipaddress.ip_address("127.0.0.1" if ip.version == 4 else "::1")
    if family is None:
        family = 0x11 if ip.version == 4 else 0x21
    addresses = ip.packed + destination.packed + struct.pack("!HH", port, 19002)
    if family >> 4 == 0:  # UNSPEC: no addresses
        addresses = b""
    body = addresses + tlvs
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def tlv(kind: int, value: bytes) -> bytes:
    """
    One version 2 TLV.
    """
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def read_all(pieces: list[bytes]) -> tuple[ProxyHeader, bytes] | str | None:
    """
    Feed C{pieces} to a L{ProxyHeaderReader} one by one, as a connection would.

    @return: the header and everything received after it, the reason the bytes were
        refused, or C{None} if the header never completed.
    """
    reader = ProxyHeaderReader()
    after: list[bytes] = []
    header = None
    for piece in pieces:
        if header is not None:
            after.append(piece)
            continue
        try:
            parsed = reader.feed(piece)
        except InvalidProxyHeader as e:
            return e.reason
        if parsed is not None:
            header, rest = parsed
            after.append(rest)
    return None if header is None else (header, b"".join(after))


class VersionOneTests(SynchronousTestCase):
    """
    The text header: C{PROXY TCP4|TCP6|UNKNOWN ...\\r\\n}.
    """

    def test_tcp4(self) -> None:
        """
        A TCP4 header names the client and the address it connected to; its length is
        returned so the client's data that follows can be handled.
        """
        data = v1() + b"hello\n"
        self.assertEqual(
            parse_proxy_header(data),
            (
                ProxyHeader(
                    1,
                    "PROXY",
                    IPv4Address("TCP", "192.0.2.7", 5555),
                    IPv4Address("TCP", "127.0.0.1", 19002),
                ),
                len(v1()),
            ),
        )

    def test_tcp6(self) -> None:
        """
        A TCP6 header gives IPv6 addresses, in their compressed form.
        """
        header, _ = parse_proxy_header(v1("2001:db8:0::7", family="TCP6"))  # type: ignore[misc]
        self.assertEqual(header.source, IPv6Address("TCP", "2001:db8::7", 5555))

    def test_unknown(self) -> None:
        """
        C{UNKNOWN}, with or without addresses after it, names no client.
        """
        for line in (b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN ::1 ::1 1 2\r\n"):
            self.assertEqual(parse_proxy_header(line), (ProxyHeader(1, "UNKNOWN"), len(line)))

    def test_incomplete(self) -> None:
        """
        Every proper beginning of a header asks for more bytes.
        """
        header = v1()
        for end in range(len(header)):
            self.assertIsNone(parse_proxy_header(header[:end]), header[:end])

    def test_longest(self) -> None:
        """
        107 bytes is the longest header; one more is refused without waiting for the end.
        """
        longest = b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n"
        self.assertEqual(len(longest), 107)
        self.assertEqual(parse_proxy_header(longest), (ProxyHeader(1, "UNKNOWN"), 107))
        with self.assertRaises(InvalidProxyHeader) as caught:
            parse_proxy_header(b"PROXY UNKNOWN " + b"x" * 93)
        self.assertEqual(caught.exception.reason, "version 1 header longer than 107 bytes")

    def test_garbage(self) -> None:
        """
        Bytes that cannot be a header are refused, each with a reason.
        """
        for data, reason in [
            (b"GET / HTTP/1.1\r\n", "not a PROXY header"),
            (b"PROXI", "not a PROXY header"),
            (b"hello\n", "not a PROXY header"),
            (b"PROXY TCP4 1.2.3.4\n", "version 1 header not ended by CRLF"),
            (
                b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
                "version 1 header is not TCP4, TCP6 or UNKNOWN",
            ),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", "version 1 header is not TCP4, TCP6 or UNKNOWN"),
            (
                b"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n",
                "version 1 header is not TCP4, TCP6 or UNKNOWN",
            ),
            (b"PROXY TCP4 1.2.3.400 1.2.3.4 1 2\r\n", "version 1 header has a bad address"),
            (b"PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", "version 1 header has a bad address"),
            (b"PROXY TCP4 \xff 1.2.3.4 1 2\r\n", "version 1 header has a bad address"),
            (b"PROXY TCP4 ::1 ::1 1 2\r\n", "version 1 header's addresses are not TCP4"),
            (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "version 1 header's addresses are not TCP6"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n", "version 1 header has a bad port"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n", "version 1 header has a bad port"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n", "version 1 header has a bad port"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 \r\n", "version 1 header has a bad port"),
        ]:
            with self.assertRaises(InvalidProxyHeader, msg=repr(data)) as caught:
                parse_proxy_header(data)
            self.assertEqual(caught.exception.reason, reason, data)

    def test_port_zero(self) -> None:
        """
        Port 0 is a port number like any other.
        """
        header, _ = parse_proxy_header(v1(port=0))  # type: ignore[misc]
        self.assertEqual(header.source, IPv4Address("TCP", "192.0.2.7", 0))


class VersionTwoTests(SynchronousTestCase):
    """
    The binary header: a 12-byte signature, version and command, family, length.
    """

    def test_inet(self) -> None:
        """
        A PROXY command over TCP/IPv4 names the client.
        """
        self.assertEqual(
            parse_proxy_header(v2() + b"rest"),
            (
                ProxyHeader(
                    2,
                    "PROXY",
                    IPv4Address("TCP", "192.0.2.7", 5555),
                    IPv4Address("TCP", "127.0.0.1", 19002),
                ),
                len(v2()),
            ),
        )

    def test_inet6(self) -> None:
        """
        TCP/IPv6 addresses come back compressed.
        """
        header, _ = parse_proxy_header(v2("2001:db8::7", 1))  # type: ignore[misc]
        self.assertEqual(header.source, IPv6Address("TCP", "2001:db8::7", 1))
        self.assertEqual(header.destination, IPv6Address("TCP", "::1", 19002))

    def test_tlvs_skipped(self) -> None:
        """
        TLVs after the addresses (ALPN, authority, SSL...) are part of the header, skipped.
        """
        tlvs = tlv(0x01, b"h2") + tlv(0x02, b"example.com") + tlv(0x20, b"\x01" + b"\0" * 4)
        data = v2(tlvs=tlvs)
        self.assertEqual(parse_proxy_header(data + b"x")[1], len(data))  # type: ignore[index]

    def test_local(self) -> None:
        """
        LOCAL (HAProxy's health checks) names no client, whatever its address block says.
        """
        self.assertEqual(
            parse_proxy_header(v2(command=0)), (ProxyHeader(2, "LOCAL"), len(v2(command=0)))
        )

    def test_unknown_families(self) -> None:
        """
        UNSPEC, UNIX and datagram families relay a connection without naming a client.
        """
        for family in (0x00, 0x01, 0x10, 0x12, 0x22, 0x31, 0x32):
            data = v2(family=family, tlvs=b"\0" * 216)
            self.assertEqual(
                parse_proxy_header(data), (ProxyHeader(2, "UNKNOWN"), len(data)), hex(family)
            )

    def test_incomplete(self) -> None:
        """
        Every proper beginning of a header asks for more bytes.
        """
        header = v2(tlvs=tlv(1, b"h2"))
        for end in range(len(header)):
            self.assertIsNone(parse_proxy_header(header[:end]), end)

    def test_garbage(self) -> None:
        """
        A wrong signature, version, command or family is refused as soon as its byte
        arrives; so are addresses cut short and an over-long header.
        """
        good = v2()
        for data, reason in [
            (b"\r\n\r\n\x00\r\nQUIT\r", "not a PROXY header"),
            (good[:12] + b"\x11", "version 2 header has version 1"),
            (good[:12] + b"\x22", "version 2 header has command 2"),
            (good[:13] + b"\x41", "version 2 header has address family 0x41"),
            (good[:13] + b"\x13", "version 2 header has address family 0x13"),
            (
                good[:14] + b"\x00\x04" + good[16:20],
                "version 2 header too short for its addresses",
            ),
            (
                good[:14] + struct.pack("!H", MAX_V2_LENGTH + 1),
                f"version 2 header longer than {MAX_V2_LENGTH} + 16 bytes",
            ),
        ]:
            with self.assertRaises(InvalidProxyHeader, msg=repr(data)) as caught:
                parse_proxy_header(data)
            self.assertEqual(caught.exception.reason, reason, data)

    def test_longest(self) -> None:
        """
        A header of 16 + L{MAX_V2_LENGTH} bytes is accepted.
        """
        data = v2(tlvs=tlv(0xE0, b"\0" * (MAX_V2_LENGTH - 12 - 3)))
        self.assertEqual(len(data), 16 + MAX_V2_LENGTH)
        self.assertEqual(parse_proxy_header(data)[1], len(data))  # type: ignore[index]


class ReaderTests(SynchronousTestCase):
    """
    L{ProxyHeaderReader} collects a header that arrives in pieces.
    """

    def test_empty(self) -> None:
        """
        No bytes: no header yet.
        """
        self.assertIsNone(ProxyHeaderReader().feed(b""))

    def test_garbage_at_once(self) -> None:
        """
        A client that is not a proxy is refused at its first byte, not at a timeout.
        """
        self.assertEqual(read_all([b"h"]), "not a PROXY header")
        self.assertEqual(read_all([b"PROX", b"Y-"]), "not a PROXY header")

    def test_bounded(self) -> None:
        """
        A reader never holds more than one header's worth of bytes.
        """
        reader = ProxyHeaderReader()
        self.assertIsNone(reader.feed(b"PROXY " + b"x" * 100))
        self.assertRaises(InvalidProxyHeader, reader.feed, b"x")

    @settings(max_examples=300, deadline=None)
    @given(
        data=st.one_of(
            st.binary(max_size=120),
            st.binary(max_size=60).map(lambda b: b"PROXY " + b),
            st.binary(max_size=60).map(lambda b: V2_SIGNATURE + b),
        )
    )
    def test_any_bytes(self, data: bytes) -> None:
        """
        Any bytes give a header, a need for more, or L{InvalidProxyHeader}: no other
        error, and a header never longer than the bytes given.
        """
        try:
            parsed = parse_proxy_header(data)
        except InvalidProxyHeader:
            return
        if parsed is not None:
            self.assertLessEqual(parsed[1], len(data))

    @settings(max_examples=300, deadline=None)
    @given(
        header=st.one_of(
            st.builds(v1, st.ip_addresses(v=4).map(str), st.integers(0, 65535)),
            st.builds(
                v1,
                st.ip_addresses(v=6).map(str),
                st.integers(0, 65535),
                family=st.just("TCP6"),
            ),
            st.just(b"PROXY UNKNOWN\r\n"),
            st.builds(
                v2,
                st.ip_addresses().map(str),
                st.integers(0, 65535),
                command=st.integers(0, 1),
                tlvs=st.lists(
                    st.builds(tlv, st.integers(0, 255), st.binary(max_size=40)), max_size=4
                ).map(b"".join),
            ),
        ),
        payload=st.binary(max_size=40),
        cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=12),
    )
    def test_any_split_same_header(self, header: bytes, payload: bytes, cuts: list[int]) -> None:
        """
        A header (v1, v2, with TLVs) followed by payload, split anywhere, parses the same
        as when it arrives whole, and the payload after it is kept byte for byte.
        """
        whole = read_all([header + payload])
        assert isinstance(whole, tuple)
        self.assertEqual(whole[1], payload)
        self.assertEqual(read_all(split_at(header + payload, cuts)), whole)
