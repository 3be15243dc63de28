"""The workbook view's pure parts: language, addresses, the extension's routes, the error page."""

from __future__ import annotations

import re

import pytest
from tornado import web

from atelier import pages
from atelier.hub_config.view import extension, workbook


@pytest.mark.parametrize(
    ("value", "expected"),
    [("fr", "fr"), ("fr_FR", "fr"), ("FR-ca", "fr"), ("en", "en"), ("de", "en"), ("", "en")],
)
def test_the_page_speaks_the_trainee_s_language(value, expected):
    """Does the view take ATELIER_LANGUAGE, and English for a language Atelier does not speak?"""
    assert workbook.language({"ATELIER_LANGUAGE": value}) == expected
    assert workbook.language({}) == "en"


def test_every_word_of_the_page_is_in_both_languages():
    """Are the save states, the Lab link and the loading text there in English and French?"""
    english, french = workbook.page_words("en"), workbook.page_words("fr")
    states = ("ready", "saving", "saved", "failed", "offline", "stale", "culled")
    for name in (*states, "reload", "lab"):
        assert english[name] and french[name] and english[name] != french[name]
    assert english["saved"].startswith("Saved")
    assert french["saved"].startswith("Enregistré")
    assert "{n}" in french["progress"] and "{total}" in french["progress"]


@pytest.mark.parametrize("path", ["workbooks/data.csv", "", "workbooks/", "../etc/passwd"])
def test_only_a_notebook_opens_in_the_view(path):
    """Is anything but a .ipynb refused with 404 (Voila would hand out the raw file)?"""
    with pytest.raises(web.HTTPError) as raised:
        workbook.notebook_path(path)
    assert raised.value.status_code == 404


def test_the_lab_link_opens_the_same_file():
    """Does the Lab link point at the same notebook, with its name safely quoted?"""
    path = workbook.notebook_path("/workbooks/02 plan/plan #2.fr.ipynb")
    assert path == "workbooks/02 plan/plan #2.fr.ipynb"
    assert workbook.lab_url("/user/chloe/", path) == (
        "/user/chloe/lab/tree/workbooks/02%20plan/plan%20%232.fr.ipynb"
    )
    assert workbook.view_url("/user/chloe/", path) == (
        "/user/chloe/atelier/view/workbooks/02%20plan/plan%20%232.fr.ipynb"
    )


def test_the_extension_adds_each_module_s_handlers_under_the_server_s_base_url():
    """Are the view's routes under the trainee's base URL, from each module's HANDLERS?"""
    assert extension._jupyter_server_extension_points() == [
        {"module": "atelier.hub_config.view.extension"}
    ]
    routes = extension.handlers("/user/chloe/")
    assert ("/user/chloe/atelier/view/(?P<path>.*)", workbook.WorkbookViewHandler) in routes
    assert all(pattern.startswith("/user/chloe/atelier/") for pattern, _ in routes)


def test_the_view_template_ships_with_the_package():
    """Is the view's Voila template in the package, based on Voila's lab template?"""
    folder = workbook.SHARE_DIR / "voila" / "templates" / workbook.TEMPLATE
    assert (folder / "index.html.j2").is_file()
    assert '"base_template": "lab"' in (folder / "conf.json").read_text()


def test_the_error_page_says_it_in_the_trainee_s_language_and_escapes():
    """Does the error page speak French to a French trainee, with no traceback and a safe link?"""
    html = pages.render(
        workbook.PACKAGE,
        "view-error.html.j2",
        language="fr",
        words=workbook.page_words("fr"),
        status=404,
        lab_url="javascript:alert(1)",
    )
    assert '<html lang="fr">' in html
    assert "Il n’y a pas de cahier" in html
    assert "javascript:" not in html


def test_a_failed_save_is_marked_for_the_page_s_save_state(tmp_path):
    """Does a widget whose answer could not be saved mark its status for the view's bar?"""
    from atelier.widgets import MultipleChoice
    from atelier.widgets.store import AnswerStore

    class FullDisk(AnswerStore):
        def save(self, *args, **kwargs):
            raise OSError(28, "No space left on device")

    question = MultipleChoice("q1", "Q?", ["x", "y"], store=FullDisk(tmp_path))
    question.value = "a"
    assert "atelier-save-failed" in question._status.value
    question = MultipleChoice("q2", "Q?", ["x", "y"], store=AnswerStore(tmp_path))
    question.value = "a"
    assert "atelier-save-failed" not in question._status.value


