"""Roster validation: every problem of a file is reported with its line, before any change."""

from __future__ import annotations

import pytest
from harness import FIXTURES

from atelier.roster import Person, RosterError, cohorts_of, parse_roster, read_roster

pytestmark = pytest.mark.unit

HEADER = "username,full name,email,institution,country,language,role,cohort"


def roster(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def problems(text: str, known=None) -> list[str]:
    with pytest.raises(RosterError) as caught:
        parse_roster(text, "cohort.csv", known)
    return caught.value.problems


def test_a_good_roster_gives_everyone_normalised_with_extra_columns_kept():
    """Does a valid roster yield people with normalised names, cohorts, and extra columns kept?"""
    text = roster(
        "Alice,Alice Martin,alice@example.org,Univ A,Kenya,en,trainee,x,2024",
        "bob,Bob O'Neil,bob@example.org,,,EN,Trainee,x,2025",
        "fiona,Fiona Diallo,fiona@example.org,Univ A,Senegal,fr,facilitator,x;y,",
        header=HEADER + ",year",
    )
    people = parse_roster(text)
    assert [p.username for p in people] == ["alice", "bob", "fiona"]
    assert people[0].extra == {"year": "2024"}
    assert people[1].language == "en" and people[1].role == "trainee"
    assert people[2].cohorts == ("x", "y")
    assert cohorts_of(people) == {
        "x": {"trainees": ["alice", "bob"], "facilitators": ["fiona"]},
        "y": {"trainees": [], "facilitators": ["fiona"]},
    }
    assert Person.from_json(people[0].to_json()) == Person(**{**people[0].__dict__, "line": 0})


def test_a_missing_column_is_named_on_line_1():
    """Is a header without the cohort column refused, naming the column?"""
    found = problems(
        "username,full name,email,institution,country,language,role\nx,X,x@y.org,,,en,trainee\n"
    )
    assert found == [found[0]] and found[0].startswith("line 1:") and "cohort" in found[0]


def test_every_bad_row_is_listed_with_its_line_number():
    """Are all problems of a file reported at once, each with the right line number?"""
    text = roster(
        "alice,Alice,alice@example.org,U,KE,en,trainee,x",
        "Alice,Alice Twin,twin@example.org,U,KE,en,trainee,x",
        "carl,Carl,not-an-email,U,KE,en,trainee,x",
        "dora,Dora,dora@example.org,U,KE,de,trainee,x",
        "eve,<script>alert(1)</script>,eve@example.org,U,KE,en,trainee,x",
        "frank,Frank,frank@example.org,U,KE,en,boss,x",
        "gina," + "G" * 150 + ",gina@example.org,U,KE,en,trainee,x",
        "root,Root,root@example.org,U,KE,en,trainee,x",
        "h,H,h@example.org,U,KE,en,trainee",
    )
    found = problems(text)
    assert any(p.startswith("line 3:") and "same account as line 2" in p for p in found)
    assert any(p.startswith("line 4:") and "email" in p for p in found)
    assert any(p.startswith("line 5:") and "language" in p for p in found)
    assert any(p.startswith("line 6:") and "full_name" in p and "not allowed" in p for p in found)
    assert any(p.startswith("line 7:") and "role" in p for p in found)
    assert any(p.startswith("line 8:") and "longer than" in p for p in found)
    assert any(p.startswith("line 9:") and "reserved" in p for p in found)
    assert any(p.startswith("line 10:") and "fields" in p for p in found)
    assert not any(p.startswith("line 2:") for p in found)


@pytest.mark.parametrize(
    "username",
    ["аlice", "ａｌｉｃｅ" + "é", "a" * 30, "1abc", "a b", "a;rm -rf", "x" * 1_000_000],
)
def test_hostile_or_look_alike_usernames_are_refused(username):
    """Are Cyrillic look-alikes, accents, overlong and shell-like usernames refused?"""
    found = problems(roster(f"{username},Name,n@example.org,U,KE,en,trainee,x"))
    assert found and found[0].startswith("line 2:")
    assert all(len(p) < 400 for p in found), "messages stay bounded whatever the input"


def test_fullwidth_letters_normalise_to_the_same_account_and_collide():
    """Does fullwidth 'ａｌｉｃｅ' (NFKC-equal) collide with 'alice', naming both lines?"""
    found = problems(
        roster(
            "alice,A,a@example.org,U,KE,en,trainee,x",
            "ａｌｉｃｅ,B,b@example.org,U,KE,en,trainee,x",
        )
    )
    assert found == [found[0]] and "line 3:" in found[0] and "line 2" in found[0]


def test_reimport_updates_a_known_person_but_refuses_a_different_one():
    """Can a known person be imported again, while someone else cannot take their username?"""
    first = parse_roster(roster("alice,A,a@example.org,U,KE,en,trainee,x"))
    known = {p.username: p for p in first}
    again = parse_roster(roster("alice,Alice M,A@example.org,U,KE,fr,trainee,x"), known=known)
    assert again[0].language == "fr"
    found = problems(roster("Alice,Other,other@example.org,U,KE,en,trainee,x"), known=known)
    assert "already imported" in found[0]


def test_a_file_that_is_not_utf8_is_refused_with_its_line(tmp_path):
    """Is a Latin-1 file refused with the line of the first bad byte?"""
    path = tmp_path / "latin1.csv"
    path.write_bytes(roster("alice,Hélène,a@example.org,U,KE,fr,trainee,x").encode("latin-1"))
    with pytest.raises(RosterError) as caught:
        read_roster(path)
    assert caught.value.problems[0].startswith("line 2:") and "UTF-8" in caught.value.problems[0]


def test_a_trainee_in_two_cohorts_is_refused():
    """Does a trainee listed in two cohorts get an error?"""
    assert "exactly one cohort" in problems(roster("a,A,a@example.org,U,KE,en,trainee,x;y"))[0]


ROSTERS = FIXTURES / "rosters"


def test_a_hostile_column_header_is_refused_on_line_1_naming_it():
    """Is a header that is markup refused with line 1 and the header shown escaped?"""
    with pytest.raises(RosterError) as caught:
        read_roster(ROSTERS / "hostile-header.csv")
    (problem,) = caught.value.problems
    assert problem.startswith("line 1: column header ")
    assert "'<img src=x onerror=alert(document.domain" in problem


@pytest.mark.parametrize(
    "header",
    ['a"b', "x'y", "<b>", "=SUM(A1)", "on;click", "ünïcode", "a" * 41, "1st", "tab\tx", "a&b"],
)
def test_every_header_outside_the_safe_set_is_refused(header):
    """Are quotes, markup, formulas, non-ASCII, overlong or digit-first headers refused?"""
    import csv
    import io

    out = io.StringIO()
    csv.writer(out).writerow([*HEADER.split(","), header])
    text = out.getvalue() + "alice,A,alice@example.org,U,KE,en,trainee,x,v\n"
    found = problems(text)
    assert len(found) == 1 and found[0].startswith("line 1: column header "), found


def test_safe_extra_columns_are_kept():
    """Are extra columns with plain headers (spaces, '-', '.', digits) still kept?"""
    text = roster(
        "alice,A,alice@example.org,U,KE,en,trainee,x,2024,B2,yes",
        header=HEADER + ",Year of entry,level-2,opt.in",
    )
    (person,) = parse_roster(text)
    assert person.extra == {"year_of_entry": "2024", "level_2": "B2", "opt.in": "yes"}


@pytest.mark.parametrize(
    "username",
    ["grader-c1", "Grader-C1", "grader_x", "grader", "root", "Root", "nobody", "daemon",
     "atelier-sbx0", "atelier-apps", "atelier-roster", "dashboard", "systemd-network"],
)  # fmt: skip
def test_names_atelier_derives_or_the_system_uses_are_refused(username):
    """Is every grader, sandbox, service or system name refused with its line number?"""
    found = problems(roster(f"{username},A,a@example.org,U,KE,en,trainee,c1"))
    assert found == [f"line 2: {found[0][8:]}"] and "reserved" in found[0], found


def test_names_of_this_machine_and_settings_are_refused_with_their_line():
    """Are a sandbox, the apps account, an atelier name and a system account refused by line?"""
    import pwd

    from atelier.accounts import AccountPolicy, ReservedNames
    from atelier.roster import username_problem

    system = next(
        e.pw_name
        for e in pwd.getpwall()
        if e.pw_uid < 1000 and not username_problem(e.pw_name) and "Atelier" not in e.pw_gecos
    )
    reserved = ReservedNames(AccountPolicy(prefix="atelier-"), apps_account="atelier-web")
    text = roster(
        "alice,A,alice@example.org,U,KE,en,trainee,c1",
        "sbx3,S,s@example.org,U,KE,en,trainee,c1",
        "atelier-bob,B,b@example.org,U,KE,en,trainee,c1",
        "web,W,w@example.org,U,KE,en,trainee,c1",
        f"{system},Y,y@example.org,U,KE,en,trainee,c1",
    )
    with pytest.raises(RosterError) as caught:
        parse_roster(text, "cohort.csv", None, reserved)
    found = caught.value.problems
    assert [p.split(":")[0] for p in found] == ["line 3", "line 4", "line 5", "line 6"], found
    assert "atelier-sbx3" in found[0] and "reserved" in found[1] and "atelier-web" in found[2]
    assert f"Unix account {system} exists" in found[3]
    reserved_at = ReservedNames(AccountPolicy(prefix="at-"))
    assert reserved_at("alice") is None and "without it" in reserved_at("at-alice")
    assert ReservedNames(AccountPolicy(prefix="a"))("alice") is None  # "a" is not a prefix form
