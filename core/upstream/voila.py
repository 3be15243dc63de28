"""Voila: the preheated kernel pools of its kernel manager; its exporter's compiled templates.

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
