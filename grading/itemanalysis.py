"""Item analysis: which graded items of a workbook work, learned from the cohort's attempts.

Rule: every graded attempt leaves one line in its course's ``log/item-attempts.jsonl``, written by
the grading process right after it wrote the gradebook (:func:`attempt_record`, called by the
autograde converter): the trainee, the assignment, the submission's receipt time, and for each
autograded item its score, its maximum, the widget it grades, the answer given and, for an item
drawn per trainee, the parameters of the trainee's variant (:func:`graded_variants`). nbgrader's
gradebook keeps only a trainee's latest submission; this log keeps every attempt, so the report
can count each trainee's *first* attempt (the default: later attempts follow diagnostics and say
less about the item) or their last one.

The statistics are those of Moodle's quiz statistics report (its ``question/classes/statistics``
calculator), over the trainees' chosen attempts of one workbook, all language versions and all
variants of an item pooled (they share grade ids):

- facility index: mean score on the item / its maximum, in percent;
- standard deviation of the item's scores (n - 1), in percent of its maximum;
- discrimination index: 100 x the correlation of the item's score with the rest of the
  attempt's autograded score (the total without this item);
- discriminative efficiency: 100 x that covariance / the largest covariance the same two sets of
  scores could have (both sorted, paired in order);
- for choice items, how many chose each option.

Flags, only with at least :data:`MIN_TRAINEES` trainees: an item that does not discriminate
(index under :data:`DISCRIMINATION_MIN`), one that almost nobody or almost everybody gets right
(facility under 10% or over 90%), a choice item where a wrong option draws more of the
strongest third of trainees (by their rest score) than the right one (the key may be wrong), and
an item whose facility in two languages differs by :data:`LANGUAGE_GAP` points or more (with at
least :data:`MIN_TRAINEES` trainees in each).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from atelier.csvcells import writer as csv_writer

ATTEMPTS_LOG = "item-attempts.jsonl"
#: No flag is raised on fewer trainees than this: the statistics move too much.
MIN_TRAINEES = 10
#: Discrimination index (percent) under which an item is flagged as not discriminating.
DISCRIMINATION_MIN = 20.0
#: Facility (percent) outside [FACILITY_LOW, FACILITY_HIGH] is "almost nobody/everybody".
FACILITY_LOW, FACILITY_HIGH = 10.0, 90.0
#: Facility points between two language versions from which they are flagged as different.
LANGUAGE_GAP = 20.0
#: The first string argument of a grading helper names the widget the test grades.
_GRADED_WIDGET = re.compile(r"\b(?:check|score)_[a-z_]+\(\s*['\"]([^'\"]{1,100})['\"]")
#: Answers longer than this (typed texts) are not kept: only choices are counted.
_MAX_ANSWER = 200


# -- recording attempts ------------------------------------------------------------------------
def graded_widgets(notebook: dict) -> dict[str, str]:
    """grade_id -> the widget id an autograded test cell grades (from its grading call)."""
    found = {}
    for cell in notebook.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("grade") and meta.get("grade_id"):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            match = _GRADED_WIDGET.search(source)
            if match:
                found[meta["grade_id"]] = match.group(1)
    return found


def graded_variants(notebook: dict, seed: str) -> dict[str, dict]:
    """Widget id -> the parameters the grader drew for ``seed`` (items declaring variants).

    Read from the autograded test cells (nbgrader put back their source: the trainee cannot
    change a declaration there) and drawn with the seed the grader computed, never from what the
    trainee's notebook displayed. The statistics pool every variant of an item (one grade id).
    """
    from atelier.variants import VariantError, draw
    from atelier.widgets.items import graded_variants as declared_in

    found = {}
    for cell in notebook.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or not meta.get("grade"):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        for widget, declaration in declared_in(source).items():
            if isinstance(declaration, dict):
                try:
                    found[widget] = draw(widget, declaration, seed)
                except VariantError:
                    continue
    return found


def _answer(value):
    """A saved answer as the log keeps it: a choice (text or list of texts), else None."""
    if isinstance(value, str) and len(value) <= _MAX_ANSWER:
        return value
    if isinstance(value, list) and all(isinstance(v, str) and len(v) <= _MAX_ANSWER for v in value):
        return value[:50]
    return None


def read_json_nofollow(path: Path, limit: int = 2_000_000) -> dict | None:
    """A JSON file read without following a link, or None (absent, too large, not JSON)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        return None
    try:
        document = json.loads(data)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def attempt_record(
    gb, autograded: Path, student: str, assignment: str, seed: str = ""
) -> dict | None:
    """The log line of one graded attempt: its autograded items' scores and the answers given.

    ``gb`` is the course's open gradebook, ``autograded`` the attempt's autograded folder (its
    notebooks name the widget each test grades; its ``.atelier-answers.json`` is the trainee's),
    ``seed`` the trainee's variant seed the grader used ("" for the default variant).
    """
    submission = gb.find_submission(assignment, student)
    answers_file = read_json_nofollow(autograded / ".atelier-answers.json") or {}
    saved = answers_file.get("answers", {})
    saved = saved if isinstance(saved, dict) else {}
    items = {}
    for notebook in submission.notebooks:
        document = read_json_nofollow(autograded / f"{notebook.name}.ipynb") or {}
        widgets = graded_widgets(document)
        variants = graded_variants(document, seed)
        for grade in notebook.grades:
            if grade.auto_score is None:
                continue  # graded by hand: not an item of the statistics
            widget = widgets.get(grade.name)
            entry = saved.get(widget) if widget else None
            value = entry.get("value") if isinstance(entry, dict) else None
            items[grade.name] = {
                "score": float(grade.score),
                "max": float(grade.max_score),
                "widget": widget,
                "answer": _answer(value),
            }
            if widget in variants:
                items[grade.name]["variant"] = variants[widget]
    if not items:
        return None
    when = submission.timestamp
    return {
        "student": student,
        "assignment": assignment,
        "received": when.isoformat() if when else "",
        "items": items,
    }


