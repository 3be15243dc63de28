"""Serving on a slow link: every response compressed, hashed assets cached for good, less to load.

The rule: a trainee on a 1 Mbit/s metered link pays once for what does not change, and never for
what Atelier does not use. Three levers, each a pure function returning the settings to apply:

- **Compression.** Tornado's ``compress_response`` gzips text responses (HTML, JS, CSS, JSON, SVG)
  in the hub (:func:`hub_tornado_settings`), the trainees' servers (this module as a server
  extension, :func:`_load_jupyter_server_extension`)
  and Voila (:func:`voila_tornado_settings`: public apps and the dashboard).
  configurable-http-proxy passes bodies through unchanged, so compression happens at the source.
- **Caching.** JupyterLab's own assets (``/static/lab``) and the ``static/`` folders of lab
  extensions have content-hashed names; jupyterlab_server already serves them ``immutable``.
  Voila serves the same extension files ``no-cache``: its ``/voila/labextensions/*/static/`` paths
  are made immutable too. Pages and API answers stay uncached (they change).
- **Compressed once, at install.** Brotli at its highest quality shrinks JavaScript ~15% more than
  tornado's gzip, but costs ~2 CPU-s per MB: too much for a trainee's server to pay per visit.
  :func:`precompress` (run by ``atelier install``, as root) writes a ``.br`` copy of each text
  asset of the given folders under :func:`precompressed_dir`; :func:`send_precompressed` serves
  it to a browser that accepts ``br`` (every current browser does over HTTPS, Chromium on loopback),
  and any other client gets tornado's gzip as before.
- **Less to load.** :data:`DISABLED_EXTENSIONS` are JupyterLab plugins trainees have no use for
  (terminal, debugger, consoles, extension manager, plugin manager, news...): they are not
  activated, so neither their lazily loaded code nor their start-up API calls (terminals, news,
  extension listings) are paid for. Kept: the notebook, ipywidgets' manager, translation and the
  French language pack, nbgrader's assignment list and validate button, the file browser, Markdown
  and MathJax.

A trainee's server gets these settings from the config directory :data:`SERVER_CONFIG_DIR`
(``jupyter_server_config.d/atelier-slowlink.json`` enabling this module as a server extension, and
``labconfig/page_config.d/atelier-slowlink.json``),
named by ``JUPYTER_CONFIG_PATH`` in the spawner's environment (:func:`apply_hub`). The prefix's
own configuration is left stock, so a benchmark's stock baseline running from the same Python
environment stays stock.
"""

from __future__ import annotations

import json
import mimetypes
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

#: The package-data config directory a trainee's server reads (via ``JUPYTER_CONFIG_PATH``).
SERVER_CONFIG_DIR = Path(__file__).resolve().parent / "share" / "slowlink"

#: One year: how long a browser may keep a content-hashed asset without asking again.
IMMUTABLE_MAX_AGE = 31536000
#: The files :func:`precompress` compresses: text a page loads (fonts and images are compressed
#: already or not loaded by the pages that use this).
PRECOMPRESSED_SUFFIXES = (".js", ".css", ".svg", ".json")
#: Brotli's highest quality (slow to compress, as fast as any to decompress) and largest window.
BROTLI_QUALITY = 11
BROTLI_WINDOW = 24

#: JupyterLab plugins (or whole core extension packages) a trainee never uses.
DISABLED_EXTENSIONS = (
    # Code tools trainees in a teaching course do not need.
    "@jupyterlab/terminal-extension",
    "@jupyterlab/debugger-extension",
    "@jupyterlab/console-extension",
    "@jupyterlab/inspector-extension",
    "@jupyterlab/logconsole-extension",
    "@jupyterlab/lsp-extension",
    # Administration and internet-facing features: nothing to install, no news to fetch.
    "@jupyterlab/extensionmanager-extension",
    "@jupyterlab/pluginmanager-extension",
    "@jupyterlab/apputils-extension:announcements",
    # Viewers for formats the workbooks do not ship.
    "@jupyterlab/vega5-extension",
    "@jupyterlab/pdf-extension",
    "@jupyterlab/csvviewer-extension",
    # Other front ends and tools whose buttons would only confuse ("Open in Notebook", Voila
    # preview): the workbooks open in JupyterLab; public apps are served by `atelier apps`.
    "@jupyter-notebook/lab-extension",
    "@voila-dashboards/jupyterlab-preview",
)
# nbgrader's authoring and grading plugins are turned off by the grading room
# (``atelier.grading.hubconfig.LAB_PLUGINS_OFF``); its assignment list and validate button stay.

