"""The facilitators' dashboard's numbers for a seeded cohort: progress, breakdowns, CSV."""

from __future__ import annotations

import csv
import io

import pytest
from seeds import seed_dashboard_cohort

from atelier.grading.dashboard import dashboard

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def progress(tmp_path_factory):
    settings = seed_dashboard_cohort(tmp_path_factory.mktemp("dash"))
    return dashboard.cohort_progress(settings, "c1")


def test_progress_per_trainee_and_workbook(progress):
    """Does each trainee's line say started, submitted, graded and score for each workbook?"""
    assert progress.workbooks == ["alpha", "beta"]
    rows = {t.username: t for t in progress.trainees}
    assert sorted(rows) == ["amina", "benoit", "chen", "dara"]
    chen, dara = rows["chen"].workbooks, rows["dara"].workbooks
    assert (chen["beta"].started, chen["beta"].submitted, chen["beta"].graded) == (
        True,
        True,
        False,
    )
    assert (dara["beta"].submitted, dara["beta"].graded) == (True, False)
    assert rows["benoit"].workbooks["beta"].percent == 100.0
    assert [rows[n].completion for n in ("amina", "benoit", "chen", "dara")] == [100, 100, 50, 50]
    assert [t.completed for t in progress.trainees].count(True) == 2


def test_workbook_summary(progress):
    """Per workbook: how many started, submitted, were graded, and the mean score?"""
    summary = {row["workbook"]: row for row in dashboard.workbook_summary(progress)}
    assert summary["alpha"] == {
        "workbook": "alpha",
        "trainees": 4,
        "started": 4,
        "submitted": 4,
        "graded": 4,
        "mean percent": 100.0,
    }
    assert (summary["beta"]["submitted"], summary["beta"]["graded"]) == (4, 2)


def test_breakdowns_by_any_roster_column(progress):
    """Are trainees grouped by institution, country and an extra roster column, with completion?"""
    assert progress.columns == ["institution", "country", "language", "district"]
    by_institution = dashboard.breakdown(progress, "institution")
    assert by_institution == [
        {"institution": "Univ A", "trainees": 3, "completed": 2, "mean completion": 83.3},
        {"institution": "Univ B", "trainees": 1, "completed": 0, "mean completion": 50.0},
    ]
    by_district = {row["district"]: row for row in dashboard.breakdown(progress, "district")}
    assert by_district["South"]["completed"] == 0
    assert len(dashboard.breakdown(progress, "country")) == 4


def test_csv_download(progress):
    """Does the CSV hold one row per trainee with roster columns and every workbook's progress?"""
    rows = list(csv.DictReader(io.StringIO(dashboard.progress_csv(progress))))
    assert [r["username"] for r in rows] == ["amina", "benoit", "chen", "dara"]
    chen = rows[2]
    assert chen["institution"] == "Univ A" and chen["district"] == "South"
    assert (chen["beta submitted"], chen["beta graded"], chen["completion %"]) == (
        "yes",
        "no",
        "50",
    )
    assert rows[0]["alpha score"] == "2"


def test_charts_and_tables_load_nothing(progress):
    """Are the dashboard's tables and charts plain HTML/SVG, with no script or outside address?"""
    page = dashboard.trainee_table(progress) + dashboard.bar_chart(
        dashboard.breakdown(progress, "country"), "country", "mean completion"
    )
    assert "<script" not in page and "src=" not in page
    assert page.count("<rect") == 4


def test_items_section_shows_each_graded_item_of_first_attempts(tmp_path):
    """Does the dashboard list each item of the logged attempts, escaped, with its chart?"""
    import json

    from atelier.grading import itemanalysis
    from atelier.grading.course import Course

    settings = seed_dashboard_cohort(tmp_path)
    course = Course.from_settings(settings, "c1")
    (course.root / "log").mkdir(exist_ok=True)
    lines = [
        {
            "student": f"t{i}",
            "assignment": "alpha-en",
            "received": f"2026-11-0{i + 1}T10:00:00",
            "items": {
                "<b>q1</b>": {"score": i % 2, "max": 1, "widget": "w", "answer": "ab"[i % 2]},
                "q2": {"score": 2, "max": 2, "widget": None, "answer": None},
            },
        }
        for i in range(4)
    ]
    log = course.root / "log" / itemanalysis.ATTEMPTS_LOG
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))

    progress = dashboard.cohort_progress(settings, "c1")
    page = dashboard.page(progress)

    assert [r.item for r in progress.items["alpha"]] == ["<b>q1</b>", "q2"]
    assert progress.items["beta"] == []
    assert 'aria-label="Items of alpha"' in page and "Items of beta" not in page
    assert "&lt;b&gt;q1&lt;/b&gt;" in page and "<b>q1</b>" not in page
    # q1: half right -> facility 50.0; q2: all right -> 100.0; a bar each
    section = page[page.index('aria-label="Items of alpha"') :]
    assert "<td>50.0</td>" in section and "<td>100.0</td>" in section
    assert section.count("<rect") == 2
