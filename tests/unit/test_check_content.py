"""The content rules of ``atelier check`` (authoring/check/content.py, prose.py): no kernel here."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
import pytest

from atelier import workbook as wb
from atelier.authoring.check import content, pipeline, prose
from atelier.authoring.check.options import CheckOptions

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "workbooks"
VALID = FIXTURES / "00-content-valid"
STATIC = CheckOptions(execute=False, voila=False)


def notebook_path(fixture: str) -> Path:
    (path,) = sorted((FIXTURES / fixture).glob("*.ipynb"))
    return path


def problems_of(report, *, ignore=("layout",)):
    """Every problem but a missing language version (the French-only fixtures have one)."""
    return [p for p in report.problems if p.code not in ignore]


@pytest.mark.parametrize(
    ("fixture", "code", "severity", "cells"),
    [
        ("00-content-code-graded", "code-graded", "error", {"apply-answer", "apply-test"}),
        ("00-content-ictcft-untested", "ictcft-untested", "error", set()),
        ("00-content-item-tag", "item-tag", "error", {"test-wv-data"}),
        ("00-content-apply-items", "apply-items", "error", set()),
        ("00-content-citation", "citation", "error", {"concept"}),
        ("00-content-reading-time", "reading-time", "error", set()),
        ("00-content-glossary", "glossary", "warning", {"check"}),
        ("00-content-fr-typography", "fr-typography", "warning", {"try-it"}),
    ],
)
def test_content_fixture_fails_its_own_rule_alone(fixture, code, severity, cells):
    """Does each content fixture fail exactly its rule, naming the file and the cell at fault?"""
    path = notebook_path(fixture)
    report = pipeline.check([FIXTURES / fixture], STATIC)
    found = problems_of(report)
    assert {(p.code, p.severity) for p in found} == {(code, severity)}, report.lines()
    assert {p.path for p in found} == {str(path)}
    nb = wb.read_notebook(path)
    for problem in found:
        if problem.cell is not None:
            cell_id = nb.cells[problem.cell - 1].id
            assert f"cell id '{cell_id}'" in problem.message, problem
    named = {nb.cells[p.cell - 1].id for p in found if p.cell is not None}
    assert named == cells, report.lines()


def test_content_valid_fixture_passes_every_rule():
    """Does the widget-graded, tagged, cited and timed fixture (EN and FR) pass, with no warning?"""
    report = pipeline.check([VALID], STATIC)
    assert not report.problems, report.lines()


def test_content_level_downgrades_or_skips_the_rules():
    """Does --content warn turn the rules' errors into warnings, and --content off skip them?"""
    folder = FIXTURES / "00-content-code-graded"
    warned = pipeline.check([folder], CheckOptions(execute=False, voila=False, content="warn"))
    assert not warned.errors
    assert {p.code for p in warned.warnings} == {"code-graded", "layout"}
    off = pipeline.check([folder], CheckOptions(execute=False, voila=False, content="off"))
    assert {p.code for p in off.problems} == {"layout"}


def test_the_command_line_and_the_settings_set_the_level(tmp_path):
    """Is --content read first, then workbooks.check_content, then its default "error"?"""
    from atelier.authoring.checkapp import CheckApp

    settings = tmp_path / "settings.yaml"
    settings.write_text("workbooks:\n  check_content: warn\n", "utf-8")
    app = CheckApp()
    app.parse_command_line([f"--settings={settings}"])
    assert app.options().content == "warn"
    app = CheckApp()
    app.parse_command_line([f"--settings={settings}", "--content=off"])
    assert app.options().content == "off"
    settings.write_text("workbooks:\n  check_content: loud\n", "utf-8")
    app = CheckApp()
    app.parse_command_line([f"--settings={settings}"])
    with pytest.raises(Exception, match="check_content"):
        app.options()
    app = CheckApp()
    app.parse_command_line([])
    assert app.options().content == "error"


def load(path: Path):
    return copy.deepcopy(wb.read_notebook(path))


def valid(lang="en"):
    path = VALID / f"content-valid.{lang}.ipynb"
    return load(path), path


def cell(nb, cell_id):
    return next(c for c in nb.cells if c.id == cell_id)


# ---------------------------------------------------------------------------------------- citations


def test_citation_forms_ranges_and_what_is_not_a_citation():
    """Are [1, 3] and [2-4] read as citations, and links, code spans and code blocks ignored?"""
    text = prose.prose_text(
        "See [1, 3] and [2-4]. A link [5](https://x.org/[6]), `code [7]`, "
        "![a chart](images/[8].png)\n\n"
        "```\nx = [9]\n```\n[10]: https://example.org"
    )
    found = [n for m in prose.CITATION.finditer(text) for n in prose.cited_numbers(m[1])]
    assert found == [1, 3, 2, 3, 4]


