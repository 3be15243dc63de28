"""JupyterLab: its question to Node.js for yarn's configuration, answered without Node.js.

Written against jupyterlab 4.6.6.

Private thing relied on: ``jupyterlab.commands._yarn_config(logger)``, the module-level function
``AppOptions`` calls (through the module global, at call time) to read yarn's npm registry by
running ``node yarn.js config --json``. When Node.js is absent it returns
``{"yarn config": {}, "npm config": {}}``, and JupyterLab uses the default registry.

Why: ``jupyterlab.labapp`` computes its app version at import, before any configuration is read,
and that creates build options which ask Node.js: ~1 s and a Node.js process at every trainee
server start. The registry is only used to build JupyterLab or install extensions, which a
trainee's server never does (its extension manager is read-only). The trainee-server room
(``hub_config/servers/singleuser.py``) applies this before ``jupyterlab.labapp`` is imported.
"""

from __future__ import annotations

#: What ``_yarn_config`` answers when Node.js is not installed.
NO_YARN_CONFIG = {"yarn config": {}, "npm config": {}}


def skip_yarn_config() -> None:
    """Make JupyterLab take the no-Node.js answer for yarn's configuration, without asking Node."""
    from jupyterlab import commands

    def no_yarn_config(logger):
        logger.debug("atelier: yarn configuration not read (trainee servers never build)")
        return {key: dict(value) for key, value in NO_YARN_CONFIG.items()}

    commands._yarn_config = no_yarn_config
