"""A trainee's server on a slow link (see atelier.hub_config.slowlink); read via JUPYTER_CONFIG_PATH."""

from atelier.hub_config.slowlink import apply_server

apply_server(get_config())  # noqa: F821 - provided by traitlets when it loads this file
