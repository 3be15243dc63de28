"""The facilitators' dashboard: a cohort's progress at a glance, from live grades and exchange.

Rule: every number is read when the page asks, never cached: the gradebook through
:func:`atelier.grading.export.gather` (the one reading of scores), the exchange's inbound folders
for submissions not yet collected, the trainees' homes for workbooks fetched, and the roster for
who is in the cohort and every column it has (institution, country, and any extra one).

Per trainee and workbook (either language): ``started`` (fetched, submitted or graded),
``submitted`` (in the exchange or the gradebook), ``graded`` (every grade given) and the score. A
trainee's completion is the share of the cohort's workbooks graded. The page itself is a Voila
notebook (``templates/dashboard.ipynb``) served by :mod:`atelier.grading.dashboard.dashboardapp`, as
a hub service that only facilitators may open (:func:`apply`).

What people wrote (names, roster columns and their headers, cohorts) is escaped: every fragment is
rendered from ``templates/dashboard.html.j2`` through :mod:`atelier.pages` (:func:`page`), and the
CSV is written through :mod:`atelier.csvcells`, which neutralises formulas.
"""

from __future__ import annotations

import io
import pwd
from dataclasses import dataclass, field
from pathlib import Path

from atelier import csvcells, pages
from atelier.errors import AtelierError

#: The hub service's name: the proxy serves it at /services/dashboard/.
SERVICE_NAME = "dashboard"
#: The role letting facilitators (and admins) open the dashboard.
ROLE_NAME = "atelier-dashboard"
#: Roster columns every roster has, besides the extra ones.
BASE_COLUMNS = ("institution", "country", "language")


@dataclass
class WorkbookProgress:
    """One trainee's progress on one workbook."""

    started: bool = False
    submitted: bool = False
    graded: bool = False
    score: float | None = None
    max_score: float = 0.0

    @property
    def percent(self) -> float | None:
        """The score as a percentage, when graded."""
        if not self.graded or self.score is None or not self.max_score:
            return None
        return 100.0 * self.score / self.max_score


@dataclass
class TraineeProgress:
    """One row of the dashboard."""

    username: str
    full_name: str
    columns: dict[str, str]
    workbooks: dict[str, WorkbookProgress] = field(default_factory=dict)
    #: The roster's consent column says no: institution and country are never used for them.
    withheld: bool = False

    @property
    def completion(self) -> float:
        """Share (0-100) of the cohort's workbooks graded for this trainee."""
        if not self.workbooks:
            return 0.0
        graded = sum(w.graded for w in self.workbooks.values())
        return 100.0 * graded / len(self.workbooks)

    @property
    def completed(self) -> bool:
        """Whether every workbook of the cohort is graded."""
        return bool(self.workbooks) and all(w.graded for w in self.workbooks.values())


@dataclass
class CohortProgress:
    """The dashboard of one cohort."""

    cohort: str
    workbooks: list[str]
    columns: list[str]
    trainees: list[TraineeProgress]
    #: Per workbook, the statistics of its graded items over first attempts (item analysis).
    items: dict[str, list] = field(default_factory=dict)
    #: Participation (:mod:`atelier.grading.participation`), read with the rest; None if not read.
    participation: object = None


# --- reading live data -------------------------------------------------------------------------


def fetched(account: str, assignments: list[str], course_id: str) -> bool:
    """Whether the trainee's home holds a fetched copy of one of ``assignments``."""
    try:
        home = Path(pwd.getpwnam(account).pw_dir)
    except KeyError:
        return False
    for assignment in assignments:
        for folder in (home / course_id / assignment, home / assignment):
            try:
                if folder.is_dir():
                    return True
            except OSError:
                continue
    return False


def in_exchange(course, account: str, assignments: list[str]) -> bool:
    """Whether the exchange holds a submission of one of ``assignments`` by ``account``."""
    from atelier.grading.exchange.collect import candidates

    try:
        return any(candidates(course, account, a) for a in assignments)
    except OSError:
        return False


