"""Public app time to first render under concurrent visitors: ``atelier apps`` vs stock Voila.

One command, same notebook, same run, loopback only:

    /opt/atelier/env/bin/python benchmarks/bench_apps.py [--visitors 20] [--rounds 3]

Each round, ``--visitors`` visitors open the app at the same moment; a visit's time is from
sending the request to having the whole rendered page (outputs and widget models included), which
is when the browser can show the app. Both servers run on the same notebook
(tests/fixtures/apps/planner by default); stock ``voila`` runs with its defaults, ``atelier apps``
with a preheated pool sized to the burst (``apps.pool_sizes``). The table shows the median and
90th percentile of all visits of all rounds, and the peak number of kernels alive. Between rounds
Atelier's idle kernels are culled and its pool refilled; stock Voila keeps every kernel it started
(it culls nothing by default).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

from atelier.processes.ports import free_port

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The tests' harness (tests/harness.py): kernels are counted as the apps tests count them.
sys.path.insert(0, str(REPO / "tests"))
from harness import kernel_processes, start_server, stop_process  # noqa: E402


def kernels_of(proc: subprocess.Popen) -> int:
    """How many ipykernel processes ``proc`` has started and not yet stopped."""
    return len(kernel_processes(proc.pid))


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_apps: timed out waiting for {what}")
        time.sleep(0.2)


def pool_rendered(base: str, rel: str) -> int:
    """How many preheated pages of ``rel`` the apps server has ready (its /atelier/status)."""
    try:
        status = requests.get(base + "atelier/status", timeout=5).json()
    except requests.RequestException:
        return 0
    return status["pools"].get(rel, {}).get("rendered", 0)


def burst(url: str, visitors: int, proc: subprocess.Popen) -> tuple[list[float], int, list[int]]:
    """``visitors`` simultaneous visits of ``url``: their times, peak kernel count, statuses."""
    start = threading.Barrier(visitors)
    peak = kernels_of(proc)

    def visit(_):
        start.wait()
        t0 = time.perf_counter()
        response = requests.get(url, timeout=300)
        return time.perf_counter() - t0, response.status_code

    with ThreadPoolExecutor(max_workers=visitors) as pool:
        futures = [pool.submit(visit, i) for i in range(visitors)]
        while not all(f.done() for f in futures):
            peak = max(peak, kernels_of(proc))
            time.sleep(0.05)
    results = [f.result() for f in futures]
    return [t for t, _ in results], max(peak, kernels_of(proc)), [s for _, s in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--notebook",
        type=Path,
        default=REPO / "tests/fixtures/apps/planner/planner.en.ipynb",
        help="An app notebook (metadata.atelier.app: true).",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-apps-"))
    (work / "workbooks" / "app").mkdir(parents=True)
    shutil.copy(args.notebook, work / "workbooks" / "app" / args.notebook.name)
    rel = f"app/{args.notebook.name}"
    results = {}
    try:
        # Stock Voila, defaults, on the same folder.
        port = free_port()
        base = f"http://127.0.0.1:{port}/"
        stock = start_server(
            [str(BIN / "voila"), "--no-browser", f"--port={port}", str(work / "workbooks")],
            base,
            work / "voila.log",
            cwd=work,
            timeout=60,
        )
        times, peaks, codes = [], [], []
        for _ in range(args.rounds):
            t, peak, c = burst(base + "voila/render/" + rel, args.visitors, stock)
            times += t
            peaks.append(peak)
            codes += c
        results["stock voila"] = (times, max(peaks), codes)
        stop_process(stock, grace=30)

        # Atelier: a preheated pool sized to the burst, culling, a bound above it.
        settings = work / "settings.yaml"
        settings.write_text(
            yaml.safe_dump(
                {
                    "apps": {
                        "pool_size": 0 if args.visitors == 0 else 1,
                        "pool_sizes": {rel: args.visitors},
                        "max_kernels": 2 * args.visitors + 2,
                        "cull_idle_timeout": 10,
                        "cull_interval": 1,
                    }
                }
            )
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}/"
        command = [
            str(BIN / "atelier"),
            "apps",
            f"--settings={settings}",
            f"--port={port}",
            f"--workbooks={work / 'workbooks'}",
        ]
        atelier = start_server(command, base, work / "atelier.log", cwd=work, timeout=60)
        times, peaks, codes = [], [], []
        for _ in range(args.rounds):
            # A full pool: every preheated kernel started and its notebook rendered.
            wait_until(lambda: pool_rendered(base, rel) >= args.visitors, 300, "a full pool")
            t, peak, c = burst(base + "voila/render/" + rel, args.visitors, atelier)
            times += t
            peaks.append(peak)
            codes += c
            # Visitors leave; their kernels are culled and the pool refills.
            wait_until(lambda: kernels_of(atelier) <= args.visitors, 120, "culling")
        results["atelier apps"] = (times, max(peaks), codes)
        stop_process(atelier, grace=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.visitors} concurrent visitors × {args.rounds} rounds, {args.notebook.name}\n")
    print("| server | median s | p90 s | max s | peak kernels | non-200 |")
    print("|---|---|---|---|---|---|")
    for name, (times, peak, codes) in results.items():
        times = sorted(times)
        p90 = times[int(0.9 * (len(times) - 1))]
        bad = sum(c != 200 for c in codes)
        print(
            f"| {name} | {statistics.median(times):.3f} | {p90:.3f} | {times[-1]:.3f} "
            f"| {peak} | {bad} |"
        )
    stock_median = statistics.median(results["stock voila"][0])
    ours = statistics.median(results["atelier apps"][0])
    print(f"\nmedian speed-up: {stock_median / ours:.1f}× (goal ≥ 10×)")


if __name__ == "__main__":
    main()
