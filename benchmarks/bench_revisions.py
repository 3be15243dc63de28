"""Autograding with two installs of Atelier (a baseline and a change), alternating, same cohort.

One command, as root:

    /opt/atelier/env/bin/python benchmarks/bench_revisions.py --base PREFIX [--new PREFIX]
        [--trainees 60] [--rounds 3]

``--base`` and ``--new`` are install prefixes (``ATELIER_PREFIX`` of ``hub_config/bootstrap.sh``),
for example one built from the commit a change starts from. The cohort is built once, as
``bench_grade.py`` builds it; each round grades a fresh copy with the baseline's ``atelier grade``
and then with the change's (the order alternates from round to round, so a drifting load on a
shared machine falls on both), and the table gives the median wall time and CPU seconds of each,
their ratio, and whether both gave every trainee the same score for every cell. A change may cost
at most 10% (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_grade


def grade(prefix: Path, base: Path, copy: Path, assignment: str) -> dict:
    """Grade a fresh copy of the course with ``prefix``'s ``atelier grade``; time and scores."""
    course = bench_grade.copy_course(base, copy)
    environ = dict(os.environ, ATELIER_PREFIX=str(prefix))
    command = [str(prefix / "env" / "bin" / "atelier"), "grade", "--course-dir", str(course),
               assignment, "--no-progress"]  # fmt: skip
    saved = os.environ.copy()
    os.environ.update(environ)
    try:
        run = bench_grade.timed(command, course)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    run["scores"] = bench_grade.gradebook_scores(course, assignment)
    shutil.rmtree(course)
    return run


def main() -> None:
    """Build the cohort, grade it with both installs in turn, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="prefix of the baseline install")
    parser.add_argument(
        "--new", type=Path, default=Path("/opt/atelier"), help="prefix of the change"
    )
    parser.add_argument("--trainees", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workbook", default="07-home-learning")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"base": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="bench-revisions-") as tmp:
        os.chmod(tmp, 0o755)  # the grader and sandbox accounts read the course copies
        base = Path(tmp) / "course"
        base.mkdir()
        assignment, notebook, answer_set = bench_grade.make_course(
            base, bench_grade.REPO / "workbooks" / args.workbook, "en", 5
        )
        bench_grade.write_cohort(base, assignment, notebook, answer_set, args.trainees)
        for round_ in range(args.rounds):
            order = ("base", "new") if round_ % 2 == 0 else ("new", "base")
            for name in order:
                prefix = args.base if name == "base" else args.new
                run = grade(prefix, base, Path(tmp) / f"{name}{round_}", assignment)
                runs[name].append(run)
                print(f"round {round_ + 1} {name}: {run['seconds']:.1f} s, {run['cpu']:.1f} CPU-s, "
                      f"load {run['load'][0]:.1f} → {run['load'][1]:.1f}", flush=True)  # fmt: skip
    same = all(r["scores"] == runs["base"][0]["scores"] for r in runs["base"] + runs["new"])
    wall = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r["cpu"] for r in v) for k, v in runs.items()}
    print(f"\n{args.trainees} trainees of {args.workbook}, {args.rounds} alternating rounds\n")
    print("| Install | median seconds | median CPU seconds |")
    print("|---|---|---|")
    for name, prefix in (("base", args.base), ("new", args.new)):
        print(f"| {name} ({prefix}) | {wall[name]:.1f} | {cpu[name]:.1f} |")
    print(
        f"\nnew / base: wall {wall['new'] / wall['base']:.2f}, CPU {cpu['new'] / cpu['base']:.2f}"
    )
    print(f"Identical scores in every run: {same}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