def cohort_progress(settings, cohort: str) -> CohortProgress:
    """Read the progress of every trainee of ``cohort`` now."""
    from atelier.accounts import load_people
    from atelier.grading.course import Course
    from atelier.grading.courses.people import cohort_people
    from atelier.grading.export import gather
    from atelier.languages import LANGUAGES

    course = Course.from_settings(settings, cohort)
    trainees, _ = cohort_people(settings, cohort)
    from atelier.database import gradebook_exists, redact

    if not gradebook_exists(course.db_url):
        raise AtelierError(
            f"cohort '{cohort}': no gradebook yet ({redact(course.db_url)}): release a workbook"
        )
    workbooks, rows = gather(course, trainees)
    people = load_people(settings.get_path("hub.state_dir"))
    extra_columns = sorted(
        {key for t in trainees for key in getattr(people.get(t.username), "extra", {}) or {}}
    )
    columns = [*BASE_COLUMNS, *extra_columns]
    result = []
    for row in rows:
        trainee = row.trainee
        person = people.get(trainee.username)
        withheld = not getattr(person, "consents", True)
        values = {
            "institution": "" if withheld else getattr(person, "institution", ""),
            "country": "" if withheld else getattr(person, "country", ""),
            "language": trainee.language,
            **{key: str(value) for key, value in (getattr(person, "extra", {}) or {}).items()},
        }
        progress = TraineeProgress(trainee.username, trainee.full_name, values, withheld=withheld)
        for workbook in workbooks:
            grade = row.grades[workbook]
            assignments = [f"{workbook}-{lang}" for lang in LANGUAGES]
            in_gradebook = grade.status != "missing"
            submitted = in_gradebook or in_exchange(course, trainee.account, assignments)
            progress.workbooks[workbook] = WorkbookProgress(
                started=submitted or fetched(trainee.account, assignments, course.course_id),
                submitted=submitted,
                graded=grade.status == "graded",
                score=grade.score,
                max_score=grade.max_score,
            )
        result.append(progress)
    from atelier.grading import itemanalysis

    attempts = itemanalysis.read_attempts(course.root)
    items = {
        workbook: itemanalysis.analyse(itemanalysis.choose_attempts(attempts, workbook))
        for workbook in workbooks
    }
    from atelier.grading.participation.events import cohort_participation

    return CohortProgress(
        cohort, workbooks, columns, result, items, cohort_participation(settings, cohort)
    )


# --- summaries ---------------------------------------------------------------------------------


def workbook_summary(progress: CohortProgress) -> list[dict]:
    """Per workbook: how many trainees started, submitted, were graded, and the mean percent."""
    summary = []
    for workbook in progress.workbooks:
        cells = [t.workbooks[workbook] for t in progress.trainees]
        percents = [c.percent for c in cells if c.percent is not None]
        summary.append(
            {
                "workbook": workbook,
                "trainees": len(cells),
                "started": sum(c.started for c in cells),
                "submitted": sum(c.submitted for c in cells),
                "graded": sum(c.graded for c in cells),
                "mean percent": round(sum(percents) / len(percents), 1) if percents else None,
            }
        )
    return summary


def breakdown(progress: CohortProgress, column: str) -> list[dict]:
    """Per value of a roster ``column``: trainees, how many completed, mean completion."""
    if column not in progress.columns:
        raise AtelierError(f"no roster column '{column}'; choose one of {progress.columns}")
    groups: dict[str, list[TraineeProgress]] = {}
    for trainee in progress.trainees:
        if trainee.withheld and column in ("institution", "country"):
            continue  # no consent: in no breakdown by a personal attribute (docs/roster.md)
        groups.setdefault(trainee.columns.get(column, "") or "—", []).append(trainee)
    return [
        {
            column: value,
            "trainees": len(members),
            "completed": sum(t.completed for t in members),
            "mean completion": round(sum(t.completion for t in members) / len(members), 1),
        }
        for value, members in sorted(groups.items())
    ]


