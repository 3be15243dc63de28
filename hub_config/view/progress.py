"""Where a trainee stands in each workbook released to them, read from what their account can read.

Rule: this runs in the trainee's own server, as the trainee, and reads only what the hardened
exchange (:mod:`atelier.grading.exchange.trainee`) lets that account read; nothing is stored
anywhere else, so the home page can never disagree with the exchange. For the exchange root ``R``,
the trainee's account ``A`` and their home ``H``:

- **released to me**: ``R/C/outbound/W-L/`` of every course ``C`` whose ``R/C/inbound/A/`` exists
  (membership is that folder, as for JupyterLab's assignment list), in the trainee's language;
  title and answer items from the released notebook (:func:`atelier.widgets.items.notebook_items`);
- **policy** (optional): ``R/C/outbound/W-L/policy.json`` written by ``atelier release`` beside the
  student version (``due``: an ISO 8601 time or empty, ``mode``, ``attempts``: 0 for unlimited,
  ``close_at_due``); absent means no due date and nothing to count;
- **in progress**: the answers saved in ``H/C/W-L/.atelier-answers.json`` (where nbgrader's fetch
  puts the workbook) against the items;
- **submitted**: the newest ``R/C/inbound/A/A+W-L+*`` folder, dated by its change time, the
  receipt time collect records;
- **feedback ready**: nbgrader's feedback file of that submission in ``R/C/feedback/A/`` (its name
  is a hash of the submission's secret and the notebook id), with the score nbgrader wrote at its
  top.

A file that cannot be read or parsed never stops the page: the workbook is shown with what could
be read, and the problem is logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from nbgrader.utils import notebook_hash

from atelier.grading.exchange.trainee import assignment_language
from atelier.widgets.items import answered, notebook_items
from atelier.widgets.store import ANSWERS_FILENAME, AnswersFileError, parse

log = logging.getLogger("atelier.view")

#: The file beside a released workbook's student version that holds its policy (optional).
POLICY_FILENAME = "policy.json"
#: A released notebook larger than this is not read (its title and items are then unknown).
MAX_NOTEBOOK_BYTES = 20_000_000
#: nbgrader's feedback page states the notebook's score in its first heading.
_SCORE = re.compile(rb"<h4>[^<]*\(Score: ([0-9]+(?:\.[0-9]+)?) / ([0-9]+(?:\.[0-9]+)?)\)</h4>")
#: Only the head of a feedback file is read for the score (the heading comes before any cell).
_SCORE_HEAD_BYTES = 200_000

#: The states a workbook can be in, in the order a trainee goes through them.
STATES = ("not_started", "in_progress", "submitted", "feedback")


@dataclass
class Workbook:
    """One workbook released to the trainee, and where they stand in it."""

    course: str
    assignment: str
    title: str
    notebook: str = ""
    items: int = 0
    answered: int = 0
    fetched: bool = False
    submitted: datetime | None = None
    submissions: int = 0
    feedback: bool = False
    score: float | None = None
    max_score: float | None = None
    due: datetime | None = None
    attempts: int | None = None
    mode: str = ""
    close_at_due: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        """One of :data:`STATES`."""
        if self.feedback:
            return "feedback"
        if self.submitted is not None:
            return "submitted"
        if self.answered:
            return "in_progress"
        return "not_started"

    @property
    def path(self) -> str:
        """The notebook's path in the trainee's home (where fetch puts it), with ``/``."""
        return f"{self.course}/{self.assignment}/{self.notebook}"

    @property
    def overdue(self) -> bool:
        """Past the due date and not submitted."""
        return self.due is not None and self.submitted is None and datetime.now(UTC) > self.due


# --- reading files --------------------------------------------------------------------------------


_notebook_cache: dict[str, tuple[tuple[int, int], str, list[str]]] = {}


def _notebook_facts(path: Path) -> tuple[str, list[str]]:
    """The title and answer items of a released notebook, cached by change time and size."""
    info = path.stat()
    key = (info.st_mtime_ns, info.st_size)
    cached = _notebook_cache.get(str(path))
    if cached and cached[0] == key:
        return cached[1], cached[2]
    if info.st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"{path}: {info.st_size} bytes, larger than a workbook can be")
    notebook = json.loads(path.read_text("utf-8"))
    metadata = notebook.get("metadata", {}).get("atelier", {})
    title = metadata.get("title") if isinstance(metadata, dict) else None
    title = title if isinstance(title, str) and title.strip() else ""
    items = notebook_items(notebook)
    _notebook_cache[str(path)] = (key, title, items)
    return title, items


def _entries(folder: Path) -> list[os.DirEntry]:
    """The entries of ``folder`` not hidden (staged and swapped-out copies start with a dot)."""
    try:
        with os.scandir(folder) as found:
            return sorted((e for e in found if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError:
        return []


def _parse_time(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_policy(workbook: Workbook, folder: Path) -> None:
    """Fill ``due``, ``mode`` and ``attempts`` from the released ``policy.json``, if any."""
    path = folder / POLICY_FILENAME
    try:
        policy = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError) as error:
        workbook.problems.append(f"{path}: {error}")
        return
    if not isinstance(policy, dict):
        workbook.problems.append(f"{path}: not a JSON object")
        return
    workbook.due = _parse_time(policy.get("due"))
    mode = policy.get("mode")
    workbook.mode = mode if mode in ("practice", "assessed") else ""
    attempts = policy.get("attempts")
    # 0 (or none given) means as many as the site allows: nothing to count down.
    if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 0:
        workbook.attempts = attempts
    workbook.close_at_due = policy.get("close_at_due") is True and workbook.due is not None


def read_answers(workbook: Workbook, folder: Path, items: list[str]) -> None:
    """Count the items answered in the trainee's copy (``answered`` of ``items``)."""
    path = folder / ANSWERS_FILENAME
    try:
        text = path.read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return
    except OSError as error:
        workbook.problems.append(f"{path}: {error}")
        return
    try:
        answers = parse(text, str(path))["answers"]
    except AnswersFileError as error:
        workbook.problems.append(str(error))
        return
    workbook.answered = len(answered(items, answers))


