"""The offline library: every workbook in every language as light static HTML pages, with an index.

Rule: a page needs nothing but the library folder. No script, no web font, no resource from another
machine (no CDN: nbconvert's ``basic`` template, a small shared stylesheet); an image from elsewhere
becomes a link. Links to cited sources stay links: they cost nothing until followed. Trainees
read the student version (nbgrader's solutions and hidden tests removed), as released. The page
around each workbook and the index are Jinja2 templates (``templates/library-*.html.j2``, through
:mod:`atelier.pages`): titles and summaries are escaped.

Each notebook goes through :data:`PAGE_STEPS`, an ordered list of small functions; the whole
library is built in a temporary folder and renamed into place
(:func:`atelier.files.replacing_folder`), so a reader never sees half of it.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from atelier import languages, pages
from atelier.errors import AtelierError
from atelier.files import replacing_folder

#: A slow mobile link, to turn sizes into waiting times in the report (bits per second).
SLOW_LINK_BPS = 256_000
#: Folders of a workbook copied beside its pages (images it shows, data it offers to download).
ASSET_FOLDERS = ("images", "data")

STYLE = """\
body{font-family:system-ui,sans-serif;line-height:1.55;margin:0 auto;max-width:46rem;
padding:.75rem;color:#1b1b1b;background:#fff}
nav{font-size:.9rem;display:flex;gap:1rem;flex-wrap:wrap;border-bottom:1px solid #ddd;
padding-bottom:.4rem;margin-bottom:1rem}
h1{font-size:1.5rem}h2{font-size:1.25rem}h3{font-size:1.1rem}
img,svg{max-width:100%;height:auto}
table{border-collapse:collapse;display:block;overflow-x:auto}
td,th{border:1px solid #ccc;padding:.25rem .5rem}
pre{overflow-x:auto;background:#f6f6f6;padding:.5rem;font-size:.85rem}
.input_prompt,.output_prompt,.prompt,.anchor-link{display:none}
.inner_cell,.output_area{margin:.5rem 0}
.output_stderr{display:none}
.size{color:#666;font-size:.85rem}
"""


@dataclass
class Page:
    """One rendered page of the library and what it weighs."""

    workbook: str
    language: str
    title: str
    summary: str
    source: str
    path: str
    bytes: int = 0
    gzip_bytes: int = 0
    assets_bytes: int = 0
    other_languages: dict = field(default_factory=dict)

    @property
    def slow_link_seconds(self) -> float:
        """Seconds to fetch the page compressed, with its stylesheet, over :data:`SLOW_LINK_BPS`."""
        return self.gzip_bytes * 8 / SLOW_LINK_BPS


# ----------------------------------------------------------------------------------------- steps


def to_student(nb, page: Page):
    """Remove solutions and hidden tests, as a release to trainees does."""
    from atelier.workbook import student_version

    return student_version(nb)


def to_html(nb, page: Page) -> str:
    """The notebook's cells as an HTML fragment (nbconvert's ``basic`` template, no script)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="basic").from_notebook_node(nb)
    return body


_EXTERNAL_IMG = re.compile(r"<img\b[^>]*?\bsrc=[\"'](https?:)?//[^\"']*[\"'][^>]*>", re.I)
_EXTERNAL_SCRIPT = re.compile(
    r"<script\b[^>]*\bsrc=[\"'](https?:)?//[^\"']*[\"'][^>]*>\s*</script>", re.I
)
_EXTERNAL_LINK_TAG = re.compile(r"<link\b[^>]*\bhref=[\"'](https?:)?//[^\"']*[\"'][^>]*>", re.I)
# An attribute value in double or single quotes (the other quote may appear inside it).
_SRC = re.compile(r"""\bsrc=(?:"([^"]*)"|'([^']*)')""", re.I)
_ALT = re.compile(r"""\balt=(?:"([^"]*)"|'([^']*)')""", re.I)


def make_offline(fragment: str, page: Page) -> str:
    """Turn every resource from another machine into a plain link: the page loads nothing else.

    The image's address and text come from the notebook: they are read as HTML attribute values
    (entities decoded) and written back escaped, so an ``alt`` holding markup stays text.
    """

    def image_link(match: re.Match) -> str:
        tag = match.group(0)
        found = _SRC.search(tag)
        src = html.unescape(found.group(1) or found.group(2) or "")
        alt = _ALT.search(tag)
        alt = html.unescape(alt.group(1) or alt.group(2) or "") if alt else ""
        label = alt or src
        return str(
            pages.macro("atelier.public", "library-parts.html.j2", "link", src, f"[{label}]")
        )

    fragment = _EXTERNAL_IMG.sub(image_link, fragment)
    fragment = _EXTERNAL_SCRIPT.sub("", fragment)
    return _EXTERNAL_LINK_TAG.sub("", fragment)


def wrap_page(fragment: str, page: Page) -> str:
    """A whole HTML page around the fragment: language, title, shared stylesheet, navigation."""
    words = languages.words("atelier.public", "library", page.language)
    up = "../" * page.path.count("/")
    nav = [{"href": f"{up}index.html", "label": words["index"], "lang": ""}]
    for lang, href in sorted(page.other_languages.items()):
        label = words["other"] if lang != page.language else lang
        nav.append({"href": href, "label": label, "lang": lang})
    return pages.render(
        "atelier.public",
        "library-page.html.j2",
        language=page.language,
        title=page.title,
        up=up,
        nav=nav,
        # nbconvert's rendering of the student version, made offline: HTML Atelier produced.
        fragment=pages.trusted(fragment),
    )


#: What happens to each notebook, in order. The student version comes first: nothing after it may
#: see a solution. ``make_offline`` works on the fragment, before the page chrome (which is local).
PAGE_STEPS: list[Callable] = [to_student, to_html, make_offline, wrap_page]


# ------------------------------------------------------------------------------------ the library


def find_pages(workbooks_dir: Path) -> list[tuple[Path, Page]]:
    """Every workbook notebook under ``workbooks_dir`` and the page it becomes."""
    from atelier.workbook import FOLDER_NAME, metadata, read_notebook, workbook_notebooks

    found = []
    for folder in sorted(p for p in workbooks_dir.iterdir() if p.is_dir()):
        if not FOLDER_NAME.match(folder.name):
            continue
        versions = workbook_notebooks(folder)
        for lang, source in versions.items():
            meta = metadata(read_notebook(source))
            page = Page(
                workbook=folder.name,
                language=lang,
                title=meta.get("title") or source.stem,
                summary=meta.get("summary", ""),
                source=source.relative_to(workbooks_dir).as_posix(),
                path=f"{folder.name}/{source.stem}.html",
                other_languages={
                    other: f"{path.stem}.html" for other, path in versions.items() if other != lang
                },
            )
            found.append((source, page))
    if not found:
        raise AtelierError(
            f"{workbooks_dir}: no workbook found (folders named NN-id holding id.LANG.ipynb)"
        )
    return found


def render_page(source: Path, page: Page) -> str:
    """Run :data:`PAGE_STEPS` on one notebook."""
    from atelier.workbook import read_notebook

    value = read_notebook(source)
    for step in PAGE_STEPS:
        value = step(value, page)
    return value


def index_page(pages_: list[Page]) -> str:
    """The library's front page: each language's workbooks, with their size on a slow link."""
    words = {
        lang: languages.words("atelier.public", "library", lang) for lang in languages.LANGUAGES
    }
    sections = [
        {"lang": lang, "words": words[lang], "pages": [p for p in pages_ if p.language == lang]}
        for lang in languages.LANGUAGES
    ]
    return pages.render(
        "atelier.public",
        "library-index.html.j2",
        words=words,
        sections=[section for section in sections if section["pages"]],
    )


def stylesheet() -> str:
    """The one stylesheet every page shares: layout plus code highlighting colours."""
    from pygments.formatters import HtmlFormatter

    return STYLE + HtmlFormatter(style="default").get_style_defs(".highlight") + "\n"


def folder_bytes(folder: Path) -> int:
    """Total size of the files under ``folder``."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build_library(workbooks_dir: str | Path, out_dir: str | Path, log=None) -> list[Page]:
    """Render every workbook of ``workbooks_dir`` into ``out_dir`` (replaced whole).

    ``out_dir`` gets ``index.html``, ``library.css``, ``sizes.json`` (the size report) and a
    folder per workbook with its pages and its ``images/`` and ``data/``.
    """
    workbooks_dir, out_dir = Path(workbooks_dir), Path(out_dir)
    if not workbooks_dir.is_dir():
        raise AtelierError(f"{workbooks_dir}: workbooks folder not found; give --workbooks")
    sources = find_pages(workbooks_dir)
    with replacing_folder(out_dir) as building:
        css = stylesheet()
        (building / "library.css").write_text(css, "utf-8")
        css_gzip = len(gzip.compress(css.encode()))
        copied = {}
        for source, page in sources:
            if log:
                log(f"library: {page.source}")
            text = render_page(source, page)
            target = building / page.path
            target.parent.mkdir(parents=True, exist_ok=True)
            for name in ASSET_FOLDERS:
                asset = source.parent / name
                if asset.is_dir() and target.parent / name not in copied:
                    shutil.copytree(asset, target.parent / name)
                    copied[target.parent / name] = folder_bytes(asset)
            data = text.encode("utf-8")
            target.write_bytes(data)
            page.bytes = len(data)
            page.gzip_bytes = len(gzip.compress(data)) + css_gzip
            page.assets_bytes = sum(copied.get(target.parent / n, 0) for n in ASSET_FOLDERS)
        pages = [page for _, page in sources]
        (building / "index.html").write_text(index_page(pages), "utf-8")
        report = [{**asdict(p), "slow_link_seconds": round(p.slow_link_seconds, 2)} for p in pages]
        (building / "sizes.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return pages


def size_report(pages: list[Page]) -> str:
    """The size report as a table: each page's weight, compressed weight and time on a slow link."""
    rows = [
        f"{'page':<60} {'KiB':>6} {'gzip KiB':>9} {'s @256k':>8} {'assets KiB':>10}",
    ]
    for p in pages:
        rows.append(
            f"{p.path:<60} {p.bytes / 1024:>6.1f} {p.gzip_bytes / 1024:>9.1f} "
            f"{p.slow_link_seconds:>8.1f} {p.assets_bytes / 1024:>10.1f}"
        )
    return "\n".join(rows)