def progress_csv(progress: CohortProgress) -> str:
    """The dashboard as CSV: one row per trainee, roster columns, then each workbook's progress."""
    out = io.StringIO()
    writer = csvcells.writer(out, lineterminator="\n")
    header = ["username", "full name", *progress.columns, "completion %"]
    for w in progress.workbooks:
        header += [f"{w} started", f"{w} submitted", f"{w} graded", f"{w} score", f"{w} max"]
    writer.writerow(header)
    for t in progress.trainees:
        line = [t.username, t.full_name, *(t.columns.get(c, "") for c in progress.columns)]
        line.append(f"{t.completion:.0f}")
        for w in progress.workbooks:
            p = t.workbooks[w]
            score = "" if p.score is None else f"{p.score:g}"
            line += ["yes" if p.started else "no", "yes" if p.submitted else "no"]
            line += ["yes" if p.graded else "no", score, f"{p.max_score:g}"]
        writer.writerow(line)
    return out.getvalue()


# --- rendering (plain HTML and SVG: light, no script, no CDN) ------------------------------------
# Every fragment comes from templates/dashboard.html.j2 through atelier.pages: values are escaped
# there, so a roster header or a name cannot become markup (issue 15: a header ran script here).

TEMPLATE = "dashboard.html.j2"


def _fragment(macro_name: str, *args) -> str:
    return str(pages.macro("atelier.grading.dashboard", TEMPLATE, macro_name, *args))


