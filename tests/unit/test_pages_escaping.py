"""What people write stays text: escaped on every page Atelier renders, inert in every CSV.

Issue 15, items 6 and 7: a roster column header ran script on the dashboard; names starting with
``=`` were formulas in the grade exports. Hostile values go into every field people write (names,
roster columns and their headers, cohorts, workbook titles and summaries, image texts).
"""

from __future__ import annotations

import csv
import html
import io
import shutil
from html.parser import HTMLParser

import nbformat
import pytest
from harness import FIXTURES

from atelier import csvcells, pages
from atelier.grading.courses.people import Trainee
from atelier.grading.dashboard import dashboard
from atelier.grading.export import Row, WorkbookGrade, full_csv, moodle_csv

pytestmark = pytest.mark.unit

#: Values a hostile person types where a name, a header or a title goes.
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "'><svg onload=alert(3)>",
    "{{7*7}}",
    "</table><iframe src=javascript:alert(4)>",
    "Zoë Ngọc 😀 عربى",
]
#: Cells a spreadsheet would run: each trigger OWASP lists, and the same after white space.
FORMULAS = [
    '=HYPERLINK("http://x","y")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "\n=1+1",
]


class Parsed(HTMLParser):
    """Tags, attributes and text of a page, as a browser reads them."""

    def __init__(self, page: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def assert_inert(page: str, *, allowed=("a", "p", "table", "thead", "tbody", "tr", "th", "td")):
    """No tag or attribute came from a value: no script, no handler, no javascript: link."""
    parsed = Parsed(page)
    for tag, attrs in parsed.tags:
        assert tag not in ("script", "img", "iframe", "object", "embed"), (tag, attrs)
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        for name in ("href", "src", "action", "formaction"):
            assert "javascript:" not in (attrs.get(name) or "").lower(), (tag, attrs)
    return "".join(parsed.text)


# --- CSV --------------------------------------------------------------------------------------


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_formula_becomes_text(formula):
    """Is each trigger (=, +, -, @, tab, CR, and after white space) written behind a quote?"""
    assert csvcells.neutralise(formula) == "'" + formula


@pytest.mark.parametrize("number", ["-1", "+2.5", "-3e2", " -4 ", "0", "-.5"])
def test_a_number_stays_a_number(number):
    """Do signed numbers (a score of -1, say) stay numbers the spreadsheet can add up?"""
    assert csvcells.neutralise(number) == number
    assert csvcells.neutralise(-1) == -1 and csvcells.neutralise(2.5) == 2.5


@pytest.mark.parametrize("value", ["Amina", "Ngọc", "", "a=b", "1-2-3 rue", "mail@x.org"])
def test_ordinary_text_is_unchanged(value):
    """Is a name that is not a formula written as it is (no quote added)?"""
    assert csvcells.neutralise(value) == value


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def assert_no_formula(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            stripped = cell.lstrip()
            if cell[:1] in ("\t", "\r") or stripped[:1] in ("=", "+", "-", "@"):
                assert csvcells._NUMBER.fullmatch(cell.strip()), cell


@pytest.mark.parametrize("formula", FORMULAS)
def test_grade_exports_neutralise_every_trigger(formula):
    """Does a formula in a name, username or email stay text in the export and the Moodle CSV?"""
    trainee = Trainee(formula, "at-x", "en", formula, formula)
    rows = [Row(trainee, {formula: WorkbookGrade(5.0, 6.0, "graded", 0.0)})]
    for text in (full_csv([formula], rows), moodle_csv([formula], rows)):
        table = read_csv(text)
        assert_no_formula(table)
        assert "'" + formula.replace("\r", "\n") in table[1]
        assert len(table) == 2  # a CR in a name starts no row
    assert read_csv(moodle_csv([formula], rows))[1][1] == "5"


def hostile_progress(value: str, cohort: str = "c1") -> dashboard.CohortProgress:
    """A cohort whose names, roster columns, headers and workbook ids are all ``value``."""
    graded = dashboard.WorkbookProgress(True, True, True, 4.0, 5.0)
    trainees = [
        dashboard.TraineeProgress(
            value,
            value,
            {"institution": value, "country": value, "language": "en", value: value},
            {value: graded, "beta": dashboard.WorkbookProgress()},
        ),
        dashboard.TraineeProgress(
            "ok", "Plain Name", {"institution": "U", "country": "K", "language": "fr", value: "-1"},
            {value: dashboard.WorkbookProgress(), "beta": dashboard.WorkbookProgress(True)},
        ),
    ]  # fmt: skip
    columns = [*dashboard.BASE_COLUMNS, value]
    return dashboard.CohortProgress(cohort, [value, "beta"], columns, trainees)


@pytest.mark.parametrize("formula", FORMULAS)
def test_dashboard_csv_neutralises_every_trigger(formula):
    """Does the dashboard's CSV keep formulas in names, roster columns and headers as text?"""
    table = read_csv(dashboard.progress_csv(hostile_progress(formula)))
    assert_no_formula(table)
    cell = "'" + formula.replace("\r", "\n")
    assert cell in table[0] and cell in table[1] and len(table) == 3
    # A roster value that is a plain negative number stays a number.
    assert "-1" in table[2]


# --- pages ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_dashboard_page_shows_what_people_wrote_as_text(value):
    """Do a hostile header, name, column value, workbook id and cohort stay text on the page?"""
    progress = hostile_progress(value, cohort=value)
    page = dashboard.page(progress, value)
    text = assert_inert(page, allowed=())
    assert f"By {value}" in text
    assert f"Cohort {value}: 2 trainees" in text
    assert text.count(value) >= 4
    assert "49" not in text
    anchors = [attrs for tag, attrs in Parsed(page).tags if tag == "a"]
    assert anchors[-1]["download"] == f"{value}-progress.csv"
    assert anchors[-1]["href"].startswith("data:text/csv;base64,")


def test_dashboard_message_is_escaped():
    """Is an error message naming a hostile cohort shown as text?"""
    assert_inert(dashboard.message(HOSTILE[1]))
    assert html.unescape(dashboard.message(HOSTILE[1])).count(HOSTILE[1]) == 1


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", " JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "data:text/html,x",
     "vbscript:msgbox", "\x01javascript:alert(1)"],
)  # fmt: skip
def test_links_with_script_schemes_go_nowhere(url):
    """Does the templates' url filter turn javascript:, data: and vbscript: links into '#'?"""
    assert pages.safe_url(url) == "#"


