"""Account names: Atelier never lets a roster name, or an existing account, become one of its own.

Before issue 15 a roster username ``grader-<cohort>`` became that cohort's grader account, the
owner of its course and gradebook. Here, with real Unix accounts: every name Atelier derives is
refused by ``atelier roster import`` with its line and nothing created; an existing account that
Atelier did not create for that purpose (a trainee's, or made by someone else) is never taken as a
trainee, grader or sandbox account.
"""

from __future__ import annotations

import json
import pwd
import subprocess

import pytest
from harness import FIXTURES
from hubs import running_hub

pytestmark = pytest.mark.server

HEADER = "username,full name,email,institution,country,language,role,cohort\n"


@pytest.fixture(scope="module")
def machine():
    """A hub's settings, accounts and state (never started): roster imports as root do."""
    with running_hub(roster=None, start=False) as hub:
        yield hub


def accounts_of(hub) -> set[str]:
    return {e.pw_name for e in pwd.getpwall() if e.pw_name.startswith(hub.prefix)}


def import_refused(hub, text: str) -> str:
    """Import ``text``; it must fail and change nothing. Returns the error output."""
    before = accounts_of(hub)
    roster = hub.state_dir / "roster.json"
    stored = roster.read_text() if roster.exists() else None
    result = hub.import_roster(text, check=False)
    assert result.returncode != 0, result.stdout
    assert accounts_of(hub) == before, "an account was created by a refused import"
    assert (roster.read_text() if roster.exists() else None) == stored
    return result.stdout + result.stderr


def test_derived_and_system_names_are_refused_with_their_lines(machine):
    """Are grader-C (two cases), root and a sandbox name refused by line, nothing created?"""
    output = import_refused(machine, (FIXTURES / "rosters" / "reserved-names.csv").read_text())
    for line in (3, 4, 5, 6):
        assert f"line {line}: username" in output and "reserved" in output, output
    assert "line 2:" not in output  # alice is fine; she is not created either


def test_the_prefixed_form_and_the_grader_account_itself_are_refused(machine):
    """Is ``<prefix>grader-c1`` (the grader account's own name) refused, as is ``<prefix>x``?"""
    prefix = machine.prefix
    text = HEADER + (
        f"{prefix}grader-c1,G,g@example.org,U,KE,en,trainee,c1\n"
        f"{prefix}alice,A,a@example.org,U,KE,en,trainee,c1\n"
    )
    output = import_refused(machine, text)
    assert "line 2:" in output and "line 3:" in output and "without it" in output, output


def test_an_existing_unmarked_account_with_a_trainees_name_is_never_adopted(machine):
    """Is a pre-created ``<prefix>dora`` refused (line 3), and bob, on line 2, not created?"""
    account = machine.account("dora")
    subprocess.run(["useradd", "--no-create-home", account], check=True)
    try:
        text = HEADER + (
            "bob,Bob,bob@example.org,U,KE,en,trainee,c1\ndora,Dora,dora@example.org,U,KE,en,trainee,c1\n"
        )
        output = import_refused(machine, text)
        assert "line 3:" in output and account in output, output
        assert pwd.getpwnam(account).pw_gecos == ""  # untouched
    finally:
        subprocess.run(["userdel", account], capture_output=True, check=False)


def test_a_system_accounts_name_is_refused(machine):
    """Is the bare name of an existing system account refused (with the prefix it would be safe)?"""
    text = (
        HEADER
        + "polkitd,P,p@example.org,U,KE,en,trainee,c1\nmessagebus,M,m@e.org,U,KE,en,trainee,c1\n"
    )
    names = {e.pw_name for e in pwd.getpwall()}
    output = import_refused(machine, text)
    assert "line 3:" in output, output
    if "polkitd" in names:
        assert "line 2:" in output, output


def test_a_good_roster_still_imports_and_marks_its_accounts(machine):
    """Are accounts made by an import marked as Atelier trainees (and re-importing is safe)?"""
    text = HEADER + "erin,Erin,erin@example.org,U,KE,en,trainee,c1\n"
    machine.import_roster(text)
    machine.import_roster(text)
    assert pwd.getpwnam(machine.account("erin")).pw_gecos == "Atelier trainee"
    people = json.loads((machine.state_dir / "roster.json").read_text())["people"]
    assert "erin" in people


@pytest.mark.parametrize("comment", ["Atelier trainee", "Atelier", ""])
def test_a_grader_account_atelier_did_not_make_as_a_grader_never_owns_the_course(machine, comment):
    """Is a trainee's (old or new marker) or an unmarked account never made the course owner?"""
    from atelier.errors import AtelierError
    from atelier.grading.course import Course
    from atelier.grading.courses.folders import ensure
    from atelier.settings import load_settings

    course = Course.from_settings(load_settings(machine.settings_path), "c9")
    subprocess.run(
        ["useradd", "--no-create-home", "--comment", comment, course.grader_account], check=True
    )
    try:
        with pytest.raises(AtelierError) as caught:
            ensure(course)
        assert course.grader_account in str(caught.value)
        assert not course.root.exists()
    finally:
        subprocess.run(["userdel", course.grader_account], capture_output=True, check=False)


def test_a_grader_account_atelier_made_is_marked_and_kept(machine):
    """Is the grader account Atelier creates marked, and taken again at the next ensure?"""
    from atelier.grading.course import Course
    from atelier.grading.courses.folders import ensure
    from atelier.settings import load_settings

    course = Course.from_settings(load_settings(machine.settings_path), "c8")
    ensure(course)
    ensure(course)
    entry = pwd.getpwnam(course.grader_account)
    assert entry.pw_gecos == "Atelier grader"
    assert course.root.stat().st_uid == entry.pw_uid


def test_a_sandbox_account_is_never_an_existing_unmarked_one(machine):
    """Does the sandbox refuse an existing account of a slot's name that it did not create?"""
    from atelier.grading.sandbox.sandbox import SandboxError, ensure_account

    name = f"{machine.prefix}sbx0"
    subprocess.run(
        ["useradd", "--no-create-home", "--comment", "Atelier trainee", name], check=True
    )
    try:
        with pytest.raises(SandboxError, match=name):
            ensure_account(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)
    created = ensure_account(name)
    try:
        assert created.pw_gecos == "Atelier grading sandbox"
        assert ensure_account(name).pw_uid == created.pw_uid
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)


def test_the_apps_account_is_never_an_existing_unmarked_one(machine):
    """Does the public apps' set-up refuse an existing account of its name it did not create?"""
    from atelier.errors import AtelierError
    from atelier.public.apps import ensure_service_account

    name = f"{machine.prefix}web"
    subprocess.run(["useradd", "-M", "--comment", "Atelier trainee", name], check=True)
    try:
        with pytest.raises(AtelierError, match=name):
            ensure_service_account({"apps": {"service_user": name}})
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)


def test_a_hostile_column_header_is_refused_by_the_import(machine):
    """Does `atelier roster import` refuse a markup header on line 1, creating nobody?"""
    output = import_refused(machine, (FIXTURES / "rosters" / "hostile-header.csv").read_text())
    assert "line 1: column header '<img src=x onerror=alert(document.domain" in output, output