def read_attempts(course_root: Path) -> list[dict]:
    """Every well-formed line of a course's attempts log, in order (cut or forged lines skipped).

    The log's folder is the grader account's: root reads it through descriptors opened without
    following links (:mod:`atelier.grading.safefs`), so a link put there is refused, not read.
    """
    from atelier.grading import safefs

    log = course_root / "log" / ATTEMPTS_LOG
    try:
        with safefs.opened_dir(course_root, ["log"]) as folder:
            text = safefs.read_at(folder, ATTEMPTS_LOG, log).decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
            assert isinstance(record["student"], str) and isinstance(record["assignment"], str)
            assert isinstance(record["items"], dict) and isinstance(record["received"], str)
            for item in record["items"].values():
                float(item["score"]), float(item["max"])
        except (ValueError, KeyError, TypeError, AssertionError, AttributeError):
            continue
        records.append(record)
    return records


def choose_attempts(records: list[dict], workbook: str, which: str = "first") -> list[dict]:
    """One attempt per trainee of ``workbook`` (any language): their first or last received.

    An attempt graded again (same trainee, assignment and receipt time) counts once, with its
    latest scores.
    """
    if which not in ("first", "last"):
        raise ValueError(f"attempt {which!r}: choose first or last")
    latest: dict[tuple[str, str, str], dict] = {}
    for record in records:
        wb, _, _lang = record["assignment"].rpartition("-")
        if wb == workbook:
            latest[(record["student"], record["assignment"], record["received"])] = record
    chosen: dict[str, dict] = {}
    for record in sorted(latest.values(), key=lambda r: r["received"]):
        student = record["student"]
        if which == "last" or student not in chosen:
            chosen[student] = record
    return [chosen[s] for s in sorted(chosen)]


