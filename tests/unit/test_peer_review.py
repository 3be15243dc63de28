"""Peer review without a server: who reviews whom, the peer score, the rubric, the phases."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from atelier.grading.course import GradingError
from atelier.grading.peerreview import assign, late, reflection, state

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def counts(pairs):
    return Counter(r for r, _ in pairs), Counter(a for _, a in pairs)


@pytest.mark.parametrize(("n", "k"), [(2, 3), (3, 2), (4, 3), (5, 2), (7, 3), (12, 4)])
def test_assignment_is_balanced_and_nobody_reviews_themselves(n, k):
    """Does each of n submitters write min(k, n-1) reviews and get as many, never their own?"""
    authors = [f"t{i}" for i in range(n)]
    pairs = assign.assign(authors, k, seed="s")
    per = min(k, n - 1)
    given, received = counts(pairs)
    assert set(given) == set(received) == set(authors)
    assert set(given.values()) == {per} and set(received.values()) == {per}
    assert all(reviewer != author for reviewer, author in pairs)
    assert len(set(pairs)) == len(pairs), "a reviewer was given one submission twice"


def test_assignment_is_deterministic_for_a_seed_and_changes_with_it():
    """Does the same seed give the same pairs, whatever order the authors come in?"""
    authors = [f"t{i}" for i in range(8)]
    first = assign.assign(authors, 3, seed=42)
    assert assign.assign(list(reversed(authors)), 3, seed=42) == first
    assert any(assign.assign(authors, 3, seed=s) != first for s in (1, 2, 3))


def test_only_submitters_are_in_the_assignment():
    """Does one lone submitter get nobody to review, and nobody reviews them?"""
    assert assign.assign(["only"], 3, seed=1) == []


def test_reviews_add_up_to_a_median_or_mean_peer_score():
    """Are totals sums of criteria, and the peer score their median or mean (hand values)?"""
    assert assign.total([1, 0.5, 2]) == 3.5
    assert assign.total([1, None]) is None
    assert assign.aggregate([3, 4, 1]) == 3
    assert assign.aggregate([3, 4, 1, 2]) == 2.5
    assert assign.aggregate([3, 4, 1], "mean") == 2.67
    assert assign.aggregate([None, 2]) == 2
    assert assign.aggregate([]) is None
    assert assign.per_criterion([[1, 0], [1, 1], [0, 1]]) == [1, 1]


# --- the rubric, from the workbooks as authors write them ----------------------------------------


def notebook(path: str) -> dict:
    return json.loads((REPO / path).read_text("utf-8"))


@pytest.mark.parametrize(
    ("path", "widget", "points"),
    [
        (
            "workbooks/02-low-bandwidth-planner/low-bandwidth-planner.en.ipynb",
            "w2-reflect",
            [1, 1, 1, 1],
        ),
        (
            "workbooks/02-low-bandwidth-planner/low-bandwidth-planner.fr.ipynb",
            "w2-reflect",
            [1, 1, 1, 1],
        ),
        ("workbooks/07-home-learning/home-learning.en.ipynb", "w7-reflect", [2, 1, 1]),
        ("workbooks/07-home-learning/home-learning.fr.ipynb", "w7-reflect", [2, 1, 1]),
    ],
)
def test_the_rubric_is_read_from_the_reflection_task_cell(path, widget, points):
    """Are workbooks 02 and 07's rubrics read line by line, in both languages, with the widget?"""
    rubric = reflection.find_rubric(notebook(path), "w-en", Path(path).stem)
    assert rubric.widget == widget
    assert [c["points"] for c in rubric.criteria] == points
    assert sum(points) == rubric.points == 4
    assert all(c["text"] and "point" not in c["text"][:8] for c in rubric.criteria)
    assert "**" not in rubric.prompt and rubric.prompt.startswith(("Reflect", "Réfléchi"))
    assert "Rubric" not in rubric.prompt and "Grille" not in rubric.prompt


def test_a_criterion_continued_on_the_next_line_is_one_criterion():
    """Is workbook 07's two-line first criterion kept whole?"""
    path = "workbooks/07-home-learning/home-learning.en.ipynb"
    rubric = reflection.find_rubric(notebook(path), "w-en", "x")
    assert rubric.criteria[0]["text"].endswith("(1 point for one or two).")


