"""rfc3987_syntax (imported by jsonschema): its grammar compilation deferred until first use.

Written against jsonschema 4.26.0 and rfc3987-syntax 1.1.0.

What it relies on: ``jsonschema._format`` (private) imports
``from rfc3987_syntax import is_valid_syntax`` at import time to offer the ``iri`` and
``iri-reference`` format checks, and calls it only when such a format is checked;
``rfc3987_syntax`` compiles its Lark grammars when imported: ~1.3 s of CPU in every Jupyter
process (the hub, each trainee's server, the culler, Voila, ``atelier check``), although nothing
there validates an IRI (jsonschema #1428, jupyter_server #1559). This module puts a meta-path
finder first on ``sys.meta_path`` that gives ``import rfc3987_syntax`` a module whose contents load
on first use: ``is_valid_syntax`` is a stand-in that loads the real module and calls the real
function, and any other attribute loads it too. The real package still does the checking whenever
it is needed; nothing is copied from it.

Importing this module installs the finder (:func:`install`): ``atelier install`` writes a ``.pth``
file into the prefix's ``site-packages`` that imports it in every Python process of the prefix
(``hub_config/servers/importfix.py``), and ``atelier check`` imports it in its own process and in
the Voila it starts. Set ``ATELIER_NO_IMPORT_FIX=1`` to turn it off (the benchmarks do, to measure
the stock tools).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import threading

DEFERRED = "rfc3987_syntax"


class _DeferredLoader(importlib.abc.Loader):
    """Create the module now, run its code on first use."""

    def __init__(self, real: importlib.abc.Loader):
        self.real = real
        self.lock = threading.RLock()

    def create_module(self, spec):
        return self.real.create_module(spec)

    def exec_module(self, module):
        loader = self
        loaded = False

        def load():
            nonlocal loaded
            with loader.lock:
                if not loaded:
                    loaded = True
                    del module.__dict__["__getattr__"]
                    loader.real.exec_module(module)

        def __getattr__(name):
            if name.startswith("__"):
                raise AttributeError(name)
            load()
            return module.__dict__[name] if name in module.__dict__ else getattr(module, name)

        def is_valid_syntax(*args, **kwargs):
            load()
            return module.__dict__["is_valid_syntax"](*args, **kwargs)

        module.__getattr__ = __getattr__
        module.is_valid_syntax = is_valid_syntax
        module.__atelier_deferred__ = True


class _DeferredFinder(importlib.abc.MetaPathFinder):
    """Find ``rfc3987_syntax`` as usual, then give it the deferring loader."""

    def find_spec(self, fullname, path, target=None):
        if fullname != DEFERRED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _DeferredLoader(spec.loader)
        return spec


def install() -> None:
    """Put the deferring finder first on ``sys.meta_path`` (once)."""
    if os.environ.get("ATELIER_NO_IMPORT_FIX") == "1" or DEFERRED in sys.modules:
        return
    if not any(isinstance(finder, _DeferredFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _DeferredFinder())


install()