# -- statistics --------------------------------------------------------------------------------
def _covariance(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / (n - 1)


def item_statistics(scores: list[float], rest: list[float], maximum: float) -> dict:
    """Moodle's statistics of one item: its scores and, per trainee, the rest of their score.

    Returns ``facility`` and ``sd`` in percent of ``maximum``, ``discrimination`` and
    ``efficiency`` in percent; a value that cannot be computed (one trainee, no spread) is None.
    """
    n = len(scores)
    result = {"n": n, "facility": None, "sd": None, "discrimination": None, "efficiency": None}
    if n == 0 or maximum <= 0:
        return result
    mean = sum(scores) / n
    result["facility"] = 100 * mean / maximum
    variance = _covariance(scores, scores)
    if variance is None:
        return result
    result["sd"] = 100 * math.sqrt(variance) / maximum
    rest_variance = _covariance(rest, rest)
    covariance = _covariance(scores, rest)
    if variance * rest_variance > 0:
        result["discrimination"] = 100 * covariance / math.sqrt(variance * rest_variance)
    largest = _covariance(sorted(scores), sorted(rest))
    if largest:
        result["efficiency"] = 100 * covariance / largest
    return result


def _option(answer) -> str | None:
    if isinstance(answer, str):
        return answer
    if isinstance(answer, list):
        return "+".join(answer)
    return None


@dataclass
class ItemReport:
    """The statistics of one graded item over the chosen attempts."""

    item: str
    maximum: float
    n: int
    facility: float | None
    sd: float | None
    discrimination: float | None
    efficiency: float | None
    options: dict[str, int] = field(default_factory=dict)
    by_language: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


def analyse(attempts: list[dict]) -> list[ItemReport]:
    """One :class:`ItemReport` per autograded item of the attempts, in the order first seen."""
    totals = [sum(float(i["score"]) for i in a["items"].values()) for a in attempts]
    names: list[str] = []
    for attempt in attempts:
        names += [name for name in attempt["items"] if name not in names]
    reports = []
    for name in names:
        rows = [
            (attempt, total, attempt["items"][name])
            for attempt, total in zip(attempts, totals, strict=True)
            if name in attempt["items"]
        ]
        maximum = max(float(item["max"]) for _, _, item in rows)
        scores = [float(item["score"]) for _, _, item in rows]
        rest = [total - float(item["score"]) for _, total, item in rows]
        stats = item_statistics(scores, rest, maximum)
        options = Counter(
            option for _, _, item in rows if (option := _option(item.get("answer"))) is not None
        )
        languages: dict[str, list[float]] = {}
        for attempt, _, item in rows:
            language = attempt["assignment"].rpartition("-")[2]
            languages.setdefault(language, []).append(float(item["score"]))
        by_language = {
            language: (len(values), 100 * sum(values) / len(values) / maximum if maximum else None)
            for language, values in sorted(languages.items())
        }
        report = ItemReport(
            name, maximum, stats["n"], stats["facility"], stats["sd"],
            stats["discrimination"], stats["efficiency"], dict(sorted(options.items())),
            by_language,
        )  # fmt: skip
        report.flags = flags(report, rows)
        reports.append(report)
    return reports


def flags(report: ItemReport, rows: list[tuple[dict, float, dict]]) -> list[str]:
    """What a facilitator should look at in this item (nothing under MIN_TRAINEES trainees)."""
    if report.n < MIN_TRAINEES:
        return []
    found = []
    if report.facility is not None and report.facility < FACILITY_LOW:
        found.append("almost nobody right")
    if report.facility is not None and report.facility > FACILITY_HIGH:
        found.append("almost everybody right")
    if report.discrimination is not None and report.discrimination < DISCRIMINATION_MIN:
        found.append("does not discriminate")
    if _key_may_be_wrong(report, rows):
        found.append("key may be wrong")
    measured = [(lang, f) for lang, (n, f) in report.by_language.items() if n >= MIN_TRAINEES]
    for index, (first, one) in enumerate(measured):
        for second, other in measured[index + 1 :]:
            if one is not None and other is not None and abs(one - other) >= LANGUAGE_GAP:
                found.append(f"{first} and {second} differ")
    return found


def _key_may_be_wrong(report: ItemReport, rows: list[tuple[dict, float, dict]]) -> bool:
    """Does a wrong option draw more of the strongest third (by rest score) than the key?"""
    answered = [
        (total - float(item["score"]), _option(item.get("answer")), float(item["score"]))
        for _, total, item in rows
        if _option(item.get("answer")) is not None
    ]
    if not answered:
        return False
    strongest = sorted(answered, key=lambda row: row[0], reverse=True)[: max(1, len(answered) // 3)]
    right = Counter(option for _, option, score in strongest if score >= report.maximum)
    wrong = Counter(option for _, option, score in strongest if score < report.maximum)
    key = max(right.values(), default=0)
    return any(count > key for count in wrong.values())


# -- the report --------------------------------------------------------------------------------
COLUMNS = [
    "workbook", "item", "trainees", "max_points", "facility_index", "standard_deviation",
    "discrimination_index", "discriminative_efficiency", "languages", "options", "flags",
]  # fmt: skip


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def report_csv(workbook: str, reports: list[ItemReport]) -> str:
    """The report as CSV: one row per item, formulas neutralised (:mod:`atelier.csvcells`)."""
    out = io.StringIO()
    rows = csv_writer(out)
    rows.writerow(COLUMNS)
    for r in reports:
        languages = "; ".join(
            f"{lang}: {n} trainees, facility {_number(f)}" for lang, (n, f) in r.by_language.items()
        )
        options = "; ".join(f"{option}: {count}" for option, count in r.options.items())
        rows.writerow([
            workbook, r.item, r.n, f"{r.maximum:g}", _number(r.facility), _number(r.sd),
            _number(r.discrimination), _number(r.efficiency), languages, options,
            "; ".join(r.flags),
        ])  # fmt: skip
    return out.getvalue()
