"""The dashboard's Participation section, in the facilitator's language.

Rule: the section is rendered from ``templates/participation.html.j2`` through :mod:`atelier.pages`
(autoescape on), so an institution a person typed (``<img onerror=...>``) is text on the page; the
numbers are :mod:`.stats`' (suppression and consent applied there), and its CSV is
:func:`.exports.to_csv`'s, offered as a download.
"""

from __future__ import annotations

import base64

from markupsafe import Markup

from atelier import pages
from atelier.grading.participation.exports import ATTRIBUTES, label, texts, to_csv
from atelier.grading.participation.stats import Participation

PACKAGE = "atelier.grading.participation"
TEMPLATE = "participation.html.j2"


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def chart(report: Participation, language: str) -> dict:
    """The geometry of the active-trainees-per-day plot: one vertical bar a day."""
    said = texts(language)
    days = report.per_day
    width, height = 600, 120
    if not days:
        return {"bars": [], "width": width, "height": height}
    most = max(n for _, n in days) or 1
    step = width / len(days)
    bars = [
        {"x": i * step, "length": height * n / most, "day": day.isoformat(), "n": n}
        for i, (day, n) in enumerate(days)
    ]
    first, last = days[0][0].isoformat(), days[-1][0].isoformat()
    return {
        "bars": bars,
        "bar": max(step * 0.8, 0.5),
        "width": width,
        "height": height,
        "first": first,
        "last": last,
        "label": said["chart_label"].format(first=first, last=last, most=most),
    }


def section(report: Participation, cohort: str, language: str = "en") -> Markup:
    """The Participation section of ``cohort``'s dashboard page."""
    said = texts(language)
    totals = [
        ("participants", said["participants"], report.participants),
        ("countries", said["countries"], report.countries),
        ("institutions", said["institutions"], report.institutions),
    ]
    if report.withheld:
        totals.append(("withheld", said["withheld"], report.withheld))
    breakdowns = []
    for attribute in ATTRIBUTES:
        groups = report.breakdowns.get(attribute)
        if groups is None:
            continue
        keys = [said["value"], said["trainees"], said["share"]]
        rows = [[label(attribute, v, language), n, _cell(share)] for v, n, share in groups]
        breakdowns.append((attribute, said[f"by_{attribute}"], keys, rows))
    per_day = (
        [said["day"], said["active"]],
        [[day.isoformat(), n] for day, n in report.per_day],
    )
    per_workbook = (
        [
            said["workbook"], said["trainees"], said["total_minutes"], said["mean_minutes"],
            said["median_minutes"],
        ],
        [
            [
                r["workbook"], r["trainees"], _cell(r["total minutes"]), _cell(r["mean minutes"]),
                _cell(r["median minutes"]),
            ]
            for r in report.per_workbook
        ],
    )  # fmt: skip
    notes = [
        said["suppression"].format(min_group=report.min_group),
        said["time_rule"].format(cap=f"{report.gap_cap_minutes:g}"),
        said["consent_rule"],
    ]
    csv_data = base64.b64encode(to_csv(report, language).encode()).decode()
    return pages.macro(
        PACKAGE,
        TEMPLATE,
        "section",
        said,
        totals,
        breakdowns,
        chart(report, language),
        per_day,
        per_workbook,
        f"data:text/csv;base64,{csv_data}",
        f"{cohort}-participation.csv",
        notes,
    )
