"""Gradebooks and rosters that tests read without running a course: seeded straight into nbgrader.

Rule: seeds are idempotent (a session hub's cohort may already hold them) and write only below the
folder or course they are given.
"""

from __future__ import annotations


def seed_gradebook(course, plan: dict) -> None:
    """A gradebook for ``course``: workbooks alpha and beta (en and fr), one 2-point cell each.

    ``plan`` maps an account to {assignment: "graded" | "needs grading"}; other pairs are missing.
    """
    from nbgrader.api import Gradebook

    from atelier.grading.course import ensure_env_on_path

    ensure_env_on_path()
    course.root.mkdir(parents=True, exist_ok=True)
    from nbgrader.api import MissingEntry

    # Idempotent: the session hub's cohort may already know these trainees and assignments.
    gb = Gradebook(course.db_url, course_id=course.course_id)
    try:
        for workbook in ("alpha", "beta"):
            for lang in ("en", "fr"):
                name = f"{workbook}-{lang}"
                gb.update_or_create_assignment(name)
                try:
                    gb.find_notebook(f"{workbook}.{lang}", name)
                except MissingEntry:
                    gb.add_notebook(f"{workbook}.{lang}", name)
                    gb.add_grade_cell(
                        "q1", f"{workbook}.{lang}", name, max_score=2, cell_type="code"
                    )
        for account, submissions in plan.items():
            gb.update_or_create_student(account)
            for assignment, status in submissions.items():
                gb.update_or_create_submission(assignment, account)
                grade = gb.find_grade("q1", assignment.replace("-", "."), assignment, account)
                if status == "graded":
                    grade.auto_score = 2
                    grade.needs_manual_grade = False
                else:
                    grade.needs_manual_grade = True
                gb.db.commit()
    finally:
        gb.close()


#: What each trainee of cohort c1 has: both languages, one workbook missing, one awaiting grading.
COHORT_PLAN = {
    "at-amina": {"alpha-en": "graded", "beta-en": "graded"},
    "at-benoit": {"alpha-fr": "graded", "beta-fr": "graded"},
    "at-chen": {"alpha-en": "graded"},
    "at-dara": {"alpha-en": "graded", "beta-en": "needs grading"},
}

DASHBOARD_PEOPLE = [
    ("amina", "Amina Diallo", "Univ A", "Senegal", "en", {"district": "North"}),
    ("benoit", "Benoît Kaboré", "Univ A", "Burkina Faso", "fr", {"district": "North"}),
    ("chen", "Chen Wei", "Univ A", "Kenya", "en", {"district": "South"}),
    ("dara", "Dara Sok", "Univ B", "Cambodia", "en", {"district": "South"}),
]


def seed_dashboard_cohort(root):
    """Settings, roster and gradebook of cohort c1 (4 trainees, workbooks alpha and beta).

    Also writes ``root/settings.yaml`` with the same settings, for servers started by a test.
    """
    import yaml

    from atelier.accounts import save_people
    from atelier.grading.course import Course
    from atelier.roster import Person
    from atelier.settings import load_settings

    state = root / "state"
    state.mkdir()
    people = {
        name: Person(
            name, full, f"{name}@example.org", inst, country, lang, "trainee", ("c1",), extra
        )
        for name, full, inst, country, lang, extra in DASHBOARD_PEOPLE
    }
    people["fac"] = Person(
        "fac", "Fatou Ba", "f@example.org", "Univ A", "Senegal", "en", "facilitator", ("c1",), {}
    )
    save_people(state, people)
    overrides = {
        "hub": {"state_dir": str(state)},
        "grading": {
            "courses_root": str(root / "courses"),
            "exchange_root": str(root / "exchange"),
        },
    }
    (root / "settings.yaml").write_text(yaml.safe_dump(overrides))
    settings = load_settings(None, overrides)
    course = Course.from_settings(settings, "c1")
    seed_gradebook(course, COHORT_PLAN)
    # Chen has submitted beta; it waits in the exchange, not yet collected.
    (course.inbound_of("at-chen") / "at-chen+beta-en+2026-11-28 10:00:00.000000 UTC").mkdir(
        parents=True
    )
    return settings
