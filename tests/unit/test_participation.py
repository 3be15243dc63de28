"""Participation: every number against a hand count on a fixture roster and fixture events.

The fixture cohort (15 trainees, one without consent) and its events are below; each test says
the hand count it checks.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import types
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from atelier.grading.participation import events, exports, page, stats
from atelier.roster import RosterError, parse_roster

pytestmark = pytest.mark.unit

HEADER = "username,full name,email,institution,country,gender,consent,language,role,cohort"
#: 15 trainees. Consenting: Univ A 7 (u01-u06 SN women, u13 GH non-binary), Univ B 6 (u07-u11 KE
#: men, u12 GH woman), Univ C 1 (u14 France, gender not said). u15 (Univ A, SN, woman) said no.
ROSTER = "\n".join(
    [
        HEADER,
        *(f"u0{i},T {i},u{i}@x.org,Univ A,Senegal,woman,yes,en,trainee,c1" for i in range(1, 7)),
        *(f"u{i:02d},T {i},u{i}@x.org,Univ B,KE,Homme,oui,fr,trainee,c1" for i in range(7, 12)),
        "u12,T 12,u12@x.org,Univ B,Ghana,F,yes,en,trainee,c1",
        "u13,T 13,u13@x.org,univ  a,gh,non-binary,yes,en,trainee,c1",
        "u14,T 14,u14@x.org,Univ C,France,prefer not to say,yes,fr,trainee,c1",
        "u15,T 15,u15@x.org,Univ A,Sénégal,woman,no,en,trainee,c1",
    ]
)


def at(day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


#: u01 alpha: gaps 4, 26 (capped to 10), 3 = 17 min; u01 beta: one event = 0 min; u07 alpha:
#: one gap of exactly 10 (and a duplicate event) = 10; u14 alpha: 20 -> 10; u15 (no consent)
#: alpha: 5. Days: Nov 2 u01 u07 (2), Nov 3 nobody (0), Nov 4 u01 u15 (2), Nov 5 u14 (1).
EVENTS = [
    *(stats.Event("u01", "alpha", at(2, 10, m)) for m in (0, 4, 30, 33)),
    stats.Event("u01", "beta", at(4, 9, 0)),
    *(stats.Event("u07", "alpha", at(2, 11, m)) for m in (0, 10, 10)),
    stats.Event("u14", "alpha", at(5, 12, 0)),
    stats.Event("u14", "alpha", at(5, 12, 20)),
    stats.Event("u15", "alpha", at(4, 8, 0)),
    stats.Event("u15", "alpha", at(4, 8, 5)),
]


def participants(text: str = ROSTER) -> list[stats.Participant]:
    return [
        stats.Participant(p.username, p.language, p.institution, p.country, p.gender, p.consents)
        for p in parse_roster(text + "\n")
    ]


@pytest.fixture(scope="module")
def cohort():
    return stats.participation(participants(), EVENTS, ["alpha", "beta", "gamma"])


# --- the roster's columns ---------------------------------------------------------------------


def test_roster_columns_are_normalised():
    """Are countries stored as codes, genders as one word, consent as yes/no?"""
    people = {p.username: p for p in parse_roster(ROSTER + "\n")}
    assert [people[n].country for n in ("u01", "u07", "u12", "u14", "u15")] == [
        "SN", "KE", "GH", "FR", "SN"
    ]  # fmt: skip
    assert [people[n].gender for n in ("u01", "u07", "u12", "u13", "u14")] == [
        "woman", "man", "woman", "non-binary", ""
    ]  # fmt: skip
    assert people["u07"].consent == "yes" and people["u15"].consents is False
    assert people["u15"].extra == {}  # the known columns are not extra ones


def test_without_a_consent_column_everyone_counts_and_an_empty_cell_means_no():
    """No consent column: consent "" and counted; a consent column with an empty cell: no."""
    (alone,) = parse_roster(
        "username,full name,email,language,role,cohort\na,A,a@x.org,en,trainee,c\n"
    )
    assert (alone.consent, alone.consents, alone.country, alone.institution) == ("", True, "", "")
    (blank,) = parse_roster("username,full name,email,language,role,cohort,consent\n"
                            "a,A,a@x.org,en,trainee,c,\n")  # fmt: skip
    assert (blank.consent, blank.consents) == ("no", False)


def test_a_consent_kept_as_an_extra_column_by_an_older_import_is_respected():
    """roster.json from before: consent and gender in ``extra``; read as an import reads them."""
    from atelier.roster import Person

    old = {"username": "a", "full_name": "A", "email": "a@x.org", "institution": "U",
           "country": "SN", "language": "en", "role": "trainee", "cohorts": ["c"],
           "extra": {"consent": "No", "gender": "Femme", "district": "N"}}  # fmt: skip
    person = Person.from_json(old)
    assert (person.consents, person.gender, person.extra) == (False, "woman", {"district": "N"})
    odd = Person.from_json({**old, "extra": {"consent": "perhaps"}})
    assert odd.consents is False
    assert Person.from_json(person.to_json()) == person


def test_bad_country_gender_and_consent_are_named_by_line_and_column():
    """Is each bad value reported with its line and its column, and nothing returned?"""
    text = "\n".join(
        [
            HEADER,
            "a,A,a@x.org,U,Atlantis,woman,yes,en,trainee,c1",
            "b,B,b@x.org,U,SN,female-ish,yes,en,trainee,c1",
            "c,C,c@x.org,U,SN,man,maybe,en,trainee,c1",
            "d,D,d@x.org,U,XX,man,yes,en,trainee,c1",
        ]
    )
    with pytest.raises(RosterError) as caught:
        parse_roster(text + "\n", "cohort.csv")
    found = caught.value.problems
    assert [p.split(": ")[0:2] for p in found] == [
        ["line 2", "column country"], ["line 3", "column gender"],
        ["line 4", "column consent"], ["line 5", "column country"],
    ], found  # fmt: skip
    assert "'Atlantis' is not a country" in found[0] and "ISO 3166" in found[0]


# --- the numbers --------------------------------------------------------------------------------


def test_totals_count_everyone_and_distinct_values_of_those_who_consented(cohort):
    """15 participants, 1 withheld; countries SN KE GH FR = 4; institutions A B C = 3."""
    assert (cohort.participants, cohort.withheld, cohort.countries, cohort.institutions) == (
        15, 1, 4, 3,
    )  # fmt: skip


def test_small_country_and_gender_groups_are_suppressed_twice_if_needed(cohort):
    """Countries SN 6, KE 5, GH 2, FR 1: GH+FR = 3 < 5, so KE joins -> SN 6, other 8 (of 14).

    Gender: women 7, men 5, non-binary 1, not given 1: 2 < 5, men join -> women 7, other 7.
    """
    assert cohort.breakdowns["country"] == [("SN", 6, 42.9), (stats.SUPPRESSED, 8, 57.1)]
    assert cohort.breakdowns["gender"] == [("woman", 7, 50.0), (stats.SUPPRESSED, 7, 50.0)]


def test_institutions_and_languages_are_not_suppressed_and_consent_is_kept(cohort):
    """Institutions (consenting only, names folded): A 7, B 6, C 1; languages (all): en 9, fr 6."""
    assert cohort.breakdowns["institution"] == [
        ("Univ A", 7, 50.0), ("Univ B", 6, 42.9), ("Univ C", 1, 7.1),
    ]  # fmt: skip
    assert cohort.breakdowns["language"] == [("en", 9, 60.0), ("fr", 6, 40.0)]


@pytest.mark.parametrize(
    ("found", "shown"),
    [
        ({"A": 5, "B": 5}, [("A", 5), ("B", 5)]),
        ({"A": 7, "B": 6, "C": 3, "D": 2}, [("A", 7), ("B", 6), (stats.SUPPRESSED, 5)]),
        ({"A": 7, "B": 5, "C": 4}, [("A", 7), (stats.SUPPRESSED, 9)]),
        ({"A": 3}, [(stats.SUPPRESSED, 3)]),
        ({"A": 4, "B": 4}, [(stats.SUPPRESSED, 8)]),
    ],
)
def test_suppression_below_five(found, shown):
    """Groups under 5 merge; a merged row under 5 takes the next smallest groups."""
    assert stats.suppress(Counter(found), 5) == shown


def test_active_trainees_per_day_count_every_day_from_first_to_last(cohort):
    """Nov 2: 2, Nov 3: 0, Nov 4: 2 (u15 counts in totals), Nov 5: 1."""
    assert cohort.per_day == [
        (date(2026, 11, 2), 2), (date(2026, 11, 3), 0), (date(2026, 11, 4), 2),
        (date(2026, 11, 5), 1),
    ]  # fmt: skip


def test_time_per_workbook_caps_each_gap(cohort):
    """alpha: 17 + 10 + 10 + 5 = 42 over 4 trainees (mean 10.5, median 10); beta: 1 trainee, 0."""
    rows = {r["workbook"]: r for r in cohort.per_workbook}
    assert rows["alpha"] == {
        "workbook": "alpha", "trainees": 4, "total minutes": 42.0,
        "mean minutes": 10.5, "median minutes": 10.0,
    }  # fmt: skip
    assert (rows["beta"]["trainees"], rows["beta"]["total minutes"]) == (1, 0.0)
    assert rows["gamma"] == {
        "workbook": "gamma", "trainees": 0, "total minutes": 0,
        "mean minutes": None, "median minutes": None,
    }  # fmt: skip


def test_the_gap_cap_is_a_setting():
    """A 30-minute cap counts u01's 26-minute pause whole: 4 + 26 + 3 = 33."""
    spent = stats.time_on_task(EVENTS, timedelta(minutes=30))
    assert spent[("u01", "alpha")] == timedelta(minutes=33)
    assert stats.time_on_task(EVENTS, timedelta(minutes=10))[("u01", "alpha")] == timedelta(
        minutes=17
    )


