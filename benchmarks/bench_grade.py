"""Autograding a cohort: ``atelier grade`` vs stock ``nbgrader autograde``, same cohort, same run.

One command:

    /opt/atelier/env/bin/python benchmarks/bench_grade.py [--trainees 100]

Builds a course from a real graded workbook of ``workbooks/`` (its English notebook, with its
``data/`` and ``images/``), releases it with ``nbgrader generate_assignment``, and writes one
submission per trainee: the workbook's prepared answer set (one realistic mistake), all answers
right, wrong answers, the blank released notebook (no answers file; a code answer raises
``NotImplementedError``), and one trainee whose code never ends (timed out by the course's
``Execute.timeout``). Graded widget items are answered in the submission's answers file
(``.atelier-answers.json``): "right" takes the workbook's all-right answer set
(``answers/<id>.<lang>.right.json``), "wrong" a wrong value of the same shape for every widget, and
the trainee who times out has the first code cell they could edit (a code answer, else a widget
cell: nothing stops a trainee editing one in Lab) replaced by an endless loop. Two
identical copies of the course are then graded, one by ``nbgrader autograde`` and one by ``atelier
grade`` (sandboxed, one pre-warmed fork server per core); the table shows both times, the ratio, and
whether every trainee got the same score for every graded cell, with the CPU seconds each tool used
and the load average around each run (the machine may be shared). Must run as root (the sandbox
switches to its own accounts).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def solution_of(source: str) -> str:
    """The instructor's answer: the source cell without nbgrader's solution markers."""
    return "\n".join(line for line in source.splitlines() if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)  # fmt: skip


def wrong_answer(source: str) -> str:
    """A plausible wrong answer: the right signature, a constant result."""
    match = re.search(r"^def .*:$", source, re.M)
    return f"{match.group(0)}\n    return None" if match else "answer = None"


def wrong_widget(value):
    """A wrong answer of the same shape as the right ``value`` (what a trainee could save)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return value * 10 + 1
    if isinstance(value, str):
        return "zz-not-an-option"
    if isinstance(value, list):
        return list(reversed(value)) if len(set(map(str, value))) > 1 else []
    if isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
        return {key: dict.fromkeys(plan, 0) for key, plan in value.items()}  # a week with nothing
    if isinstance(value, dict):
        values = list(value.values())
        return (
            dict(zip(value, values[1:] + values[:1], strict=True)) if len(set(values)) > 1 else {}
        )
    return None


def load_answer_set(path: Path) -> dict:
    """The ``cells`` and ``widgets`` of an answer set (both empty when it does not exist)."""
    if not path.exists():
        return {"cells": {}, "widgets": {}}
    data = json.loads(path.read_text("utf-8"))
    return {"cells": data.get("cells", {}), "widgets": data.get("widgets", {})}


def make_course(
    root: Path, workbook: Path, language: str, timeout: int
) -> tuple[str, str, dict, dict]:
    """A course with the workbook released: (assignment, notebook, answer set, right set)."""
    notebook = next(workbook.glob(f"*.{language}.ipynb"))
    assignment = notebook.name.split(".")[0]
    source = root / "source" / assignment
    source.mkdir(parents=True)
    shutil.copy(notebook, source / notebook.name)
    for extra in ("data", "images"):
        if (workbook / extra).is_dir():
            shutil.copytree(workbook / extra, source / extra)
    (root / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.course_id = 'bench'\nc.Execute.timeout = {timeout}\n"
    )
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    subprocess.run([str(BIN / "nbgrader"), "generate_assignment", assignment, "--log-level=ERROR"],
                   cwd=root, env=env, check=True)  # fmt: skip
    typical = load_answer_set(workbook / "answers" / f"{notebook.stem}.json")
    right = load_answer_set(workbook / "answers" / f"{notebook.stem}.right.json")
    return assignment, notebook.name, typical, right


