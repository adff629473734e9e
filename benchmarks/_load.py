"""
The load generator of the echo benchmark: non-blocking sockets on one epoll selector per
process, every reply checked byte for byte, latency measured per line.

Linux only (C{select.epoll}, C{/proc}).  It is meant to run in processes of its own
(L{run_traffic} and L{run_idle} are the process targets), pinned to a CPU the server does not
use, so that the server, not the load, is what gets measured.

Every connection must first receive the welcome line.  With C{proxy=True} each connection
first sends a PROXY protocol version 1 header naming its own addresses (L{proxy_v1_header}),
as HAProxy's C{send-proxy} does, before anything else; the header is sent once, before the
measured window, so it costs nothing per reply.  The lines sent are 32 bytes each
(terminator included, every fourth one ending in C{\\r\\n}), taken in turn from a set of 64
different lines, so the expected reply stream is periodic: a received chunk is checked with one
C{bytes.startswith} against a precomputed copy of that stream, whatever its size.
"""

from __future__ import annotations

import errno
import os
import resource
import select
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

WELCOME = b"Welcome to the server. Type something and hit enter\n"
PREFIX = b"OK..."
LINE_LENGTH = 32
DISTINCT_LINES = 64
RECV_SIZE = 65536
#: Connections that may be waiting for their welcome at once; Twisted listens with a backlog
#: of 50, and a full accept queue costs a one-second SYN retransmission.
MAX_CONNECTING = 32


class ReplyMismatch(Exception):
    """
    A server sent bytes other than the ones the protocol requires.

    @ivar got: the bytes received.
    @ivar expected: the bytes that should have been received at that place.
    """

    def __init__(self, got: bytes, expected: bytes) -> None:
        super().__init__(f"expected {expected[:60]!r}, got {got[:60]!r}")
        self.got = got
        self.expected = expected


def proxy_v1_header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """
    The PROXY protocol version 1 header that HAProxy's C{send-proxy} sends for a TCP
    connection over IPv4 from C{source} to C{destination}, each C{(address, port)}.
    """
    (src, sport), (dst, dport) = source, destination
    return f"PROXY TCP4 {src} {dst} {sport} {dport}\r\n".encode("ascii")


def make_lines(
    count: int = DISTINCT_LINES, length: int = LINE_LENGTH
) -> tuple[list[bytes], bytes]:
    """
    Build the distinct request lines and the reply stream they call for.

    @return: the lines, and the replies to all of them in order (one period of the stream).
    """
    filler = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" * (length // 62 + 1)
    lines = []
    for i in range(count):
        terminator = b"\r\n" if i % 4 == 3 else b"\n"
        body = (b"%03d:" % i + filler)[: length - len(terminator)]
        lines.append(body + terminator)
    return lines, b"".join(PREFIX + line for line in lines)


class ReplyChecker:
    """
    Checks one connection's received bytes against the welcome and the expected replies.

    @ivar replies: how many complete replies have been received.
    """

    def __init__(self, welcome: bytes = WELCOME) -> None:
        lines, period = make_lines()
        self._welcome = welcome
        self._welcome_left = len(welcome)
        self._period = len(period)
        self._reply_length = len(period) // len(lines)
        # Enough copies that any chunk of RECV_SIZE bytes fits from any offset in a period.
        self._stream = period * (RECV_SIZE // len(period) + 2)
        self._received = 0
        self.replies = 0

    @property
    def welcomed(self) -> bool:
        """
        Whether the whole welcome line has arrived.
        """
        return self._welcome_left == 0

    def feed(self, data: bytes) -> int:
        """
        Check the next bytes received.

        @return: how many more replies are now complete.
        @raise ReplyMismatch: when a byte differs from what the protocol requires.
        """
        if self._welcome_left:
            start = len(self._welcome) - self._welcome_left
            head = data[: self._welcome_left]
            if not self._welcome.startswith(head, start):
                raise ReplyMismatch(head, self._welcome[start:])
            self._welcome_left -= len(head)
            data = data[len(head) :]
            if not data:
                return 0
        while data:
            chunk, data = data[:RECV_SIZE], data[RECV_SIZE:]
            offset = self._received % self._period
            if not self._stream.startswith(chunk, offset):
                raise ReplyMismatch(chunk, self._stream[offset : offset + len(chunk)])
            self._received += len(chunk)
        done = self._received // self._reply_length
        new, self.replies = done - self.replies, done
        return new


class _Connection:
    """
    One client connection's state in the load loop.
    """

    __slots__ = ("sock", "checker", "sent", "batches")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.checker = ReplyChecker()
        self.sent = 0
        #: (index after the last line of a batch, the time the batch was sent)
        self.batches: deque[tuple[int, float]] = deque()


@dataclass
class TrafficResult:
    """
    What one load process measured over its window.
    """

    replies: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)
    cpu_ticks: int | None = None
    user_ticks: int | None = None
    other_cpu_ticks: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """
        A plain dict, to cross a process boundary cheaply.
        """
        return asdict(self)


