"""Voila: preheated kernel pools, shared compiled templates, pages that end on errors.

Written against voila 0.5.13 (nbconvert 7.17, Jinja2 3.1).

Private thing relied on: the kernel manager ``voila_kernel_manager_factory`` makes
(``VoilaKernelManager``) keeps its preheated kernels in ``_pools``: a dict from notebook path to a
list of asyncio tasks, each resolving to a dict with ``kernel_id`` and ``task`` (the page render
running in that kernel). ``fill_if_needed(delay=..., notebook_name=...)`` (public) tops a pool up.

Why: the public apps server (``public/appsserver.py``) bounds the number of kernels, preheated
included. It must know whether a pool has a kernel ready for a visitor, which kernels are pooled
(to restart their idle clock at hand-over), drop pool entries that failed for lack of room, and
report pool readiness; Voila offers only ``get_pool_size``, which counts failed entries too.

Second patch, :func:`share_compiled_templates`: what it replaces is public (the exporter's
``environment`` property, Jinja's ``Environment.bytecode_cache`` and ``BytecodeCache`` API), but it
replaces it on Voila's class for the whole process. Voila makes a new ``VoilaExporter`` for every
page, whose new Jinja environment compiles the page's whole template chain again (nbconvert's base,
lab, the view's: ~50 ms of CPU of a ~0.3 CPU-s view render here); with the patch, every exporter of
the process reuses the code compiled the first time (Jinja checks each template's source against
its checksum, so an edited template is compiled again).
"""

from __future__ import annotations

import threading

import jinja2


def kernel_pools(kernel_manager) -> dict:
    """Each notebook's preheated pool (a list of tasks), or ``{}`` when pooling is off.

    The dict itself: removing a failed task from a pool's list drops it from Voila's pool.
    """
    pools = getattr(kernel_manager, "_pools", None)
    return {} if pools is None else pools


def pooling(kernel_manager) -> bool:
    """Whether ``kernel_manager`` preheats kernels (a Voila pooling manager)."""
    return getattr(kernel_manager, "_pools", None) is not None


# -- A page whose render raises ends, with a sentence, instead of hanging ------------------------
#
# Written against voila 0.5.13. Private behaviour worked around: for a page rendered on request
# (no preheated kernel), ``VoilaHandler.get_generator`` runs the render in a task of its own
# (``put_html``, started with ``asyncio.ensure_future`` and never awaited) that feeds a queue,
# and ends the page when the task queues ``None`` after the last snippet. When the render raises
# (a kernel that never answers ``kernel_info`` within ``startup_timeout``, a template error), the
# task dies, ``None`` never comes, and the handler sends its keep-alive heartbeat forever: the
# person sees a page that never finishes and the exception is only logged, if ever, when the task
# is collected. Wrapping the public ``NotebookRenderer.generate_content_generator`` makes a
# failing render log the error and yield a last snippet, so the generator ends normally and the
# page ends with it.

#: What the last snippet says when no sentence is configured (``cell_error_instruction``).
PAGE_ERROR = "This page cannot be shown right now. Please reload it in a moment."


def end_pages_on_render_errors() -> None:
    """Make every Voila page of this process end with a sentence when its render raises.

    The sentence is the renderer's ``VoilaExecutor.cell_error_instruction`` when configured (each
    room sets its own, in the page's language), else :data:`PAGE_ERROR`; the error and the
    notebook are logged. Idempotent.
    """
    from voila.notebook_renderer import NotebookRenderer

    original = NotebookRenderer.generate_content_generator
    if getattr(original, "ends_pages_on_errors", False):
        return

    def generate_content_generator(self, kernel_id=None, kernel_future=None):
        return _ending_on_error(self, original(self, kernel_id, kernel_future), kernel_id)

    generate_content_generator.ends_pages_on_errors = True
    generate_content_generator.__doc__ = original.__doc__
    NotebookRenderer.generate_content_generator = generate_content_generator


