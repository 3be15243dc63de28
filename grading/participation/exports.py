"""Participation as CSV and as a one-page PDF for a partner institution.

Rule: both show a :class:`~.stats.Participation` exactly as computed (the suppression of small
groups and the consent rule are applied before anything is written), in the facilitator's
language (``locales/``). The CSV goes through :mod:`atelier.csvcells`, so a name a person typed
(``=HYPERLINK(...)``) stays text in a spreadsheet. The PDF is drawn with ReportLab's canvas,
string by string: a name is drawn as the characters it holds (no markup is read, unlike
ReportLab's ``Paragraph``), and every list is cut to what fits, so the report is one page whatever
the cohort (the groups left out are added to the suppressed row, never dropped).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from atelier import csvcells
from atelier.files import atomic_write
from atelier.grading.participation.stats import NOT_GIVEN, SUPPRESSED, Participation
from atelier.languages import words
from atelier.roster import country_name

PACKAGE = "atelier.grading.participation"
#: Attributes in the order every export shows them.
ATTRIBUTES = ("institution", "country", "gender", "language")


def texts(language: str) -> dict[str, str]:
    """The words of participation in ``language`` (English for a language Atelier lacks)."""
    return words(PACKAGE, "participation", language)


def label(attribute: str, value: str, language: str) -> str:
    """What a group is called on a page: a country's name, a gender's word, or the value."""
    said = texts(language)
    if value in (SUPPRESSED, NOT_GIVEN):
        return said[value]
    if attribute == "country":
        return country_name(value, language)
    if attribute == "gender":
        return said.get(value, value)
    return value


def rows(report: Participation, language: str = "en") -> list[list]:
    """The CSV's rows (header first): summary, each breakdown, each day, each workbook."""
    said = texts(language)
    header = [
        said["section"], said["item"], said["trainees"], said["share"],
        said["total_minutes"], said["mean_minutes"], said["median_minutes"],
    ]  # fmt: skip
    out = [header]
    summary = said["summary"]
    out.append([summary, said["participants"], report.participants, "", "", "", ""])
    out.append([summary, said["withheld"], report.withheld, "", "", "", ""])
    out.append([summary, said["countries"], report.countries, "", "", "", ""])
    out.append([summary, said["institutions"], report.institutions, "", "", "", ""])
    for attribute in ATTRIBUTES:
        for value, n, share in report.breakdowns.get(attribute, []):
            title = said[f"by_{attribute}"]
            out.append([title, label(attribute, value, language), n, share, "", "", ""])
    for day, active in report.per_day:
        out.append([said["day_row"], day.isoformat(), active, "", "", "", ""])
    for row in report.per_workbook:
        out.append(
            [
                said["workbook_row"], row["workbook"], row["trainees"], "",
                row["total minutes"], _blank(row["mean minutes"]), _blank(row["median minutes"]),
            ]
        )  # fmt: skip
    return out


def _blank(value):
    return "" if value is None else value


def to_csv(report: Participation, language: str = "en") -> str:
    """The participation CSV, every cell through :mod:`atelier.csvcells`."""
    out = io.StringIO()
    csvcells.writer(out, lineterminator="\n").writerows(rows(report, language))
    return out.getvalue()


# --- the one-page PDF --------------------------------------------------------------------------

#: Most groups of one breakdown drawn on the page; the rest join the suppressed row.
PDF_GROUPS = 8
#: Most workbooks drawn (a programme has 12; a longer list is cut, saying how many are left).
PDF_WORKBOOKS = 14


def _fit(pdf, text: str, font: str, size: float, width: float) -> str:
    """``text`` cut (with an ellipsis) to ``width`` points."""
    text = " ".join(str(text).split())
    if pdf.stringWidth(text, font, size) <= width:
        return text
    while text and pdf.stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


def _capped(groups: list[tuple[str, int, float]]) -> list[tuple[str, int, float]]:
    """At most :data:`PDF_GROUPS` rows: the smallest shown ones join the suppressed row."""
    if len(groups) <= PDF_GROUPS:
        return groups
    hidden = [g for g in groups if g[0] == SUPPRESSED]
    shown = [g for g in groups if g[0] != SUPPRESSED]
    keep = shown[: PDF_GROUPS - 1]
    rest = shown[PDF_GROUPS - 1 :] + hidden
    return [*keep, (SUPPRESSED, sum(g[1] for g in rest), round(sum(g[2] for g in rest), 1))]


def _number(value, language: str) -> str:
    """A count or share as the page's language writes it (a decimal comma in French)."""
    text = f"{value:g}"
    return text.replace(".", ",") if language == "fr" else text


def _colon(language: str) -> str:
    """A label's colon: French puts a non-breaking space before it."""
    return "\u00a0: " if language == "fr" else ": "