def test_an_uncited_source_and_a_list_that_disagrees_with_metadata_are_caught():
    """Is a listed source nobody cites named, and a list longer than metadata.sources caught?"""
    nb, path = valid()
    cell(nb, "concept").source = cell(nb, "concept").source.replace("[1, 2]", "[1]")
    cell(nb, "why").source = cell(nb, "why").source.replace("[1]", "")
    cell(nb, "sources").source += "\n3. A third source, cited nowhere."
    problems = prose.check_citations(nb, path)
    messages = sorted(p.message for p in problems)
    assert {p.code for p in problems} == {"citation"}
    assert {p.cell for p in problems} == {nb.cells.index(cell(nb, "sources")) + 1}
    assert any("source 3 of the Sources list is cited nowhere" in m for m in messages), messages
    assert any(
        "lists 3 numbered source(s) but metadata.atelier.sources has 2" in m for m in messages
    )
    assert not any("source 1 " in m or "source 2 " in m for m in messages), messages


def test_citations_inside_the_sources_cell_do_not_count():
    """Does a source cited only in the Sources cell itself count as uncited?"""
    nb, path = valid()
    for cell_id in ("why", "concept"):
        cell(nb, cell_id).source = cell(nb, cell_id).source.replace("[1, 2]", "").replace("[1]", "")
    cell(nb, "sources").source += " See also [1]."
    messages = [p.message for p in prose.check_citations(nb, path)]
    assert any("source 1 of the Sources list is cited nowhere" in m for m in messages), messages


def test_a_notebook_without_a_sources_cell_is_told_to_add_one():
    nb, path = valid()
    nb.cells.remove(cell(nb, "sources"))
    (problem,) = prose.check_citations(nb, path)
    assert problem.code == "citation" and "no '## Sources' cell" in problem.message


# ----------------------------------------------------------------------------------------- glossary


def test_glossary_copy_matches_docs_glossary():
    """Is core/glossary.json what docs/glossary.md's "Avoid in French" columns say today?

    If not: python -m atelier.authoring.check.prose docs/glossary.md > core/glossary.json
    """
    terms = prose.parse_glossary((REPO / "docs" / "glossary.md").read_text("utf-8"))
    shipped = json.loads((REPO / "core" / "glossary.json").read_text("utf-8"))["terms"]
    assert shipped == terms
    assert prose.glossary() == terms, "the installed copy is stale: reinstall the package"
    assert {"animateur", "webinar", "feedback"} <= {t["avoid"] for t in terms}


def test_glossary_parser_reads_only_the_avoid_column():
    text = (
        "| English | French | Avoid in French |\n|---|---|---|\n"
        "| facilitator | formateur | animateur, animatrice |\n| cohort | cohorte | |\n\n"
        "| English | French |\n|---|---|\n| level | niveau |\n"
    )
    assert [t["avoid"] for t in prose.parse_glossary(text)] == ["animateur", "animatrice"]


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("Votre ANIMATEUR vous répond.", True),
        ("Les animateurs vous répondent.", True),  # plural of the last word
        ("Un élève, des eleves.", True),  # accents ignored
        ("Le webinaire de mardi.", False),  # whole words: 'webinar' is not 'webinaire'
        ("Le `feedback` du code.", False),  # code spans are not prose
        ("Voir [le guide](https://example.org/feedback).", False),  # nor link targets
        ("Une bande  passante faible.", True),  # spaces inside a term: any run of spaces
    ],
)
def test_glossary_match_rules(text, flagged):
    nb, path = valid("fr")
    cell(nb, "check").source = text
    problems = [p for p in prose.check_glossary(nb, path) if p.cell == 6]
    assert bool(problems) is flagged, problems
    assert all(p.severity == "warning" and "cell id 'check'" in p.message for p in problems)


def test_glossary_skips_the_sources_cell_and_english_notebooks():
    nb, path = valid("fr")
    cell(nb, "sources").source += "\n\nThe webinar feedback."
    assert not prose.check_glossary(nb, path)
    nb, path = valid("en")
    cell(nb, "why").source += " The facilitator (animateur) gives feedback."
    assert not prose.check_glossary(nb, path)


# --------------------------------------------------------------------------------------- typography


@pytest.mark.parametrize(
    ("text", "faults"),
    [
        ("Attention\u00a0: voici\u202f; bien\u00a0? oui\u00a0!", 0),
        ("Attention : voici", 1),
        ("Attention: voici ; bien? oui !", 4),
        ("La séance commence à 10:30, ratio 1:3.", 0),
        ("| a | b |\n|:---|---:|\n| 1 | 2 |", 0),
        ("Voir https://example.org/a?b=c:d et [texte](https://x.org/?q=1).", 0),
        ("Le code `x = a ? b : c` et\n```\nif x: pass\n```", 0),
        ("Quoi\u00a0?! Vraiment\u00a0!!", 0),
        ("Un espace&nbsp;: en entité.", 0),
        ("**Temps** : 10 minutes.", 1),
    ],
)
def test_typography_faults(text, faults):
    assert len(prose.typography_faults(prose.prose_text(text))) == faults