def test_an_institution_report_holds_its_consenting_trainees_only():
    """Univ A (any case): u01-u06 and u13 (u15 said no) = 7; SN 6 + GH 1 -> all suppressed."""
    report = stats.participation(participants(), EVENTS, ["alpha"], institution="UNIV A")
    assert (report.participants, report.withheld, report.countries) == (7, 0, 2)
    assert report.breakdowns["institution"] == [("Univ A", 7, 100.0)]
    assert report.breakdowns["country"] == [(stats.SUPPRESSED, 7, 100.0)]
    assert report.per_day == [
        (date(2026, 11, 2), 1),
        (date(2026, 11, 3), 0),
        (date(2026, 11, 4), 1),
    ]
    assert report.per_workbook[0]["trainees"] == 1 and report.per_workbook[0]["total minutes"] == 17


def test_no_gender_column_means_no_gender_breakdown():
    """A roster without gender (nobody has one) shows no breakdown by gender."""
    people = [stats.Participant(f"p{i}", "en", "U", "SN") for i in range(6)]
    report = stats.participation(people, [])
    assert "gender" not in report.breakdowns and report.breakdowns["country"] == [("SN", 6, 100.0)]
    assert report.per_day == [] and report.per_workbook == []


# --- events from answers files ------------------------------------------------------------------


