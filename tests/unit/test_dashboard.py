"""The facilitators' dashboard's numbers for a seeded cohort: progress, breakdowns, CSV."""

from __future__ import annotations

import csv
import io

import pytest
from atelier.grading.course import Course
from atelier.hub_config import dashboard
from atelier.hub_config.accounts import save_people
from atelier.hub_config.roster import Person
from conftest import seed_gradebook

from atelier.settings import load_settings

pytestmark = pytest.mark.unit

PEOPLE = [
    ("amina", "Amina Diallo", "Univ A", "Senegal", "en", {"district": "North"}),
    ("benoit", "Benoît Kaboré", "Univ A", "Burkina Faso", "fr", {"district": "North"}),
    ("chen", "Chen Wei", "Univ A", "Kenya", "en", {"district": "South"}),
    ("dara", "Dara Sok", "Univ B", "Cambodia", "en", {"district": "South"}),
]


def seeded_settings(root):
    """Settings, roster and gradebook of cohort c1 (4 trainees, workbooks alpha and beta)."""
    state = root / "state"
    state.mkdir()
    people = {
        name: Person(
            name, full, f"{name}@example.org", inst, country, lang, "trainee", ("c1",), extra
        )
        for name, full, inst, country, lang, extra in PEOPLE
    }
    people["fac"] = Person(
        "fac", "Fatou Ba", "f@example.org", "Univ A", "Senegal", "en", "facilitator", ("c1",), {}
    )
    save_people(state, people)
    settings = load_settings(
        None,
        {
            "hub": {"state_dir": str(state)},
            "grading": {
                "courses_root": str(root / "courses"),
                "exchange_root": str(root / "exchange"),
            },
        },
    )
    course = Course.from_settings(settings, "c1")
    seed_gradebook(
        course,
        {
            "at-amina": {"alpha-en": "graded", "beta-en": "graded"},
            "at-benoit": {"alpha-fr": "graded", "beta-fr": "graded"},
            "at-chen": {"alpha-en": "graded"},
            "at-dara": {"alpha-en": "graded", "beta-en": "needs grading"},
        },
    )
    # Chen has submitted beta; it waits in the exchange, not yet collected.
    (course.inbound_of("at-chen") / "at-chen+beta-en+2026-11-28 10:00:00.000000 UTC").mkdir(
        parents=True
    )
    return settings


@pytest.fixture(scope="module")
def progress(tmp_path_factory):
    settings = seeded_settings(tmp_path_factory.mktemp("dash"))
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
