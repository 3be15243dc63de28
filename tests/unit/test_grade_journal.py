"""The grading journal and the per-cell limit, as pure functions.

The journal decides what ``atelier grade`` skips: only notebooks recorded complete, from the same
submission, whose autograded copy is still the one written then.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from traitlets.config import Config

from atelier.grading.autograde.grade_options import NO_CELL_LIMIT, cell_timeout
from atelier.grading.autograde.journal import GradeJournal, JournalError, file_digest
from atelier.grading.autograde.outcome import Outcome

pytestmark = pytest.mark.unit


def _graded(tmp_path, journal: GradeJournal, notebooks=("a", "b")) -> str:
    dest = tmp_path / "autograded" / "ana" / "ps1"
    dest.mkdir(parents=True, exist_ok=True)
    outputs = {}
    for notebook in notebooks:
        (dest / f"{notebook}.ipynb").write_text(f'{{"nb": "{notebook}"}}')
        outputs[notebook] = file_digest(str(dest / f"{notebook}.ipynb"))
    journal.start("ana", "ps1", notebooks)
    journal.record(Outcome("ana", "ps1"), "d1", outputs)
    return str(dest)


def test_a_complete_run_is_skipped_and_survives_a_reload(tmp_path):
    """Is a notebook recorded complete, with its output intact, done, also after reloading?"""
    path = tmp_path / "log" / "grade-journal.jsonl"
    dest = _graded(tmp_path, GradeJournal(path))
    assert GradeJournal(path).done("ana", "ps1", "d1", ["a", "b"], dest)["status"] == "graded"
    assert GradeJournal(path).done("ana", "ps1", "d2", ["a", "b"], dest) is None  # resubmitted


def test_a_started_run_without_completion_is_not_done(tmp_path):
    """After a start line (a run killed midway), is the earlier completion no longer trusted?"""
    path = tmp_path / "grade-journal.jsonl"
    journal = GradeJournal(path)
    dest = _graded(tmp_path, journal)
    journal.start("ana", "ps1", ["a"])
    reloaded = GradeJournal(path)
    assert reloaded.done("ana", "ps1", "d1", ["a"], dest) is None
    assert reloaded.done("ana", "ps1", "d1", ["b"], dest) is not None  # b was not touched


def test_deleted_or_changed_output_is_not_done(tmp_path):
    """Is a notebook whose autograded copy was deleted or changed graded again?"""
    path = tmp_path / "grade-journal.jsonl"
    dest = _graded(tmp_path, GradeJournal(path))
    os.remove(os.path.join(dest, "a.ipynb"))
    with open(os.path.join(dest, "b.ipynb"), "a") as handle:
        handle.write(" ")
    journal = GradeJournal(path)
    assert journal.done("ana", "ps1", "d1", ["a"], dest) is None
    assert journal.done("ana", "ps1", "d1", ["b"], dest) is None


def test_cut_lines_and_older_formats_are_ignored(tmp_path):
    """Are a line cut by a crash and an older engine's line ignored (so: graded again)?"""
    path = tmp_path / "grade-journal.jsonl"
    dest = _graded(tmp_path, GradeJournal(path))
    text = path.read_text()
    old = '{"student": "ana", "assignment": "ps1", "digest": "d1", "status": "graded"}\n'
    path.write_text(old + text[: len(text) - 10])
    assert GradeJournal(path).done("ana", "ps1", "d1", ["a"], dest) is None


def test_the_journal_is_never_followed_through_a_link(tmp_path):
    """Does the journal refuse a symbolic link in its place, or in place of its folder?"""
    target = tmp_path / "root-only"
    target.mkdir()
    path = tmp_path / "grade-journal.jsonl"
    path.symlink_to(target / "journal")
    with pytest.raises(JournalError, match="symbolic link"):
        GradeJournal(path).start("ana", "ps1", ["a"])
    linked = tmp_path / "log"
    linked.symlink_to(target)
    with pytest.raises(JournalError, match="symbolic link"):
        GradeJournal(linked / "grade-journal.jsonl").start("ana", "ps1", ["a"])
    assert list(target.iterdir()) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, 30.0),
        ({"Execute": {"timeout": 7}}, 7.0),
        ({"Execute": {"timeout": None}}, NO_CELL_LIMIT),
        ({"Execute": {"timeout": 0}}, NO_CELL_LIMIT),
        ({"Execute": {"timeout": -1}}, NO_CELL_LIMIT),
        ({"ExecutePreprocessor": {"timeout": None}}, NO_CELL_LIMIT),
        ({"ExecutePreprocessor": {"timeout": None}, "Execute": {"timeout": 9}}, 9.0),
    ],
)
def test_cell_limit_is_nbgraders_timeout(config, expected):
    """Is the per-cell limit nbgrader's Execute.timeout, with None, 0 or less meaning none?"""
    assert cell_timeout(Config(config)) == expected


def test_a_link_or_pipe_in_a_notebooks_place_is_not_done_and_not_waited_on(tmp_path):
    """Is a link or a FIFO in an autograded notebook's place not followed, and regraded?"""
    path = tmp_path / "grade-journal.jsonl"
    dest = _graded(tmp_path, GradeJournal(path))
    a, b = os.path.join(dest, "a.ipynb"), os.path.join(dest, "b.ipynb")
    copy = tmp_path / "copy.ipynb"
    copy.write_bytes(Path(a).read_bytes())
    os.remove(a)
    os.symlink(copy, a)
    os.remove(b)
    os.mkfifo(b)
    journal = GradeJournal(path)
    assert journal.done("ana", "ps1", "d1", ["a"], dest) is None
    assert journal.done("ana", "ps1", "d1", ["b"], dest) is None