#: Prefixes of plugins that must stay enabled whatever :data:`DISABLED_EXTENSIONS` says.
REQUIRED_EXTENSIONS = (
    "@jupyterlab/notebook-extension",
    "@jupyter-widgets/jupyterlab-manager",
    "@jupyterlab/translation-extension",
    "@jupyter/nbgrader:assignment-list",
    "@jupyter/nbgrader:validate-assignment",
    "@jupyterlab/filebrowser-extension",
    "@jupyterlab/markdownviewer-extension",
    "@jupyterlab/mathjax-extension",
    "@jupyterlab/hub-extension",
)


def compression_settings() -> dict:
    """Tornado settings gzipping every text response (tornado skips bodies under 1 kB)."""
    return {"compress_response": True}


def hub_tornado_settings(current: Mapping | None = None) -> dict:
    """``JupyterHub.tornado_settings``: ``current`` with compression on.

    The hub's own static files are served with ``?v=<hash>`` URLs, which tornado already caches
    for ten years.
    """
    return {**(current or {}), **compression_settings()}


def voila_immutable_paths(base_url: str, extensions: Iterable[str]) -> list[str]:
    """URL prefixes of Voila's lab-extension assets whose file names carry a content hash."""
    base = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
    return [f"{base}voila/labextensions/{name}/static/" for name in extensions]


def installed_labextensions(paths: Iterable[str | Path]) -> list[str]:
    """Names of the federated lab extensions (``@scope/name`` or ``name``) found in ``paths``."""
    names = set()
    for root in map(Path, paths):
        for package in root.glob("**/package.json"):
            if package.parent.parent == root or package.parent.parent.parent == root:
                names.add(package.parent.relative_to(root).as_posix())
    return sorted(names)


def voila_tornado_settings(base_url: str = "/", current: Mapping | None = None) -> dict:
    """``Voila.tornado_settings``: compression on, hashed extension assets immutable."""
    from jupyter_core.paths import jupyter_path

    extensions = installed_labextensions(jupyter_path("labextensions"))
    settings = {**(current or {}), **compression_settings()}
    settings["static_immutable_cache"] = sorted(
        {
            *settings.get("static_immutable_cache", []),
            *voila_immutable_paths(base_url, extensions),
        }
    )
    return settings


def page_config() -> dict:
    """The page config (``disabledExtensions``) of a trainee's server."""
    return {"disabledExtensions": {name: True for name in DISABLED_EXTENSIONS}}


def _jupyter_server_extension_points() -> list[dict]:
    """This module is also a Jupyter server extension: a trainee's server enables it."""
    return [{"module": "atelier.slowlink"}]


def _load_jupyter_server_extension(serverapp) -> None:
    """Gzip every text response of a trainee's server (tornado's ``compress_response``).

    Set on the running application, not through ``ServerApp.tornado_settings`` in a config file:
    jupyterhub-singleuser breaks (``KeyError: 'hub_auth'`` on every page) when that trait is
    configured. Tornado builds each response's transforms from this list, so adding it after
    start-up takes effect at once.
    """
    enable_compression(serverapp.web_app)
    serverapp.log.info("atelier: responses are compressed (slow-link settings)")


def enable_compression(web_app) -> None:
    """Gzip the text responses of a running tornado application (once).

    Tornado reads ``compress_response`` only when the application is built; Voila applies its
    ``tornado_settings`` after that, so its servers call this from ``init_handlers``.
    """
    from tornado.web import GZipContentEncoding

    if GZipContentEncoding not in web_app.transforms:
        web_app.add_transform(GZipContentEncoding)


def server_config() -> dict:
    """``jupyter_server_config.d/atelier-slowlink.json`` of a trainee's server."""
    return {"ServerApp": {"jpserver_extensions": {"atelier.slowlink": True}}}


def apply(c, settings: Mapping | None = None) -> None:
    """The hub plugin, run by ``config.apply_plugins`` after grading (which sets the path)."""
    apply_hub(c)


def apply_hub(c) -> None:
    """Set the hub: compressed hub pages; trainees' servers also read :data:`SERVER_CONFIG_DIR`."""
    current = c.JupyterHub.tornado_settings if "tornado_settings" in c.JupyterHub else {}
    c.JupyterHub.tornado_settings = hub_tornado_settings(current)
    environment = dict(c.Spawner.environment) if "environment" in c.Spawner else {}
    paths = [p for p in environment.get("JUPYTER_CONFIG_PATH", "").split(":") if p]
    if str(SERVER_CONFIG_DIR) not in paths:
        paths.insert(0, str(SERVER_CONFIG_DIR))
    environment["JUPYTER_CONFIG_PATH"] = ":".join(paths)
    c.Spawner.environment = environment


