"""The numbers of participation: people, breakdowns with small groups suppressed, activity, time.

Rule: every function here is pure (trainees and events in, numbers out), so each number is tested
against a hand count (``tests/unit/test_participation.py``). The definitions, which
``docs/dashboard.md`` ("Participation") repeats for facilitators:

- **participants**: the cohort's trainees (the roster's, facilitators aside).
- **consent**: when the roster has a consent column, a trainee who did not consent (``no`` or an
  empty cell) is counted in the totals (participants, languages, active trainees per day, time per
  workbook) and in no breakdown by a personal attribute (institution, country, gender); they are
  left out of a partner institution's report entirely, since choosing them by institution would
  use what they did not agree to share.
- **breakdowns**: trainees per value; by gender and by country, a group of fewer than
  ``min_group`` (5) trainees is not shown: it is merged into one row, "other/suppressed", and when
  that row itself holds fewer than ``min_group`` trainees (but some) the next smallest groups join
  it until it does, so no small group can be recovered by subtracting from the total.
- **events**: the times a trainee's answers were saved in a workbook (either language), from the
  history of the answers file (:mod:`.events`).
- **active trainees per day**: trainees with at least one event that day (UTC), every day from the
  first event to the last, days without any at 0.
- **time per workbook**: per trainee, the sum of the gaps between their consecutive events in that
  workbook, each gap capped at ``gap_cap`` (10 minutes): a trainee who leaves for lunch adds 10
  minutes, not an hour; a single event adds nothing, so the figure is a lower bound of time on task.
  Per workbook: trainees with an event, their total, mean and median.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

#: The label of the row holding suppressed groups (a key of the locales, translated on pages).
SUPPRESSED = "other/suppressed"
#: The label of an empty value (no institution, no country, gender not said).
NOT_GIVEN = "not given"
#: Attributes a trainee who did not consent is never counted by.
PERSONAL = ("institution", "country", "gender")
#: Attributes whose small groups are suppressed (the issue's rule: "by gender or country").
SUPPRESSED_ATTRIBUTES = ("country", "gender")
#: At most this many days are plotted (the latest): a forged date cannot make the plot endless.
MAX_DAYS = 400


@dataclass(frozen=True)
class Participant:
    """A trainee as participation sees them (from the roster)."""

    username: str
    language: str
    institution: str = ""
    country: str = ""
    gender: str = ""
    consents: bool = True


@dataclass(frozen=True)
class Event:
    """One saved answer: who, in which workbook, when (UTC)."""

    username: str
    workbook: str
    at: datetime


@dataclass
class Participation:
    """Everything the dashboard's section and the exports show."""

    participants: int
    #: Trainees left out of breakdowns by personal attribute (no consent).
    withheld: int
    countries: int
    institutions: int
    #: attribute -> [(value, trainees, share %)], the suppressed row last when there is one.
    breakdowns: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    #: (day, active trainees), every day from the first event to the last.
    per_day: list[tuple[date, int]] = field(default_factory=list)
    #: One dict per workbook: workbook, trainees, total/mean/median minutes.
    per_workbook: list[dict] = field(default_factory=list)
    #: The institution a partner report is cut to, or "".
    institution: str = ""
    min_group: int = 5
    gap_cap_minutes: float = 10.0


def fold(text: str) -> str:
    """How institution names compare: case and runs of spaces ignored."""
    return " ".join(text.split()).casefold()


def counts(participants: Iterable[Participant], attribute: str) -> Counter:
    """Trainees per value of ``attribute``; without consent, none by a personal attribute.

    Institutions are grouped by :func:`fold` and named by their most frequent spelling.
    """
    found: Counter = Counter()
    spellings: dict[str, Counter] = defaultdict(Counter)
    for person in participants:
        if attribute in PERSONAL and not person.consents:
            continue
        value = getattr(person, attribute)
        if attribute == "institution":
            # "Univ A" and "univ  a" are one institution, named as most of its trainees wrote it.
            value = " ".join(value.split())
            spellings[fold(value)][value] += 1
            value = fold(value)
        found[value or NOT_GIVEN] += 1
    if spellings:
        named = {
            key: min(s.items(), key=lambda kv: (-kv[1], kv[0]))[0] for key, s in spellings.items()
        }
        found = Counter({named.get(key, key) or NOT_GIVEN: n for key, n in found.items()})
    return found