def pages_always_end() -> None:
    """Both patches every Voila room of Atelier needs for its pages to end. Idempotent.

    A render that raises ends with the room's sentence (:func:`end_pages_on_render_errors`), and
    a cell's reply that pyzmq never announced is still read
    (:func:`atelier.upstream.jupyter_client.bounded_channel_waits`).
    """
    from atelier.upstream.jupyter_client import bounded_channel_waits

    end_pages_on_render_errors()
    bounded_channel_waits()


async def _ending_on_error(renderer, snippets, kernel_id):
    """Yield ``snippets``; if they raise, log it and yield the closing sentence instead."""
    try:
        async for item in snippets:
            yield item
    except Exception:
        # Cancellation and generator closing are BaseExceptions: they pass through untouched.
        renderer.log.exception(
            "The page of %s could not be rendered (kernel %s); it ends with a sentence",
            getattr(renderer, "notebook_path", "?"),
            kernel_id,
        )
        await _shut_down(renderer, kernel_id)
        yield _closing_snippet(renderer), {}


async def _shut_down(renderer, kernel_id) -> None:
    """Shut down the kernel of a failed page rendered on request (nothing will connect to it)."""
    from jupyter_core.utils import ensure_async

    manager = getattr(getattr(renderer, "request_handler", None), "kernel_manager", None)
    if manager is None or kernel_id is None or kernel_id not in manager:
        return
    try:
        await ensure_async(manager.shutdown_kernel(kernel_id, now=True))
    except Exception:  # the page must still end; the culler takes a kernel left behind
        renderer.log.warning("Could not shut down kernel %s of a failed page", kernel_id)


def _closing_snippet(renderer) -> str:
    """The HTML that ends a failed page: the configured sentence, escaped, as an alert."""
    import html

    sentence = PAGE_ERROR
    config = getattr(renderer, "traitlet_config", None)
    if config is not None and "VoilaExecutor" in config:
        sentence = config.VoilaExecutor.get("cell_error_instruction", sentence) or sentence
    return (
        '<div class="atelier-page-error" role="alert" '
        'style="margin:1em;padding:1em;border:2px solid #b00020;font-size:1.1em">'
        f"{html.escape(str(sentence))}</div>\n"
    )


class CompiledTemplates(jinja2.BytecodeCache):
    """Jinja's compiled template code, kept in memory for every environment of one configuration.

    Keyed by template and environment options that change the compiled code (async or not, the
    extensions, the block options): one Voila exporter's code never serves another kind of
    environment. Jinja compares each template's source checksum before using what is here.
    """

    def __init__(self):
        self.codes: dict[tuple, tuple[str, object]] = {}
        self.lock = threading.Lock()

    @staticmethod
    def _key(bucket) -> tuple:
        env = bucket.environment
        options = (env.is_async, tuple(sorted(env.extensions)), env.trim_blocks, env.lstrip_blocks)
        return (bucket.key, options)

    def load_bytecode(self, bucket) -> None:
        """Give ``bucket`` the code compiled before for its template, if its source is the same."""
        with self.lock:
            found = self.codes.get(self._key(bucket))
        if found is not None and found[0] == bucket.checksum:
            bucket.code = found[1]

    def dump_bytecode(self, bucket) -> None:
        """Keep the code Jinja has just compiled for ``bucket``'s template."""
        with self.lock:
            self.codes[self._key(bucket)] = (bucket.checksum, bucket.code)


def share_compiled_templates() -> CompiledTemplates:
    """Make every ``VoilaExporter`` of this process reuse the templates compiled before (once).

    Returns the shared cache (the same one at every call).
    """
    from voila.exporter import VoilaExporter

    current = VoilaExporter.__dict__["environment"]
    shared = getattr(current.fget, "atelier_compiled_templates", None)
    if shared is not None:
        return shared
    shared = CompiledTemplates()

    def environment(self):
        env = current.fget(self)
        if env.bytecode_cache is None:
            env.bytecode_cache = shared
        return env

    environment.atelier_compiled_templates = shared
    VoilaExporter.environment = property(environment, doc=current.__doc__)
    return shared
