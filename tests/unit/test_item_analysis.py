"""Item analysis (issue 19): Moodle's quiz statistics, computed by hand on small cohorts.

Each expected value below is worked out in the comment beside it, from the definitions in
:mod:`atelier.grading.itemanalysis` (Moodle's question statistics calculator).
"""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from atelier.grading import itemanalysis
from atelier.grading.itemanalysis import analyse, choose_attempts, item_statistics

pytestmark = pytest.mark.unit


def test_statistics_of_an_item_that_ranks_trainees_as_the_rest_does():
    """Facility, SD, discrimination and efficiency of item scores [0, 1, 1, 2] (max 2)."""
    stats = item_statistics([0, 1, 1, 2], rest=[1, 2, 4, 5], maximum=2)
    # mean 1 of 2 -> 50 %; variance (1 + 0 + 0 + 1) / 3 = 2/3, SD sqrt(2/3) / 2 = 40.82 %
    assert stats["facility"] == pytest.approx(50.0)
    assert stats["sd"] == pytest.approx(100 * math.sqrt(2 / 3) / 2)
    # rest: mean 3, variance (4 + 1 + 1 + 4) / 3 = 10/3; covariance (2 + 0 + 0 + 2) / 3 = 4/3
    # index 100 * (4/3) / sqrt(2/3 * 10/3) = 100 * 4 / sqrt(20) = 89.44
    assert stats["discrimination"] == pytest.approx(100 * 4 / math.sqrt(20))
    # already in the same order as the rest: the largest covariance possible, efficiency 100
    assert stats["efficiency"] == pytest.approx(100.0)


def test_statistics_of_an_item_that_ranks_trainees_differently():
    """The same scores given to other trainees: [0, 2, 1, 1] against rest [1, 2, 4, 5]."""
    stats = item_statistics([0, 2, 1, 1], rest=[1, 2, 4, 5], maximum=2)
    assert stats["facility"] == pytest.approx(50.0)
    # covariance ((-1)(-2) + (1)(-1) + 0 + 0) / 3 = 1/3 -> index 100 / sqrt(20) = 22.36
    assert stats["discrimination"] == pytest.approx(100 / math.sqrt(20))
    # the largest covariance (both sorted) is 4/3 -> efficiency (1/3) / (4/3) = 25 %
    assert stats["efficiency"] == pytest.approx(25.0)


def test_statistics_that_cannot_be_computed_are_none():
    """One trainee: no spread; everybody equal: no correlation."""
    one = item_statistics([1], rest=[3], maximum=1)
    assert one["facility"] == 100.0 and one["sd"] is None and one["discrimination"] is None
    same = item_statistics([1, 1, 1], rest=[1, 2, 3], maximum=1)
    assert same["sd"] == 0.0 and same["discrimination"] is None and same["efficiency"] is None


def attempt(student, language, received, **items):
    """One attempt record: ``item=(score, max, answer)``."""
    return {
        "student": student,
        "assignment": f"planner-{language}",
        "received": received,
        "items": {
            name: {"score": s, "max": m, "widget": name, "answer": a}
            for name, (s, m, a) in items.items()
        },
    }


def test_first_attempt_counts_by_default_and_a_regrade_counts_once():
    records = [
        attempt("ana", "en", "2026-11-02T10:00:00", q=(0, 1, "a")),
        attempt("ana", "en", "2026-11-01T10:00:00", q=(1, 1, "b")),
        attempt("ben", "fr", "2026-11-01T09:00:00", q=(0, 1, "a")),
        # ben's first attempt graded again (same receipt time): its newest scores count
        attempt("ben", "fr", "2026-11-01T09:00:00", q=(1, 1, "b")),
        attempt("cleo", "en", "2026-11-01T09:00:00", q=(1, 1, "b")) | {"assignment": "other-en"},
    ]
    first = {a["student"]: a["items"]["q"]["score"] for a in choose_attempts(records, "planner")}
    last = {
        a["student"]: a["items"]["q"]["score"] for a in choose_attempts(records, "planner", "last")
    }
    assert first == {"ana": 1, "ben": 1}
    assert last == {"ana": 0, "ben": 1}


def cohort_of_twelve():
    """Twelve trainees: six English, six French, two items.

    ``good`` follows the rest of the score; ``odd`` is a choice the strongest get wrong (they
    choose ``c``), and the French trainees find it much harder.
    """
    records = []
    for index in range(12):
        language = "en" if index < 6 else "fr"
        strong = index % 6 >= 3  # three strong trainees in each language
        good = 2 if strong else 0
        if strong:
            odd = (0, "c")
        elif language == "en":
            odd = (1, "b")
        else:
            odd = (0, "a")
        records.append(attempt(
            f"t{index:02}", language, "2026-11-01T10:00:00",
            good=(good, 2, None), odd=(odd[0], 1, odd[1]), filler=(index % 3, 2, None),
        ))  # fmt: skip
    return records


