"""
End to end behind a real HAProxy: C{twistd -n twistsock --proxy-protocol} behind Debian's
C{haproxy}, configured with the README's "Behind a load balancer" configuration
(C{send-proxy}, C{send-proxy-v2} and C{ssl send-proxy}), clients bound to 127.0.0.2 and
127.0.0.3.

HAProxy runs in the foreground (C{-db}) as a child of the test, is killed in the cleanup,
and listens and connects on 127.0.0.1 only.  Without a C{haproxy} on the C{PATH} the tests
are skipped, with the reason shown (C{.ci/run} installs it).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests._certificates import make_self_signed
from tests._sockets import WELCOME, recv_all, recv_exactly
from tests._twistd import Twistd

README = Path(__file__).resolve().parent.parent / "README.md"
_CONFIG = re.compile(r"<!-- haproxy-config -->\n```haproxy\n(.*?)```", re.S)

#: What the README's configuration names, and what the test puts in their place.
ECHO, ECHO_TLS, FRONT_V1, FRONT_V2, FRONT_TLS = (
    "127.0.0.1:8888",
    "127.0.0.1:8443",
    "127.0.0.1:9000",
    "127.0.0.1:9001",
    "127.0.0.1:9443",
)
CA_FILE = "/etc/twistsock/cert.pem"


def readme_config() -> str:
    """
    The HAProxy configuration of the README's "Behind a load balancer" section.
    """
    found = _CONFIG.findall(README.read_text())
    assert len(found) == 1, "README.md must hold one haproxy-config block"
    return str(found[0])


def free_port() -> int:
    """
    A TCP port on 127.0.0.1 that nothing listens on now.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def client(port: int, source: str = "127.0.0.2") -> socket.socket:
    """
    A blocking socket from C{source} (any port) connected to 127.0.0.1:C{port}.
    """
    sock = socket.socket()
    sock.settimeout(15)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


class ReadmeConfigTests(SynchronousTestCase):
    """
    The README's configuration is what the end-to-end tests run.
    """

    def test_placeholders(self) -> None:
        """
        It names every address the tests replace (the plain port twice: behind v1 and
        v2), and no other, so that none of them runs against a stray address.
        """
        config = readme_config()
        for address, count in [
            (ECHO, 2), (ECHO_TLS, 1), (FRONT_V1, 1), (FRONT_V2, 1), (FRONT_TLS, 1)
        ]:  # fmt: skip
            self.assertEqual(config.count(address), count, address)
        self.assertEqual(len(re.findall(r"\d+\.\d+\.\d+\.\d+:\d+", config)), 6)
        self.assertIn(CA_FILE, config)
        self.assertIn("send-proxy-v2", config)


class HAProxyTests(SynchronousTestCase):
    """
    The five defects of Twisted's C{haproxy:} wrapper, behind a real HAProxy.
    """

    def setUp(self) -> None:
        haproxy = shutil.which("haproxy") or shutil.which("/usr/sbin/haproxy")
        if haproxy is None:
            raise self.skipTest("haproxy is not installed (apt-get install haproxy)")
        directory = Path(tempfile.mkdtemp(prefix="twistsock-haproxy-"))
        self.addCleanup(shutil.rmtree, directory, True)
        key, cert = make_self_signed(directory)
        self.server = Twistd(
            "--proxy-protocol",
            "--max-per-ip",
            "2",
            "--port",
            "tcp:0:interface=127.0.0.1",
            "--port",
            f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
        )
        self.addCleanup(self.server.stop)
        ports = {}
        for kind in ("tcp", "ssl"):
            found = self.server.wait_for_line(rf"twistsock listening on {kind}:\S+ \(.*:(\d+)\)")
            ports[kind] = int(found.group(1))
        self.front = {"v1": free_port(), "v2": free_port(), "tls": free_port()}
        config = readme_config()
        for old, new in [
            (ECHO, f"127.0.0.1:{ports['tcp']}"),
            (ECHO_TLS, f"127.0.0.1:{ports['ssl']}"),
            (FRONT_V1, f"127.0.0.1:{self.front['v1']}"),
            (FRONT_V2, f"127.0.0.1:{self.front['v2']}"),
            (FRONT_TLS, f"127.0.0.1:{self.front['tls']}"),
            (CA_FILE, str(cert)),
        ]:
            config = config.replace(old, new)
        (directory / "haproxy.cfg").write_text(config)
        check = subprocess.run(
            [haproxy, "-c", "-q", "-f", str(directory / "haproxy.cfg")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.haproxy = subprocess.Popen(
            [haproxy, "-db", "-f", str(directory / "haproxy.cfg")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.addCleanup(self.stop_haproxy)
        deadline = time.monotonic() + 15
        for port in self.front.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or self.haproxy.poll() is not None:
                        self.fail(f"haproxy never listened on {port}")
                    time.sleep(0.05)

    def stop_haproxy(self) -> None:
        """
        Kill HAProxy and reap it.
        """
        self.haproxy.kill()
        self.haproxy.wait(15)
        assert self.haproxy.stderr is not None
        self.haproxy.stderr.close()

    def converse(self, port: int, source: str = "127.0.0.2") -> tuple[int, bytes]:
        """
        Connect from C{source}, send a line, read the welcome and the reply, close.

        @return: the client's own port and what it received.
        """
        with client(port, source) as sock:
            sock.sendall(b"hi\n")
            return sock.getsockname()[1], recv_exactly(sock, len(WELCOME) + 8)

    def test_log_names_real_client(self) -> None:
        """
        Through C{send-proxy} and C{send-proxy-v2} the C{Connected with} and
        C{Disconnected} lines name the client (127.0.0.2 and its port), not HAProxy.
        """
        for front in ("v1", "v2"):
            own_port, received = self.converse(self.front[front])
            self.assertEqual(received, WELCOME + b"OK...hi\n")
            self.server.wait_for_line(rf"Connected with 127\.0\.0\.2:{own_port}$")
            self.server.wait_for_line(rf"Disconnected 127\.0\.0\.2:{own_port} after")

    def test_per_ip_counts_real_clients(self) -> None:
        """
        C{--max-per-ip 2}: two clients from 127.0.0.2 are served, a third from there is
        refused, and one from 127.0.0.3 is served.
        """
        socks = []
        received = []
        for source in ("127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3"):
            sock = client(self.front["v1"], source)
            self.addCleanup(sock.close)
            socks.append(sock)
            received.append(recv_exactly(sock, 18))
        self.assertEqual(
            received, [WELCOME[:18], WELCOME[:18], b"ERROR server busy\n", WELCOME[:18]]
        )
        self.server.wait_for_line(r"Refused 127\.0\.0\.2:\d+: server busy \(max 2 connections")

    def test_half_close(self) -> None:
        """
        C{one\\ntwo\\ntail}, then SHUT_WR, through both PROXY versions, ten times each:
        every reply arrives, every time.
        """
        for front in ("v1", "v2") * 10:
            with client(self.front[front]) as sock:
                sock.sendall(b"one\ntwo\ntail")
                sock.shutdown(socket.SHUT_WR)
                self.assertEqual(recv_all(sock), WELCOME + b"OK...one\nOK...two\nOK...tail")

    def test_tls_send_proxy(self) -> None:
        """
        C{ssl send-proxy}: HAProxy sends the header in clear, then TLS to the server; the
        server greets after the handshake and names the real client.
        """
        own_port, received = self.converse(self.front["tls"], "127.0.0.3")
        self.assertEqual(received, WELCOME + b"OK...hi\n")
        self.server.wait_for_line(rf"Connected with 127\.0\.0\.3:{own_port}$")
