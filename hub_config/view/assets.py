"""The workbook view's code at versioned URLs: cached for good, brotli, MathJax only for math.

Rule: on a 1 Mbit/s link a trainee pays once for the view's code and never asks for it again
(``docs/slow-links.md``). Voila serves its own chunks (``/voila/static/9484.voila.js``: names
without a content hash) with no cache header at all, and the widgets' lab extensions
``no-cache`` (a round trip of 300 ms each at every visit). The view's pages point Voila's
front end (its ``fullStaticUrl`` and ``fullLabextensionsUrl``) at ``/atelier/assets/<version>/``
instead, where :class:`StaticAssetHandler` and :class:`LabextensionAssetHandler` serve the same
files, ``immutable`` for a year: ``<version>`` changes whenever Voila or one of the view's lab
extensions does (:func:`asset_version`), so a new install is new URLs. Each file goes out as the
brotli copy ``atelier install`` made (``slowlink.precompress``, :func:`asset_roots`), or gzipped
by the server when there is none.

MathJax (134 kB compressed, five requests) is loaded by Voila's front end on every page, math or
not: :func:`page_config` leaves its URL out when no cell of the workbook holds math, so the
typesetter is not started (its plugin logs that it has no URL; the page renders without it).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import nbformat
from jupyter_server.base.handlers import FileFindHandler
from jupyter_server.utils import url_path_join
from tornado import web

from atelier import slowlink
from atelier.hub_config.view import workbook

#: The key of the server's tornado settings where :func:`setup` leaves the asset folders.
SETTINGS_KEY = "atelier_view_assets"
#: What marks TeX in a cell: MathJax's delimiters (``$...$``, ``\\(...\\)``, ``\\[...\\]``) and
#: environments. Kept broad: a false "math" costs the trainee MathJax, a missed one shows raw TeX.
MATH_MARKS = ("$", "\\(", "\\[", "\\begin{")
CACHE_CONTROL = f"public, max-age={slowlink.IMMUTABLE_MAX_AGE}, immutable"


def static_roots() -> list[str]:
    """Voila's static folders for the view's template (its chunks, in the template chain)."""
    from voila.paths import collect_static_paths

    return collect_static_paths(["voila", "nbconvert"], workbook.TEMPLATE)


def labextension_roots() -> list[str]:
    """The folders Voila looks up lab extensions in (Jupyter's, then Voila's own)."""
    from voila.utils import get_voila_labextensions_path

    return get_voila_labextensions_path()


def extension_folders(roots: list[str] | None = None) -> list[Path]:
    """The folders of the view's lab extensions (``workbook.EXTENSIONS``), first found of each."""
    roots = labextension_roots() if roots is None else roots
    found = []
    for name in workbook.EXTENSIONS:
        for root in roots:
            if (Path(root) / name / "package.json").is_file():
                found.append(Path(root) / name)
                break
    return found


def asset_roots() -> list[Path]:
    """Every folder whose text files ``atelier install`` compresses for the view."""
    return [Path(p) for p in static_roots()] + extension_folders()


def asset_version(folders: list[Path] | None = None) -> str:
    """A short hash of Voila's version and each view lab extension's: part of every asset URL."""
    import voila

    folders = extension_folders() if folders is None else folders
    versions = {"voila": voila.__version__}
    for folder in folders:
        package = json.loads((folder / "package.json").read_text("utf-8"))
        versions[package.get("name", folder.name)] = package.get("version", "")
    return hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()[:12]


def has_math(notebook) -> bool:
    """Whether any cell of ``notebook`` (Markdown or the code that builds a widget) holds TeX."""
    return any(mark in cell.get("source", "") for cell in notebook.cells for mark in MATH_MARKS)


def asset_urls(base_url: str, version: str) -> dict[str, str]:
    """The page config entries that point Voila's front end at the view's asset routes."""
    root = url_path_join(base_url, "atelier", "assets", version)
    return {
        "fullStaticUrl": url_path_join(root, "static"),
        "fullLabextensionsUrl": url_path_join(root, "labextensions"),
    }


def page_config(current: dict, base_url: str, settings: dict, notebook_path: str, **_) -> dict:
    """Voila's ``page_config_hook`` for the view: asset URLs, and MathJax only for math.

    Voila's front end loads the typesetter named by ``fullMathjaxUrl`` at start; with an empty
    URL its MathJax plugin does not start and nothing is loaded.
    """
    config = {**current, **asset_urls(base_url, settings[SETTINGS_KEY]["version"])}
    root = Path(os.path.expanduser(settings.get("server_root_dir", "."))).resolve()
    try:
        notebook = nbformat.read(root / notebook_path, as_version=4)
    except (OSError, ValueError):
        return config  # Voila reports the notebook's problem itself
    if not has_math(notebook):
        config["fullMathjaxUrl"] = ""
        config["mathjaxConfig"] = ""
    return config


def setup(serverapp) -> None:
    """Find the view's asset folders and version once, and hook the asset URLs into its pages.

    Runs after ``workbook.setup``, which puts the view's template on ``JUPYTER_PATH``.
    """
    folders = extension_folders()
    serverapp.web_app.settings[SETTINGS_KEY] = {
        "version": asset_version(folders),
        "static": static_roots(),
        "labextensions": labextension_roots(),
    }
    serverapp.web_app.settings[workbook.SETTINGS_KEY][
        "voila_configuration"
    ].page_config_hook = page_config


class AssetHandler(FileFindHandler):
    """One of the view's assets: the brotli copy if the browser takes it, cached for a year."""

    #: Which folders of :func:`setup`'s settings this handler serves from.
    kind = ""
    #: Its own cache of looked-up files (FileFindHandler's is keyed by the URL's path alone).
    _static_paths: dict[str, str] = {}

    def initialize(self):
        """Serve from the folders :func:`setup` found."""
        super().initialize(path=self.settings[SETTINGS_KEY][self.kind])

    def set_headers(self) -> None:
        """Immutable: the URL carries :func:`asset_version`."""
        super().set_headers()
        self.set_header("Cache-Control", CACHE_CONTROL)

    @web.authenticated
    async def get(self, version: str, path: str, include_body: bool = True):
        """Send the file ``path`` (any ``version``: a page older than an upgrade still loads)."""
        self.path = self.parse_url_path(path)
        found = self.get_absolute_path(self.root, self.path)
        absolute = self.validate_absolute_path(self.root, found)
        if absolute is None:
            return
        if include_body and slowlink.send_precompressed(self, Path(absolute), CACHE_CONTROL):
            return
        await super().get(path, include_body)

    @web.authenticated
    async def head(self, version: str, path: str):
        """The headers of :meth:`get`."""
        await self.get(version, path, include_body=False)


class StaticAssetHandler(AssetHandler):
    """Voila's front end: ``voila.js`` and its chunks."""

    kind = "static"
    _static_paths: dict[str, str] = {}


class LabextensionAssetHandler(AssetHandler):
    """The view's lab extensions (ipywidgets' controls, Voila's widget manager) and their chunks."""

    kind = "labextensions"
    _static_paths: dict[str, str] = {}


#: The asset routes (relative to the server's base URL), added by the extension.
ROUTE = r"/atelier/assets/(?P<version>[0-9a-f]+)"
HANDLERS = [
    (ROUTE + r"/static/(?P<path>.+)", StaticAssetHandler),
    (ROUTE + r"/labextensions/(?P<path>.+)", LabextensionAssetHandler),
]
