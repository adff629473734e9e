"""
How long the C{twistsock} command takes to start, against importing Twisted's reactor.

    .venv/bin/python benchmarks/startup.py            # 30 runs of each command, ~1 minute
    .venv/bin/python benchmarks/startup.py --quick    # 3 runs each, results in results/tmp/

Each command runs in a fresh interpreter, the commands interleaved so that a busy moment
of the machine falls on all of them alike; the figure is the median wall time.  The
commands:

  - C{reactor}: C{python -c "import twisted.internet.reactor"}, the floor any Twisted
    program pays;
  - C{get --help}: C{twistsock get --help}, which must not load Twisted at all;
  - C{get URL}: C{twistsock get http://127.0.0.1:PORT/} from a small HTTP server in this
    process, the whole command: start, fetch, write, exit.

Writes C{results/startup.md} and C{results/startup.json}, with the modules C{get URL}
spends most import time on (C{python -X importtime}).
"""

from __future__ import annotations

import argparse
import http.server
import json
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class _Hello(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a short body."""

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        body = b"hello, world\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Say nothing."""


def _timed(command: list[str]) -> float:
    """Run C{command}, check it succeeded, return its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=60)
    return time.perf_counter() - started


def _import_profile(command: list[str], top: int = 12) -> list[tuple[str, int]]:
    """The C{top} modules by cumulative import time (µs) for C{command}, a C{-m} call."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *command[1:]],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rows = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            if not name.startswith("  "):  # top-level imports only: no double counting
                rows.append((name.strip(), int(cumulative)))
    return sorted(rows, key=lambda row: row[1], reverse=True)[:top]


def main() -> None:
    """Measure, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs each, into results/tmp/")
    parser.add_argument("--runs", type=int, default=30)
    options = parser.parse_args()
    runs = 3 if options.quick else options.runs
    out = HERE / "results" / ("tmp" if options.quick else "")
    out.mkdir(parents=True, exist_ok=True)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    python = sys.executable
    commands = {
        "reactor": [python, "-c", "import twisted.internet.reactor"],
        "get --help": [python, "-m", "twistsock", "get", "--help"],
        "get URL": [python, "-m", "twistsock", "get", url],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(_timed(command))
    profile = _import_profile(commands["get URL"])
    server.shutdown()

    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = medians["reactor"]
    lines = [
        f"Start-up of the twistsock command, {time.strftime('%Y-%m-%d')}, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
        f"median of {runs} runs each, interleaved.",
        "",
        "| command | median ms | × import of the reactor |",
        "|---|---:|---:|",
    ]
    for name, median in medians.items():
        lines.append(f"| `{name}` | {median * 1000:.0f} | {median / floor:.2f}× |")
    lines += ["", "Largest top-level imports of `get URL` (`python -X importtime`):", ""]
    lines += ["| module | cumulative ms |", "|---|---:|"]
    lines += [f"| `{name}` | {micros / 1000:.1f} |" for name, micros in profile]
    text = "\n".join(lines) + "\n"
    print(text)
    (out / "startup.md").write_text(text)
    (out / "startup.json").write_text(
        json.dumps({"runs": runs, "seconds": times, "import_profile": profile}, indent=1)
    )


if __name__ == "__main__":
    main()
