"""``atelier new``: a workbook started from the template, which passes ``atelier check``.

Rule: a workbook starts only from its language's template (``templates/workbook.<lang>.ipynb``):
it gets the next folder number, its id in every placeholder, and empty ``data/`` and ``images/``
folders.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import nbformat
from traitlets import Unicode

from atelier import workbook as wb
from atelier.app import AtelierApp, base_aliases
from atelier.authoring.folders import find_folder, refresh_catalogue
from atelier.languages import LANGUAGES
from atelier.workbook import WorkbookError


def template(lang: str) -> nbformat.NotebookNode:
    """The workbook template of ``lang`` (``authoring/templates/workbook.<lang>.ipynb``)."""
    name = f"workbook.{lang}.ipynb"
    text = resources.files("atelier.authoring").joinpath("templates", name).read_text("utf-8")
    return nbformat.reads(text, as_version=4)


def new_workbook(
    root: Path,
    workbook_id: str,
    lang: str = "en",
    title: str = "",
    author: str = "",
    institution: str = "",
) -> Path:
    """Create ``<root>/<nn>-<id>/<id>.<lang>.ipynb`` from the template; return the notebook path."""
    if not wb.NOTEBOOK_NAME.match(f"{workbook_id}.en.ipynb") or len(workbook_id) > 60:
        raise WorkbookError(
            f"'{workbook_id}': a workbook id is kebab-case (lowercase letters, digits and "
            "hyphens), "
            "e.g. low-bandwidth-planner"
        )
    if lang not in LANGUAGES:
        raise WorkbookError(
            f"'{lang}': not a workbook language — use one of {', '.join(LANGUAGES)}"
        )
    root.mkdir(parents=True, exist_ok=True)
    if find_folder(root, workbook_id):
        raise WorkbookError(
            f"{find_folder(root, workbook_id)}: workbook '{workbook_id}' exists — choose another "
            "id, "
            f"or add a language with `atelier translate {workbook_id} --to LANG`"
        )
    numbers = [int(m["order"]) for p in root.iterdir() if (m := wb.FOLDER_NAME.match(p.name))]
    folder = root / f"{max(numbers, default=-1) + 1:02d}-{workbook_id}"
    nb = template(lang)
    text = json.dumps(nb)
    replacements = {
        "__ID__": workbook_id,
        "__TITLE__": title or nb.metadata["atelier"]["title"].replace("__ID__", workbook_id),
        "__AUTHOR__": author or "Your name",
        "__INSTITUTION__": institution or "Your institution",
    }
    for key, value in replacements.items():
        text = text.replace(key, json.dumps(value)[1:-1])
    nb = nbformat.reads(text, as_version=4)
    if title:
        nb.metadata["atelier"]["title"] = title
    path = folder / f"{workbook_id}.{lang}.ipynb"
    wb.write_notebook(nb, path)
    for sub in ("data", "images"):
        (folder / sub).mkdir(exist_ok=True)
    write_answer_sets(folder, workbook_id, lang, TEMPLATE_ANSWERS)
    return path


#: The template's graded items answered: every item right, and the typical mistake (one
#: session counted instead of three). ``atelier check`` runs the source with the right set.
TEMPLATE_ANSWERS = {
    "right": (
        "Every item right.",
        {"__ID__-decide": "a", "__ID__-estimate": 360, "__ID__-reflect": {"a": "In my course ..."}},
        4,
        [],
    ),
    "": (
        "Counts one session instead of three in the estimate.",
        {"__ID__-decide": "a", "__ID__-estimate": 120},
        2,
        ["apply-test-2"],
    ),
}


def answer_set(workbook_id: str, lang: str, description: str, widgets: dict, score, failing):
    """An answer set document (docs/answer-sets.md) for a workbook's language version."""
    return {
        "format": "atelier-answer-set",
        "version": 1,
        "workbook": workbook_id,
        "language": lang,
        "notebook": f"{workbook_id}.{lang}.ipynb",
        "description": description,
        "cells": {},
        "widgets": {key.replace("__ID__", workbook_id): value for key, value in widgets.items()},
        "expected_score": score,
        "expected": {"failing_tests": list(failing)},
    }


def write_answer_sets(folder: Path, workbook_id: str, lang: str, sets: dict) -> None:
    """Write ``answers/<id>.<lang>[.<name>].json`` for each set not already there."""
    answers = folder / "answers"
    answers.mkdir(exist_ok=True)
    for name, (description, widgets, score, failing) in sets.items():
        path = answers / f"{workbook_id}.{lang}{'.' + name if name else ''}.json"
        if not path.exists():
            document = answer_set(workbook_id, lang, description, widgets, score, failing)
            path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", "utf-8")


class NewApp(AtelierApp):
    """Start a workbook from the template (which passes ``atelier check``)."""

    name = "atelier new"
    description = (
        "Create workbooks/<nn>-ID/ID.<lang>.ipynb from the template: atelier new ID --lang en"
    )
    aliases = {
        **base_aliases,
        "lang": "NewApp.lang",
        "title": "NewApp.title",
        "author": "NewApp.author",
        "institution": "NewApp.institution",
        "root": "NewApp.root",
    }
    lang = Unicode("en", help="Language of the first version (en or fr).").tag(config=True)
    title = Unicode("", help="Title of the workbook.").tag(config=True)
    author = Unicode("", help="Author's name.").tag(config=True)
    institution = Unicode("", help="Author's institution.").tag(config=True)
    root = Unicode("workbooks", help="The workbooks folder.").tag(config=True)

    def run(self):
        """Create the workbook and refresh the catalogue."""
        if len(self.extra_args) != 1:
            raise WorkbookError("give one workbook id: atelier new ID --lang en")
        path = new_workbook(
            Path(self.root),
            self.extra_args[0],
            self.lang,
            self.title,
            self.author,
            self.institution,
        )
        print(f"created {path}")
        refresh_catalogue(Path(self.root))
        print(f"next: edit it in JupyterLab, then run `atelier check {path.parent}`")
