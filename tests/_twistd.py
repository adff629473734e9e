"""
Run C{twistd -n twistsock} as a subprocess for end-to-end tests.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

STARTUP_TIMEOUT = 30.0
_LISTENING = re.compile(r"twistsock listening on (\S+) \((.*)\)")


def twistd_command() -> list[str]:
    """
    The twistd of the running Python's environment.
    """
    script = Path(sys.executable).parent / "twistd"
    if script.exists():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def twist_command() -> list[str]:
    """
    The twist (Twisted's newer runner) of the running Python's environment.
    """
    return [sys.executable, "-m", "twisted", "--log-format=text"]


class Twistd:
    """
    A C{twistd -n twistsock ...} process whose output is collected line by line.

    @ivar lines: the lines it wrote to stdout (its log, with C{-n}) so far.
    """

    def __init__(
        self,
        *arguments: str,
        file_limit: int | None = None,
        reactor: str | None = None,
        twist: bool = False,
        pidfile: bool = False,
    ) -> None:
        """
        @param pidfile: let twistd write its default pid file, C{twistd.pid} in
            L{directory}, instead of passing C{--pidfile=}.
        """
        self.directory = tempfile.mkdtemp(prefix="twistsock-e2e-")

        def limit_files() -> None:
            if file_limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (file_limit, file_limit))

        self.process = subprocess.Popen(
            [
                *(twist_command() if twist else twistd_command()),
                *([f"--reactor={reactor}"] if reactor else []),
                *([] if twist else ["-n"]),
                *([] if twist or pidfile else ["--pidfile="]),
                "twistsock",
                *arguments,
            ],
            cwd=self.directory,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=limit_files,
        )
        self.lines: list[str] = []
        self.stderr = b""
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()

    def wait_for_line(self, pattern: str, timeout: float = STARTUP_TIMEOUT) -> re.Match[str]:
        """
        Wait until a log line matches C{pattern}; raise L{AssertionError} on timeout or exit.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            checked = 0
            while True:
                for line in self.lines[checked:]:
                    match = regex.search(line)
                    if match:
                        return match
                checked = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(
                        f"no log line matching {pattern!r}; output:\n" + "\n".join(self.lines)
                    )
                self._changed.wait(min(left, 0.1))

    def address(self) -> tuple[str, int]:
        """
        Wait until the server listens and return the host and port it is bound to.
        """
        where = self.wait_for_line(_LISTENING.pattern).group(2)
        host, _, port = where.rpartition(":")
        return host.strip("[]"), int(port)

    def connect(self, timeout: float = 10.0) -> socket.socket:
        """
        A blocking client socket connected to the server.
        """
        return socket.create_connection(self.address(), timeout=timeout)

    def finish(self, timeout: float = 15.0) -> int:
        """
        Wait for the process to exit and its output to be read; return its exit status.
        """
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def stop(self) -> None:
        """
        Make sure the process is gone (a test cleanup).
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.finish()
        for name in os.listdir(self.directory):
            os.unlink(os.path.join(self.directory, name))
        os.rmdir(self.directory)
