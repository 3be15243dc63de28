"""Executing every workbook: ``atelier check`` vs papermill's CLI on each notebook in turn.

One command, same machine, same run:

    /opt/atelier/env/bin/python benchmarks/bench_check.py [--rounds 3] [--copies 9]

Two workbook sets are measured: ``workbooks/`` as committed, and a catalogue-sized set of
``--copies`` copies of the reference workbook (the content plan has 9 workbooks, each in English and
French). For each set, the stock way is ``papermill IN OUT --cwd FOLDER`` once per workbook
notebook, one after the other (what an author's script or a CI loop does); Atelier's way is one
``atelier check PATH`` process, which does strictly more: it runs each notebook twice (source with
solutions, and the student version nbgrader releases), renders app workbooks with Voila, and runs
every static check. The two tools take turns going first in successive rounds (the load of a
shared machine drifts); each time is printed with the 1-minute load average before and after it.
The table shows medians of ``--rounds`` rounds and the median of the rounds' ratios papermill /
check (goal: >= 3), with CPU seconds of all processes of each tool.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def notebooks(root: Path) -> list[Path]:
    """The workbook notebooks under ``root`` (catalogue notebooks excluded: they hold no code)."""
    return sorted(p for p in root.glob("*/*.*.ipynb") if not p.name.startswith("index."))


def children_cpu() -> float:
    """CPU seconds used so far by finished child processes and theirs: load cannot skew it."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def papermill_one_by_one(root: Path, out: Path) -> float:
    """Seconds for papermill's CLI to execute each notebook, one process after the other."""
    started = time.perf_counter()
    for i, nb in enumerate(notebooks(root)):
        subprocess.run(
            [
                str(BIN / "papermill"),
                str(nb),
                str(out / f"{i}.ipynb"),
                "--cwd",
                str(nb.parent),
                "-k",
                "python3",
            ],
            check=True,
            capture_output=True,
        )
    return time.perf_counter() - started


def atelier_check(root: Path) -> float:
    """Seconds for one ``atelier check`` process over the whole set; it must pass."""
    started = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "atelier"), "check", str(root)], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"atelier check failed on {root}:\n{result.stdout}{result.stderr}")
    return elapsed


def catalogue_set(tmp: Path, copies: int) -> Path:
    """A workbooks folder of ``copies`` copies of the reference workbook, with a catalogue."""
    import nbformat

    from atelier.authoring.catalogue import write_catalogue

    root = tmp / "catalogue"
    source = REPO / "workbooks" / "02-low-bandwidth-planner"
    for n in range(copies):
        wid = f"planner-copy-{n}"
        folder = root / f"{n:02d}-{wid}"
        shutil.copytree(source, folder)
        for lang in ("en", "fr"):
            old = folder / f"low-bandwidth-planner.{lang}.ipynb"
            nb = nbformat.read(old, as_version=4)
            nb.metadata["atelier"]["id"] = wid
            nb.metadata["atelier"]["app"] = n == 0  # one public app per catalogue, as planned
            nbformat.write(nb, folder / f"{wid}.{lang}.ipynb")
            old.unlink()
    write_catalogue(root)
    return root


def load() -> float:
    """The one-minute load average: what else the machine runs, reported with each time."""
    return os.getloadavg()[0]


def main() -> None:
    """Measure both ways on both sets and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per measurement (median shown)"
    )
    parser.add_argument(
        "--copies", type=int, default=0, help="workbooks in the catalogue-sized set"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        tmp = Path(tmp)
        sets = {"workbooks/ as committed": REPO / "workbooks"}
        if args.copies:
            sets[f"{args.copies} workbooks x 2 languages"] = catalogue_set(tmp, args.copies)
        rows = []
        for label, root in sets.items():
            out = tmp / "out"
            out.mkdir(exist_ok=True)
            stock, ours, stock_cpu, ours_cpu, loads = [], [], [], [], []
            for n in range(args.rounds):
                # Alternate which tool goes first: the load of a shared machine drifts.
                order = ["papermill", "check"] if n % 2 == 0 else ["check", "papermill"]
                for tool in order:
                    before, cpu = load(), children_cpu()
                    if tool == "papermill":
                        stock.append(papermill_one_by_one(root, out))
                        stock_cpu.append(children_cpu() - cpu)
                    else:
                        ours.append(atelier_check(root))
                        ours_cpu.append(children_cpu() - cpu)
                    loads.append((before, load()))
                    seconds = (stock if tool == "papermill" else ours)[-1]
                    print(
                        f"round {n + 1} {tool:<9} {seconds:6.1f} s"
                        f"  load {before:.1f} -> {load():.1f}",
                        flush=True,
                    )
            medians = [statistics.median(v) for v in (stock, ours, stock_cpu, ours_cpu)]
            ratios = statistics.median(p / c for p, c in zip(stock, ours, strict=True))
            readings = [value for pair in loads for value in pair]
            span = (min(readings), max(readings))
            rows.append((label, len(notebooks(root)), *medians, ratios, span))
    print(
        f"{'set':<26} {'notebooks':>9} {'papermill CLI':>14} {'atelier check':>14} {'ratio':>6}"
        f" {'CPU papermill':>14} {'CPU check':>10} {'ratio':>6} {'load':>10}"
    )
    for label, count, stock, ours, stock_cpu, ours_cpu, ratio, (low, high) in rows:
        print(
            f"{label:<26} {count:>9} {stock:>12.1f} s {ours:>12.1f} s {ratio:>5.1f}x"
            f" {stock_cpu:>12.1f} s {ours_cpu:>8.1f} s {stock_cpu / ours_cpu:>5.1f}x"
            f" {low:>4.1f}-{high:<4.1f}"
        )
    print(
        "Times are medians over rounds; the wall ratio is the median of each round's ratio. "
        "Wall times depend on what else the machine runs (load: 1-minute load average during "
        "the run); CPU seconds of all processes do not."
    )
    print(
        "atelier check also runs each student version, renders app workbooks in Voila "
        "and does every static check."
    )


if __name__ == "__main__":
    main()
