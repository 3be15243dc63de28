"""Where a trainee stands in each released workbook, on an exchange laid out as release makes it.

The server tier (``tests/servers/test_home.py``) runs the same states through a real hub, real
accounts and the real verbs; here each rule is checked on its own, on folders in a temporary
directory.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import pytest
from harness import FIXTURES
from nbgrader.utils import notebook_hash

from atelier.hub_config.view.progress import my_workbooks
from atelier.widgets.store import AnswerStore

pytestmark = pytest.mark.unit

ME = "at-alice"
RELEASED = FIXTURES / "home" / "01-progress" / "progress.en.ipynb"


@pytest.fixture
def exchange(tmp_path):
    """An exchange with course x (alice is in it, progress-en and -fr released) and course z."""
    root, home = tmp_path / "exchange", tmp_path / "home"
    for course in ("x", "z"):
        for lang in ("en", "fr"):
            folder = root / course / "outbound" / f"progress-{lang}"
            folder.mkdir(parents=True)
            shutil.copy(RELEASED, folder / f"progress.{lang}.ipynb")
        (root / course / "feedback" / ME).mkdir(parents=True)
    (root / "x" / "inbound" / ME).mkdir(parents=True)
    (root / "x" / "outbound" / ".progress-en.staged").mkdir()  # a release in flight: not shown
    home.mkdir()
    return root, home


def _one(root, home, language="en"):
    (workbook,) = my_workbooks(root, home, ME, language)
    return workbook


def test_only_the_trainees_courses_in_her_language_are_listed(exchange):
    """Is only course x (where alice has an inbound folder) listed, in her language only?"""
    root, home = exchange
    workbook = _one(root, home)
    assert (workbook.course, workbook.assignment, workbook.title) == (
        "x",
        "progress-en",
        "Slow links",
    )
    assert (workbook.state, workbook.items, workbook.due) == ("not_started", 3, None)
    assert workbook.path == "x/progress-en/progress.en.ipynb" and not workbook.fetched
    assert [w.assignment for w in my_workbooks(root, home, ME, "fr")] == ["progress-fr"]
    assert my_workbooks(root, home, "at-bob", "en") == []
    assert my_workbooks(root / "missing", home, ME, "en") == []


def test_saved_answers_make_it_in_progress(exchange):
    """Are answers to the workbook's items counted, and others ignored?"""
    root, home = exchange
    mine = home / "x" / "progress-en"
    mine.mkdir(parents=True)
    shutil.copy(RELEASED, mine / "progress.en.ipynb")
    store = AnswerStore(mine, notebook="progress.en.ipynb")
    store.save("progress-q2", "b", "choice")
    store.save("elsewhere", "b", "choice")
    workbook = _one(root, home)
    assert (workbook.state, workbook.answered, workbook.items, workbook.fetched) == (
        "in_progress", 1, 3, True,
    )  # fmt: skip


def test_an_unreadable_answers_file_leaves_the_page_up(exchange):
    """Is a broken answers file reported as a problem, counting nothing, instead of an error?"""
    root, home = exchange
    mine = home / "x" / "progress-en"
    mine.mkdir(parents=True)
    (mine / ".atelier-answers.json").write_text("{not json")
    workbook = _one(root, home)
    assert workbook.state == "not_started" and workbook.problems


def _submit(root, account=ME, secret="s3cret", when="2026-12-02 10:00:00"):
    folder = root / "x" / "inbound" / account / f"{account}+progress-en+{when}+abc"
    folder.mkdir(parents=True)
    (folder / "progress.en.ipynb").write_text("{}")
    (folder / "submission_secret.txt").write_text(secret)
    return folder


def test_a_submission_is_dated_by_its_receipt(exchange):
    """Is the newest submission of this workbook, and only this trainee's, taken as submitted?"""
    root, home = exchange
    before = datetime.now(UTC).replace(microsecond=0)
    _submit(root)
    (root / "x" / "inbound" / ME / f"{ME}+other-en+x+y").mkdir()
    workbook = _one(root, home)
    assert workbook.state == "submitted" and workbook.submissions == 1
    assert workbook.submitted >= before


def test_feedback_for_the_submission_makes_it_ready_with_its_score(exchange):
    """Does nbgrader's feedback file for the submission give "feedback ready" and the score?"""
    root, home = exchange
    _submit(root)
    name = notebook_hash(secret="s3cret", notebook_id="progress.en") + ".html"
    (root / "x" / "feedback" / ME / name).write_bytes(
        b"<html><h4>progress.en (Score: 2.5 / 4.0)</h4><p>(Score: 99 / 99)</p></html>"
    )
    workbook = _one(root, home)
    assert (workbook.state, workbook.score, workbook.max_score) == ("feedback", 2.5, 4.0)


def test_feedback_of_another_secret_is_not_this_submissions(exchange):
    """Is a feedback file made for another submission's secret ignored?"""
    root, home = exchange
    _submit(root)
    name = notebook_hash(secret="another", notebook_id="progress.en") + ".html"
    (root / "x" / "feedback" / ME / name).write_text("<h4>x (Score: 1.0 / 1.0)</h4>")
    assert _one(root, home).state == "submitted"


def test_the_policy_gives_due_date_mode_and_attempts(exchange):
    """Does policy.json beside the release give due date, mode and attempts, and junk nothing?"""
    root, home = exchange
    policy = root / "x" / "outbound" / "progress-en" / "policy.json"
    policy.write_text(
        json.dumps({"due": "2026-12-01T17:00:00Z", "mode": "practice", "attempts": 3})
    )
    workbook = _one(root, home)
    assert workbook.due == datetime(2026, 12, 1, 17, tzinfo=UTC)
    assert (workbook.mode, workbook.attempts, workbook.overdue) == ("practice", 3, True)
    assert not workbook.close_at_due
    policy.write_text(json.dumps({"due": "2026-12-01T17:00:00+00:00", "close_at_due": True}))
    assert _one(root, home).close_at_due
    policy.write_text("[1, 2]")
    workbook = _one(root, home)
    assert workbook.due is None and workbook.problems
    policy.write_text(json.dumps({"due": "tomorrow", "mode": "exam", "attempts": True}))
    workbook = _one(root, home)
    assert (workbook.due, workbook.mode, workbook.attempts) == (None, "", None)