def test_an_image_of_the_text_is_sent_inside_the_page_and_renders(tmp_path):
    """Does a workbook's diagram show in the view, and nothing outside its folder?

    Voila's own renderer stopped the page at the first image (Jupyter Server's contents manager
    is asynchronous); the view attaches local images and renders them without it.
    """
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    from atelier.hub_config.view.images import ViewMarkdownRenderer, inline_images

    folder = tmp_path / "wb"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "bits.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (tmp_path / "secret.png").write_bytes(b"\x89PNG")
    (folder / "notes.txt").write_text("not an image")
    text = (
        '![A diagram](images/bits.svg "Bits")\n\n![Outside](../secret.png)\n\n'
        "![Text](notes.txt)\n\n![Web](https://example.org/a.png)\n\n![Gone](images/gone.png)"
    )
    notebook = {"cells": [{"cell_type": "markdown", "source": text, "metadata": {}}]}
    inline_images(notebook, folder)
    cell = notebook["cells"][0]
    assert list(cell["attachments"]) == ["images/bits.svg"]
    assert "attachment:images/bits.svg" in cell["source"]
    for kept in ("../secret.png", "(notes.txt)", "https://example.org/a.png", "images/gone.png"):
        assert kept in cell["source"]
    from voila.exporter import VoilaExporter

    # Voila's exporter takes it (its trait accepts subclasses of its own renderer only).
    assert VoilaExporter(markdown_renderer_class=ViewMarkdownRenderer)
    renderer = ViewMarkdownRenderer(object(), escape=False, attachments=cell["attachments"])
    html = MarkdownWithMath(renderer=renderer).render(cell["source"])
    assert 'src="data:image/svg+xml;base64,' in html
    assert 'alt="A diagram"' in html


def test_a_widget_carries_its_id_for_the_view_to_put_its_feedback_beside_it(tmp_path):
    """Can the view find a widget by its id in the page (a class), and only one with an id?"""
    from atelier.widgets import MultipleChoice
    from atelier.widgets.store import AnswerStore

    question = MultipleChoice("w7-case", "Q?", ["x", "y"], store=AnswerStore(tmp_path))
    assert "atelier-id-w7-case" in question._dom_classes
    anonymous = MultipleChoice(None, "Q?", ["x", "y"], store=AnswerStore(tmp_path))
    assert not [c for c in anonymous._dom_classes if c.startswith("atelier-id-")]


def test_only_a_released_workbook_of_mine_gets_submit_and_feedback_addresses():
    """Does the view offer Submit for ``<course>/<assignment>/<notebook>`` released to me only?"""
    released = {"w7-fr": ["y"]}.get

    def courses(assignment):
        return released(assignment, [])

    found = workbook.submission("/user/chloé/", "y/w7-fr/w7.fr.ipynb", courses)
    assert found == {
        "course": "y",
        "assignment": "w7-fr",
        "submit_url": "/user/chloé/atelier/submit/w7-fr?course=y",
        "feedback_url": "/user/chloé/atelier/feedback/w7-fr?course=y",
    }
    # Another course's copy, my own notebook, a folder deeper, a name that is no assignment.
    for path in ("x/w7-fr/w7.fr.ipynb", "notes/mine.ipynb", "y/w7-fr/sub/w7.fr.ipynb",
                 "y/W7_FR/w7.fr.ipynb", "w7.fr.ipynb"):  # fmt: skip
        assert workbook.submission("/user/chloé/", path, courses) is None, path


def test_every_word_of_submit_and_feedback_is_in_both_languages_and_escaped():
    """Is every word the Submit dialog and the feedback use in en and fr, and no text as HTML?"""
    template = (
        workbook.SHARE_DIR / "voila" / "templates" / workbook.TEMPLATE / "index.html.j2"
    ).read_text("utf-8")
    for selector in ('id="atelier-submit"', 'id="atelier-confirm"', 'role="dialog"',
                     'id="atelier-unanswered"', 'id="atelier-confirm-yes"',
                     'id="atelier-confirm-no"', 'id="atelier-receipt"', 'id="atelier-feedback"',
                     'id="atelier-score"'):  # fmt: skip
        assert selector in template, selector
    # People's text (headings, diagnostics, comments) never goes in as HTML.
    assert "innerHTML" not in template
    used = set(re.findall(r'say\("(\w+)"', template))
    used |= set(re.findall(r"view\.words\.(\w+)", template))
    used |= {"right", "wrong", "partial", "unanswered", "offline_submit"}
    for language in ("en", "fr"):
        missing = used - set(workbook.page_words(language))
        assert not missing, (language, sorted(missing))