def test_a_markdown_answer_cell_without_a_rubric_is_one_criterion():
    """Does the grading fixture's manually graded answer cell give one 'overall' criterion?"""
    path = "tests/fixtures/grading/01-quiz/quiz.en.ipynb"
    rubric = reflection.find_rubric(notebook(path), "quiz-en", "quiz.en")
    assert (rubric.grade_id, rubric.widget, rubric.points) == ("reflection", "", 3)
    assert rubric.criteria == [{"text": "", "points": 3}]


def test_a_workbook_without_a_reflection_is_refused_by_name():
    """Does a notebook with no reflection get a message naming it?"""
    with pytest.raises(GradingError, match=r"nothing\.en has no reflection"):
        reflection.find_rubric({"cells": []}, "nothing-en", "nothing.en")


# --- the record's phases ------------------------------------------------------------------------

RUBRIC = {
    "assignment": "w-en",
    "notebook": "w.en",
    "grade_id": "g",
    "points": 4,
    "widget": "r",
    "prompt": "",
    "criteria": [{"text": "a", "points": 2}, {"text": "b", "points": 2}],
}


def opened(n=4, k=2, grace=2, due_days=7):
    subs = {f"t{i}": ("w-en", f"text {i}") for i in range(n)}
    return state.create(
        "c",
        "w",
        subs,
        {"w-en": RUBRIC},
        k=k,
        due=T0 + timedelta(days=due_days),
        grace_days=grace,
        seed="x",
        anonymous=True,
        how="median",
        at=T0,
    )


def test_opening_needs_two_submissions_and_a_future_due_date():
    """Is a review of one submission, or due in the past, refused with a message?"""
    with pytest.raises(GradingError, match="at least two"):
        opened(n=1)
    with pytest.raises(GradingError, match="already past"):
        opened(due_days=-1)


def test_a_reviewer_writes_only_their_own_review_with_valid_scores():
    """Are another's review, a missing or out-of-range score and a closed review refused?"""
    record = opened()
    rid, mine = next(iter(record["reviews"].items()))
    other = next(r for r in record["reviews"].values() if r["reviewer"] != mine["reviewer"])
    with pytest.raises(PermissionError):
        state.record_review(record, rid, other["reviewer"], [1, 1], "", T0)
    with pytest.raises(PermissionError):
        state.record_review(record, "0" * 16, mine["reviewer"], [1, 1], "", T0)
    for bad in ([1], [3, 1], [-1, 1], ["x", 1], [0.3, 1]):
        with pytest.raises(GradingError, match="incomplete"):
            state.record_review(record, rid, mine["reviewer"], bad, "", T0)
    saved = state.record_review(record, rid, mine["reviewer"], ["2", "1.5"], " Good. ", T0)
    assert (saved["scores"], saved["comment"], saved["state"]) == ([2, 1.5], "Good.", "done")
    state.close(record, T0)
    with pytest.raises(GradingError, match="closed"):
        state.record_review(record, rid, mine["reviewer"], [2, 2], "", T0)


def test_at_the_due_date_missed_reviews_are_reported_and_reassigned():
    """Does the due date mark a late reviewer's reviews missed and hand them to the others?"""
    record = opened(n=4, k=2)
    slow = "t0"
    for rid, each in list(record["reviews"].items()):
        if each["reviewer"] != slow:
            state.record_review(record, rid, each["reviewer"], [1, 1], "", T0)
    assert not state.advance(record, T0 + timedelta(days=6))
    assert state.advance(record, T0 + timedelta(days=7, minutes=1))
    assert not state.is_closed(record) and record["round"] == 2
    assert {m["reviewer"] for m in record["missed"]} == {slow}
    second = [r for r in record["reviews"].values() if r["round"] == 2]
    assert len(second) == 2
    for each in second:
        author = record["submissions"][each["submission"]]["author"]
        assert each["reviewer"] not in (slow, author)
        earlier = {
            r["reviewer"]
            for r in record["reviews"].values()
            if r["submission"] == each["submission"] and r is not each
        }
        assert each["reviewer"] not in earlier, "given a submission they already reviewed"
    # Every submission still gets its k reviews counting the new ones.
    live = Counter(r["submission"] for r in record["reviews"].values() if r["state"] != "missed")
    assert set(live.values()) == {2}
    # At the second due date the review closes; what is still pending is missed too.
    assert state.advance(record, T0 + timedelta(days=9, minutes=2))
    assert state.is_closed(record)
    assert all(r["state"] in ("done", "missed") for r in record["reviews"].values())