@pytest.mark.parametrize(
    "url",
    ["index.html", "../a/b.html", "/voila/render/x.ipynb", "https://example.org/", "mailto:a@b"],
)
def test_ordinary_links_are_kept(url):
    """Are relative, http(s) and mailto links kept as they are?"""
    assert pages.safe_url(url) == url


def test_templates_escape_and_refuse_unknown_names():
    """Does every room's environment escape values, and fail on a misspelt variable?"""
    env = pages.environment("atelier.grading.dashboard")
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ y }}").render()


def test_library_pages_keep_hostile_titles_summaries_and_image_texts_as_text(tmp_path):
    """Do a workbook's title, summary and an image's alt text stay text in the library pages?"""
    from atelier.public.library import build_library

    source = tmp_path / "workbooks"
    shutil.copytree(FIXTURES / "library", source)
    title, summary, alt = HOSTILE[0] + " {{7*7}}", HOSTILE[1], 'it\'s a" onerror="alert(5)'
    for path in (source / "01-sample").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        nb.metadata["atelier"]["title"] = title
        nb.metadata["atelier"]["summary"] = summary
        nb.cells.append(nbformat.v4.new_markdown_cell(f"![{alt}](https://example.org/a.png)\n"))
        nbformat.write(nb, path)
    out = tmp_path / "library"
    build_library(source, out)
    index = (out / "index.html").read_text("utf-8")
    text = assert_inert(index)
    assert title in text and summary in text
    for page in (out / "01-sample").glob("*.html"):
        content = page.read_text("utf-8")
        text = assert_inert(content.split("<main>")[0] + content.split("</main>")[1])
        assert title in text
        body = Parsed(content)
        assert not [t for t, _ in body.tags if t == "script"]
        assert not [a for _, a in body.tags if any(name.startswith("on") for name in a)]
        # The workbook's own image stays; the remote one (with the hostile alt) became a link.
        assert [a["src"] for t, a in body.tags if t == "img"] == ["images/dot.svg"]
        assert f"[{alt}]" in "".join(body.text)


