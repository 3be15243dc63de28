"""Atelier's JupyterHub configuration: thin, layered in a fixed order (``hub/config.py``).

1. invariants  2. validated settings  3. roster (people, cohorts, roles)  4. room plugins
5. ``jupyterhub_config.d/*.py`` from the ``hub.config_d`` setting, in name order (the admin's
   escape hatch).

``atelier start`` runs ``jupyterhub -f`` on this file with ``ATELIER_SETTINGS`` naming the settings
file.
"""

import os
from pathlib import Path

from atelier.hub_config.hub import config as layers
from atelier.hub_config.servers.spawner import AtelierSpawner

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

settings = layers.load_hub_settings()
insecure_demo = os.environ.get(layers.ENV_INSECURE_DEMO) == "1"

layers.apply_invariants(c)
layers.apply_settings(c, settings, insecure_demo=insecure_demo)
layers.apply_roster(c, settings)
layers.apply_plugins(c, settings)

config_d = Path(settings["hub"]["config_d"]) if settings["hub"]["config_d"] else None
if config_d and config_d.is_dir():
    for snippet in sorted(config_d.glob("*.py")):
        load_subconfig(str(snippet))  # noqa: F821 - provided by JupyterHub

# Trainees' servers are forked from a template (spawner.py): it imports while the hub starts, so
# even the first trainee of the day does not wait for it.
if c.JupyterHub.spawner_class == layers.SPAWNER and c.AtelierSpawner.get(
    "use_server_template", True
):
    AtelierSpawner.start_template()
