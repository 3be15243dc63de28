"""The workbook view's pure parts: language, addresses, the extension's routes, the error page."""

from __future__ import annotations

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
    for name in ("ready", "saving", "saved", "failed", "offline", "stale", "reload", "lab"):
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
