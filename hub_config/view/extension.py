"""The server extension every trainee's server loads: the pages of :mod:`atelier.hub_config.view`.

Rule: each page module exposes ``HANDLERS = [(pattern, Handler), ...]`` with patterns relative to
the server's base URL (``/atelier/...``); this extension adds them all, and nothing else.
"""

from __future__ import annotations

import importlib

from jupyter_server.utils import url_path_join

#: The modules whose ``HANDLERS`` the extension adds.
MODULES = ("atelier.hub_config.view.home",)


def _jupyter_server_extension_points():
    return [{"module": "atelier.hub_config.view.extension"}]


def load_jupyter_server_extension(serverapp) -> None:
    """Add every module's handlers under the server's base URL."""
    web_app = serverapp.web_app
    base_url = web_app.settings["base_url"]
    handlers = []
    for name in MODULES:
        module = importlib.import_module(name)
        handlers += [
            (url_path_join(base_url, pattern), handler) for pattern, handler in module.HANDLERS
        ]
    web_app.add_handlers(".*$", handlers)


_load_jupyter_server_extension = load_jupyter_server_extension
