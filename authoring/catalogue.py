"""The catalogue: one landing notebook per language, generated from the workbooks' metadata.

Rule: ``workbooks/index.<lang>.ipynb`` is never edited by hand. It is a pure function of the
workbook metadata (:func:`build_catalogue`); ``atelier catalogue`` writes it, ``atelier new`` and
``atelier translate`` refresh it, and ``atelier check`` fails when the file differs from what the
metadata says.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from atelier import languages
from atelier import workbook as wb
from atelier.app import AtelierApp
from atelier.workbook import Problem


def catalogue_path(root: Path, lang: str) -> Path:
    """Where the landing notebook of ``lang`` lives."""
    return root / f"index.{lang}.ipynb"


def _entries(root: Path) -> list[tuple[Path, dict[str, tuple[Path, dict]]]]:
    """Workbook folders in order, each with its readable language versions and their metadata."""
    entries = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and wb.FOLDER_NAME.match(p.name)):
        versions = {}
        for lang, path in wb.workbook_notebooks(folder).items():
            try:
                versions[lang] = (path, wb.metadata(wb.read_notebook(path)))
            except wb.WorkbookError:
                continue
        if versions:
            entries.append((folder, versions))
    return entries


def build_catalogue(root: Path, lang: str) -> nbformat.NotebookNode:
    """The landing notebook of ``lang`` for the workbooks under ``root``."""
    words = languages.words("atelier.authoring", "catalogue", lang)
    cells = [
        nbformat.v4.new_markdown_cell(
            f"# {words['title']}\n\n{words['intro']}", id="catalogue-intro"
        )
    ]
    entries = _entries(root)
    for folder, versions in entries:
        shown = (
            lang
            if lang in versions
            else languages.LANGUAGES[0]
            if languages.LANGUAGES[0] in versions
            else sorted(versions)[0]
        )
        path, meta = versions[shown]
        minutes = meta.get("minutes", {})
        competencies = ", ".join(
            f"{c.get('competency')} ({c.get('aspect')}, {c.get('level')})"
            for c in meta.get("ictcft", [])
        )
        lines = [
            f"## [{meta.get('title', folder.name)}]({folder.name}/{path.name})",
            "",
            meta.get("summary", ""),
            "",
            f"- **{words['duration']}**: "
            + words["minutes"].format(
                teaching=minutes.get("teaching", "?"), exercises=minutes.get("exercises", "?")
            ),
            f"- **{words['competencies']}**: {competencies}",
            f"- **{words['dimensions']}**: {', '.join(meta.get('handbook_dimensions', []))}",
        ]
        if meta.get("app"):
            lines.append(f"- {words['app']}")
        if shown != lang:
            lines.append(f"- {words['other'].format(lang=words.get(f'language.{shown}', shown))}")
        cells.append(
            nbformat.v4.new_markdown_cell(
                "\n".join(lines), id=f"workbook-{meta.get('id', folder.name)}"
            )
        )
    if not entries:
        cells.append(nbformat.v4.new_markdown_cell(words["empty"], id="catalogue-empty"))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["atelier_catalogue"] = {"language": lang, "generated_by": "atelier catalogue"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write_catalogue(root: Path) -> list[Path]:
    """Write every language's landing notebook under ``root``; return the paths written."""
    written = []
    for lang in languages.LANGUAGES:
        path = catalogue_path(root, lang)
        wb.write_notebook(build_catalogue(root, lang), path)
        written.append(path)
    return written


def catalogue_problems(root: Path) -> list[Problem]:
    """A problem for each landing notebook that is missing or differs from the metadata."""
    problems = []
    for lang in languages.LANGUAGES:
        path = catalogue_path(root, lang)
        expected = build_catalogue(root, lang)
        fix = f"run `atelier catalogue {root}` and commit the result"
        if not path.exists():
            problems.append(
                Problem(str(path), "catalogue notebook is missing", fix, code="stale-catalogue")
            )
            continue
        try:
            stored = wb.read_notebook(path)
        except wb.WorkbookError as exc:
            problems.append(Problem(str(path), str(exc), fix, code="stale-catalogue"))
            continue
        have = [(c.cell_type, c.source) for c in stored.cells]
        want = [(c.cell_type, c.source) for c in expected.cells]
        if have != want:
            first = next(
                (i for i, (a, b) in enumerate(zip(have, want, strict=False), 1) if a != b),
                min(len(have), len(want)) + 1,
            )
            problems.append(
                Problem(
                    str(path),
                    "catalogue is stale: it does not match the workbooks' metadata",
                    fix,
                    cell=first,
                    code="stale-catalogue",
                )
            )
    return problems


class CatalogueApp(AtelierApp):
    """Regenerate the landing notebooks (``index.<lang>.ipynb``) from the workbooks' metadata."""

    name = "atelier-catalogue"
    description = "Regenerate workbooks/index.<lang>.ipynb from the workbooks' metadata."

    def run(self):
        """Write the catalogue of each workbooks root given (default: ./workbooks)."""
        roots = [Path(p) for p in (self.extra_args or ["workbooks"])]
        for root in roots:
            if not root.is_dir():
                raise wb.WorkbookError(f"{root}: not a folder — give the workbooks folder")
            for path in write_catalogue(root):
                print(f"wrote {path}")