def test_without_grace_days_the_due_date_closes_the_review():
    """With grace_days 0, does the due date close at once, reporting who missed it?"""
    record = opened(grace=0)
    state.advance(record, T0 + timedelta(days=8))
    assert state.is_closed(record) and len(record["missed"]) == len(record["reviews"])


def test_reassign_leaves_a_review_missed_when_nobody_is_left():
    """With two submitters who both missed, is there nobody to take over (reported, not lost)?"""
    record = opened(n=2, k=1)
    moves = state.reassign(record, T0, T0 + timedelta(days=1))
    assert moves and all(new is None for _, new in moves)


def test_the_author_sees_done_reviews_only_after_the_close_and_no_reviewer():
    """Does an author see nothing before the close, then the done reviews with no reviewer id?"""
    record = opened(n=4, k=3)
    author = "t1"
    sid = state.submission_of(record, author)
    theirs = [(rid, r) for rid, r in record["reviews"].items() if r["submission"] == sid]
    for (rid, each), scores in zip(theirs[:2], ([2, 2], [1, 0]), strict=True):
        state.record_review(record, rid, each["reviewer"], scores, "c", T0)
    assert state.received(record, author) is None
    state.close(record, T0)
    mine = state.received(record, author)
    assert sorted(r["total"] for r in mine["reviews"]) == [1, 4]
    assert mine["peer_score"] == 2.5
    assert state.received(record, "nobody") is None


def test_the_record_is_written_whole_and_private(tmp_path):
    """Is the record saved 0600 in 0700 folders and read back the same?"""
    record = opened()
    state.save(tmp_path, record)
    file = state.path(tmp_path, "c", "w")
    assert file.stat().st_mode & 0o777 == 0o600
    assert file.parent.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "peerreview").stat().st_mode & 0o777 == 0o700
    assert state.load(tmp_path, "c", "w") == record
    assert state.reviews_of_cohort(tmp_path, "c") == ["w"]


def test_due_dates_are_read_as_utc_and_bad_ones_named():
    """Is a bare date the end of that day UTC, and a wrong one refused with the text given?"""
    assert state.parse_time("2026-12-10") == datetime(2026, 12, 10, 23, 59, tzinfo=UTC)
    assert state.parse_time("2026-12-10T08:30") == datetime(2026, 12, 10, 8, 30, tzinfo=UTC)
    with pytest.raises(GradingError, match="'next week' is not a date"):
        state.parse_time("next week")


def test_choices_follow_the_criterion_points():
    """Are a criterion's choices 0 to its points (halves for a fraction)?"""
    assert state.choices(2) == [0, 1, 2]
    assert state.choices(1.5) == [0, 0.5, 1, 1.5]


def test_every_word_of_the_pages_is_in_english_and_french():
    """Do both catalogues hold the same keys, and every template's key exist?"""
    import re

    folder = REPO / "grading" / "peerreview"
    en = json.loads((folder / "locales" / "en.json").read_text("utf-8"))
    fr = json.loads((folder / "locales" / "fr.json").read_text("utf-8"))
    assert en.keys() == fr.keys()
    used = set()
    for template in (folder / "templates").glob("*.j2"):
        used |= set(re.findall(r'text\["(\w+)"\]', template.read_text("utf-8")))
        used |= set(re.findall(r"text\['(\w+)'\]", template.read_text("utf-8")))
    assert {f"peer.{k}" for k in used} <= en.keys()


def test_the_hub_runs_the_service_as_root_for_the_cohorts_groups():
    """Is atelier-peer a root service (no user), opened by the cohorts' groups' role only?"""
    from atelier.grading.peerreview.service import hub_service

    settings = {"grading": {"peer_review": {"port": 8999}}}
    service, role = hub_service(settings, ["nbgrader-p", "formgrade-p"])
    assert service["name"] == "atelier-peer" and "user" not in service
    assert service["url"] == "http://127.0.0.1:8999"
    assert service["command"][-1] == "atelier.grading.peerreview.service"
    assert role["scopes"] == ["access:services!service=atelier-peer"]
    assert role["groups"] == ["formgrade-p", "nbgrader-p"]


def live_reviews(record):
    """(reviews per submission, reviews per reviewer), missed ones left out."""
    live = [r for r in record["reviews"].values() if r["state"] != "missed"]
    return Counter(r["submission"] for r in live), Counter(r["reviewer"] for r in live)


