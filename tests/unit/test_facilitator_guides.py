"""Every workbook comes with a facilitator guide in each of its languages, in one house style.

Issue 18 §6: a facilitator adopting a workbook gets, in the repository, a session plan with
timings for a live webinar and for self-study, the misconception behind each distractor of the
graded items, an exemplar reflection at each rubric level and what to watch on the dashboard.
The guides live in ``docs/facilitator/<nn>-<id>.<lang>.md`` (docs/facilitator/README.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
WORKBOOKS = REPO / "workbooks"
GUIDES = REPO / "docs" / "facilitator"

#: The headings of a guide, in order (level, text; a ``{}`` stands for what varies).
HEADINGS = {
    "en": [
        (1, "Facilitator guide: {}"),
        (2, "Session plan"),
        (3, "Live webinar ({} minutes)"),
        (3, "Self-study"),
        (2, "Graded items: the misconception behind each distractor"),
        (2, "Exemplar reflections"),
        (3, "Full marks"),
        (3, "Partial marks"),
        (3, "Few marks"),
        (2, "What to watch on the dashboard"),
    ],
    "fr": [
        (1, "Guide du formateur : {}"),
        (2, "Plan de séance"),
        (3, "Webinaire en direct ({} minutes)"),
        (3, "Autoformation"),
        (2, "Items notés : l'idée fausse derrière chaque distracteur"),
        (2, "Réflexions exemplaires"),
        (3, "Note maximale"),
        (3, "Note partielle"),
        (3, "Note faible"),
        (2, "Ce qu'il faut suivre sur le tableau de bord"),
    ],
}


def sections(text: str) -> list[tuple[int, str, str]]:
    """The guide's headings (level, text) with the body under each, up to the next heading."""
    found: list[tuple[int, str, list[str]]] = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"(#{1,6}) (.+?)\s*$", line)
        if match:
            found.append((len(match.group(1)), match.group(2), []))
        elif found:
            found[-1][2].append(line)
    return [(level, heading, "\n".join(body).strip()) for level, heading, body in found]


def guide_problems(text: str, language: str, title: str) -> list[str]:
    """What a guide lacks against the house style, one line each (empty when it follows it)."""
    problems = []
    # French typography puts a non-breaking space before a colon: a heading matches either way.
    text = text.replace("\u00a0", " ").replace("\u202f", " ")
    title = title.replace("\u00a0", " ").replace("\u202f", " ")
    found = sections(text)
    headings = [(level, heading) for level, heading, _ in found]
    expected = HEADINGS[language]
    position = 0
    for level, pattern in expected:
        regex = re.escape(pattern).replace(r"\{\}", "(.+)")
        for index in range(position, len(headings)):
            if headings[index][0] == level and re.fullmatch(regex, headings[index][1]):
                position = index + 1
                break
        else:
            problems.append(f"no heading {'#' * level} {pattern} (in this order)")
    if headings and headings[0][1] != expected[0][1].format(title):
        problems.append(
            f"the title is {headings[0][1]!r}, expected {expected[0][1].format(title)!r}"
        )
    for index, (level, heading, body) in enumerate(found):
        has_subsections = index + 1 < len(found) and found[index + 1][0] > level
        if level >= 2 and not body and not has_subsections:
            problems.append(f"the section {heading!r} is empty")
    live_heading = expected[2][1].split("{}")[0]
    live = [
        body for level, heading, body in found if level == 3 and heading.startswith(live_heading)
    ]
    if live and not any(line.lstrip().startswith("|") for line in live[0].splitlines()):
        problems.append("the live webinar plan has no table of timed segments")
    return problems


def _workbook_versions() -> list[tuple[Path, str, str]]:
    versions = []
    for folder in sorted(path for path in WORKBOOKS.iterdir() if path.is_dir()):
        for notebook in sorted(folder.glob("*.ipynb")):
            language = notebook.stem.rpartition(".")[2]
            title = nbformat.read(notebook, as_version=4).metadata["atelier"]["title"]
            versions.append((folder, language, title))
    return versions


VERSIONS = _workbook_versions()


@pytest.mark.parametrize(
    ("folder", "language", "title"), VERSIONS, ids=[f"{f.name}.{lang}" for f, lang, _ in VERSIONS]
)
def test_every_workbook_version_has_its_facilitator_guide(folder, language, title):
    """Does each workbook, in each of its languages, have a guide in the house style?"""
    guide = GUIDES / f"{folder.name}.{language}.md"
    assert guide.is_file(), f"{folder.name} ({language}) has no facilitator guide {guide}"
    assert guide_problems(guide.read_text("utf-8"), language, title) == []


def test_a_guide_out_of_style_is_reported():
    """Are a missing section, a wrong title and a plan without timings caught?"""
    text = "\n".join([
        "# Facilitator guide: Another title",
        "## Session plan",
        "### Live webinar (60 minutes)",
        "Talk for a while, then questions.",
        "### Self-study",
        "Work alone.",
        "## Exemplar reflections",
        "### Full marks",
        "A text.",
        "### Partial marks",
        "A text.",
        "### Few marks",
        "",
        "## What to watch on the dashboard",
        "The completion.",
    ])  # fmt: skip

    problems = guide_problems(text, "en", "Planning")

    assert (
        "no heading ## Graded items: the misconception behind each distractor (in this order)"
        in problems
    )
    assert (
        "the title is 'Facilitator guide: Another title', expected 'Facilitator guide: Planning'"
        in problems
    )
    assert "the section 'Few marks' is empty" in problems
    assert "the live webinar plan has no table of timed segments" in problems


def test_every_guide_belongs_to_a_workbook():
    """Is there no guide left for a workbook that was renamed or removed?"""
    known = {f"{folder.name}.{language}.md" for folder, language, _ in VERSIONS}
    stray = sorted(
        path.name
        for path in GUIDES.glob("*.md")
        if path.name != "README.md" and path.name not in known
    )
    assert stray == []
