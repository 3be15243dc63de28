"""A workbook's reflection as peer review sees it: its rubric, and a submission's text.

Rule: the reflection is the workbook's first nbgrader *task* cell (the markdown cell that asks for
it and holds its rubric, "**Rubric (4 points)**" then one list line per criterion, "- 1 point:
..." or "- **2 points**: ...", as workbooks 02 and 07 write it), answered in the
``ReflectionJournal`` (or any answer widget) of the code cell right after it; a workbook without a
task cell may instead have a manually graded markdown answer cell (nbgrader ``grade`` and
``solution``), whose text is the answer. A rubric that lists no criterion is one criterion worth
the cell's points. Nothing here runs a notebook: the widget id is read from the code with
:func:`atelier.widgets.items.code_items`.

Root reads a collected submission (``submitted/<account>/<assignment>/``, in a folder the grader
account owns, files the trainee made) only through :mod:`atelier.grading.safefs`: one name at a
time, never following a link, size-capped.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from atelier.grading import safefs
from atelier.grading.course import Course, GradingError, split_assignment
from atelier.widgets.items import code_items

#: The largest notebook or answers file peer review reads from a submission.
MAX_BYTES = 5_000_000
#: The longest reflection shown to a reviewer (characters); longer text is cut with a mark.
MAX_TEXT = 20_000
#: "- 1 point: ...", "- **2 points** : ...", "- 1 point : ..." (French spacing).
CRITERION = re.compile(
    r"^\s*[-*]\s+(?:\*\*)?\s*(\d+(?:[.,]\d+)?)\s*(?:points?|pts?)\s*(?:\*\*)?\s*[:\-–]?\s*(.+)$",
    re.IGNORECASE,
)
#: The rubric's heading line: "**Rubric (4 points)**", "**Grille d'évaluation (4 points)**".
HEADING = re.compile(r"^\s*\*\*[^*]*\(\s*\d+(?:[.,]\d+)?\s*points?\s*\)\s*\*\*\s*$", re.IGNORECASE)


@dataclass
class Rubric:
    """The reflection item of one assignment: where it is graded and how it is scored."""

    assignment: str
    notebook: str  # nbgrader's notebook id (file name without .ipynb)
    grade_id: str  # the gradebook cell the peer score goes to
    points: float
    widget: str = ""  # the answer widget's id, "" for a markdown answer cell
    prompt: str = ""  # the question, as the author wrote it (markdown source, shown as text)
    criteria: list[dict] = field(default_factory=list)  # [{"text": ..., "points": ...}]

    def to_json(self) -> dict:
        """A plain dict for the review state."""
        return asdict(self)


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _number(text: str) -> float:
    value = float(text.replace(",", "."))
    return int(value) if value == int(value) else value


def parse_criteria(markdown: str, points: float) -> tuple[str, list[dict]]:
    """``(prompt, criteria)`` of a task cell's markdown: the text before the rubric, its lines."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if HEADING.match(line)), None)
    criteria = []
    if start is not None:
        current = None
        for line in lines[start + 1 :]:
            match = CRITERION.match(line)
            if match:
                current = {"text": match.group(2).strip(), "points": _number(match.group(1))}
                criteria.append(current)
            elif current is not None and line.startswith((" ", "\t")) and line.strip():
                current["text"] += " " + line.strip()  # a criterion continued on the next line
            elif line.strip() and criteria:
                break
    prompt = "\n".join(lines[:start] if start is not None else lines).strip()
    # Shown to reviewers as plain text: headings' and bold's marks would read as noise.
    prompt = re.sub(r"\*\*|^#+\s*", "", prompt, flags=re.MULTILINE)
    if not criteria:
        criteria = [{"text": "", "points": points}]
    return prompt, criteria