def test_the_view_leaves_out_nbgrader_s_test_cells_only(monkeypatch):
    """Does the view run the workbook without its test cells (each would show as a broken part)?"""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    widget = new_code_cell('MultipleChoice("w7-case", "Q?", {"a": "A"})')
    test = new_code_cell('check_answered("w7-case")')
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "test-w7-case"}
    written = new_markdown_cell("YOUR ANSWER HERE")
    written.metadata["nbgrader"] = {"grade": True, "solution": True, "grade_id": "reflection"}
    answer = new_code_cell("x = 1")
    answer.metadata["nbgrader"] = {"grade": True, "solution": True, "grade_id": "square"}
    notebook = new_notebook(cells=[widget, test, written, answer])

    class Handler:
        settings = {workbook.SETTINGS_KEY: {"language": "fr"}}
        path_kwargs = {"path": "notes/mine.ipynb"}
        base_url = "/user/chloe/"

    monkeypatch.setattr(workbook, "submission", lambda base_url, path: None)
    shown = workbook.prelaunch(Handler(), notebook, "/tmp")
    assert shown.cells == [widget, written, answer]
    assert shown.metadata["atelier_view"]["language"] == "fr"
    assert shown.metadata["atelier_view"]["submit"] is None


def test_the_view_s_assets_have_versioned_routes():
    """Are Voila's chunks and the widgets' code served under /atelier/assets/<version>/?"""
    from atelier.hub_config.view import assets

    routes = dict(extension.handlers("/user/chloe/"))
    assert routes["/user/chloe/atelier/assets/(?P<version>[0-9a-f]+)/static/(?P<path>.+)"] is (
        assets.StaticAssetHandler
    )
    assert assets.asset_urls("/user/chloe/", "abc123") == {
        "fullStaticUrl": "/user/chloe/atelier/assets/abc123/static",
        "fullLabextensionsUrl": "/user/chloe/atelier/assets/abc123/labextensions",
    }


def test_the_asset_version_changes_with_a_lab_extension_s(tmp_path):
    """Does a new version of a lab extension of the view give its assets new URLs?"""
    import json

    from atelier.hub_config.view import assets

    folder = tmp_path / "@jupyter-widgets" / "jupyterlab-manager"
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": "x", "version": "5.0.1"}))
    before = assets.asset_version([folder])
    (folder / "package.json").write_text(json.dumps({"name": "x", "version": "5.0.2"}))
    assert assets.asset_version([folder]) != before
    assert len(before) == 12 and int(before, 16) >= 0


@pytest.mark.parametrize(
    ("source", "math"),
    [
        ("The mean is $\\bar{x}$.", True),
        ("\\[ a^2 + b^2 = c^2 \\]", True),
        ("choice(['\\\\(x\\\\)', 'y'])", True),
        ("Plan your lesson: 40 minutes, 3 groups.", False),
    ],
)
def test_mathjax_is_loaded_only_for_a_workbook_with_math(tmp_path, source, math):
    """Does the view leave MathJax out of a workbook without TeX, and keep it where there is?"""
    import nbformat

    from atelier.hub_config.view import assets

    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Workbook"), nbformat.v4.new_markdown_cell(source)]
    )
    nbformat.write(notebook, tmp_path / "w.ipynb")
    settings = {"server_root_dir": str(tmp_path), assets.SETTINGS_KEY: {"version": "v1"}}
    current = {"fullMathjaxUrl": "/static/mathjax/MathJax.js", "mathjaxConfig": "TeX", "x": 1}
    config = assets.page_config(current, base_url="/u/", settings=settings, notebook_path="w.ipynb")
    assert config["x"] == 1
    assert config["fullStaticUrl"] == "/u/atelier/assets/v1/static"
    assert bool(config["fullMathjaxUrl"]) is math
    assert current["fullMathjaxUrl"], "Voila's own page config is left as it was"