def raise_nofile_limit(wanted: int) -> int:
    """
    Raise this process's soft open-files limit toward C{wanted} (at most the hard limit).

    @return: the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def pin_to_cpu(cpu: int | None) -> None:
    """
    Run this process on one CPU only, when asked and when that CPU exists.
    """
    if cpu is not None and hasattr(os, "sched_setaffinity") and cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {cpu})


def cpu_ticks(pid: int) -> tuple[int, int]:
    """
    User and system CPU time of a whole process (all threads), in clock ticks.
    """
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]), int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)


def group_ticks(pids: Sequence[int]) -> tuple[int, int]:
    """
    User and system CPU time of several processes together, in clock ticks.
    """
    user = system = 0
    for pid in pids:
        u, s = cpu_ticks(pid)
        user += u
        system += s
    return user, system


def parent_pid(stat: bytes) -> int:
    """
    The parent's pid in the text of a C{/proc/PID/stat} file.
    """
    return int(stat.rsplit(b")", 1)[1].split()[1])  # ppid: field 4 of stat(5)


def process_tree(root: int) -> list[int]:
    """
    C{root} and all its descendants now running, C{root} first (from C{/proc/*/stat}).
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = parent_pid(f.read())
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        tree.append(pid)
        todo.extend(sorted(children.get(pid, [])))
    return tree


def socket_count(pid: int) -> int:
    """
    How many sockets process C{pid} holds open (C{/proc/PID/fd} links to C{socket:[...]}).
    """
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue  # closed meanwhile
    return count


def rss_kib(pid: int) -> int:
    """
    The resident set size of a process, in KiB (C{VmRSS} of C{/proc/PID/status}).
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def connect_all(
    host: str,
    port: int,
    count: int,
    epoll: select.epoll,
    deadline: float,
    proxy: bool = False,
) -> dict[int, _Connection]:
    """
    Open C{count} connections and wait until each has received the whole welcome line.

    At most L{MAX_CONNECTING} connections wait for their welcome at a time.  With C{proxy},
    each connection is made blocking and sends its PROXY v1 header at once.

    @return: the connections by file descriptor, registered for reading on C{epoll}.
    """
    conns: dict[int, _Connection] = {}
    waiting = 0
    welcomed = 0
    while welcomed < count:
        while len(conns) < count and waiting < MAX_CONNECTING:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if proxy:
                sock.settimeout(max(1.0, deadline - time.monotonic()))
                try:
                    sock.connect((host, port))
                    sock.sendall(proxy_v1_header(sock.getsockname(), sock.getpeername()))
                except OSError:
                    sock.close()
                    raise
                sock.setblocking(False)
            else:
                sock.setblocking(False)
                err = sock.connect_ex((host, port))
                if err not in (0, errno.EINPROGRESS):
                    sock.close()
                    raise OSError(err, f"connect: {os.strerror(err)}")
            conns[sock.fileno()] = _Connection(sock)
            epoll.register(sock.fileno(), select.EPOLLIN)
            waiting += 1
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {welcomed} of {count} connections were welcomed in time")
        for fd, _event in epoll.poll(0.2):
            conn = conns[fd]
            data = conn.sock.recv(RECV_SIZE)
            if not data:
                raise ConnectionError(f"closed before the welcome ({welcomed} welcomed)")
            conn.checker.feed(data)
            if conn.checker.welcomed:
                waiting -= 1
                welcomed += 1
    return conns


def close_all(conns: dict[int, _Connection], epoll: select.epoll) -> None:
    """
    Close every connection and the selector.
    """
    for conn in conns.values():
        conn.sock.close()
    epoll.close()


def traffic_loop(
    conns: dict[int, _Connection],
    epoll: select.epoll,
    depth: int,
    warmup: float,
    duration: float,
    server_pids: Sequence[int] | None,
    other_pids: dict[str, Sequence[int]] | None = None,
) -> TrafficResult:
    """
    Keep C{depth} lines in flight on every connection; measure the window after the warm-up.

    Each completed reply is answered at once by as many new lines, sent with one C{send}.

    @param server_pids: when given, the CPU ticks of these processes together (the
        server: one process, or a main process and its workers) are read at the window's
        edges.
    @param other_pids: other processes measured the same way, each group on its own
        (for example C{{"haproxy": [pid]}}), reported in C{other_cpu_ticks}.
    """
    others = dict(other_pids or {})
    others_start: dict[str, int] = {}
    lines, _period = make_lines()
    stream = b"".join(lines) * 2
    n_lines = len(lines)
    if depth > n_lines:
        raise ValueError(f"depth must be at most {n_lines}")
    result = TrafficResult()
    latencies = result.latencies
    weights = result.weights
    start = time.perf_counter()
    window_start = start + warmup
    window_end = window_start + duration
    ticks_start: tuple[int, int] | None = None
    in_window = False

    def send_lines(conn: _Connection, count: int, now: float) -> None:
        first = conn.sent % n_lines
        data = stream[first * LINE_LENGTH : (first + count) * LINE_LENGTH]
        if conn.sock.send(data) != len(data):
            raise BlockingIOError("the server stopped reading 512 bytes")
        conn.sent += count
        conn.batches.append((conn.sent, now))

    now = time.perf_counter()
    for conn in conns.values():
        send_lines(conn, depth, now)
    while True:
        events = epoll.poll(0.5)
        now = time.perf_counter()
        if not in_window and now >= window_start:
            in_window = True
            window_start = now
            window_end = now + duration
            if server_pids:
                ticks_start = group_ticks(server_pids)
                others_start = {name: sum(group_ticks(p)) for name, p in others.items()}
        if now >= window_end:
            break
        if not events:
            raise TimeoutError("no reply for half a second")
        for fd, _event in events:
            conn = conns[fd]
            data = conn.sock.recv(RECV_SIZE)
            if not data:
                raise ConnectionError("the server closed a connection")
            before = conn.checker.replies
            new = conn.checker.feed(data)
            if not new:
                continue
            done = before + new
            batches = conn.batches
            while batches and batches[0][0] <= done:
                end, sent_at = batches.popleft()
                if in_window:
                    latencies.append(now - sent_at)
                    weights.append(end - before)
                before = end
            if before < done and in_window:
                latencies.append(now - batches[0][1])
                weights.append(done - before)
            if in_window:
                result.replies += new
            send_lines(conn, new, now)
    result.seconds = now - window_start
    if server_pids and ticks_start is not None:
        user, system = group_ticks(server_pids)
        result.user_ticks = user - ticks_start[0]
        result.cpu_ticks = user + system - sum(ticks_start)
        result.other_cpu_ticks = {
            name: sum(group_ticks(p)) - others_start[name] for name, p in others.items()
        }
    return result


def run_traffic(
    host: str,
    port: int,
    connections: int,
    depth: int,
    warmup: float,
    duration: float,
    server_pids: Sequence[int] | None,
    cpu: int | None,
    ready: Any,
    results: Any,
    other_pids: dict[str, Sequence[int]] | None = None,
    proxy: bool = False,
) -> None:
    """
    Process target: connect, wait for every load process (C{ready}, a barrier), run the
    traffic and put a L{TrafficResult} dict on C{results} (a queue).

    @param proxy: send a PROXY v1 header first on each connection.
    """
    pin_to_cpu(cpu)
    raise_nofile_limit(connections + 64)
    epoll = select.epoll()
    conns: dict[int, _Connection] = {}
    try:
        conns = connect_all(host, port, connections, epoll, time.monotonic() + 30, proxy)
        ready.wait(60)
        result = traffic_loop(conns, epoll, depth, warmup, duration, server_pids, other_pids)
    except Exception as e:  # reported to the runner, which prints it
        result = TrafficResult(error=f"{type(e).__name__}: {e}")
        ready.abort()
    finally:
        close_all(conns, epoll)
    results.put(result.as_dict())


def run_idle(
    host: str,
    port: int,
    connections: int,
    cpu: int | None,
    pipe: Any,
    timeout: float,
    proxy: bool = False,
) -> None:
    """
    Process target: hold C{connections} idle connections, then send one line on each.

    Talks with the runner over C{pipe} so that it can read the server's memory at each step:
    sends C{("connected", seconds)}, waits for C{"go"}, sends one line on every connection,
    sends C{("answered", count, seconds)} once all replies arrived (or the time ran out),
    waits for C{"close"}, and closes.  Any failure is sent as C{("error", text)}.
    """
    pin_to_cpu(cpu)
    raise_nofile_limit(connections + 64)
    epoll = select.epoll()
    conns: dict[int, _Connection] = {}
    lines, _period = make_lines()
    try:
        began = time.monotonic()
        conns = connect_all(host, port, connections, epoll, began + timeout, proxy)
        pipe.send(("connected", time.monotonic() - began))
        pipe.recv()
        began = time.monotonic()
        deadline = began + timeout
        for conn in conns.values():
            conn.sock.sendall(lines[0])
        answered = 0
        while answered < connections and time.monotonic() < deadline:
            for fd, _event in epoll.poll(0.2):
                conn = conns[fd]
                data = conn.sock.recv(RECV_SIZE)
                if not data:
                    raise ConnectionError(f"a connection closed ({answered} answered)")
                answered += conn.checker.feed(data)
        pipe.send(("answered", answered, time.monotonic() - began))
        pipe.recv()
    except Exception as e:  # reported to the runner, which prints it
        pipe.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        close_all(conns, epoll)