def suppress(found: Counter, min_group: int) -> list[tuple[str, int]]:
    """``found`` as rows, groups under ``min_group`` merged into :data:`SUPPRESSED` (last).

    When the merged row would hold between 1 and ``min_group - 1`` trainees, the smallest shown
    groups join it until it holds ``min_group`` or more (or nothing is shown any more): a lone
    small row could otherwise be read back from the total.
    """
    rows = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = [row for row in rows if row[1] >= min_group]
    hidden = sum(n for _, n in rows if n < min_group)
    while 0 < hidden < min_group and shown:
        hidden += shown.pop()[1]
    return [*shown, *([(SUPPRESSED, hidden)] if hidden else [])]


def breakdown(participants: list[Participant], attribute: str, min_group: int = 5) -> list:
    """Rows (value, trainees, share %) of ``attribute``, small groups suppressed by the rule.

    The share is of the trainees counted in the breakdown (those who consented, for a personal
    attribute), rounded to one decimal.
    """
    found = counts(participants, attribute)
    if attribute in SUPPRESSED_ATTRIBUTES:
        rows = suppress(found, min_group)
    else:
        rows = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(n for _, n in rows)
    return [(value, n, round(100 * n / total, 1)) for value, n in rows]


def active_per_day(events: Iterable[Event]) -> list[tuple[date, int]]:
    """(day, trainees with an event that day), from the first day to the last, zeros included."""
    active: dict[date, set[str]] = defaultdict(set)
    for event in events:
        active[event.at.date()].add(event.username)
    if not active:
        return []
    last = max(active)
    first = max(min(active), last - timedelta(days=MAX_DAYS - 1))
    days = (last - first).days + 1
    return [
        (first + timedelta(days=n), len(active.get(first + timedelta(days=n), ())))
        for n in range(days)
    ]


def time_on_task(events: Iterable[Event], gap_cap: timedelta) -> dict[tuple[str, str], timedelta]:
    """Per (trainee, workbook): the sum of the gaps between consecutive events, each capped."""
    times: dict[tuple[str, str], set[datetime]] = defaultdict(set)
    for event in events:
        times[(event.username, event.workbook)].add(event.at)
    spent = {}
    for key, moments in times.items():
        ordered = sorted(moments)
        spent[key] = sum(
            (min(b - a, gap_cap) for a, b in itertools.pairwise(ordered)),
            timedelta(0),
        )
    return spent


def per_workbook(
    events: Iterable[Event], gap_cap: timedelta, workbooks: Iterable[str] = ()
) -> list[dict]:
    """Per workbook: trainees with an event, and the total, mean and median of their minutes."""
    by_workbook: dict[str, list[float]] = {w: [] for w in workbooks}
    for (_, workbook), spent in sorted(time_on_task(events, gap_cap).items()):
        by_workbook.setdefault(workbook, []).append(spent.total_seconds() / 60)
    rows = []
    for workbook, minutes in by_workbook.items():
        rows.append(
            {
                "workbook": workbook,
                "trainees": len(minutes),
                "total minutes": round(sum(minutes), 1),
                "mean minutes": round(statistics.fmean(minutes), 1) if minutes else None,
                "median minutes": round(statistics.median(minutes), 1) if minutes else None,
            }
        )
    return rows


def of_institution(participants: list[Participant], institution: str) -> list[Participant]:
    """The trainees of ``institution`` (compared by :func:`fold`) who consented."""
    wanted = fold(institution)
    return [p for p in participants if p.consents and fold(p.institution) == wanted]


def participation(
    participants: list[Participant],
    events: Iterable[Event],
    workbooks: Iterable[str] = (),
    gap_cap_minutes: float = 10.0,
    min_group: int = 5,
    institution: str = "",
) -> Participation:
    """Every number of the Participation section, for the whole cohort or one ``institution``.

    Events of trainees who are not among ``participants`` (after the institution's cut) are left
    out.
    """
    if institution:
        participants = of_institution(participants, institution)
    names = {p.username for p in participants}
    events = [e for e in events if e.username in names]
    consenting = [p for p in participants if p.consents]
    return Participation(
        participants=len(participants),
        withheld=len(participants) - len(consenting),
        countries=len({p.country for p in consenting if p.country}),
        institutions=len({fold(p.institution) for p in consenting if p.institution.strip()}),
        # An attribute nobody has (the roster has no such column) gets no breakdown.
        breakdowns={
            attribute: breakdown(participants, attribute, min_group)
            for attribute in ("institution", "country", "gender", "language")
            if attribute == "language" or any(getattr(p, attribute) for p in participants)
        },
        per_day=active_per_day(events),
        per_workbook=per_workbook(events, timedelta(minutes=gap_cap_minutes), workbooks),
        institution=institution,
        min_group=min_group,
        gap_cap_minutes=gap_cap_minutes,
    )