def answers(*times: str, history: tuple = ()) -> bytes:
    entry = {"value": 1, "kind": "number", "saved": times[0],
             "history": [{"saved": t, "value": 1} for t in history]}  # fmt: skip
    other = {"value": 2, "kind": "number", "saved": times[-1]}
    return json.dumps(
        {"format": "atelier-answers", "version": 1, "answers": {"q1": entry, "q2": other}}
    ).encode()


def test_save_times_come_from_each_answer_and_its_history_and_odd_times_are_ignored():
    """Saved and history times count once; 1999, a day ahead, or not a time are ignored."""
    future = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = answers(
        "2026-11-02T10:04:00Z", "2026-11-02T10:30:00Z",
        history=("2026-11-02T10:00:00Z", "2026-11-02T10:04:00Z", "1999-01-01T00:00:00Z",
                 future, "yesterday", 5),
    )  # fmt: skip
    assert sorted(events.save_times(data, "x")) == [
        at(2, 10, 0), at(2, 10, 4), at(2, 10, 30)
    ]  # fmt: skip


def test_events_are_read_from_the_collected_copy_and_a_link_is_never_followed(tmp_path):
    """A collected answers file gives events; a symbolic link in its place gives none."""
    course = types.SimpleNamespace(
        course_id="c1", root=tmp_path,
        submission_dir=lambda a, s: tmp_path / "submitted" / a / s,
    )  # fmt: skip
    folder = tmp_path / "submitted" / "at-nobody-xyz" / "alpha-en"
    folder.mkdir(parents=True)
    (folder / ".atelier-answers.json").write_bytes(answers("2026-11-02T10:00:00Z"))
    found = events.trainee_events(course, "u", "at-nobody-xyz", ["alpha"], ["en", "fr"])
    assert found == [stats.Event("u", "alpha", at(2, 10, 0))]
    secret = tmp_path / "secret.json"
    secret.write_bytes(answers("2026-11-03T10:00:00Z"))
    os.remove(folder / ".atelier-answers.json")
    os.symlink(secret, folder / ".atelier-answers.json")
    assert events.trainee_events(course, "u", "at-nobody-xyz", ["alpha"], ["en"]) == []


