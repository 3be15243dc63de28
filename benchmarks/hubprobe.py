"""The hub's API as a client elsewhere sees it: one ``GET`` every few seconds, in its own process.

``bench_load.py`` starts it beside each run. Timed inside the harness, a sample would also hold
the harness's own waits: its gevent loop serves hundreds of simulated people, on the cores it
shares with the hub, so an answer that has arrived may wait for the loop before it is timed. An
administrator's browser or a dashboard on another machine has cores of its own. This process does
nothing else, and runs at the hub's niceness (``--nice``, as root), so it gets a core when the
answer comes, as such a client would.

    HUBPROBE_TOKEN=... python benchmarks/hubprobe.py URL [--every 2] [--nice -10]

Prints one line per sample: the milliseconds from request to the whole answer, or ``error`` and
what went wrong. Runs until stopped (SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the URL to GET, e.g. http://127.0.0.1:8000/hub/api/users")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--nice", type=int, default=0, help="this process's niceness (-20 to 19)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a sample fails")
    args = parser.parse_args()
    os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    session = requests.Session()
    session.headers["Authorization"] = f"token {os.environ.get('HUBPROBE_TOKEN', '')}"
    while True:
        started = time.monotonic()
        try:
            r = session.get(args.url, timeout=args.timeout)
            r.raise_for_status()
            line = f"{(time.monotonic() - started) * 1000:.1f}"
        except requests.RequestException as error:
            line = f"error {type(error).__name__}: {str(error)[:200]}"
        print(line, flush=True)
        time.sleep(max(0.0, args.every - (time.monotonic() - started)))


if __name__ == "__main__":
    main()
