"""``atelier translate``: keeps a workbook's languages in step.

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
import tokenize
from pathlib import Path

import nbformat
from traitlets import Unicode

from atelier import workbook as wb
from atelier.app import AtelierApp, base_aliases
from atelier.authoring.folders import find_folder, refresh_catalogue
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
    copy_answer_sets(folder, workbook_id, src_lang, to)
    return target


def copy_answer_sets(folder: Path, workbook_id: str, src_lang: str, to: str) -> None:
    """Give the new language version the source's answer sets, where it has none yet.

    Widget answers are keys and numbers, the same in every language; a typed answer (a short
    text, a reflection) is the translator's to translate, like the prose.
    """
    import json

    from atelier.authoring.newapp import answer_set

    for path in sorted((folder / "answers").glob(f"{workbook_id}.{src_lang}*.json")):
        name = path.name.removeprefix(f"{workbook_id}.{src_lang}")
        target = path.with_name(f"{workbook_id}.{to}{name}")
        if target.exists() or not (name == ".json" or name.count(".") == 2):
            continue
        data = json.loads(path.read_text("utf-8"))
        document = answer_set(
            workbook_id, to, data.get("description", ""), data.get("widgets", {}),
            data.get("expected_score", 0), data.get("expected", {}).get("failing_tests", []),
        )  # fmt: skip
        document["cells"] = data.get("cells", {})
        target.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", "utf-8")


class TranslateApp(AtelierApp):
    """Create or update a language version: code and grading synced, prose marked to translate."""

    name = "atelier translate"
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
        refresh_catalogue(Path(self.root))
        print(f"next: translate the cells marked TRANSLATE, then run `atelier check {path.parent}`")
