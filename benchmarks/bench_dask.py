"""Grading on Dask: ``atelier grade --dask`` on separate worker processes vs local workers.

One command:

    /opt/atelier/env/bin/python benchmarks/bench_dask.py [--trainees 400] [--dask-workers 2]

Builds the cohort of ``bench_grade.py`` (the same workbook and kinds of submission), then starts a
Dask scheduler and ``--dask-workers`` worker processes with Dask's own command line (``dask
scheduler``, ``dask worker --nthreads 1 --no-nanny``), each a process of its own on loopback, as
they would be on separate machines. Three identical copies of the course are graded: by ``atelier
grade --workers N`` (N local sandboxes, N = the Dask workers), by ``atelier grade --dask ADDRESS``
on a cluster whose workers have never graded (each starts its sandbox slot on first use), and
again on the same, now warm, cluster. The script compares every trainee's score for every graded
cell with the local run's, and reports wall and CPU seconds per process kind: the grader (the
``atelier grade`` command and everything it waited for), the scheduler, the workers (each
worker's process tree: its sandbox fork server and the runs it reaped). Dask's overhead per task
is the CPU of the warm Dask run less the local run's, per submission, plus the round trip of an
empty task (Dask's own floor). From the per-task costs it prints the scaling curve the model of
``daskmodel.py`` implies for more machines: two cores cannot show it directly.

Must run as root (the sandbox switches to its own accounts; Dask workers that grade must be
root, as on a real cluster).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_grade as bg
import daskmodel as dm
import psutil

BIN = Path(sys.executable).parent


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and every process under it, with the children they reaped."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def start(command: list[str], log: Path, env: dict) -> subprocess.Popen:
    """Start one cluster process in a session of its own, its output into ``log``."""
    with open(log, "wb") as output:
        return subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def worker_command(address_file: Path, name: str, folder: Path) -> list[str]:
    """``dask worker``: one process, one thread (one sandbox slot), no nanny, on loopback."""
    options = {
        "--scheduler-file": str(address_file),
        "--nthreads": "1",
        "--host": "127.0.0.1",
        "--memory-limit": "0",
        "--name": name,
        "--local-directory": str(folder / name),
    }
    flags = [part for pair in options.items() for part in pair]
    return [str(BIN / "dask"), "worker", "--no-nanny", "--no-dashboard", *flags]


def start_cluster(folder: Path, workers: int) -> tuple[str, subprocess.Popen, list]:
    """A scheduler and ``workers`` single-threaded worker processes on loopback."""
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    address_file = folder / "scheduler.json"
    scheduler = start(
        [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(address_file)],
        folder / "scheduler.log", env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    address = ""
    while not address:
        if time.monotonic() > deadline or scheduler.poll() is not None:
            sys.exit(f"the scheduler did not start:\n{(folder / 'scheduler.log').read_text()}")
        try:
            address = json.loads(address_file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
    processes = [
        start(worker_command(address_file, f"w{index}", folder), folder / f"w{index}.log", env)
        for index in range(workers)
    ]
    return address, scheduler, processes


def stop(processes: list[subprocess.Popen]) -> None:
    """End the cluster processes this script started, and what they started."""
    leftovers = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            leftovers += psutil.Process(process.pid).children(recursive=True)
        if process.poll() is None:
            process.terminate()  # Dask closes gracefully on SIGTERM; atexit closes the sandboxes
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for child in leftovers:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


def round_trips(client, count: int) -> tuple[float, float]:
    """Median milliseconds of an empty task's round trip: (Dask, a local thread pool)."""
    dask_ms, local_ms = [], []
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        for index in range(count):
            started = time.perf_counter()
            client.submit(abs, -index, pure=False).result()
            dask_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            pool.submit(abs, -index).result()
            local_ms.append((time.perf_counter() - started) * 1000)
    return statistics.median(dask_ms), statistics.median(local_ms)


def grade(course: Path, assignment: str, *extra: str) -> dict:
    """Time ``atelier grade`` on ``course`` (see bench_grade.timed)."""
    command = [str(BIN / "atelier"), "grade", "--course-dir", str(course), assignment,
               "--no-progress", *extra]  # fmt: skip
    return bg.timed(command, course)


def graded_on_cluster(course, assignment, address, scheduler, workers) -> dict:
    """A Dask run, with the scheduler's and the workers' CPU seconds during it."""
    before = (tree_cpu(scheduler.pid), sum(tree_cpu(w.pid) for w in workers))
    run = grade(course, assignment, f"--dask={address}")
    run["scheduler"] = tree_cpu(scheduler.pid) - before[0]
    run["workers"] = sum(tree_cpu(w.pid) for w in workers) - before[1]
    return run


