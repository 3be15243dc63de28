"""The public apps server: Voila with a bounded number of kernels, and a "busy" page, not a failure.

Rule: the number of kernels (preheated ones included) never exceeds ``max_kernels``. A visitor who
would need one more gets a small bilingual page (HTTP 503, ``Retry-After``) that retries by itself,
before any byte of the app page is sent. Voila does the rest: it refuses ``execute_request`` from
the browser, strips sources, hides tracebacks, preheats kernels and serves widget JavaScript
locally; this module adds the bound, the refill of the pools when a culled kernel frees room, and a
light index page in place of the JupyterLab file tree.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.utils import url_path_join
from tornado import web
from traitlets import Integer
from voila.app import Voila
from voila.tornado.contentshandler import VoilaContentsHandler
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.treehandler import TornadoVoilaTreeHandler

from atelier import pages
from atelier.upstream import tornado as upstream_tornado
from atelier.upstream import voila as upstream_voila


class KernelLimitReached(Exception):
    """Every kernel slot is taken: the visitor should come back shortly."""


class BoundedKernelManager(AsyncMappingKernelManager):
    """A kernel manager starting no kernel beyond ``max_kernels``, refilling pools as room frees."""

    max_kernels = Integer(
        24,
        help="Most kernels alive at once, preheated included; more visitors see the busy page.",
    ).tag(config=True)

    busy_retry_after = Integer(
        10, help="Seconds after which the busy page tries again (its Retry-After header)."
    ).tag(config=True)

    _launching = 0

    def kernel_count(self) -> int:
        """Kernels alive or being started."""
        return len(self.list_kernel_ids()) + self._launching

    def has_room(self) -> bool:
        """Whether one more kernel may start now."""
        return self.kernel_count() < self.max_kernels

    async def start_kernel(self, *, kernel_id=None, path=None, **kwargs):
        """Start a kernel, or raise :class:`KernelLimitReached` when ``max_kernels`` are alive."""
        if kernel_id is None or kernel_id not in self:
            if not self.has_room():
                raise KernelLimitReached(f"{self.max_kernels} kernels are running")
            self._launching += 1
            try:
                return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
            finally:
                self._launching -= 1
        return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)

    async def shutdown_kernel(self, kernel_id, now=False, restart=False):
        """Shut a kernel down, then top the preheated pools up with the room it freed."""
        await super().shutdown_kernel(kernel_id, now=now, restart=restart)
        self.refill_pools()

    def ready_in_pool(self, notebook: str) -> bool:
        """Whether a preheated kernel for ``notebook`` is up or starting (drops failed ones)."""
        pool = upstream_voila.kernel_pools(self).get(notebook)
        if not pool:
            return False
        for task in list(pool):
            if task.done() and (task.cancelled() or task.exception() is not None):
                pool.remove(task)
        return bool(pool)

    def pooled_kernels(self, notebook: str) -> set[str]:
        """Ids of the started kernels waiting in ``notebook``'s pool."""
        ids = set()
        for task in upstream_voila.kernel_pools(self).get(notebook, []):
            if task.done() and not task.cancelled() and task.exception() is None:
                ids.add(task.result()["kernel_id"])
        return ids

    def touch(self, kernel_ids) -> None:
        """Count now as the last activity of ``kernel_ids`` (the idle culler's clock)."""
        now = datetime.now(UTC)
        for kernel_id in kernel_ids:
            if kernel_id in self:
                self.get_kernel(kernel_id).last_activity = now

    def refill_pools(self) -> None:
        """Start preheated kernels for pools that a full server left short (preheating only)."""
        fill = getattr(self, "fill_if_needed", None)
        if fill is None or not upstream_voila.pooling(self):
            return
        for notebook in list(upstream_voila.kernel_pools(self)):
            self.ready_in_pool(notebook)  # drop pool entries that failed for lack of room
            if self.has_room():
                fill(delay=0, notebook_name=notebook)