def to_pdf(report: Participation, cohort: str, path: str | Path, language: str = "en") -> Path:
    """Write the one-page A4 report of ``report`` to ``path`` (whole: temporary file, rename)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    from atelier.grading.certificates import _font

    said = texts(language)
    regular, bold = _font()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=0)
    pdf.setTitle(f"{said['report_title']} {cohort}")
    width, height = A4
    left, right = 50, width - 50
    y = height - 60
    pdf.setFont(bold, 18)
    pdf.drawString(left, y, _fit(pdf, said["report_title"], bold, 18, right - left))
    y -= 22
    pdf.setFont(regular, 11)
    heading = f"{said['cohort']} {cohort}"
    if report.institution:
        heading += f" · {said['institution']}{_colon(language)}{report.institution}"
    pdf.drawString(left, y, _fit(pdf, heading, regular, 11, right - left))
    y -= 15
    made = datetime.now(UTC).strftime("%Y-%m-%d")
    pdf.drawString(left, y, f"{said['made']} {made}")
    y -= 26

    # The totals, as the programme reports them.
    pdf.setFont(bold, 12)
    totals = [
        (said["participants"], report.participants),
        (said["countries"], report.countries),
        (said["institutions"], report.institutions),
    ]
    x = left
    for name, value in totals:
        pdf.drawString(x, y, f"{name}{_colon(language)}{value}")
        x += (right - left) / 3
    y -= 16
    if report.withheld:
        pdf.setFont(regular, 8)
        for line in _wrap(
            pdf, f"{said['withheld']}{_colon(language)}{report.withheld}", regular, 8, right - left
        ):
            pdf.drawString(left, y, line)
            y -= 10
    y -= 8

    # Breakdowns, two per row of the page.
    columns = [(a, report.breakdowns[a]) for a in ATTRIBUTES if a in report.breakdowns]
    half = (right - left - 20) / 2
    for start in range(0, len(columns), 2):
        top = y
        lowest = y
        for i, (attribute, groups) in enumerate(columns[start : start + 2]):
            x = left + i * (half + 20)
            yy = top
            pdf.setFont(bold, 10)
            pdf.drawString(x, yy, said[f"by_{attribute}"])
            yy -= 13
            pdf.setFont(regular, 9)
            for value, n, share in _capped(groups):
                name = label(attribute, value, language)
                pdf.drawString(x, yy, _fit(pdf, name, regular, 9, half - 90))
                pdf.drawRightString(x + half - 45, yy, str(n))
                pdf.drawRightString(x + half, yy, f"{_number(share, language)}\u00a0%")
                yy -= 11
            lowest = min(lowest, yy)
        y = lowest - 10

    # Active trainees per day: one bar a day.
    pdf.setFont(bold, 10)
    pdf.drawString(left, y, said["per_day"])
    y -= 8
    chart = 70
    days = report.per_day
    if days:
        most = max(n for _, n in days) or 1
        step = (right - left) / len(days)
        pdf.setFillColorRGB(0.23, 0.43, 0.65)
        for i, (_, n) in enumerate(days):
            bar = chart * n / most
            pdf.rect(left + i * step, y - chart, max(step * 0.8, 0.5), bar, stroke=0, fill=1)
        pdf.setFillColorRGB(0, 0, 0)
        pdf.setFont(regular, 8)
        pdf.drawString(left, y - chart - 10, days[0][0].isoformat())
        pdf.drawRightString(right, y - chart - 10, days[-1][0].isoformat())
        pdf.drawCentredString((left + right) / 2, y - chart - 10, f"max {most}")
        y -= chart + 26
    else:
        pdf.setFont(regular, 9)
        y -= 12
        pdf.drawString(left, y, said["no_activity"])
        y -= 18

    # Time per workbook.
    pdf.setFont(bold, 10)
    pdf.drawString(left, y, _fit(pdf, said["per_workbook"], bold, 10, right - left))
    y -= 13
    heads = [said["trainees"], said["total_minutes"], said["mean_minutes"], said["median_minutes"]]
    pdf.setFont(regular, 8)
    pdf.drawString(left, y, said["workbook"])
    for i, head in enumerate(heads):
        pdf.drawRightString(left + 200 + i * 85, y, _fit(pdf, head, regular, 8, 82))
    y -= 11
    pdf.setFont(regular, 9)
    for row in report.per_workbook[:PDF_WORKBOOKS]:
        pdf.drawString(left, y, _fit(pdf, row["workbook"], regular, 9, 120))
        values = [row["trainees"], row["total minutes"], row["mean minutes"], row["median minutes"]]
        for i, value in enumerate(values):
            pdf.drawRightString(
                left + 200 + i * 85, y, "—" if value is None else _number(value, language)
            )
        y -= 11
    if len(report.per_workbook) > PDF_WORKBOOKS:
        pdf.drawString(left, y, f"… +{len(report.per_workbook) - PDF_WORKBOOKS}")
        y -= 11

    # The rules, in the facilitator's language, at the foot of the page.
    pdf.setFont(regular, 7)
    notes = [
        said["suppression"].format(min_group=report.min_group),
        said["time_rule"].format(cap=f"{report.gap_cap_minutes:g}"),
        said["consent_rule"],
    ]
    foot = 40
    for note in reversed(notes):
        for line in reversed(_wrap(pdf, note, regular, 7, right - left)):
            pdf.drawString(left, foot, line)
            foot += 9
    pdf.showPage()
    pdf.save()
    target = Path(path)
    atomic_write(target, buffer.getvalue(), 0o644)
    return target


def _wrap(pdf, text: str, font: str, size: float, width: float) -> list[str]:
    """``text`` in lines of at most ``width`` points."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and pdf.stringWidth(candidate, font, size) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return [*lines, line] if line else lines
