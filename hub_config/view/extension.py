"""The trainee's path as a server extension: every module's ``HANDLERS``, behind the server's OAuth.

Rule: each page or endpoint of the trainee's path lives in one module of this sub-room that
exposes ``HANDLERS = [(pattern, handler_class), ...]``, patterns relative to the server's base URL
(``/atelier/view/(.*)``); a module that needs the running server first (a configuration built from
it) also exposes ``setup(serverapp)``, called once before its handlers are added. Handlers are
``JupyterHandler`` subclasses with ``@web.authenticated``: on a hub, that is the server's own hub
OAuth, so only the trainee who owns the server gets in (and XSRF guards every POST).

A trainee's server enables this module with ``--ServerApp.jpserver_extensions`` (see
``atelier.hub_config.hub.config.TRAINEE_EXTENSIONS_ON``).
"""

from __future__ import annotations

import importlib

from jupyter_server.utils import url_path_join

#: The modules whose ``HANDLERS`` the extension adds, in this order.
MODULES = (
    "atelier.hub_config.view.workbook",
    "atelier.hub_config.view.assets",
    "atelier.hub_config.view.home",
    "atelier.hub_config.view.submit",
)


def _jupyter_server_extension_points() -> list[dict]:
    """Where Jupyter Server finds the loader of this extension."""
    return [{"module": "atelier.hub_config.view.extension"}]


def handlers(base_url: str, modules=MODULES, serverapp=None) -> list[tuple]:
    """Every module's ``HANDLERS``, with patterns under ``base_url`` (``setup`` run first)."""
    found = []
    for name in modules:
        module = importlib.import_module(name)
        if serverapp is not None and hasattr(module, "setup"):
            module.setup(serverapp)
        for pattern, handler in module.HANDLERS:
            found.append((url_path_join(base_url, pattern), handler))
    return found


def _load_jupyter_server_extension(serverapp) -> None:
    """Add the trainee's pages to the running server."""
    web_app = serverapp.web_app
    web_app.add_handlers(
        ".*$", handlers(web_app.settings["base_url"], MODULES, serverapp=serverapp)
    )
    serverapp.log.info("atelier: the trainee's pages are served under %satelier/",
                       web_app.settings["base_url"])  # fmt: skip


# Jupyter Server 1's name, still looked up by some tools.
load_jupyter_server_extension = _load_jupyter_server_extension
