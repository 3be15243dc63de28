"""The workbooks folder as the author verbs change it: a workbook's folder, the landing notebooks.

Rule: ``atelier new`` and ``atelier translate`` find a workbook's folder by its id here, and refresh
the catalogue here after they write a notebook.
"""

from __future__ import annotations

from pathlib import Path

from atelier import workbook as wb


def find_folder(root: Path, workbook_id: str) -> Path | None:
    """The folder of workbook ``workbook_id`` under ``root``, if any."""
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        match = wb.FOLDER_NAME.match(folder.name)
        if folder.is_dir() and match and match["id"] == workbook_id:
            return folder
    return None


def refresh_catalogue(root: Path) -> None:
    """Write the catalogues of ``root`` again, naming each file that changed (new, translate)."""
    from atelier.authoring.catalogue import write_catalogue

    for path in write_catalogue(root):
        print(f"updated {path}")
