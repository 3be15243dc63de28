"""Authoring: ``atelier new`` starts a workbook, ``atelier translate`` keeps languages in step.

Rule: code and graded cells are owned by the reference language and copied into translations; prose
is owned by the translator and never overwritten. A translation records, per prose cell, a hash of
the source text it was made from (``metadata.atelier.source_hash``); when the source changes, or a
cell is new, ``translate`` puts a ``<!-- TRANSLATE ... -->`` line at its top, which ``atelier
check`` reports as a warning until the translator removes it.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import tokenize
from importlib import resources
from pathlib import Path

import nbformat
from traitlets import Unicode

from atelier import workbook as wb
from atelier.app import AtelierApp, base_aliases
from atelier.languages import LANGUAGES
from atelier.workbook import WorkbookError

CODE_MARKER = "# TRANSLATE: translate the strings and comments of this cell, then delete this line"


def _markdown_marker(lang: str, changed: bool) -> str:
    reason = (
        "the source changed since this translation"
        if changed
        else f"copied from the {lang} version"
    )
    return f"<!-- TRANSLATE: {reason}; translate, then delete this line -->"


def template(lang: str) -> nbformat.NotebookNode:
    """The workbook template of ``lang`` (``authoring/templates/workbook.<lang>.ipynb``)."""
    name = f"workbook.{lang}.ipynb"
    text = resources.files("atelier.authoring").joinpath("templates", name).read_text("utf-8")
    return nbformat.reads(text, as_version=4)


def find_folder(root: Path, workbook_id: str) -> Path | None:
    """The folder of workbook ``workbook_id`` under ``root``, if any."""
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        match = wb.FOLDER_NAME.match(folder.name)
        if folder.is_dir() and match and match["id"] == workbook_id:
            return folder
    return None


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
    return path


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _has_strings(source: str) -> bool:
    try:
        return any(
            t.type == tokenize.STRING
            for t in tokenize.generate_tokens(io.StringIO(source).readline)
        )
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return True


def translate_notebook(source: nbformat.NotebookNode, existing, to: str) -> nbformat.NotebookNode:
    """Return the ``to`` version of ``source``, keeping what ``existing`` (or None) translated."""
    src_lang = wb.metadata(source).get("language", "en")
    old_cells = {c.get("id"): c for c in existing.cells} if existing else {}
    cells = []
    for cell in source.cells:
        old = old_cells.get(cell.get("id"))
        new = copy.deepcopy(cell)
        if cell.cell_type == "code":
            # The reference owns the code; keep the translator's strings when only they differ.
            same = old is not None and old.cell_type == "code"
            if same and wb.code_signature(old.source) == wb.code_signature(cell.source):
                new.source = old.source
            elif _has_strings(cell.source):
                new.source = f"{CODE_MARKER}\n{cell.source}"
            new.outputs, new.execution_count = [], None
            cells.append(new)
            continue
        digest = _hash(cell.source)
        if old is not None and old.cell_type == cell.cell_type:
            new.source = old.source
            recorded = old.get("metadata", {}).get("atelier", {}).get("source_hash")
            if recorded != digest and "<!-- TRANSLATE" not in new.source:
                new.source = f"{_markdown_marker(src_lang, changed=True)}\n{new.source}"
        else:
            new.source = f"{_markdown_marker(src_lang, changed=False)}\n{cell.source}"
        new.metadata.setdefault("atelier", {})["source_hash"] = digest
        cells.append(new)
    # Prose the translator added (not in the source) stays, after the cell it followed.
    if existing:
        source_ids = {c.get("id") for c in source.cells}
        anchor = None
        for cell in existing.cells:
            if cell.get("id") in source_ids:
                anchor = cell.get("id")
            elif not wb.is_aligned(cell):
                at = next((i for i, c in enumerate(cells) if c.get("id") == anchor), -1)
                cells.insert(at + 1, copy.deepcopy(cell))
                anchor = cell.get("id")
    nb = copy.deepcopy(source)
    nb.cells = cells
    meta = copy.deepcopy(wb.metadata(source))
    meta["language"] = to
    old_meta = wb.metadata(existing) if existing else {}
    for key in wb.TRANSLATED_KEYS:
        if key != "language" and key in old_meta:
            meta[key] = old_meta[key]
    nb.metadata["atelier"] = meta
    return nb


def translate_workbook(root: Path, workbook_id: str, to: str, source_lang: str = "") -> Path:
    """Create or update the ``to`` version of a workbook; return its path."""
    if to not in LANGUAGES:
        raise WorkbookError(f"'{to}': not a workbook language — use one of {', '.join(LANGUAGES)}")
    folder = find_folder(root, workbook_id)
    if folder is None:
        raise WorkbookError(
            f"{root}: no workbook '{workbook_id}' — create it with `atelier new {workbook_id}`"
        )
    versions = wb.workbook_notebooks(folder)
    candidates = {k: v for k, v in versions.items() if k != to}
    if not candidates:
        raise WorkbookError(f"{folder}: no other language to translate from")
    src_lang = source_lang or ("en" if "en" in candidates else sorted(candidates)[0])
    if src_lang not in candidates:
        raise WorkbookError(f"{folder}: no '{src_lang}' version to translate from")
    source = wb.read_notebook(candidates[src_lang])
    target = folder / f"{workbook_id}.{to}.ipynb"
    existing = wb.read_notebook(target) if target.exists() else None
    wb.write_notebook(translate_notebook(source, existing, to), target)
    return target


def _refresh_catalogue(root: Path) -> None:
    from atelier.authoring.catalogue import write_catalogue

    for path in write_catalogue(root):
        print(f"updated {path}")


class NewApp(AtelierApp):
    """Start a workbook from the template (which passes ``atelier check``)."""

    name = "atelier-new"
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
        _refresh_catalogue(Path(self.root))
        print(f"next: edit it in JupyterLab, then run `atelier check {path.parent}`")


class TranslateApp(AtelierApp):
    """Create or update a language version: code and grading synced, prose marked to translate."""

    name = "atelier-translate"
    description = (
        "Create or update another language version of a workbook: atelier translate ID --to fr"
    )
    aliases = {
        **base_aliases,
        "to": "TranslateApp.to",
        "from": "TranslateApp.source_lang",
        "root": "TranslateApp.root",
    }
    to = Unicode("fr", help="Language to create or update.").tag(config=True)
    source_lang = Unicode(
        "", help="Language to translate from (default: en, else the other one)."
    ).tag(config=True)
    root = Unicode("workbooks", help="The workbooks folder.").tag(config=True)

    def run(self):
        """Write the translation and refresh the catalogue."""
        if len(self.extra_args) != 1:
            raise WorkbookError("give one workbook id: atelier translate ID --to fr")
        path = translate_workbook(Path(self.root), self.extra_args[0], self.to, self.source_lang)
        print(f"wrote {path}")
        _refresh_catalogue(Path(self.root))
        print(f"next: translate the cells marked TRANSLATE, then run `atelier check {path.parent}`")