def test_typography_skips_english_notebooks_and_the_sources_cell():
    nb, path = valid("en")
    assert not prose.check_fr_typography(nb, path)  # "Time: ..." in English is right
    nb, path = valid("fr")
    cell(nb, "sources").source += "\n3. *Handbook: a guide*."
    assert not prose.check_fr_typography(nb, path)


def test_french_rules_wait_for_a_cell_to_be_translated():
    """Is a cell ``atelier translate`` copied in English left to the "not translated" warning?"""
    nb, path = valid("fr")
    english = "Question: what will the facilitator say?"
    cell(nb, "why").source = english
    assert {p.code for p in prose.check_fr_typography(nb, path)} == {"fr-typography"}
    cell(nb, "why").source = "<!-- TRANSLATE: from en -->\n" + english
    assert not prose.check_fr_typography(nb, path)
    assert not prose.check_glossary(nb, path)


# ----------------------------------------------------------------------------- items and minutes


def test_a_graded_cell_without_a_tag_and_a_tag_on_an_ungraded_cell_are_caught():
    nb, path = valid()
    del cell(nb, "test-wv-plan").metadata["atelier"]
    tag = {"ictcft": [{"aspect": 6, "level": "Knowledge Acquisition"}], "cognitive": "apply"}
    cell(nb, "wv-data").metadata.atelier["item"] = tag
    problems = content.check_items(nb, path)
    by_cell = {nb.cells[p.cell - 1].id: p for p in problems if p.cell}
    assert by_cell["test-wv-plan"].message.endswith("graded cell has no atelier.item tag")
    assert "earns no points" in by_cell["wv-data"].message
    assert {p.code for p in by_cell.values()} == {"item-tag"}


def test_a_malformed_item_is_reported_against_the_cell_schema():
    nb, path = valid()
    cell(nb, "test-wv-plan").metadata.atelier["item"]["cognitive"] = "apply-ish"
    cell(nb, "wv-data").metadata.atelier["minutes"] = "8 min"
    problems = content.check_items(nb, path)
    codes = {(nb.cells[p.cell - 1].id, p.code) for p in problems if p.cell}
    assert ("test-wv-plan", "item-tag") in codes and ("wv-data", "reading-time") in codes


def test_reading_minutes_count_markdown_words_without_code_or_addresses():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("## Why it matters\n\nThree more words `not these` here."),
        nbformat.v4.new_markdown_cell("See https://example.org/a/b and [the page](https://x.org)."),
        nbformat.v4.new_code_cell("# words in code do not count"),
    ]
    # "Why it matters Three more words here", then "See and the page".
    assert content.reading_words(nb) == 7 + 4


def test_exercise_minutes_claims_are_checked_both_ways():
    nb, path = valid()
    assert not content.check_reading_time(nb, path)
    nb.metadata.atelier["minutes"]["exercises"] = 20  # the cells declare 35
    (problem,) = content.check_reading_time(nb, path)
    assert problem.code == "reading-time"
    assert "exercises is 20, but the exercise cells declare 35 minutes" in problem.message
    for c in nb.cells:
        c.metadata.get("atelier", {}).pop("minutes", None)
    (problem,) = content.check_reading_time(nb, path)
    assert "no cell declares its exercise minutes" in problem.message


def test_an_inflated_teaching_claim_says_make_it_deeper():
    (problem,) = pipeline.check([FIXTURES / "00-content-reading-time"], STATIC).errors
    assert "teaching is 30, but the prose reads in about 9 minutes" in problem.message
    assert "make it deeper" in problem.fix and "not a larger number" in problem.fix


def test_language_versions_carry_the_same_tags(tmp_path):
    """Is a French version whose item or minutes differ from the English one's caught?"""
    import shutil

    folder = tmp_path / VALID.name
    shutil.copytree(VALID, folder)
    path = folder / "content-valid.fr.ipynb"
    nb = wb.read_notebook(path)
    cell(nb, "test-wv-plan").metadata.atelier["item"]["cognitive"] = "understand"
    cell(nb, "wv-plan").metadata.atelier["minutes"] = 3
    nbformat.write(nb, path)
    report = pipeline.check([folder], STATIC)
    found = {(nb.cells[p.cell - 1].id, p.code) for p in report.problems}
    assert found == {("test-wv-plan", "item-tag"), ("wv-plan", "reading-time")}, report.lines()
    (problem,) = [p for p in report.problems if p.code == "reading-time"]
    assert "atelier.minutes is 3 but 8 in content-valid.en.ipynb cell 9" in problem.message