def test_flags_a_key_that_may_be_wrong_and_languages_that_differ():
    reports = {r.item: r for r in analyse(choose_attempts(cohort_of_twelve(), "planner"))}
    odd = reports["odd"]
    # right: the three weak English trainees only -> 3 / 12 = 25 %
    assert odd.facility == pytest.approx(25.0)
    assert odd.options == {"a": 3, "b": 3, "c": 6}
    assert odd.by_language == {"en": (6, pytest.approx(50.0)), "fr": (6, pytest.approx(0.0))}
    # the strongest third (by rest score) all chose c, which is wrong
    assert "key may be wrong" in odd.flags
    assert "does not discriminate" in odd.flags
    # six trainees per language: too few to compare languages
    assert not [f for f in odd.flags if "differ" in f]


def test_languages_are_compared_with_ten_trainees_each():
    records = cohort_of_twelve()
    more = [{**r, "student": r["student"] + "x"} for r in records]  # 24 trainees: 12 per language
    reports = {r.item: r for r in analyse(choose_attempts(records + more, "planner"))}
    assert "en and fr differ" in reports["odd"].flags
    assert "en and fr differ" not in reports["good"].flags


def test_no_flag_under_ten_trainees():
    few = cohort_of_twelve()[:9]
    reports = analyse(choose_attempts(few, "planner"))
    assert all(r.flags == [] for r in reports)


def test_easy_and_hard_items_are_flagged():
    records = [
        attempt(
            f"t{i}", "en", "2026-11-01", easy=(1, 1, None), hard=(0, 1, None), x=(i % 4, 3, None)
        )
        for i in range(10)
    ]
    reports = {r.item: r for r in analyse(choose_attempts(records, "planner"))}
    assert "almost everybody right" in reports["easy"].flags
    assert "almost nobody right" in reports["hard"].flags


def test_the_csv_has_one_row_per_item_and_neutralises_formulas():
    records = [
        attempt(f"t{i}", "en", "2026-11-01", **{"=cmd|' /C calc'!A0": (i % 2, 1, "=HYPERLINK(1)")})
        for i in range(4)
    ]
    text = itemanalysis.report_csv("planner", analyse(choose_attempts(records, "planner")))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == itemanalysis.COLUMNS
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["item"].startswith("'=") and row["options"].startswith("'=")
    assert (row["trainees"], row["facility_index"]) == ("4", "50.0")


def test_a_cut_or_forged_log_line_is_skipped(tmp_path):
    (tmp_path / "log").mkdir()
    good = attempt("ana", "en", "2026-11-01", q=(1, 1, "a"))
    lines = [json.dumps(good), '{"student": "ben", "items": ', json.dumps({**good, "items": []})]
    (tmp_path / "log" / itemanalysis.ATTEMPTS_LOG).write_text("\n".join(lines) + "\n")
    assert itemanalysis.read_attempts(tmp_path) == [good]


def test_a_link_in_place_of_the_log_is_refused(tmp_path):
    from atelier.grading.safefs import UnsafePath

    (tmp_path / "log").mkdir()
    secret = tmp_path / "secret.jsonl"
    secret.write_text(json.dumps(attempt("ana", "en", "2026-11-01", q=(1, 1, "a"))) + "\n")
    (tmp_path / "log" / itemanalysis.ATTEMPTS_LOG).symlink_to(secret)
    with pytest.raises(UnsafePath):
        itemanalysis.read_attempts(tmp_path)


def test_a_course_with_nothing_graded_yet_has_no_attempts(tmp_path):
    assert itemanalysis.read_attempts(tmp_path) == []
    (tmp_path / "log").mkdir()
    assert itemanalysis.read_attempts(tmp_path) == []


def test_graded_widgets_are_read_from_the_test_cells():
    notebook = {
        "cells": [
            {"cell_type": "code", "metadata": {"nbgrader": {"grade": True, "grade_id": "t1"}},
             "source": 'check_answered("w2-plan", language="en")\n'},
            {"cell_type": "code", "metadata": {"nbgrader": {"grade": True, "grade_id": "t2"}},
             "source": ["from x import y\n", "score_order('w2-order', ['a'], 2)"]},
            {"cell_type": "code", "metadata": {"nbgrader": {"grade": False, "grade_id": "a"}},
             "source": 'check_answered("not-a-test")'},
        ]
    }  # fmt: skip
    assert itemanalysis.graded_widgets(notebook) == {"t1": "w2-plan", "t2": "w2-order"}