class AppPageHandler(TornadoVoilaHandler):
    """Voila's page handler, answering "busy, try again shortly" when no kernel can be had."""

    async def get(self, path=None):
        """Render the app, or the busy page if no preheated kernel and no room for one is left."""
        km = self.kernel_manager
        notebook = self.notebook_path or path
        if isinstance(km, BoundedKernelManager) and not (
            km.ready_in_pool(notebook) or km.has_room()
        ):
            return self.write_busy(km.busy_retry_after)
        pooled = km.pooled_kernels(notebook) if isinstance(km, BoundedKernelManager) else set()
        # Reading the token sets the ``_xsrf`` cookie: Voila's page takes it from the cookie for
        # the beacon that shuts its kernel down when the visitor leaves. Without it the beacon is
        # refused (403) and a departed visitor holds a kernel until the culler comes.
        self.xsrf_token  # noqa: B018
        try:
            async for html in self.get_generator(path=path):
                if pooled:
                    # A preheated kernel has been idle since it was preheated: restart its idle
                    # clock at hand-over, or the culler takes it before the visitor's page connects.
                    km.touch(pooled - km.pooled_kernels(notebook))
                    pooled = set()
                self.write(html)
                self.flush()
        except KernelLimitReached:
            if upstream_tornado.headers_written(self):
                raise
            self.clear()
            return self.write_busy(getattr(km, "busy_retry_after", 10))

    def write_busy(self, retry_after: int) -> None:
        """Answer 503 with the bilingual busy page, which retries after ``retry_after`` seconds."""
        self.set_status(503)
        self.set_header("Retry-After", str(retry_after))
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(pages.render("atelier.public", "apps-busy.html", retry_after=retry_after))


def app_title(notebook: Path) -> tuple[str, str]:
    """Title and language of an app notebook, from its ``metadata.atelier`` or its first heading."""
    data = json.loads(notebook.read_text("utf-8"))
    meta = data.get("metadata", {}).get("atelier", {})
    title = meta.get("title")
    if not title:
        for cell in data.get("cells", []):
            source = "".join(cell.get("source", ""))
            if cell.get("cell_type") == "markdown" and source.lstrip().startswith("#"):
                title = source.lstrip().splitlines()[0].lstrip("#").strip()
                break
    language = meta.get("language", "")
    return str(title or notebook.stem), language if isinstance(language, str) else ""


class AppsIndexHandler(JupyterHandler):
    """The list of apps: one small static page (no script, no font), not Voila's JupyterLab tree."""

    def initialize(self, root_dir: str):
        """Serve the apps found under ``root_dir``."""
        self.root_dir = Path(root_dir)

    def get(self, path=""):
        """List every app with a link to it, in both languages (sub-folders are not listed)."""
        if path.strip("/"):
            raise web.HTTPError(404)
        items = []
        for path in sorted(self.root_dir.rglob("*.ipynb")):
            rel = path.relative_to(self.root_dir).as_posix()
            title, lang = app_title(path)
            href = url_path_join(self.base_url, "voila/render", urllib.parse.quote(rel))
            items.append({"href": href, "title": title, "lang": lang, "path": rel})
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(pages.render("atelier.public", "apps-index.html", apps=items))


class AppsStatusHandler(JupyterHandler):
    """Kernel counts and pool readiness as JSON, for monitoring and benchmarks (no notebook)."""

    def get(self):
        """Answer with the kernels alive, the bound, and per app the preheated pages ready."""
        km = self.kernel_manager
        pools = {}
        for notebook, pool in upstream_voila.kernel_pools(km).items():
            ready = 0
            for task in pool:
                if task.done() and not task.cancelled() and task.exception() is None:
                    ready += task.result()["task"].done()
            pools[notebook] = {"size": len(pool), "rendered": ready}
        status = {"kernels": km.kernel_count(), "max_kernels": km.max_kernels, "pools": pools}
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(status))


class AppsVoila(Voila):
    """Voila serving one directory of app notebooks: bounded pages, a static index, no tree API."""

    name = "atelier-apps"

    def init_handlers(self):
        """Voila's handlers, the page handler swapped for the bounded one, the tree for an index."""
        from atelier.slowlink import enable_compression

        enable_compression(self.app)  # visitors on slow links (see slowlink.py)
        handlers = []
        for spec in super().init_handlers():
            handler = spec[1] if len(spec) > 1 else None
            if handler is TornadoVoilaHandler:
                spec = (spec[0], AppPageHandler, *spec[2:])
            elif handler is TornadoVoilaTreeHandler:
                spec = (spec[0], AppsIndexHandler, {"root_dir": self.root_dir})
            elif handler is VoilaContentsHandler:
                continue  # only the JupyterLab tree used it; no listing API for visitors
            handlers.append(spec)
        handlers.append((url_path_join(self.server_url, "/atelier/status"), AppsStatusHandler))
        return handlers