def main() -> None:
    """Build the cohort, grade it locally and on the cluster, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trainees", type=int, default=400)
    parser.add_argument("--dask-workers", type=int, default=2, help="worker processes (2-4)")
    parser.add_argument("--workbook", default="07-home-learning")
    parser.add_argument("--language", default="en")
    parser.add_argument("--timeout", type=int, default=5, help="per-cell timeout")
    parser.add_argument("--round-trips", type=int, default=200, help="empty tasks timed")
    parser.add_argument(
        "--model-cores", type=int, default=8, help="cores per worker machine in the model"
    )
    args = parser.parse_args()
    n, slots = args.trainees, args.dask_workers

    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        base = Path(tmp) / "course"
        base.mkdir()
        assignment, notebook, answer_set, right_set = bg.make_course(
            base, bg.REPO / "workbooks" / args.workbook, args.language, args.timeout
        )
        cohort = bg.write_cohort(base, assignment, notebook, answer_set, right_set, n)
        courses = {name: bg.copy_course(base, Path(tmp) / name)
                   for name in ("local", "cold", "warm")}  # fmt: skip
        cluster_dir = Path(tmp) / "cluster"
        cluster_dir.mkdir()
        address, scheduler, workers = start_cluster(cluster_dir, slots)
        from distributed import Client

        try:
            with Client(address, set_as_default=False) as client:
                client.wait_for_workers(slots, timeout=120)
                load = os.getloadavg()[0]
                runs = {"local": grade(courses["local"], assignment, f"--workers={slots}")}
                for name in ("cold", "warm"):
                    runs[name] = graded_on_cluster(
                        courses[name], assignment, address, scheduler, workers
                    )
                # Nothing left to grade: what a run costs before its first submission.
                startup = grade(courses["warm"], assignment, f"--dask={address}")
                dask_ms, local_ms = round_trips(client, args.round_trips)
                load = (load, os.getloadavg()[0])
        finally:
            stop([*workers, scheduler])
        scores = {name: bg.gradebook_scores(course, assignment) for name, course in courses.items()}

    local = scores["local"]
    print(f"\nGrading {n} trainees of {args.workbook} ({notebook}): {slots} local sandboxes "
          f"against {slots} Dask worker processes (1 thread each) on loopback; "
          f"load average {load[0]:.1f} → {load[1]:.1f}\n")  # fmt: skip
    print("| Run | seconds | per submission | grader CPU-s | scheduler CPU-s | workers CPU-s "
          "| CPU-s per submission | identical scores |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    names = {"local": f"local, --workers={slots}", "cold": "Dask, first run (cold workers)",
             "warm": "Dask, second run (warm workers)"}  # fmt: skip
    totals = {}
    for name, run in runs.items():
        extra = run.get("scheduler", 0.0) + run.get("workers", 0.0)
        totals[name] = run["cpu"] + extra
        same = sum(1 for t in cohort if scores[name].get(t) == local.get(t) and t in local)
        cluster = (f"{run['scheduler']:.1f} | {run['workers']:.1f}" if "workers" in run
                   else "— | —")  # fmt: skip
        print(f"| {names[name]} | {run['seconds']:.1f} | {run['seconds'] / n:.3f} "
              f"| {run['cpu']:.1f} | {cluster} | {dm.per_submission(totals[name], n):.3f} "
              f"| {same}/{n} |")  # fmt: skip
    warm = runs["warm"]
    print(f"\nDask's overhead per task (warm run's CPU less the local run's, per submission): "
          f"{dm.overhead_per_task(totals['local'], totals['warm'], n) * 1000:.1f} ms; "
          f"wall: {(warm['seconds'] - runs['local']['seconds']) / n * 1000:+.1f} ms per "
          "submission")  # fmt: skip
    print(
        f"Empty task round trip (median of {args.round_trips}): Dask {dask_ms:.2f} ms, "
        f"local thread pool {local_ms:.3f} ms"
    )
    print(f"Start-up of a run with nothing to grade (--dask): {startup['seconds']:.1f} s")

    costs = dm.TaskCosts(
        grader=dm.per_submission(warm["cpu"], n),
        scheduler=dm.per_submission(warm["scheduler"], n),
        worker=dm.per_submission(warm["workers"], n),
        # Start-up, and the one trainee whose cell loops until the timeout (graded last).
        fixed=startup["seconds"] + args.timeout,
    )
    print(f"\nModel (daskmodel.py), from the warm run: per submission grader {costs.grader:.3f}, "
          f"scheduler {costs.scheduler:.4f}, worker {costs.worker:.3f} CPU-s; fixed "
          f"{costs.fixed:.1f} s; {args.model_cores} cores per worker machine; the workers stop "
          f"being the limit at {dm.machines_until_single_bound(costs, args.model_cores)} "
          "machine(s)\n")  # fmt: skip
    print("| submissions | machines | slots | modelled seconds | per minute | limit |")
    print("|---|---|---|---|---|---|")
    for count in (400, 4000, 40000):
        for machines, cores, seconds, rate, limit in dm.curve(costs, count, args.model_cores):
            print(f"| {count} | {machines} | {cores} | {seconds:.0f} | {rate:.0f} | {limit} |")
    differ = [t for t in cohort if any(scores[r].get(t) != local.get(t) for r in scores)]
    sys.exit(1 if differ or len(local) != n else 0)


if __name__ == "__main__":
    main()
