"""The restore drill: back up a running hub, restore onto a fresh state directory, start it again.

One backup of the session hub (real accounts, the roster of ``HUB_ROSTER``) with a submission and a
grade in cohort ``x``'s gradebook; one restore onto empty folders; one hub started on the result.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import tarfile
import tempfile
from pathlib import Path

import pytest
import yaml
from hubs import Hub
from seeds import seed_gradebook

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def drill(hub, test_database):
    """Seed work, back up while the hub runs, restore into a second hub's folders; yield both."""
    from atelier.grading.course import Course
    from atelier.grading.courses.folders import ensure
    from atelier.settings import load_settings

    settings = load_settings(hub.settings_path)
    course = ensure(Course.from_settings(settings, "x"))
    alice = hub.account("alice")
    seed_gradebook(course, {alice: {"alpha-en": "graded"}})
    submitted = course.submission_dir(alice, "alpha-en")
    submitted.mkdir(parents=True, exist_ok=True)
    # As `atelier collect` leaves them: the grader group reads and writes the trainee's folders
    # (formgrader's Collect, run as the grader account, writes beside them later in the session).
    for folder in (submitted.parent, submitted):
        os.chown(folder, -1, course_gid(course))
        folder.chmod(0o2770)
    notebook = submitted / "alpha.en.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    uid = pwd.getpwnam(alice).pw_uid
    os.chown(notebook, uid, course_gid(course))
    home_file = pwd.getpwnam(alice).pw_dir + "/notes.txt"
    with open(home_file, "w") as handle:
        handle.write("my lesson plan")
    os.chown(home_file, uid, pwd.getpwnam(alice).pw_gid)
    os.chmod(home_file, 0o600)

    # Not under pytest's tmp folder: it is root's alone (0700), and the restored hub's services
    # run as their own accounts (formgrader as the cohort's grader) and must reach their folders.
    work = Path(tempfile.mkdtemp(prefix="atelier-drill-"))
    work.chmod(0o755)
    archive = work / "backup.tar.gz"
    result = hub.atelier("backup", f"--output={archive}")
    assert archive.exists(), result.stderr

    (work / "fresh").mkdir()
    fresh = Hub(work / "fresh", test_database())  # on PostgreSQL: a new, empty database
    fresh.prefix = hub.prefix
    fresh.settings["accounts"]["prefix"] = hub.prefix
    fresh.settings_path.write_text(yaml.safe_dump(fresh.settings))
    restored = fresh.atelier("restore", str(archive))
    yield hub, fresh, archive, restored
    # Only this hub and its proxy: the accounts belong to the session hub, which deletes them.
    fresh.stop()
    proxy_pid = fresh.state_dir / "proxy.pid"
    if proxy_pid.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(proxy_pid.read_text().strip()), signal.SIGTERM)
    shutil.rmtree(work, ignore_errors=True)


def course_gid(course) -> int:
    return pwd.getpwnam(course.grader_account).pw_gid


def test_the_archive_lists_every_file_with_a_checksum(drill):
    """Does the manifest name every file of the archive, the live hub database among them?"""
    hub, _, archive, _ = drill
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        files = {m.name for m in tar if m.isfile()} - {"manifest.json"}
    assert set(manifest["files"]) == files
    if hub.settings.get("database", {}).get("url"):
        assert manifest["database"] == "postgresql" and "postgres.sql" in files
    else:
        assert "state/jupyterhub.sqlite" in files and "courses/x/gradebook.db" in files


def test_users_and_cohorts_come_back(drill):
    """Are the hub's users and cohort groups in the restored database and roster store?"""
    import sqlalchemy

    from atelier.database import hub_db_url
    from atelier.settings import load_settings

    _, fresh, _, _ = drill
    engine = sqlalchemy.create_engine(hub_db_url(load_settings(fresh.settings_path)))
    with engine.connect() as con:
        users = {row[0] for row in con.execute(sqlalchemy.text("SELECT name FROM users"))}
        groups = {row[0] for row in con.execute(sqlalchemy.text("SELECT name FROM groups"))}
    engine.dispose()
    assert {"alice", "bob", "chloe", "fiona"} <= users
    assert {"cohort-x", "cohort-y", "facilitators-x"} <= groups
    roster = json.loads((fresh.state_dir / "roster.json").read_text())
    assert set(roster["people"]) == {"alice", "bob", "chloe", "fiona"}


def test_submissions_and_grades_come_back(drill):
    """Is alice's submission there, hers on disk, and its grade in the restored gradebook?"""
    from atelier.grading.course import Course
    from atelier.settings import load_settings

    hub, fresh, _, _ = drill
    alice = hub.account("alice")
    course = Course.from_settings(load_settings(fresh.settings_path), "x")
    notebook = course.submission_dir(alice, "alpha-en") / "alpha.en.ipynb"
    assert notebook.stat().st_uid == pwd.getpwnam(alice).pw_uid
    with course.gradebook() as gb:
        submission = gb.find_submission("alpha-en", alice)
        assert submission.score == 2
    home_file = fresh.root / "home" / alice / "notes.txt"
    assert home_file.read_text() == "my lesson plan"
    assert home_file.stat().st_mode & 0o777 == 0o600
    assert home_file.stat().st_uid == pwd.getpwnam(alice).pw_uid


def test_the_restored_hub_lets_people_back_in(drill):
    """Does a hub started on the restored state accept alice's password and know her cohort?"""
    hub, fresh, _, _ = drill
    fresh.publish_workbooks()
    fresh.start()
    fresh.passwords = hub.passwords
    session = fresh.login("alice")
    assert session.login_response.status_code == 302, session.login_response.text[:300]
    fiona = fresh.login("fiona")
    response = fresh.api(fiona, "GET", "/groups/cohort-x")
    assert response.status_code == 200 and sorted(response.json()["users"]) == ["alice", "bob"]


def test_restore_refuses_a_state_directory_in_use(drill):
    """Does a second restore onto the now non-empty state refuse, naming the key and --force?"""
    _, fresh, archive, _ = drill
    result = fresh.atelier("restore", str(archive), check=False)
    assert result.returncode != 0
    assert "hub.state_dir" in result.stderr and "--force" in result.stderr
