"""One cohort's broken course folder never takes the hub down.

Before issue 15, a cohort whose formgrader service exited at start made JupyterHub exit: one
broken course kept every cohort off the site. Here a hub has three cohorts: x is sound; y's
gradebook is not a database (the hub cannot prepare the course: its service is skipped);
z's course makes its formgrader server exit at start (its ``.runtime`` folder is a file). The
hub starts, x's facilitator grades in x's formgrader, z's address says its formgrader could not
start, and the hub's log says why for both.
"""

from __future__ import annotations

import pwd

import pytest
from hubs import running_hub

pytestmark = pytest.mark.server

ROSTER = """username,full name,email,institution,country,language,role,cohort
alice,Alice Martin,alice@example.org,Université A,Kenya,en,trainee,x
chloe,Chloé Diallo,chloe@example.org,Université B,Sénégal,fr,trainee,y
zoe,Zoé Kane,zoe@example.org,Université B,Sénégal,fr,trainee,z
fiona,Fiona Mensah,fiona@example.org,University A,Ghana,en,facilitator,x;y;z
"""


@pytest.fixture(scope="module")
def broken_hub():
    """A hub whose cohort y has a corrupt gradebook and whose cohort z's server cannot start."""
    import os

    from atelier.grading.course import Course
    from atelier.grading.courses.folders import ensure
    from atelier.settings import load_settings

    with running_hub(roster=ROSTER, start=False) as hub:
        settings = load_settings(hub.settings_path)
        y, z = Course.from_settings(settings, "y"), Course.from_settings(settings, "z")
        for course in (y, z):
            ensure(course)
        y.gradebook_path.write_bytes(b"this is not a SQLite database\n" * 100)
        grader = pwd.getpwnam(z.grader_account)
        runtime = z.root / ".runtime"
        runtime.write_text("not a folder\n")
        os.chown(runtime, grader.pw_uid, grader.pw_gid)
        hub.launch()  # fails if the hub exits
        yield hub


def test_the_hub_serves_the_sound_cohort_when_others_are_broken(broken_hub):
    """Is the hub up, and does fiona open and use cohort x's formgrader?"""
    hub = broken_hub
    fiona = hub.login("fiona")
    page = fiona.get(f"{hub.url}/services/x/formgrader", timeout=120)
    assert page.status_code == 200 and "formgrader" in page.text.lower(), page.text[:300]
    listing = fiona.get(f"{hub.url}/services/x/formgrader/api/assignments", timeout=60)
    assert listing.status_code == 200, listing.text[:300]
    alice = hub.login("alice")
    assert alice.get(f"{hub.url}/hub/home", timeout=60).status_code == 200


def test_a_course_the_hub_cannot_prepare_is_skipped_with_a_message(broken_hub):
    """Is y's formgrader left out, the log naming the cohort and its course folder?"""
    hub = broken_hub
    log = hub.log_path.read_text()
    assert "skipping the formgrader of cohort 'y'" in log, log[-3000:]
    assert "/courses/y" in log
    fiona = hub.login("fiona")
    assert fiona.get(f"{hub.url}/services/y/formgrader", timeout=60).status_code in (403, 404)


def test_a_formgrader_that_exits_at_start_shows_a_notice(broken_hub):
    """Does z's address say its formgrader could not start, and the log say why?"""
    hub = broken_hub
    fiona = hub.login("fiona")
    page = fiona.get(f"{hub.url}/services/z/", timeout=60)
    assert "The formgrader of cohort z could not start" in page.text, page.text[:500]
    deeper = fiona.get(f"{hub.url}/services/z/formgrader", timeout=60)
    assert deeper.status_code == 503 and "could not start" in deeper.text
    assert "atelier: formgrader z: the server exited with status" in hub.log_path.read_text()