def _table_data(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    keys = [str(k) for k in rows[0]] if rows else []
    return keys, [[_cell(r[k]) for k in r] for r in rows]


def html_table(rows: list[dict]) -> str:
    """An HTML table of ``rows`` (dicts with the same keys), every key and value escaped."""
    return _fragment("table", *_table_data(rows))


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "·"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _trainee_rows(progress: CohortProgress) -> list[dict]:
    rows = []
    for t in progress.trainees:
        row = {"trainee": t.full_name or t.username, "completion %": round(t.completion)}
        for w in progress.workbooks:
            p = t.workbooks[w]
            if p.graded:
                row[w] = f"{p.percent:.0f}%" if p.percent is not None else "graded"
            elif p.submitted:
                row[w] = "submitted"
            elif p.started:
                row[w] = "started"
            else:
                row[w] = "·"
        rows.append(row)
    return rows


def trainee_table(progress: CohortProgress) -> str:
    """Each trainee's line: completion, then per workbook a mark (·, started, submitted, score)."""
    return html_table(_trainee_rows(progress))


def _chart(rows: list[dict], label: str, value: str, maximum: float = 100.0) -> dict:
    """The geometry of a bar chart (numbers) and its labels (text, escaped by the template)."""
    width, bar, gap, left = 420, 18, 6, 140
    bars = []
    for i, row in enumerate(rows):
        amount = float(row.get(value) or 0)
        length = 0 if not maximum else (width - left - 50) * min(amount, maximum) / maximum
        bars.append(
            {
                "y": gap + i * (bar + gap),
                "length": length,
                "label": _cell(row.get(label))[:22],
                "amount": _cell(round(amount, 1)),
            }
        )
    height = len(rows) * (bar + gap) + gap
    return {
        "width": width,
        "height": height,
        "bar": bar,
        "left": left,
        "value": value,
        "bars": bars,
    }


def bar_chart(rows: list[dict], label: str, value: str, maximum: float = 100.0) -> str:
    """A horizontal bar chart as inline SVG: one bar per row, ``value`` against ``maximum``."""
    return _fragment("bar_chart", _chart(rows, label, value, maximum))


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def item_sections(progress: CohortProgress) -> list[tuple[str, tuple, dict]]:
    """Per workbook with graded attempts: its item table and a chart of facility per item."""
    sections = []
    for workbook, reports in progress.items.items():
        if not reports:
            continue
        rows = [
            {
                "item": r.item,
                "trainees": r.n,
                "facility %": _number(r.facility),
                "SD %": _number(r.sd),
                "discrimination": _number(r.discrimination),
                "efficiency %": _number(r.efficiency),
                "by language": "; ".join(
                    f"{lang} {n}: {_number(f)}" for lang, (n, f) in r.by_language.items()
                ),
                "options": "; ".join(f"{o}: {c}" for o, c in r.options.items()) or "—",
                "flags": "; ".join(r.flags) or "—",
            }
            for r in reports
        ]
        chart_rows = [{"item": r.item, "facility": r.facility or 0.0} for r in reports]
        sections.append((workbook, _table_data(rows), _chart(chart_rows, "item", "facility")))
    return sections


def page(progress: CohortProgress, column: str | None = None, language: str = "en") -> str:
    """The dashboard of a cohort: summary, workbooks, trainees, a breakdown by ``column``, CSV link.

    ``column`` (a roster column, the first one when not given) is what the breakdown groups by;
    the Participation section is in ``language`` (the facilitator's).
    """
    import base64

    from atelier.grading.participation.page import section

    column = column or progress.columns[0]
    summary = workbook_summary(progress)
    by = breakdown(progress, column)
    csv_data = base64.b64encode(progress_csv(progress).encode()).decode()
    return _fragment(
        "page",
        progress.cohort,
        len(progress.trainees),
        sum(t.completed for t in progress.trainees),
        _table_data(summary),
        _chart(summary, "workbook", "graded", max(len(progress.trainees), 1)),
        _table_data(_trainee_rows(progress)),
        column,
        _table_data(by),
        _chart(by, column, "mean completion"),
        f"data:text/csv;base64,{csv_data}",
        item_sections(progress),
        ""
        if progress.participation is None
        else section(progress.participation, progress.cohort, language),
    )


def message(text: str) -> str:
    """A sentence for the dashboard (no cohort, an error), escaped."""
    return _fragment("message", text)


# --- the hub service ---------------------------------------------------------------------------


def service(settings, port: int) -> dict:
    """The dashboard service: hub login (OAuth) required, access granted by :data:`ROLE_NAME`."""
    import os
    import sys

    from atelier.public.apps import jupyter_path_env

    env = {"JUPYTER_PATH": jupyter_path_env({})}
    if os.environ.get("ATELIER_SETTINGS"):
        env["ATELIER_SETTINGS"] = os.environ["ATELIER_SETTINGS"]
    return {
        "name": SERVICE_NAME,
        "url": f"http://127.0.0.1:{port}",
        "command": [
            sys.executable,
            "-m",
            "atelier",
            "dashboard",
            f"--port={port}",
            f"--base-url=/services/{SERVICE_NAME}/",
        ],
        "environment": env,
        "display": True,
        "oauth_no_confirm": True,
    }


def apply(c, settings, port: int | None = None, groups: list[str] | None = None) -> None:
    """Add the dashboard service and a role giving ``groups`` (all facilitators) access to it.

    Call it after the roster layer, which defines the ``facilitators-<cohort>`` groups.
    """
    port = port or settings.get_path("apps.dashboard_port", 8867)
    services = [s for s in c.JupyterHub.get("services", []) if s.get("name") != SERVICE_NAME]
    c.JupyterHub.services = [*services, service(settings, port)]
    if groups is None:
        # Every cohort's facilitators (hub groups ``facilitators-<cohort>``, see config.py).
        groups = [g for g in c.JupyterHub.get("load_groups", {}) if g.startswith("facilitators-")]
    roles = [r for r in c.JupyterHub.get("load_roles", []) if r.get("name") != ROLE_NAME]
    role = {
        "name": ROLE_NAME,
        "description": "Open the facilitators' dashboard.",
        "scopes": [f"access:services!service={SERVICE_NAME}"],
        "groups": sorted(groups),
    }
    c.JupyterHub.load_roles = [*roles, role]
