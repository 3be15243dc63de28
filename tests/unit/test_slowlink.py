"""Slow-link settings: compression everywhere, immutable hashed assets, trainees' Lab trimmed."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from atelier import slowlink

pytestmark = pytest.mark.unit


def test_shipped_page_config_is_the_one_the_module_describes():
    """Is the page config drop-in shipped to trainees' servers exactly DISABLED_EXTENSIONS?"""
    assert slowlink.page_config_file().read_text("utf-8") == slowlink.render_page_config()


def test_no_extension_trainees_need_is_disabled():
    """Do the notebook, widgets, translation, hub and nbgrader's assignment list stay enabled?"""
    for off in slowlink.DISABLED_EXTENSIONS:
        for needed in slowlink.REQUIRED_EXTENSIONS:
            assert not needed.startswith(off) and not off.startswith(needed), (off, needed)


def test_hub_plugin_compresses_and_adds_its_config_dir_after_grading():
    """Does the hub get compression, and trainees' servers read both grading's dir and ours?"""
    c = Config()
    c.JupyterHub.tornado_settings = {"headers": {"X-Test": "1"}}
    c.Spawner.environment = {"JUPYTER_CONFIG_PATH": "/srv/exchange/.jupyter", "A": "b"}
    slowlink.apply(c, {})
    slowlink.apply(c, {})  # idempotent
    assert c.JupyterHub.tornado_settings == {"headers": {"X-Test": "1"}, "compress_response": True}
    paths = c.Spawner.environment["JUPYTER_CONFIG_PATH"].split(":")
    assert paths == [str(slowlink.SERVER_CONFIG_DIR), "/srv/exchange/.jupyter"]
    assert c.Spawner.environment["A"] == "b"


def test_trainee_servers_enable_the_compressing_extension():
    """Does the shipped server drop-in enable the extension that gzips a trainee's responses?"""
    assert slowlink.server_config_file().read_text("utf-8") == slowlink.render_server_config()
    assert slowlink._jupyter_server_extension_points() == [{"module": slowlink.__name__}]


def test_extension_adds_gzip_to_a_running_tornado_application():
    """Does loading the extension make a tornado application gzip its text responses?"""
    import logging
    import types

    from tornado.web import Application, GZipContentEncoding

    app = types.SimpleNamespace(web_app=Application(), log=logging.getLogger("test"))
    slowlink._load_jupyter_server_extension(app)
    slowlink._load_jupyter_server_extension(app)
    assert app.web_app.transforms.count(GZipContentEncoding) == 1


def test_voila_is_compressed_and_widget_assets_immutable_under_its_base_url():
    """Do the apps' Voila settings compress and cache the widget manager's hashed files for good?"""
    from atelier.public.apps import voila_config
    from atelier.settings import load_settings

    c = voila_config(load_settings(None), base_url="/services/apps/")
    settings = c.Voila.tornado_settings.get_value({})
    assert settings["compress_response"] is True
    assert (
        "/services/apps/voila/labextensions/@jupyter-widgets/jupyterlab-manager/static/"
        in settings["static_immutable_cache"]
    )
    assert slowlink.voila_immutable_paths("/", ["x"]) == ["/voila/labextensions/x/static/"]
