"""``atelier library build``: render every workbook to an offline static library, sizes reported."""

from __future__ import annotations

from pathlib import Path

from traitlets import Unicode

from atelier.app import AtelierApp, base_aliases, subverbs


class LibraryBuildApp(AtelierApp):
    """Render every workbook, in every language, to static HTML pages readable with no network."""

    name = "atelier library build"
    description = (
        "Render every workbook in both languages to light static HTML pages with an index "
        "(no script, no CDN), and print each page's size."
    )
    aliases = {
        **base_aliases,
        "workbooks": "LibraryBuildApp.workbooks",
        "out": "LibraryBuildApp.out",
    }

    workbooks = Unicode(
        "", help="Folder of workbooks; empty means workbooks/ of this checkout."
    ).tag(config=True)
    out = Unicode("library", help="Folder to write the library to (replaced whole).").tag(
        config=True
    )

    def run(self):
        """Build the library and print the size report."""
        from atelier.public.library import build_library, size_report

        workbooks = Path(self.workbooks or Path(__file__).resolve().parent.parent / "workbooks")
        pages = build_library(workbooks, self.out, log=self.log.info)
        print(size_report(pages))
        print(f"\n{len(pages)} pages in {Path(self.out).resolve()}/index.html (report: sizes.json)")


class LibraryApp(AtelierApp):
    """The offline library of workbooks."""

    name = "atelier library"
    description = "The offline library of workbooks: `atelier library build`."
    subcommands = subverbs(LibraryBuildApp)
