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