@pytest.mark.parametrize(("n", "k", "count"), [(4, 2, 1), (5, 3, 2), (3, 2, 1), (2, 1, 1)])
def test_a_late_submission_joins_with_k_reviewers_and_k_reviews_balanced(n, k, count):
    """Does a submission collected late get k reviewers and its author k reviews, none theirs?"""
    record = opened(n=n, k=k)
    newcomers = {f"late{i}": ("w-en", f"late text {i}") for i in range(count)}
    added = late.add_submissions(record, newcomers, T0 + timedelta(days=1))
    assert [a for a, _, _ in added] == sorted(newcomers)
    per_submission, per_reviewer = live_reviews(record)
    for index, (account, reviewers, authors) in enumerate(added):
        sid = state.submission_of(record, account)
        assert record["submissions"][sid]["added"]
        assert account not in reviewers and account not in authors
        # k of the submitters already in (all of them when fewer), each once.
        wanted = min(k, n + index)
        assert len(set(reviewers)) == len(reviewers) == wanted
        assert len(set(authors)) == len(authors) == wanted
        # A later newcomer may review this one too: never fewer reviews than asked.
        assert per_submission[sid] >= wanted and per_reviewer[account] >= wanted
    # Balanced: nobody holds more than one review over anyone else, nor any submission.
    assert max(per_submission.values()) - min(per_submission.values()) <= 1
    assert max(per_reviewer.values()) - min(per_reviewer.values()) <= 1
    for each in record["reviews"].values():
        assert each["reviewer"] != record["submissions"][each["submission"]]["author"]
    # What they were given is on their list of reviews to write.
    assert len(state.to_do(record, "late0")) == per_reviewer["late0"]


def test_adding_skips_who_is_in_and_prefers_reviewers_who_missed_nothing():
    """Is a submitter already in left alone, and a reviewer who missed passed over first?"""
    record = opened(n=4, k=1)
    missed = "t0"
    rid = next(r for r, each in record["reviews"].items() if each["reviewer"] == missed)
    record["reviews"][rid]["state"] = "missed"
    record["missed"].append({"reviewer": missed, "review": rid, "round": 1, "at": "x"})
    before = dict(record["submissions"])
    added = late.add_submissions(
        record, {"t1": ("w-en", "again"), "t9": ("w-en", "late")}, T0 + timedelta(hours=1)
    )
    assert [a for a, _, _ in added] == ["t9"]
    assert all(record["submissions"][s] == before[s] for s in before)
    assert added[0][1] != [missed]


def test_a_closed_review_or_an_unknown_language_takes_no_late_submission():
    """Are a closed review and a submission of an assignment with no rubric refused by name?"""
    record = opened()
    with pytest.raises(GradingError, match="no rubric for"):
        late.add_submissions(record, {"t9": ("w-fr", "tard")}, T0)
    state.close(record, T0)
    with pytest.raises(GradingError, match="is closed"):
        late.add_submissions(record, {"t9": ("w-en", "late")}, T0)
    assert state.submission_of(record, "t9") is None


def test_a_records_folder_that_does_not_exist_yet_is_made_private(tmp_path):
    """Is grading.peer_review.state_dir made (0700) at the first record, as on a new volume?"""
    where = tmp_path / "courses" / ".atelier-peer"
    where.parent.mkdir()
    state.save(where, opened())
    assert where.stat().st_mode & 0o777 == 0o700
    assert state.load(where, "c", "w")["cohort"] == "c"


def test_peer_add_reads_only_newcomers_and_saves_them_into_the_record(tmp_path, monkeypatch):
    """Does add_late skip the texts of who is in, and save the newcomer under the lock?"""
    from types import SimpleNamespace

    from atelier.grading.peerreview import review

    record = opened(n=3, k=2, due_days=30000)
    state.save(tmp_path, record)
    asked = {}

    def collected(course, trainees, assignments, skip=frozenset()):
        asked["skip"] = set(skip)
        return {}, {"t7": ("w-en", "late words")}

    monkeypatch.setattr(review, "collected", collected)
    settings = {"hub": {"state_dir": str(tmp_path)}, "grading": {"peer_review": {}}}
    course = SimpleNamespace(cohort="c")
    _, added = review.add_late(settings, course, [], "w", ["w-en"])
    assert asked["skip"] == {"t0", "t1", "t2"}
    assert [a for a, _, _ in added] == ["t7"]
    saved = state.load(tmp_path, "c", "w")
    assert saved["submissions"][state.submission_of(saved, "t7")]["text"] == "late words"
    assert len(state.to_do(saved, "t7")) == 2
    with pytest.raises(GradingError, match="never opened"):
        review.add_late(settings, course, [], "other", ["w-en"])
