"""The dashboard's Participation section and its exports on a real hub, from real trainees' files.

A hub of its own (dashboard on, public apps off) with a roster that has the gender and consent
columns; the fixture quiz released to cohort x; each trainee's answers saved by the widget store
running as that trainee's Unix account, in the folder nbgrader's fetch makes. Two trainees are
hostile: one puts a symbolic link to another trainee's answers file in place of their own, one a
named pipe; root reads neither (no activity counted for them, nothing blocks). Checked: the numbers
the dashboard's kernel shows (the same call), `atelier report participation` as CSV (formulas
neutralised) and as a one-page PDF for one institution, and the dashboard answering a facilitator.
"""

from __future__ import annotations

import csv
import io
import pwd
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from harness import FIXTURES, PREFIX, get_whole_page
from hubs import running_hub

from atelier.processes.ports import free_port

pytestmark = pytest.mark.server

#: a1-a5 and a7: women of Kenya who consented (a7's institution is a formula); a6 said no.
ROSTER = """username,full name,email,institution,country,gender,consent,language,role,cohort
a1,Awa One,a1@example.org,University A,Kenya,woman,yes,en,trainee,x
a2,Awa Two,a2@example.org,University A,KE,femme,oui,fr,trainee,x
a3,Awa Three,a3@example.org,University A,Kenya,woman,yes,en,trainee,x
a4,Awa Four,a4@example.org,University A,Kenya,woman,yes,en,trainee,x
a5,Awa Five,a5@example.org,University A,Kenya,woman,yes,en,trainee,x
a6,Ali Six,a6@example.org,University B,Ghana,man,no,en,trainee,x
a7,Awa Seven,a7@example.org,=HYPERLINK(evil),Kenya,woman,yes,en,trainee,x
fiona,Fiona Mensah,fiona@example.org,University A,Ghana,,yes,en,facilitator,x
"""

SAVE = """
import sys
from atelier.widgets.store import AnswerStore
store = AnswerStore(sys.argv[1], "quiz.en.ipynb")
for value in sys.argv[2:]:
    store.save("q1", value, "text")
"""


def as_trainee(hub, name: str, *command: str) -> None:
    subprocess.run(
        ["runuser", "-u", hub.account(name), "--", *command],
        check=True, capture_output=True, timeout=60, cwd="/",
    )  # fmt: skip


@pytest.fixture(scope="module")
def cohort():
    """The hub, the quiz released to x, and the trainees' saved answers (hostile ones too)."""
    extra = {"apps": {"on_hub": False, "dashboard": True, "dashboard_port": free_port()}}
    with running_hub(extra, roster=ROSTER) as hub:
        hub.atelier("release", str(FIXTURES / "grading" / "01-quiz"), "--cohort=x")
        again = hub.import_roster(ROSTER)  # the same people: the import says who did not consent
        assert "1 people did not consent" in again.stdout, again.stdout
        python = str(PREFIX / "env" / "bin" / "python")
        folders = {}
        for name in ("a1", "a2", "a3", "a4", "a5", "a6"):
            folder = Path(pwd.getpwnam(hub.account(name)).pw_dir) / "x" / "quiz-en"
            as_trainee(hub, name, "mkdir", "-p", str(folder))
            folders[name] = folder
        for name in ("a1", "a2", "a3", "a6"):
            as_trainee(hub, name, python, "-c", SAVE, str(folders[name]), "first", "second")
        # a4 points root at a1's file, a5 leaves a pipe nobody writes to.
        as_trainee(hub, "a4", "ln", "-s", str(folders["a1"] / ".atelier-answers.json"),
                   str(folders["a4"] / ".atelier-answers.json"))  # fmt: skip
        as_trainee(hub, "a5", "mkfifo", str(folders["a5"] / ".atelier-answers.json"))
        yield hub


def settings_of(hub):
    from atelier.settings import load_settings

    return load_settings(hub.settings_path)


def test_the_dashboard_shows_participation_from_the_trainees_files(cohort):
    """Participants 7 (a6 withheld), 6 women of Kenya shown; today's active: a1 a2 a3 a6 only."""
    from atelier.grading.dashboard import dashboard

    progress = dashboard.cohort_progress(settings_of(cohort), "x")
    report = progress.participation
    today = datetime.now(UTC).date()
    assert (report.participants, report.withheld, report.countries) == (7, 1, 1)
    assert report.breakdowns["gender"] == [("woman", 6, 100.0)]
    assert report.breakdowns["country"] == [("KE", 6, 100.0)]
    assert report.per_day == [(today, 4)], "a4's link and a5's pipe must count nothing"
    assert report.per_workbook[0]["workbook"] == "quiz"
    assert report.per_workbook[0]["trainees"] == 4
    html = dashboard.page(progress, language="fr")
    assert 'id="participation-participants">7<' in html and "Par genre" in html
    assert "femmes" in html and "Kenya" in html


def test_the_csv_export_neutralises_formulas(cohort, tmp_path):
    """Does `atelier report participation` write the cohort's CSV, the formula made text?"""
    out = tmp_path / "x.csv"
    cohort.atelier("report", "participation", "--cohort=x", "-o", str(out))
    rows = list(csv.reader(io.StringIO(out.read_text("utf-8"))))
    assert ["By institution", "University A", "5", "83.3", "", "", ""] in rows
    assert ["By institution", "'=HYPERLINK(evil)", "1", "16.7", "", "", ""] in rows
    assert [c.capitalize() for c in rows[1][:3]] == ["Summary", "Participants", "7"]


def test_the_institution_pdf_is_one_page_of_its_own_trainees(cohort, tmp_path):
    """One page, University A's five trainees only, in French when asked."""
    import pypdf

    out = tmp_path / "a.pdf"
    cohort.atelier(
        "report", "participation", "--cohort=x", "--institution=university a",
        "--format=pdf", "--language=fr", "-o", str(out),
    )  # fmt: skip
    data = out.read_bytes()
    assert max(int(n) for n in re.findall(rb"/Count (\d+)", data)) == 1
    text = pypdf.PdfReader(out).pages[0].extract_text()
    # French typography: a non-breaking space before the colon.
    assert re.search("Participants[\u00a0 ]: 5", text) and "University A" in text
    assert "HYPERLINK" not in text and "University B" not in text
    missing = cohort.atelier(
        "report", "participation", "--cohort=x", "--institution=University B", check=False
    )
    assert missing.returncode != 0 and "University A" in missing.stderr


def test_a_facilitator_opens_the_dashboard(cohort):
    """Does the dashboard (its notebook now drawing Participation) answer fiona?"""
    fiona = cohort.login("fiona")
    status, page = get_whole_page(fiona, f"{cohort.url}/services/dashboard/", 120)
    assert status == 200, status
    # The page ended as a whole render ends (its widgets then draw the numbers), not with the
    # sentence of a failed render.
    assert "window.voila_finish();" in page, page[-2000:]
    assert "cannot be shown right now" not in page, page[-2000:]