# --- exports and page -----------------------------------------------------------------------------

HOSTILE = "=HYPERLINK(evil.example)"


def hostile_cohort() -> stats.Participation:
    people = [stats.Participant(f"h{i}", "en", HOSTILE if i < 5 else "<img src=x onerror=alert(1)>",
                                "SN", "woman") for i in range(10)]  # fmt: skip
    return stats.participation(people, EVENTS)


def test_csv_neutralises_formulas_and_keeps_the_suppression(cohort):
    """A formula in an institution is text in the CSV; suppressed groups stay merged."""
    rows = list(csv.reader(io.StringIO(exports.to_csv(hostile_cohort()))))
    cells = [cell for row in rows for cell in row]
    assert "'" + HOSTILE in cells and HOSTILE not in cells
    text = exports.to_csv(cohort)
    assert "By country,other/suppressed,8,57.1" in text and ",KE," not in text
    assert "By country,Senegal,6,42.9" in text


def test_csv_words_in_french(cohort):
    """The CSV speaks French when asked: headers, countries, suppressed row."""
    text = exports.to_csv(cohort, "fr")
    assert text.startswith("Rubrique,Élément,") and "Par pays,Sénégal,6" in text
    assert "autres/masqués" in text and "Par genre,femmes,7,50.0" in text


def test_the_page_section_escapes_what_people_wrote():
    """Is an institution holding markup shown as text, never as an element?"""
    html = str(page.section(hostile_cohort(), "c1", "en"))
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'id="participation-title"' in html and "<td>other/suppressed</td>" not in html
    assert "Groups of fewer than 5" in html and "c1-participation.csv" in html


def pdf_pages(data: bytes) -> int:
    counts = [int(n) for n in re.findall(rb"/Count (\d+)", data)]
    return max(counts)


def test_the_institution_pdf_is_one_page_with_its_own_trainees_only(tmp_path):
    """One page (pypdf and the /Count), Univ A's 7 only, no other institution named."""
    import pypdf

    many = participants() + [
        stats.Participant(f"x{i}", "en", f"Institution {i}", "KE", "man") for i in range(40)
    ]
    report = stats.participation(many, EVENTS, [f"w{i}" for i in range(20)], institution="Univ A")
    path = exports.to_pdf(report, "c1", tmp_path / "univ-a.pdf", "en")
    data = path.read_bytes()
    assert pdf_pages(data) == 1 and len(pypdf.PdfReader(path).pages) == 1
    text = pypdf.PdfReader(path).pages[0].extract_text()
    assert "Participants: 7" in text and "Univ A" in text
    assert "Univ B" not in text and "Institution 3" not in text and "Kenya" not in text


def test_a_whole_cohort_pdf_with_many_groups_still_has_one_page(tmp_path):
    """Forty institutions, twenty workbooks, a year of days: still one page, in French."""
    many = [stats.Participant(f"x{i}", "fr", f"Institution {i}", "KE", "man") for i in range(40)]
    year = [stats.Event(f"x{i % 40}", "w1", at(1, 8, 0) + timedelta(days=i)) for i in range(300)]
    report = stats.participation(many, year, [f"w{i}" for i in range(20)])
    path = exports.to_pdf(report, "c1", tmp_path / "all.pdf", "fr")
    assert pdf_pages(path.read_bytes()) == 1


def test_the_french_pdf_writes_numbers_and_colons_as_french_does(tmp_path):
    """A decimal comma in the shares and a non-breaking space before each colon."""
    import pypdf

    report = stats.participation(participants(), EVENTS, ["w1"])
    path = exports.to_pdf(report, "c1", tmp_path / "fr.pdf", "fr")
    text = pypdf.PdfReader(path).pages[0].extract_text()
    assert "42,9" in text and "42.9" not in text
    assert "Participants\u00a0: 15" in text or "Participants : 15" in text
    assert "Participants: 15" not in text
