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


def test_precompress_writes_a_brotli_copy_once_and_again_when_the_file_changes(tmp_path):
    """Does install compress each text asset once, and again only after the file changed?"""
    import os

    import brotli

    assets, into = tmp_path / "assets", tmp_path / "copies"
    (assets / "static").mkdir(parents=True)
    script = assets / "static" / "main.js"
    script.write_text("console.log('bonjour');\n" * 200)
    (assets / "static" / "font.woff2").write_bytes(b"\x00" * 100)
    assert slowlink.precompress([assets], into) == 1
    copy = slowlink.fresh_precompressed(script, into)
    assert copy == slowlink.precompressed_path(script, into)
    assert brotli.decompress(copy.read_bytes()) == script.read_bytes()
    assert slowlink.precompress([assets], into) == 0
    later = copy.stat().st_mtime + 10
    os.utime(script, (later, later))
    assert slowlink.fresh_precompressed(script, into) is None, "a stale copy is not served"
    assert slowlink.precompress([assets], into) == 1
    assert slowlink.fresh_precompressed(script, into) is not None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br, zstd", True),
        ("br;q=0.5", True),
        ("gzip, br;q=0", False),
        ("gzip, deflate", False),
        ("", False),
        (None, False),
    ],
)
def test_brotli_only_for_a_browser_that_accepts_it(header, expected):
    """Is the brotli copy kept from a client whose Accept-Encoding does not admit br?"""
    assert slowlink.accepts_brotli(header) is expected


def test_a_precompressed_asset_is_served_as_brotli_or_else_as_gzip(tmp_path):
    """Does a browser taking br get the copy as it is, and any other client gzip, never a mix?"""
    import asyncio
    import threading
    import urllib.request

    import brotli
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets
    from tornado.web import Application, RequestHandler

    script = tmp_path / "main.js"
    script.write_text("var answer = 42;\n" * 500)
    into = tmp_path / "copies"
    slowlink.precompress([tmp_path], into)

    class Asset(RequestHandler):
        def get(self):
            if not slowlink.send_precompressed(self, script, "public, max-age=60", into):
                self.set_header("Content-Type", "text/javascript")
                self.finish(script.read_bytes())

    sockets = bind_sockets(0, "127.0.0.1")
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/main.js"
    ready, stop = threading.Event(), threading.Event()

    async def serve():
        server = HTTPServer(Application([("/main.js", Asset)], compress_response=True))
        server.add_sockets(sockets)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.02)
        server.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        for accept, encoding in (("gzip, br", "br"), ("gzip", "gzip")):
            request = urllib.request.Request(url, headers={"Accept-Encoding": accept})
            with urllib.request.urlopen(request, timeout=10) as response:
                body, headers = response.read(), response.headers
            assert headers["Content-Encoding"] == encoding
            assert "Accept-Encoding" in headers["Vary"]
            if encoding == "br":
                assert brotli.decompress(body) == script.read_bytes()
                assert headers["Content-Type"] == "text/javascript"
                assert headers["Cache-Control"] == "public, max-age=60"
    finally:
        stop.set()
        thread.join(10)