def read_submissions(workbook: Workbook, inbound: Path, feedback: Path, account: str) -> None:
    """The newest submission's receipt time, how many there are, and its feedback and score."""
    prefix = f"{account}+{workbook.assignment}+"
    newest = None
    for entry in _entries(inbound):
        if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
            continue
        workbook.submissions += 1
        changed = entry.stat(follow_symlinks=False).st_ctime
        if newest is None or changed > newest[0]:
            newest = (changed, Path(entry.path))
    if newest is None:
        return
    workbook.submitted = datetime.fromtimestamp(newest[0], UTC)
    try:
        secret = (newest[1] / "submission_secret.txt").read_text("utf-8").strip()
    except OSError:
        return
    notebooks = sorted(p.stem for p in newest[1].glob("*.ipynb"))
    score = max_score = 0.0
    for notebook_id in notebooks:
        page = feedback / f"{notebook_hash(secret=secret, notebook_id=notebook_id)}.html"
        try:
            with page.open("rb") as handle:
                head = handle.read(_SCORE_HEAD_BYTES)
        except OSError:
            return  # feedback is ready when every notebook has its page
        found = _SCORE.search(head)
        if found:
            score += float(found.group(1))
            max_score += float(found.group(2))
    if notebooks:
        workbook.feedback = True
        if max_score:
            workbook.score, workbook.max_score = score, max_score


# --- the trainee's list ---------------------------------------------------------------------------


def my_workbooks(root: Path, home: Path, account: str, language: str) -> list[Workbook]:
    """Every workbook released to ``account``'s cohorts in ``language``, with where they stand.

    Args:
        root: the exchange root (nbgrader's ``Exchange.root`` in the trainees' config).
        home: the trainee's server root, where nbgrader's fetch puts ``C/W-L/``.
        account: the trainee's Unix account (nbgrader's student id).
        language: the trainee's language; assignments of another language are left out.
    """
    found = []
    for course in _entries(root):
        if not os.path.isdir(os.path.join(course.path, "inbound", account)):
            continue  # not a course of this trainee's cohorts
        outbound = Path(course.path) / "outbound"
        for released in _entries(outbound):
            if assignment_language(released.name) not in (None, language):
                continue
            if not released.is_dir():
                continue
            found.append(_workbook(root, home, account, course.name, Path(released.path)))
    found.sort(key=lambda w: (w.due is None, w.due or datetime.max.replace(tzinfo=UTC), w.title))
    return found


def _workbook(root: Path, home: Path, account: str, course: str, folder: Path) -> Workbook:
    workbook = Workbook(course=course, assignment=folder.name, title=folder.name)
    notebooks = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    items: list[str] = []
    for number, notebook in enumerate(notebooks):
        try:
            title, found = _notebook_facts(notebook)
        except (OSError, ValueError) as error:
            workbook.problems.append(f"{notebook}: {error}")
            continue
        if number == 0 and title:
            workbook.title = title
        items += [item for item in found if item not in items]
    workbook.notebook = notebooks[0].name if notebooks else ""
    workbook.items = len(items)
    read_policy(workbook, folder)
    mine = home / course / folder.name
    workbook.fetched = bool(workbook.notebook) and (mine / workbook.notebook).is_file()
    read_answers(workbook, mine, items)
    exchange = root / course
    read_submissions(
        workbook, exchange / "inbound" / account, exchange / "feedback" / account, account
    )
    for problem in workbook.problems:
        log.warning("atelier home: %s", problem)
    return workbook