def test_staged_apps_start_with_the_traceback_guard(tmp_path):
    """Does every staged app start by hiding tracebacks, in its language (English if unknown)?"""
    from atelier.public.apps import stage_apps

    staged = stage_apps(FIXTURES / "apps", tmp_path / "apps")
    languages = {}
    for rel in staged:
        nb = nbformat.read(tmp_path / "apps" / rel, as_version=4)
        assert "hide_tracebacks(" in nb.cells[0].source
        languages[rel.name] = nb.cells[0].source.split("hide_tracebacks(")[1]
    assert languages["planner.fr.ipynb"] == "'fr')"
    assert languages["planner.en.ipynb"] == "'en')"


class FakeShell:
    """The one method of an IPython kernel's shell that sends tracebacks to the browser."""

    def __init__(self):
        self.sent = []

    def _showtraceback(self, etype, evalue, stb):
        self.sent.append((etype.__name__, str(evalue), stb))


def test_app_kernels_send_a_sentence_and_log_the_traceback(monkeypatch):
    """Does an app's kernel send its language's sentence, log the trace, and cap the log's size?"""
    import sys

    from atelier.public import appskernel

    log = io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", log)
    monkeypatch.setattr(sys, "stderr", sys.stderr)  # restored after the test
    monkeypatch.setattr(appskernel, "_logged", [])
    shell = FakeShell()
    appskernel.hide_tracebacks("fr", shell=shell)
    appskernel.hide_tracebacks("fr", shell=shell)  # a second call changes nothing
    for _ in range(appskernel.LOG_PER_MINUTE + 5):
        try:
            int("/opt/secret/path")
        except ValueError as error:
            shell._showtraceback(type(error), error, ["ANSI traceback"])
    assert {entry[0] for entry in shell.sent} == {"Error"}
    assert {entry[1] for entry in shell.sent} == {appskernel.MESSAGES["fr"]}
    assert all(entry[2] == [appskernel.MESSAGES["fr"]] for entry in shell.sent)
    text = log.getvalue()
    assert text.count("Traceback (most recent call last)") == appskernel.LOG_PER_MINUTE
    assert text.count("invalid literal for int()") == appskernel.LOG_PER_MINUTE + 5
    assert appskernel.message("xx") == appskernel.MESSAGES["en"]


def test_formgrader_notice_keeps_the_cohort_as_text():
    """Does the notice of a formgrader that could not start show a hostile cohort id as text?"""
    from atelier import pages

    page = pages.render("atelier.grading.formgrader", "notice.html.j2", cohort=HOSTILE[0])
    assert HOSTILE[0] not in page
    assert "The formgrader of cohort &lt;" in page


@pytest.mark.parametrize("value", HOSTILE)
def test_home_page_shows_workbook_titles_and_notices_as_text(value):
    """Does the trainee's home page keep a hostile workbook title (and a notice) as text?"""
    from datetime import UTC, datetime

    from atelier.hub_config.view.home import home_page
    from atelier.hub_config.view.progress import Workbook

    workbooks = [
        Workbook(course="x", assignment="a-en", title=value, notebook="a.en.ipynb"),
        Workbook(
            course="x",
            assignment="b-en",
            title=value,
            notebook="b.en.ipynb",
            items=3,
            answered=1,
            fetched=True,
            submitted=datetime(2026, 12, 1, tzinfo=UTC),
        ),
    ]
    for language in ("en", "fr"):
        page = home_page("/user/alice/", language, workbooks, notice=value)
        text = assert_inert(page, allowed=())
        assert text.count(value) >= 3  # two titles and the notice, as written
