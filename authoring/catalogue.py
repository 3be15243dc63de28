"""The catalogue: one landing notebook per language, generated from the workbooks' metadata.

Rule: ``workbooks/index.<lang>.ipynb`` is never edited by hand. It is a pure function of the
workbook metadata (:func:`build_catalogue`); ``atelier catalogue`` writes it, ``atelier new`` and
``atelier translate`` refresh it, and ``atelier check`` fails when the file differs from what the
metadata says. Competencies are named as in UNESCO's official edition of each language
(:func:`atelier.workbook.ictcft_names`).

The same goes for the ICT CFT coverage, ``widgets/data/ictcft_coverage.json`` of the checkout the
workbooks folder sits in (:func:`build_coverage`): for each of the 18 cells, the workbooks whose
metadata claims it, with their titles per language. The self-assessment widget shows it under each
competency ("Beyond this programme" for a cell no workbook claims). A workbooks folder with no
``widgets/data/`` folder beside it (outside an Atelier checkout) has no coverage file.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from atelier import languages
from atelier import workbook as wb
from atelier.app import AtelierApp
from atelier.files import atomic_write
from atelier.workbook import Problem

#: The coverage table's name under ``widgets/data/`` (``atelier.widgets.tables.load``).
COVERAGE_NAME = "ictcft_coverage"
#: Level codes of the coverage table's cell keys (``"3.KD"``), in the order of ``core/ictcft.json``.
LEVEL_CODES = ("KA", "KD", "KC")


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
        names = wb.ictcft_names(lang)
        competencies = ", ".join(
            f"{names['competencies'].get(c.get('competency'), c.get('competency'))} "
            f"({c.get('aspect')}, {names['levels'].get(c.get('level'), c.get('level'))})"
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


def coverage_path(root: Path) -> Path | None:
    """Where the coverage table of the workbooks under ``root`` lives; None outside a checkout."""
    data = root.resolve().parent / "widgets" / "data"
    return data / f"{COVERAGE_NAME}.json" if data.is_dir() else None


def build_coverage(root: Path) -> dict:
    """For each ICT CFT cell (``"<aspect>.<KA|KD|KC>"``), the workbooks under ``root`` claiming it.

    Each workbook is ``{"number", "id", "folder", "titles": {lang: title}}``, in folder order; a
    cell no workbook claims has an empty list. Claims are read from each language version's
    ``metadata.atelier.ictcft`` (they must agree; the check says so when they do not).
    """
    table = wb.ictcft()
    codes = dict(zip(table["levels"], LEVEL_CODES, strict=True))
    cells: dict[str, list[dict]] = {
        f"{c['aspect']}.{codes[c['level']]}": [] for c in table["cells"]
    }
    for folder, versions in _entries(root):
        claimed = set()
        for _path, meta in versions.values():
            for claim in meta.get("ictcft", []):
                key = f"{claim.get('aspect')}.{codes.get(claim.get('level'), '')}"
                if key in cells:
                    claimed.add(key)
        if not claimed:
            continue
        match = wb.FOLDER_NAME.match(folder.name)
        entry = {
            "number": match["order"],
            "id": match["id"],
            "folder": folder.name,
            "titles": {
                lang: meta.get("title", folder.name)
                for lang, (_path, meta) in sorted(versions.items())
            },
        }
        for key in sorted(claimed):
            cells[key].append(entry)
    return {
        "title": "Which Atelier workbook addresses each ICT CFT competency",
        "source": "Atelier workbooks' metadata (metadata.atelier.ictcft), by atelier catalogue",
        "address": "workbooks/",
        "date": "that of the workbooks; `atelier check workbooks` fails when it is stale",
        "licence": "CC-BY-SA-4.0",
        "generated_by": "atelier catalogue",
        "cells": cells,
    }


def _coverage_text(coverage: dict) -> str:
    return json.dumps(coverage, indent=1, ensure_ascii=False) + "\n"


def write_catalogue(root: Path) -> list[Path]:
    """Write each language's landing notebook under ``root`` and the coverage; return the paths."""
    written = []
    for lang in languages.LANGUAGES:
        path = catalogue_path(root, lang)
        wb.write_notebook(build_catalogue(root, lang), path)
        written.append(path)
    path = coverage_path(root)
    if path is not None:
        atomic_write(path, _coverage_text(build_coverage(root)))
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
    path = coverage_path(root)
    if path is not None:
        fix = f"run `atelier catalogue {root}` and commit the result"
        try:
            stored = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            stored = None
        if stored != json.loads(_coverage_text(build_coverage(root))):
            problems.append(
                Problem(
                    str(path),
                    "ICT CFT coverage is missing or stale: it does not match the workbooks' "
                    "metadata (the self-assessment shows it under each competency)",
                    fix,
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
