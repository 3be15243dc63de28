"""The Jupyter server extension every trainee's server loads: Atelier's own pages and endpoints.

Rule: each module of the room exposes ``HANDLERS = [(pattern, Handler), ...]`` with patterns
relative to the server's base URL; :func:`load_jupyter_server_extension` adds them all.
"""

from __future__ import annotations

from jupyter_server.utils import url_path_join

#: The modules whose ``HANDLERS`` the extension adds, in order.
MODULES = ("atelier.hub_config.view.submit",)


def _jupyter_server_extension_points():
    return [{"module": "atelier.hub_config.view.extension"}]


def load_jupyter_server_extension(serverapp) -> None:
    """Add every module's handlers under the server's base URL."""
    import importlib

    base = serverapp.web_app.settings["base_url"]
    handlers = []
    for name in MODULES:
        for pattern, handler in importlib.import_module(name).HANDLERS:
            handlers.append((url_path_join(base, pattern), handler))
    serverapp.web_app.add_handlers(".*$", handlers)