def find_rubric(notebook: dict, assignment: str, notebook_id: str) -> Rubric:
    """The reflection item of a source notebook (the module's rule), or a :class:`GradingError`."""
    cells = notebook.get("cells", [])
    for index, cell in enumerate(cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "markdown" and meta.get("task"):
            points = _number(str(meta.get("points", 0)))
            prompt, criteria = parse_criteria(_source(cell), points)
            widget = ""
            if index + 1 < len(cells) and cells[index + 1].get("cell_type") == "code":
                # The widget classes are imported in an earlier cell: read the code so far.
                before = [_source(c) for c in cells[: index + 1] if c.get("cell_type") == "code"]
                found = code_items([*before, _source(cells[index + 1])])
                new = [item for item in found if item not in code_items(before)]
                widget = new[0] if new else ""
            if not widget:
                raise GradingError(
                    f"{notebook_id}: the task cell {meta.get('grade_id')!r} is not followed by a "
                    "code cell with an answer widget (ReflectionJournal) the trainee writes in"
                )
            return Rubric(
                assignment, notebook_id, meta["grade_id"], points, widget, prompt, criteria
            )
    for index, cell in enumerate(cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "markdown" and meta.get("grade") and meta.get("solution"):
            points = _number(str(meta.get("points", 0)))
            before = _source(cells[index - 1]) if index else ""
            prompt, criteria = parse_criteria(before, points)
            return Rubric(assignment, notebook_id, meta["grade_id"], points, "", prompt, criteria)
    raise GradingError(
        f"{notebook_id} has no reflection to review: no nbgrader task cell and no manually graded "
        "markdown answer cell"
    )


def course_rubric(course: Course, assignment: str) -> Rubric:
    """The rubric of ``assignment`` from the course's source notebook (read by descriptor)."""
    from atelier.grading.courses.graderaccount import course_owners

    workbook, language = split_assignment(assignment)
    name = f"{workbook}.{language}.ipynb"
    shown = course.source / assignment / name
    try:
        with safefs.opened_dir(course.root, ["source", assignment], course_owners(course)) as fd:
            data = safefs.read_at(fd, name, shown, MAX_BYTES)
    except FileNotFoundError:
        raise GradingError(f"{shown} is missing: release the workbook again") from None
    try:
        notebook = json.loads(data)
    except ValueError as error:
        raise GradingError(f"{shown} is not a notebook: {error}") from None
    return find_rubric(notebook, assignment, Path(name).stem)


def _text_of(value) -> str:
    """A widget's saved answer as text: a journal's reflections one after the other."""
    if isinstance(value, dict):
        return "\n\n".join(str(v).strip() for v in value.values() if str(v).strip())
    if isinstance(value, list):
        return "\n\n".join(str(v).strip() for v in value if str(v).strip())
    return "" if value is None else str(value).strip()


def submission_text(course: Course, account: str, rubric: Rubric) -> str:
    """What ``account`` wrote for the reflection in their collected submission ("" if nothing).

    Read by root through descriptors, never following a link (the module's rule); an answers
    file or notebook that is not JSON counts as nothing written.
    """
    from atelier.grading.courses.graderaccount import course_owners

    shown = course.submission_dir(account, rubric.assignment)
    try:
        with _submission(course, account, rubric.assignment, course_owners(course)) as fd:
            if rubric.widget:
                name = ".atelier-answers.json"
                data = safefs.read_at(fd, name, shown / name, MAX_BYTES)
                answers = json.loads(data).get("answers", {})
                entry = answers.get(rubric.widget) or {}
                text = _text_of(entry.get("value") if isinstance(entry, dict) else None)
            else:
                name = f"{rubric.notebook}.ipynb"
                notebook = json.loads(safefs.read_at(fd, name, shown / name, MAX_BYTES))
                text = ""
                for cell in notebook.get("cells", []):
                    meta = cell.get("metadata", {}).get("nbgrader", {})
                    if meta.get("grade_id") == rubric.grade_id:
                        text = _source(cell).strip()
    except (FileNotFoundError, ValueError, AttributeError):
        return ""
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + " […]"
    return text


@contextmanager
def _submission(course: Course, account: str, assignment: str, owners: set[int]):
    """The open folder ``submitted/<account>/<assignment>``, no link followed.

    The course's folders must be root's or the grader's; the submission's own folder was copied
    with the trainee as owner, so its owner is not checked.
    """
    import os

    student = safefs.open_dir(course.root, ["submitted", account], owners)
    try:
        fd = safefs.open_dir_at(student, assignment, course.submission_dir(account, assignment))
    finally:
        os.close(student)
    try:
        yield fd
    finally:
        os.close(fd)


def submitted_accounts(course: Course, assignment: str, accounts: list[str]) -> list[str]:
    """Which of ``accounts`` have a collected submission of ``assignment``."""
    from atelier.grading.courses.graderaccount import course_owners

    owners = course_owners(course)
    found = []
    try:
        top = safefs.open_dir(course.root, ["submitted"], owners)
    except FileNotFoundError:
        return []
    try:
        present = set(safefs.entries(top))
        for account in accounts:
            if account not in present:
                continue
            try:
                fd = safefs.open_dir_at(top, account, course.submitted / account, owners)
            except (FileNotFoundError, safefs.UnsafePath):
                continue
            try:
                if assignment in set(safefs.entries(fd)):
                    found.append(account)
            finally:
                os_close(fd)
    finally:
        os_close(top)
    return found


def os_close(fd: int) -> None:
    """Close a descriptor (named, so the reads above read as steps)."""
    import os

    os.close(fd)
