"""Saved-answer events, read from the answers files of a cohort's trainees without trusting them.

Rule: every widget save already leaves a record: the answers file ``.atelier-answers.json`` beside
the notebook keeps, per answer, its last :data:`atelier.widgets.store.HISTORY_EVENTS` saves with
their times (``history``, issue 14), so no second record is written. For trainee account ``A``
(home ``H``) and each released assignment ``W-L`` of cohort ``C``, the events are the ``saved``
times of every answer and its history in:

- ``H/C/W-L/.atelier-answers.json``, the trainee's working copy (where nbgrader's fetch puts it);
- ``<courses_root>/C/submitted/A/W-L/.atelier-answers.json``, the copy collect kept (a trainee who
  deleted their working copy still counts).

The same moment in both counts once. Root reads a trainee's home the way
:mod:`atelier.grading.safefs` says: ``/home`` (root's) opened by path, then each folder below
without following a link and owned by the trainee, then the file as a plain file of at most
:data:`atelier.widgets.store.MAX_BYTES` (so one account costs at most that per assignment); a link,
pipe or foreign file is skipped with a problem logged, never followed. The times are the trainee's
server's: a trainee who edits their own file can change their own numbers, never anyone else's;
times before 2000 or more than a day ahead are ignored.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from atelier.grading import safefs
from atelier.grading.participation.stats import Event
from atelier.widgets.store import ANSWERS_FILENAME, MAX_BYTES, AnswersFileError, parse

log = logging.getLogger("atelier.participation")

#: Times outside [EARLIEST, now + 1 day] are not events a widget wrote.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def parse_time(text) -> datetime | None:
    """``2026-11-28T10:30:00Z`` as an aware UTC time; None for anything else."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    if moment < EARLIEST or moment > datetime.now(UTC) + timedelta(days=1):
        return None
    return moment


def save_times(data: bytes, source: str) -> set[datetime]:
    """Every save time in an answers file's bytes (each answer's ``saved`` and its history).

    Raises:
        AnswersFileError: the bytes are not an answers file.
    """
    document = parse(data.decode("utf-8", errors="replace"), source)
    times = set()
    for entry in document["answers"].values():
        history = entry.get("history")
        saves = [entry.get("saved")]
        if isinstance(history, list):
            saves += [e.get("saved") for e in history if isinstance(e, dict)]
        times.update(t for t in map(parse_time, saves) if t is not None)
    return times


def _read(top: Path, parts: list[str], owners: set[int] | None) -> bytes | None:
    """The answers file below ``top/parts`` read without links, or None when absent or refused."""
    shown = top.joinpath(*parts, ANSWERS_FILENAME)
    try:
        with safefs.opened_dir(top, parts, owners) as folder:
            return safefs.read_at(folder, ANSWERS_FILENAME, shown, MAX_BYTES, owners)
    except FileNotFoundError:
        return None
    except (OSError, safefs.UnsafePath) as error:
        log.warning("atelier participation: %s: skipped (%s)", shown, error)
        return None


def answer_copies(course, account: str, assignment: str) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) of each answers file of ``account`` for ``assignment``: home, collected."""
    try:
        entry = pwd.getpwnam(account)
    except KeyError:
        entry = None
    if entry is not None:
        home = Path(entry.pw_dir)
        # The home's parent is root's (``accounts.home_root``): everything below is the trainee's.
        data = _read(home.parent, [home.name, course.course_id, assignment], {entry.pw_uid})
        if data is not None:
            yield str(home / course.course_id / assignment), data
    data = _read(course.root, ["submitted", account, assignment], None)
    if data is not None:
        yield str(course.submission_dir(account, assignment)), data


def trainee_events(
    course, username: str, account: str, workbooks: Iterable[str], languages: Iterable[str]
) -> list[Event]:
    """The events of one trainee in each of ``workbooks`` (every language), deduplicated."""
    found = []
    for workbook in workbooks:
        moments: set[datetime] = set()
        for language in languages:
            for where, data in answer_copies(course, account, f"{workbook}-{language}"):
                try:
                    moments |= save_times(data, os.path.join(where, ANSWERS_FILENAME))
                except (AnswersFileError, json.JSONDecodeError) as error:
                    log.warning("atelier participation: skipped: %s", error)
        found += [Event(username, workbook, at) for at in sorted(moments)]
    return found


def released_workbooks(course) -> list[str]:
    """The workbooks released to the cohort (its ``source/W-L`` folders), sorted."""
    from atelier.grading.course import GradingError, split_assignment

    found = set()
    try:
        names = os.listdir(course.source)
    except FileNotFoundError:
        return []
    for name in names:
        try:
            found.add(split_assignment(name)[0])
        except GradingError:
            continue
    return sorted(found)


def read_cohort(settings, cohort: str):
    """(participants, events, workbooks) of ``cohort`` now: roster, answers files, releases."""
    from atelier.accounts import load_people
    from atelier.grading.course import Course
    from atelier.grading.courses.people import cohort_people
    from atelier.grading.participation.stats import Participant
    from atelier.languages import LANGUAGES

    course = Course.from_settings(settings, cohort)
    trainees, _ = cohort_people(settings, cohort)
    people = load_people(settings.get_path("hub.state_dir"))
    workbooks = released_workbooks(course)
    participants, events = [], []
    for trainee in trainees:
        person = people.get(trainee.username)
        participants.append(
            Participant(
                username=trainee.username,
                language=trainee.language,
                institution=getattr(person, "institution", ""),
                country=getattr(person, "country", ""),
                gender=getattr(person, "gender", ""),
                consents=getattr(person, "consents", True),
            )
        )
        events += trainee_events(course, trainee.username, trainee.account, workbooks, LANGUAGES)
    return participants, events, workbooks


def cohort_participation(settings, cohort: str, institution: str = ""):
    """The :class:`~.stats.Participation` of ``cohort`` (or of one institution of it) now."""
    from atelier.grading.participation.stats import participation

    participants, events, workbooks = read_cohort(settings, cohort)
    return participation(
        participants,
        events,
        workbooks,
        gap_cap_minutes=settings.get_path("grading.participation.gap_cap_minutes", 10),
        min_group=settings.get_path("grading.participation.min_group", 5),
        institution=institution,
    )