def write_cohort(
    root: Path, assignment: str, notebook: str, answer_set: dict, right_set: dict, trainees: int
) -> dict:
    """One submission per trainee, cycling through the kinds; returns {trainee: kind}."""
    source = nbformat.read(root / "source" / assignment / notebook, as_version=4)
    released = nbformat.read(root / "release" / assignment / notebook, as_version=4)
    solutions, answer_cells = {}, []
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            solutions[meta["grade_id"]] = cell
            answer_cells.append(meta["grade_id"])
    code_answers = [g for g in answer_cells if solutions[g].cell_type == "code"]
    # Without code answers, the first code cell a trainee could edit: a widget's (no nbgrader
    # metadata, so autograde keeps the trainee's version).
    editable = [i for i, c in enumerate(released.cells)
                if c.cell_type == "code" and not c.metadata.get("nbgrader")]  # fmt: skip
    right_cells = {g: solution_of(c.source) for g, c in solutions.items()}
    right_cells.update(right_set["cells"])

    def answers_for(kind: str) -> tuple[dict, dict]:
        """(cells by grade id, widget answers) of a submission of ``kind``."""
        if kind == "blank":
            return {}, {}
        if kind == "right":
            return right_cells, dict(right_set["widgets"]) or dict(answer_set["widgets"])
        if kind == "wrong":
            cells = {g: wrong_answer(c.source) if c.cell_type == "code" else "I am not sure."
                     for g, c in solutions.items()}  # fmt: skip
            widgets = {w: wrong_widget(v) for w, v in (right_set["widgets"] or {}).items()}
            return cells, widgets
        if kind == "timeout":
            cells, widgets = answers_for("answer set")
            if code_answers:
                return {**cells, code_answers[0]: "while True:\n    pass"}, widgets
            return cells, widgets
        if answer_set["cells"] or answer_set["widgets"]:
            return dict(answer_set["cells"]), dict(answer_set["widgets"])
        return answers_for("right")

    kinds = ["answer set", "right", "wrong", "blank"]
    cohort = {}
    for index in range(trainees):
        trainee = f"trainee{index:03d}"
        kind = "timeout" if index == trainees - 1 else kinds[index % len(kinds)]
        nb = nbformat.from_dict(json.loads(json.dumps(released)))
        chosen, widgets = answers_for(kind)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in chosen:
                cell.source = chosen[grade_id]
        if kind == "timeout" and not code_answers:
            nb.cells[editable[0]].source = "while True:\n    pass"
        folder = root / "submitted" / trainee / assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / notebook)
        if widgets:
            saved = {w: {"value": v, "kind": "bench", "saved": "2026-11-20T10:00:00Z"}
                     for w, v in widgets.items()}  # fmt: skip
            document = {"format": "atelier-answers", "version": 1, "answers": saved}
            (folder / ".atelier-answers.json").write_text(json.dumps(document))
        (folder / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC")
        cohort[trainee] = kind
    return cohort


def gradebook_scores(root: Path, assignment: str) -> dict:
    """{trainee: {grade_id: auto_score}} from the course's gradebook."""
    from nbgrader.api import Gradebook

    result = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id="bench") as gb:
        for submission in gb.find_assignment(assignment).submissions:
            result[submission.student.id] = {
                grade.name: grade.auto_score for nb in submission.notebooks for grade in nb.grades
            }
    return result


def copy_course(root: Path, target: Path) -> Path:
    """A copy of the course whose config points at the copy."""
    shutil.copytree(root, target)
    config = target / "nbgrader_config.py"
    config.write_text(config.read_text().replace(str(root), str(target)))
    return target


def timed(command: list[str], cwd: Path) -> dict:
    """Run ``command``; return its wall and CPU seconds and the load average around it.

    CPU seconds count every process the command waited for (kernels, sandboxes, forks); the load
    average is the 1-minute one, before and after. Its output is shown only if it fails.
    """
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    load_before = os.getloadavg()[0]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (used.ru_utime + used.ru_stime)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
    return {"seconds": seconds, "cpu": cpu, "load": (load_before, os.getloadavg()[0])}


def main() -> None:
    """Build the cohort, grade it both ways, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trainees", type=int, default=100)
    parser.add_argument("--workbook", default="07-home-learning")
    parser.add_argument("--language", default="en")
    parser.add_argument("--timeout", type=int, default=5, help="per-cell timeout, both tools")
    parser.add_argument(
        "--workers", type=int, default=0, help="atelier sandboxes (0: one per core)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        base = Path(tmp) / "course"
        base.mkdir()
        assignment, notebook, answer_set, right_set = make_course(
            base, REPO / "workbooks" / args.workbook, args.language, args.timeout
        )
        cohort = write_cohort(base, assignment, notebook, answer_set, right_set, args.trainees)
        stock = copy_course(base, Path(tmp) / "stock")
        ours = copy_course(base, Path(tmp) / "atelier")

        stock_run = timed([str(BIN / "nbgrader"), "autograde", assignment], stock)
        atelier_run = timed(
            [str(BIN / "atelier"), "grade", "--course-dir", str(ours), assignment,
             f"--workers={args.workers}", "--no-progress"],
            ours,
        )  # fmt: skip
        stock_seconds, atelier_seconds = stock_run["seconds"], atelier_run["seconds"]

        stock_scores = gradebook_scores(stock, assignment)
        our_scores = gradebook_scores(ours, assignment)
        differ = sorted(t for t in cohort if stock_scores.get(t) != our_scores.get(t))
        kinds = {k: sum(1 for v in cohort.values() if v == k) for k in sorted(set(cohort.values()))}
        totals = {
            kind: sorted({sum(v or 0 for v in our_scores.get(t, {}).values())
                          for t, k in cohort.items() if k == kind})
            for kind in kinds
        }  # fmt: skip

    print(
        f"\nAutograding {args.trainees} trainees of {args.workbook} ({notebook}); cohort: {kinds}"
    )
    print(f"autograded points by kind (atelier): {totals}\n")
    print("| Tool | seconds | per trainee | CPU seconds | load average before → after |")
    print("|---|---|---|---|---|")
    for name, run in (("nbgrader autograde (stock)", stock_run), ("atelier grade", atelier_run)):
        print(
            f"| {name} | {run['seconds']:.1f} | {run['seconds'] / args.trainees:.3f} "
            f"| {run['cpu']:.1f} | {run['load'][0]:.1f} → {run['load'][1]:.1f} |"
        )
    print(f"\nSpeed-up: {stock_seconds / atelier_seconds:.1f}x (goal >= 10x)")
    print(f"CPU used: {stock_run['cpu'] / atelier_run['cpu']:.1f}x less")
    same = args.trainees - len(differ)
    print(f"Identical scores, cell by cell: {same}/{args.trainees} trainees")
    for trainee in differ[:10]:
        print(f"  {trainee} ({cohort[trainee]}): stock {stock_scores.get(trainee)}")
        print(f"  {' ' * len(trainee)}  atelier {our_scores.get(trainee)}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
