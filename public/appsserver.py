"""The public apps server: Voila with a bounded number of kernels, and a line, not a failure.

Rule: the number of kernels (preheated ones included) never exceeds ``max_kernels``. A visitor who
would need one more gets a small bilingual waiting page (HTTP 503, ``Retry-After``), before any
byte of the app page is sent: it holds their place in a first-come-first-served line
(``waitingroom.py``, a ticket in a signed cookie), says their position and the estimated wait,
and asks again by itself; a free kernel goes to the front of the line. Voila does the rest: it
refuses ``execute_request`` from the browser, strips sources, hides tracebacks, preheats kernels
and serves widget JavaScript locally; this module adds the bound, the line, the refill of the pools
when a culled kernel frees room, and a light index page in place of the JupyterLab file tree.
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
from traitlets import Instance, Integer
from voila.app import Voila
from voila.tornado.contentshandler import VoilaContentsHandler
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.treehandler import TornadoVoilaTreeHandler

from atelier import pages
from atelier.languages import words
from atelier.public.waitingroom import WaitingRoom, minutes
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
        3,
        help="Seconds after which the waiting page asks again, at the front of the line (its "
        "Retry-After); further back, up to 30 s.",
    ).tag(config=True)

    max_waiting = Integer(
        2000,
        help="Most visitors holding a place in the line; further ones are asked to come back "
        "later without a place (bounds the memory of the line).",
    ).tag(config=True)

    waiting_room = Instance(WaitingRoom, help="The line of visitors waiting for a kernel.")

    _launching = 0
    #: Visitors let in whose kernel is not taken yet (their page has sent no byte yet).
    _reserved = 0

    def _waiting_room_default(self):
        return WaitingRoom(capacity=self.max_waiting, retry=self.busy_retry_after)

    def free_for(self, notebook: str) -> int:
        """How many more visitors of ``notebook`` can get a kernel now.

        The room left under ``max_kernels``, plus the preheated kernels of its pool (already
        counted in the kernels alive, and theirs to take), less the visitors let in whose page has
        not taken its kernel yet.
        """
        self.ready_in_pool(notebook)  # drop entries that failed for lack of room
        pooled = len(upstream_voila.kernel_pools(self).get(notebook, []))
        room = max(0, self.max_kernels - self.kernel_count())
        return room + pooled - self._reserved

    def reserve(self) -> None:
        """Count a visitor let in whose page has not taken its kernel yet (see free_for)."""
        self._reserved += 1

    def release(self) -> None:
        """The visitor's page took its kernel, or gave up: their reservation ends."""
        self._reserved -= 1

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
    """Voila's page handler, keeping visitors in line while no kernel can be had."""

    #: Whether this request still counts as a reservation (let in, no kernel taken yet).
    _reservation_held = True

    async def get(self, path=None):
        """Render the app, or the waiting page while every kernel is taken (the line's rules)."""
        km = self.kernel_manager
        if not isinstance(km, BoundedKernelManager):
            return await self.render_app(km, path, set())
        notebook = self.notebook_path or path
        ticket = self.get_cookie(TICKET_COOKIE)
        verdict = km.waiting_room.arrive(ticket, km.free_for(notebook))
        if not verdict.admitted:
            return self.write_busy(verdict)
        # Held until the page has taken its kernel (its first byte): a visitor let in meanwhile
        # must not count on the same kernel.
        km.reserve()
        try:
            await self.render_app(km, path, km.pooled_kernels(notebook))
        except KernelLimitReached:
            if upstream_tornado.headers_written(self):
                raise
            # Another start (a pool refilling) took the last room first: back to this
            # visitor's place, at the front if they had waited (a newcomer: at the back).
            if verdict.ticket:
                km.waiting_room.give_back(verdict.ticket)
            self.clear()
            return self.write_busy(km.waiting_room.arrive(verdict.ticket or None, 0))
        finally:
            if self._reservation_held:
                km.release()

    async def render_app(self, km, path, pooled: set[str]) -> None:
        """Voila's rendering, streamed; the first byte releases this visitor's reservation."""
        notebook = self.notebook_path or path
        # Reading the token sets the ``_xsrf`` cookie: Voila's page takes it from the cookie for
        # the beacon that shuts its kernel down when the visitor leaves. Without it the beacon is
        # refused (403) and a departed visitor holds a kernel until the culler comes.
        self.xsrf_token  # noqa: B018
        async for html in self.get_generator(path=path):
            if self._reservation_held and isinstance(km, BoundedKernelManager):
                # The kernel is started or taken from the pool before Voila's first chunk.
                km.release()
                self._reservation_held = False
            if pooled:
                # A preheated kernel has been idle since it was preheated: restart its idle
                # clock at hand-over, or the culler takes it before the visitor's page connects.
                km.touch(pooled - km.pooled_kernels(notebook))
                pooled = set()
            self.write(html)
            self.flush()

    def write_busy(self, verdict) -> None:
        """Answer 503 with the bilingual waiting page: the visitor's place, the wait, a retry."""
        if verdict.ticket:
            # The place in the line: HttpOnly (no script needs it), only for the apps' pages.
            self.set_cookie(
                TICKET_COOKIE, verdict.ticket, path=self.base_url, httponly=True, samesite="Lax"
            )
        self.set_status(503)
        self.set_header("Retry-After", str(verdict.retry))
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        place = None if verdict.position is None else verdict.position + 1
        self.finish(
            pages.render(
                "atelier.public",
                "apps-busy.html",
                retry=verdict.retry,
                place=place,
                minutes=minutes(verdict.wait),
                en=words("atelier.public", "wait", "en"),
                fr=words("atelier.public", "wait", "fr"),
            )
        )


#: The cookie holding a waiting visitor's ticket (their place in the line).
TICKET_COOKIE = "atelier-apps-place"


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
        """Answer with the kernels, the bound, the visitors in line, per app the pages ready."""
        km = self.kernel_manager
        pools = {}
        for notebook, pool in upstream_voila.kernel_pools(km).items():
            ready = 0
            for task in pool:
                if task.done() and not task.cancelled() and task.exception() is None:
                    ready += task.result()["task"].done()
            pools[notebook] = {"size": len(pool), "rendered": ready}
        status = {"kernels": km.kernel_count(), "max_kernels": km.max_kernels, "pools": pools}
        if isinstance(km, BoundedKernelManager):
            status["waiting"] = len(km.waiting_room)
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