def apply_voila(c, base_url: str = "/") -> None:
    """Set a Voila server (public apps, dashboard): compressed, hashed assets cached for good."""
    c.Voila.tornado_settings.update(voila_tornado_settings(base_url))


def page_config_file() -> Path:
    """The page config drop-in shipped in :data:`SERVER_CONFIG_DIR` (merged with others')."""
    return SERVER_CONFIG_DIR / "labconfig" / "page_config.d" / "atelier-slowlink.json"


def server_config_file() -> Path:
    """The server config drop-in shipped in :data:`SERVER_CONFIG_DIR`."""
    return SERVER_CONFIG_DIR / "jupyter_server_config.d" / "atelier-slowlink.json"


def render_server_config() -> str:
    """The text :func:`server_config_file` must hold (a unit test keeps them equal)."""
    return json.dumps(server_config(), indent=2) + "\n"


def render_page_config() -> str:
    """The text :func:`page_config_file` must hold (a unit test keeps them equal)."""
    return json.dumps(page_config(), indent=2) + "\n"


def precompressed_dir(prefix: str | Path = sys.prefix) -> Path:
    """Where ``atelier install`` keeps the brotli copies of the environment's assets."""
    return Path(prefix) / "share" / "atelier" / "precompressed"


def precompressed_path(source: Path, into: Path | None = None) -> Path:
    """Where the brotli copy of ``source`` lives under ``into``: its absolute path plus ``.br``."""
    into = precompressed_dir() if into is None else into
    relative = Path(os.path.abspath(source)).relative_to("/")
    return into / relative.with_name(relative.name + ".br")


def fresh_precompressed(source: Path, into: Path | None = None) -> Path | None:
    """The brotli copy of ``source`` if it was made from the file as it is now, else None.

    A copy carries its file's modification time (:func:`precompress` sets it): a package
    upgraded after ``atelier install`` changes its files' times, and their copies are then not
    used (the file is gzipped on the fly) until the next install writes them again.
    """
    copy = precompressed_path(source, into)
    try:
        return copy if copy.stat().st_mtime_ns == Path(source).stat().st_mtime_ns else None
    except OSError:
        return None


def precompress(roots: Iterable[str | Path], into: Path | None = None) -> int:
    """Write a brotli copy of every text asset under ``roots`` that has none or an older one.

    Idempotent (a second run writes nothing); each copy is written to a temporary file, then
    renamed, so a server never reads half a copy. Returns the number of copies written.
    """
    import brotli

    into = precompressed_dir() if into is None else into
    written = 0
    for root in {Path(r).resolve() for r in roots if Path(r).is_dir()}:
        for source in sorted(root.rglob("*")):
            if source.suffix not in PRECOMPRESSED_SUFFIXES or not source.is_file():
                continue
            if fresh_precompressed(source, into):
                continue
            copy = precompressed_path(source, into)
            copy.parent.mkdir(parents=True, exist_ok=True)
            body = brotli.compress(source.read_bytes(), quality=BROTLI_QUALITY, lgwin=BROTLI_WINDOW)
            with tempfile.NamedTemporaryFile(dir=copy.parent, delete=False) as handle:
                handle.write(body)
            os.chmod(handle.name, 0o644)
            made_from = source.stat()
            os.utime(handle.name, ns=(made_from.st_atime_ns, made_from.st_mtime_ns))
            os.replace(handle.name, copy)
            written += 1
    if into.exists():
        for folder in (into, *[p for p in into.rglob("*") if p.is_dir()]):
            os.chmod(folder, 0o755)
    return written


def accepts_brotli(accept_encoding: str | None) -> bool:
    """Whether a request's ``Accept-Encoding`` header admits ``br`` (and not with ``q=0``)."""
    for part in (accept_encoding or "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() == "br":
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def send_precompressed(handler, source: Path, cache_control: str, into: Path | None = None) -> bool:
    """Answer ``handler``'s GET with the brotli copy of ``source``, if it has one and may use it.

    Returns False (nothing sent) when the browser does not accept ``br`` or no fresh copy
    exists: the caller then serves the file as usual (tornado gzips it). The response says
    ``Vary: Accept-Encoding`` either way, so a shared cache never hands one to the other.
    """
    handler.add_header("Vary", "Accept-Encoding")
    if not accepts_brotli(handler.request.headers.get("Accept-Encoding")):
        return False
    copy = fresh_precompressed(source, into)
    if copy is None:
        return False
    body = copy.read_bytes()
    kind, _ = mimetypes.guess_type(str(source))
    handler.set_header("Content-Type", kind or "application/octet-stream")
    handler.set_header("Content-Encoding", "br")
    handler.set_header("Cache-Control", cache_control)
    handler.set_header("Content-Length", len(body))
    handler.finish(body)
    return True
