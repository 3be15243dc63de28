"""Canaries: the private things of other projects that Atelier's patches rely on, still as expected.

Each patch in ``core/upstream/`` (``atelier.upstream``) reaches into another project's private
names. An upgrade that renames or reshapes one would turn a patch into a no-op (slower, or a leak
back) or a wrong path; these tests fail first, naming the patch and what changed. See
``docs/upstream-patches.md`` for each patch, its versions and the upstream change that would let it
go.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import pytest
from harness import run_apart

pytestmark = pytest.mark.unit


def canary(condition, patch: str, changed: str) -> None:
    """Fail, naming the patch and what changed upstream, unless ``condition`` holds."""
    if not condition:
        pytest.fail(
            f"upstream patch {patch!r} (see docs/upstream-patches.md): {changed}. "
            "Check the patch against the new version before upgrading.",
            pytrace=False,
        )


def source(obj) -> str:
    """The source text of ``obj`` (a function, method or class)."""
    return inspect.getsource(obj)


# -- traitlets: the server template's Rehome -------------------------------------------------------


def test_traitlets_instances_start_from_the_per_class_cache_the_server_template_rewrites():
    """Do new instances take immutable defaults from the cache ``Rehome`` rewrites?"""
    from traitlets import HasTraits, Unicode

    from atelier.upstream import traitlets as patch

    class Paths(HasTraits):
        folder = Unicode("/nonexistent/home/.jupyter/lab")

    cache = patch.immutable_initial_values(Paths)
    canary(
        cache.get("folder") == "/nonexistent/home/.jupyter/lab",
        "traitlets.immutable_initial_values",
        "HasTraits classes no longer keep `_static_immutable_initial_values` with their "
        "immutable defaults",
    )
    cache["folder"] = "/home/trainee/.jupyter/lab"
    canary(
        Paths().folder == "/home/trainee/.jupyter/lab",
        "traitlets.immutable_initial_values",
        "new instances no longer take their initial values from that cache",
    )
    canary(
        patch.immutable_initial_values(HasTraits)
        is HasTraits.__dict__.get("_static_immutable_initial_values", {}),
        "traitlets.immutable_initial_values",
        "the cache is no longer a dict of the class itself",
    )


# -- nbgrader: fast_gradebook ----------------------------------------------------------------------


def test_nbgrader_gradebook_set_up_still_goes_through_the_names_fast_gradebook_replaces():
    """Does ``Gradebook()`` still call the module globals and method ``fast_gradebook`` replaces?"""
    import jsonschema
    import nbgrader.api
    import nbgrader.nbgraderformat.common as common
    import sqlalchemy

    patch = "nbgrader.fast_gradebook"
    canary(
        nbgrader.api.create_engine is sqlalchemy.create_engine,
        patch,
        "nbgrader.api.create_engine is no longer SQLAlchemy's create_engine",
    )
    canary(
        nbgrader.api.inspect is sqlalchemy.inspect,
        patch,
        "nbgrader.api.inspect is no longer SQLAlchemy's inspect",
    )
    canary(
        callable(getattr(nbgrader.api.Base.metadata, "create_all", None)),
        patch,
        "nbgrader.api.Base.metadata.create_all is gone",
    )
    init = source(nbgrader.api.Gradebook.__init__)
    calls = ("create_engine(", "inspect(", ".get_table_names()", "create_all(", "check_course(")
    for call in calls:
        canary(call in init, patch, f"Gradebook.__init__ no longer calls {call}...)")
    parameters = inspect.signature(nbgrader.api.Gradebook.check_course).parameters
    canary(
        list(parameters)[:2] == ["self", "course_id"],
        patch,
        f"Gradebook.check_course's signature changed: {list(parameters)}",
    )
    canary(
        common.jsonschema is jsonschema,
        patch,
        "nbgrader.nbgraderformat.common no longer imports jsonschema as a module global",
    )
    canary(
        "jsonschema.validate(" in source(common),
        patch,
        "nbgrader's metadata checks no longer call jsonschema.validate",
    )


def test_fast_gradebook_shares_one_engine_and_puts_nbgrader_back(tmp_path, monkeypatch):
    """Do two gradebooks share one engine inside ``fast_gradebook``, and is nbgrader restored?"""
    import nbgrader.api

    # A new gradebook is stamped by the alembic command of the prefix's environment.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])

    from atelier.upstream.nbgrader import fast_gradebook

    before = (nbgrader.api.create_engine, nbgrader.api.inspect, nbgrader.api.Gradebook.check_course)
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with fast_gradebook():
        first = nbgrader.api.Gradebook(url, "course")
        first.close()
        second = nbgrader.api.Gradebook(url, "course")
        shared = second.engine is first.engine
        second.close()
    canary(shared, "nbgrader.fast_gradebook", "Gradebook() no longer gets its engine through it")
    after = (nbgrader.api.create_engine, nbgrader.api.inspect, nbgrader.api.Gradebook.check_course)
    assert after == before, "fast_gradebook left nbgrader patched"


# -- nbconvert (and nbgrader's Autograde): the exporter's preprocessors ----------------------------


def test_nbconvert_exporters_run_the_list_set_preprocessors_replaces():
    """Does an exporter run exactly the preprocessors ``set_preprocessors`` gives it?"""
    import nbformat
    from nbconvert.exporters import NotebookExporter
    from nbconvert.preprocessors import Preprocessor

    from atelier.upstream import nbconvert as patch

    seen = []

    class Mark(Preprocessor):
        def preprocess(self, nb, resources):
            seen.append(self)
            return nb, resources

    exporter = NotebookExporter()
    exporter.register_preprocessor(Mark(), enabled=True)
    canary(
        len(patch.preprocessors(exporter)) >= 1,
        "nbconvert.preprocessors",
        "Exporter.register_preprocessor no longer adds to Exporter._preprocessors",
    )
    mine = Mark(enabled=True)
    patch.set_preprocessors(exporter, [mine])
    exporter.from_notebook_node(nbformat.v4.new_notebook())
    canary(
        seen == [mine],
        "nbconvert.set_preprocessors",
        "Exporter no longer runs the preprocessors listed in Exporter._preprocessors",
    )


def test_nbgrader_autograde_still_has_the_private_hooks_sandboxed_autograde_overrides():
    """Does nbgrader's ``Autograde`` still switch phases through the hooks Atelier overrides?"""
    from nbgrader.converters.autograde import Autograde
    from nbgrader.converters.base import BaseConverter

    patch = "SandboxedAutograde (grading/autograde/converter.py)"
    convert = source(Autograde.convert_single_notebook)
    canary(
        "self._sanitizing = True" in convert and "self._sanitizing = False" in convert,
        patch,
        "Autograde no longer marks its two phases with _sanitizing",
    )
    canary(
        "self._init_preprocessors()" in convert,
        patch,
        "Autograde no longer sets each phase's steps up through _init_preprocessors()",
    )
    canary(
        "self.exporter._preprocessors = []" in source(Autograde._init_preprocessors),
        patch,
        "Autograde._init_preprocessors no longer resets the exporter's preprocessor list",
    )
    for name, parameters in (
        ("_format_source", ["self", "assignment_id", "student_id", "escape"]),
        ("_format_dest", ["self", "assignment_id", "student_id", "escape"]),
    ):
        found = list(inspect.signature(getattr(BaseConverter, name)).parameters)
        canary(found == parameters, patch, f"BaseConverter.{name}'s signature is now {found}")


# -- voila: the view's compiled templates ---------------------------------------------------------

#: Renders one page with a new VoilaExporter (as Voila does per page) before and after the patch,
#: counting Jinja compilations; prints what it found as JSON (in a process of its own: the patch
#: is for the whole process).
PAGES = """
import asyncio, json
import jinja2, nbformat
from voila.exporter import VoilaExporter
from voila.paths import collect_template_paths
from atelier.upstream import voila as patch

nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"),
                                     nbformat.v4.new_code_cell("1 + 1")])
compiled = []
original = jinja2.Environment.compile
def counting(self, *args, **kwargs):
    compiled.append(args[1] if len(args) > 1 else kwargs.get("name"))
    return original(self, *args, **kwargs)
jinja2.Environment.compile = counting

async def kernel_start(nb): return "k"
async def cells(nb, kernel_id):
    for cell in nb.cells: yield cell
async def execute(nb, kernel_id): pass

async def page():
    exporter = VoilaExporter(template_paths=collect_template_paths(["voila", "nbconvert"], "lab"),
                             template_name="lab", theme="light", base_url="/", mathjax_url="x")
    html = ""
    context = {"frontend": "voila", "main_js": "voila.js", "kernel_start": kernel_start,
               "notebook_execute": execute, "cell_generator": cells, "progressive_rendering": False}
    resources = {"base_url": "/", "theme": "light", "template": "lab",
                 "metadata": {"name": "x"}, "page_config": {}}
    async for snippet, _ in exporter.generate_from_notebook_node(
            nbformat.from_dict(nb), resources=resources, extra_context=context, page_config={}):
        html += snippet
    return html

found = {}
before = asyncio.run(page())
found["compiled_unpatched"] = len(compiled)
shared = patch.share_compiled_templates()
found["same_cache"] = patch.share_compiled_templates() is shared
first = asyncio.run(page())
compiled.clear()
second = asyncio.run(page())
found["compiled_second"] = len(compiled)
found["same_html"] = before == first == second
found["kept"] = len(shared.codes)
print("FOUND " + json.dumps(found))
"""


def test_voila_exporters_compile_their_templates_through_the_environment_the_view_shares():
    """Does a VoilaExporter compile its templates through ``environment`` (what the view patches)?

    ``atelier.upstream.voila.share_compiled_templates`` wraps that property so that each page's
    new exporter reuses the code compiled before; the page must come out byte for byte the same.
    """
    import json

    done = subprocess.run(
        [sys.executable, "-c", PAGES], capture_output=True, text=True, timeout=120
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("FOUND ")]
    assert lines, done.stderr[-3000:]
    found = json.loads(lines[-1][len("FOUND ") :])
    canary(
        found["compiled_unpatched"] > 0 and found["kept"] > 0,
        "voila.share_compiled_templates",
        f"VoilaExporter's templates no longer go through its Jinja environment's loader: {found}",
    )
    assert found["same_cache"] and found["same_html"]
    canary(
        found["compiled_second"] == 0,
        "voila.share_compiled_templates",
        f"a new VoilaExporter compiles its templates again despite the shared code: {found}",
    )


# -- voila and tornado: the public apps server -----------------------------------------------------


def test_voila_pooling_kernel_managers_keep_their_pools_where_the_apps_server_reads_them(tmp_path):
    """Does Voila's pooling kernel manager keep its pools in ``_pools`` and a ``fill_if_needed``?"""
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from traitlets.config import Configurable
    from voila.voila_kernel_manager import voila_kernel_manager_factory

    from atelier.upstream import voila as patch

    class Server(Configurable):
        root_dir = str(tmp_path)
        notebook_path = None

    pooling = voila_kernel_manager_factory(
        AsyncMappingKernelManager, preheat_kernel=True, default_pool_size=0
    )
    km = pooling(parent=Server())
    canary(
        patch.pooling(km) and patch.kernel_pools(km) is km._pools,
        "voila.kernel_pools",
        "VoilaKernelManager no longer keeps its pools in a dict `_pools`",
    )
    fill = inspect.signature(pooling.fill_if_needed).parameters
    canary(
        {"delay", "notebook_name"} <= set(fill),
        "voila.kernel_pools (refill_pools)",
        f"fill_if_needed no longer takes delay and notebook_name: {list(fill)}",
    )
    pool_code = source(pooling)
    for needle in ('"kernel_id"', '"task"'):
        canary(
            needle in pool_code,
            "voila.kernel_pools",
            f"pool entries no longer resolve to a dict with {needle}",
        )
    plain = voila_kernel_manager_factory(
        AsyncMappingKernelManager, preheat_kernel=False, default_pool_size=0
    )
    canary(
        not patch.pooling(plain()) and patch.kernel_pools(plain()) == {},
        "voila.pooling",
        "a kernel manager without preheating now has `_pools`",
    )


def test_tornado_marks_headers_written_when_a_handler_flushes():
    """Does ``headers_written`` turn true exactly when a handler has flushed its headers?"""
    run_apart(tornado_headers_probe())


async def tornado_headers_probe():
    """Serve one request with a handler that records ``headers_written`` around a flush."""
    from tornado import httpclient, httpserver, testing, web

    from atelier.upstream.tornado import headers_written

    seen = []

    class Probe(web.RequestHandler):
        def get(self):
            seen.append(headers_written(self))
            self.write("page")
            seen.append(headers_written(self))
            self.flush()
            seen.append(headers_written(self))

    sock, port = testing.bind_unused_port()
    server = httpserver.HTTPServer(web.Application([("/", Probe)]))
    server.add_sockets([sock])
    try:
        await httpclient.AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/")
    finally:
        server.stop()
    canary(
        seen == [False, False, True],
        "tornado.headers_written",
        f"RequestHandler._headers_written no longer follows flush(): {seen}",
    )


# -- jupyterlab: the trainee server's yarn configuration -------------------------------------------


def test_jupyterlab_reads_yarn_config_through_the_module_global_skip_yarn_config_replaces(
    monkeypatch,
):
    """Does JupyterLab's registry come from ``commands._yarn_config``, which the patch answers?"""
    from jupyterlab import commands

    from atelier.upstream import jupyterlab as patch

    monkeypatch.setattr(commands, "_yarn_config", commands._yarn_config)  # restored after
    canary(
        list(inspect.signature(commands._yarn_config).parameters) == ["logger"],
        "jupyterlab.skip_yarn_config",
        "jupyterlab.commands._yarn_config no longer takes (logger)",
    )
    canary(
        "_yarn_config(self.logger)" in source(commands.AppOptions),
        "jupyterlab.skip_yarn_config",
        "AppOptions no longer asks _yarn_config for the registry",
    )
    canary(
        "{" + '"yarn config": {}, "npm config": {}' + "}" in source(commands._yarn_config),
        "jupyterlab.skip_yarn_config",
        "the answer JupyterLab uses without Node.js is no longer empty yarn and npm configs",
    )

    def no_node(*args, **kwargs):
        raise AssertionError("Node.js was asked for yarn's configuration")

    monkeypatch.setattr(commands.subprocess, "check_output", no_node)
    patch.skip_yarn_config()
    canary(
        commands.AppOptions().registry == commands.YARN_DEFAULT_REGISTRY,
        "jupyterlab.skip_yarn_config",
        "with the patch, AppOptions no longer gets the default registry",
    )


# -- IPython and ipykernel: public apps' kernels ---------------------------------------------------


def test_ipython_sends_every_traceback_through_the_method_hide_tracebacks_replaces():
    """Do IPython and ipykernel send every traceback through ``_showtraceback``?"""
    from ipykernel.zmqshell import ZMQInteractiveShell
    from IPython.core.interactiveshell import InteractiveShell

    patch = "ipython.set_showtraceback"
    found = list(inspect.signature(InteractiveShell._showtraceback).parameters)
    canary(
        found == ["self", "etype", "evalue", "stb"],
        patch,
        f"InteractiveShell._showtraceback's signature is now {found}",
    )
    for method in ("showtraceback", "showsyntaxerror"):
        canary(
            "self._showtraceback(" in source(getattr(InteractiveShell, method)),
            patch,
            f"InteractiveShell.{method} no longer ends in _showtraceback",
        )
    canary(
        "_showtraceback" in ZMQInteractiveShell.__dict__,
        patch,
        "ipykernel's shell no longer sends the error message in _showtraceback",
    )


def test_ipykernel_keeps_the_descriptor_it_captured_where_stderr_to_log_reads_it():
    """Does ipykernel's ``OutStream`` keep the descriptor it captured where the patch reads it?"""
    from ipykernel.iostream import OutStream

    from atelier.upstream import ipykernel as patch

    canary(
        "self._original_stdstream_copy = os.dup(" in source(OutStream._setup_stream_redirects),
        "ipykernel.saved_stream_fd",
        "OutStream no longer saves the original descriptor in _original_stdstream_copy",
    )

    class Stream:
        _original_stdstream_copy = 7

    assert patch.saved_stream_fd(Stream()) == 7
    assert patch.saved_stream_fd(object()) is None


# -- jsonschema and rfc3987_syntax: the import fix -------------------------------------------------


def test_jsonschema_imports_only_is_valid_syntax_from_rfc3987_syntax():
    """Does jsonschema still take only ``is_valid_syntax`` from ``rfc3987_syntax``?"""
    import importlib.util

    patch = "rfc3987_syntax (the import fix)"
    spec = importlib.util.find_spec("jsonschema._format")
    with open(spec.origin, encoding="utf-8") as file:
        text = file.read()
    canary(
        "from rfc3987_syntax import is_valid_syntax" in text,
        patch,
        "jsonschema._format no longer imports is_valid_syntax from rfc3987_syntax",
    )
    canary(
        text.count("rfc3987_syntax") == 1,
        patch,
        "jsonschema now uses more of rfc3987_syntax than is_valid_syntax",
    )


def test_the_import_fix_defers_the_grammars_and_still_checks_iris():
    """Does importing the patch keep Lark out of jsonschema's import while IRIs still validate?"""
    code = (
        "import atelier.upstream.rfc3987_syntax, sys, jsonschema;"
        "assert 'lark' not in sys.modules, 'lark imported';"
        "from jsonschema import FormatChecker;"
        "assert FormatChecker().conforms('http://example.org/é', 'iri');"
        "assert not FormatChecker().conforms('::', 'iri');"
        "assert 'lark' in sys.modules"
    )
    env = {key: value for key, value in os.environ.items() if key != "ATELIER_NO_IMPORT_FIX"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    canary(
        result.returncode == 0,
        "rfc3987_syntax (the import fix)",
        f"jsonschema's import or IRI check changed: {result.stderr.strip()[-300:]}",
    )


def test_every_way_atelier_fixes_that_import_is_the_patch_module():
    """Do the ``.pth`` line, the check's Voila and the workbook format all use the one patch?"""
    from atelier.authoring.check import voila
    from atelier.hub_config.servers import importfix

    assert "atelier.upstream.rfc3987_syntax" in importfix.PTH_LINE
    assert "atelier.upstream import rfc3987_syntax" in voila.VOILA_MAIN
    assert "sys.modules" not in voila.VOILA_MAIN


# -- jupyter_client: check's kernels through the provisioner entry point ---------------------------


def test_check_kernels_come_from_the_registered_fork_provisioner(tmp_path):
    """Does a kernelspec written by the check name the fork provisioner jupyter_client resolves?"""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning import KernelProvisionerFactory

    from atelier.authoring.forkprovisioner import NAME, ForkProvisioner, write_kernelspec

    kernels = write_kernelspec(tmp_path, "/run/fork.sock", ["python3", "{connection_file}"])
    km = AsyncKernelManager(
        kernel_name="python3",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]),
    )
    provisioner = KernelProvisionerFactory.instance().create_provisioner_instance(
        "kernel-id", km.kernel_spec, parent=km
    )
    canary(
        isinstance(provisioner, ForkProvisioner) and provisioner.socket_path == "/run/fork.sock",
        f"the {NAME!r} provisioner entry point",
        f"jupyter_client made a {type(provisioner).__name__} from the check's kernelspec",
    )


# -- private hooks Atelier overrides or reads without patching them --------------------------------


def test_traitlets_still_loads_config_files_through_the_hook_the_guarded_apps_override():
    """Does ``Application.load_config_file`` still go through ``_load_config_files(path, log)``?"""
    from traitlets.config import Application

    hook = "without_foreign_config (grading/courses/trustedconfig.py)"
    found = set(inspect.signature(Application._load_config_files).parameters)
    canary(
        {"basefilename", "path", "log"} <= found,
        hook,
        f"Application._load_config_files's parameters are now {sorted(found)}",
    )
    canary(
        "self._load_config_files(" in source(Application.load_config_file),
        hook,
        "Application.load_config_file no longer calls _load_config_files",
    )


def test_jupyterhub_still_polls_local_servers_through_signal():
    """Does JupyterHub's local spawner still poll a server with ``_signal(0)``?"""
    from jupyterhub.spawner import LocalProcessSpawner

    hook = "AtelierSpawner._signal (hub_config/servers/spawner.py)"
    found = list(inspect.signature(LocalProcessSpawner._signal).parameters)
    canary(found == ["self", "sig"], hook, f"LocalProcessSpawner._signal now takes {found}")
    canary(
        "self._signal(0)" in source(LocalProcessSpawner.poll),
        hook,
        "LocalProcessSpawner.poll no longer asks _signal(0)",
    )


def test_ipywidgets_still_registers_every_open_widget_where_the_sandbox_reads_it():
    """Does ipywidgets keep every open widget in ``widget._instances`` (the sandbox's warm-up)?"""
    import ipywidgets
    from ipywidgets.widgets import widget as widget_module

    hook = "the sandbox's widget warm-up (grading/sandbox/kernel.py)"
    slider = ipywidgets.IntSlider()
    model_id = slider.model_id
    canary(
        widget_module._instances.get(model_id) is slider,
        hook,
        "ipywidgets no longer registers open widgets in ipywidgets.widgets.widget._instances",
    )
    slider.close()
    canary(
        model_id not in widget_module._instances,
        hook,
        "closing a widget no longer removes it from _instances",
    )


# -- jupyter_client: waits on a kernel's channel (view, dashboard, apps, check) --------------------

#: A channel's ``get_msg()`` waits; a message arrives, and its wake-up signal is consumed behind
#: pyzmq's back (what a libzmq call on the same socket can do, as nbclient's Output-widget mirror
#: sending on the shell socket did). Prints what the wait got, and when.
LOST_WAKE_UP = """
import asyncio, json, sys, time
import zmq, zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

if sys.argv[1] == "patched":
    from atelier.upstream.jupyter_client import bounded_channel_waits
    bounded_channel_waits()
    bounded_channel_waits()

async def main():
    waiting = zmq.asyncio.Context().socket(zmq.PAIR)
    port = waiting.bind_to_random_port("tcp://127.0.0.1")
    peer = zmq.Context().socket(zmq.PAIR)
    peer.connect(f"tcp://127.0.0.1:{port}")
    session = Session(key=b"canary")
    channel = AsyncZMQSocketChannel(waiting, session)
    session.send(peer, "hello")
    found = {"first": (await asyncio.wait_for(channel.get_msg(), 10))["header"]["msg_type"]}
    start = time.monotonic()
    try:
        await channel.get_msg(timeout=0.6)
    except Exception as error:
        found["timeout"] = [type(error).__name__, round(time.monotonic() - start, 2)]
    wait = asyncio.ensure_future(channel.get_msg())
    await asyncio.sleep(0.2)  # the wait's poll is registered on the socket's descriptor
    session.send(peer, "reply")
    time.sleep(0.3)  # the message reaches the socket while the loop does not run
    zmq.Socket.shadow(waiting.underlying).get(zmq.EVENTS)  # the edge is consumed, unseen
    start = time.monotonic()
    try:
        found["reply"] = (await asyncio.wait_for(wait, 3))["header"]["msg_type"]
    except asyncio.TimeoutError:
        found["reply"] = None
    found["after"] = round(time.monotonic() - start, 2)
    print("FOUND " + json.dumps(found))

asyncio.run(main())
"""


def lost_wake_up(mode: str) -> dict:
    """What a channel's wait got after its wake-up was lost (``mode``: ``stock`` or ``patched``)."""
    import json

    done = subprocess.run(
        [sys.executable, "-c", LOST_WAKE_UP, mode], capture_output=True, text=True, timeout=60
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("FOUND ")]
    assert lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("FOUND ") :])


def test_stock_channel_waits_still_miss_a_message_whose_wake_up_was_lost():
    """Does jupyter_client's ``get_msg()`` still wait past a message pyzmq was not woken for?

    When this fails, pyzmq (or jupyter_client) reads such a message by itself:
    ``atelier.upstream.jupyter_client.bounded_channel_waits`` can go.
    """
    found = lost_wake_up("stock")
    assert found["first"] == "hello", found
    canary(
        found["reply"] is None,
        "jupyter_client.bounded_channel_waits",
        f"a message whose wake-up was lost is now read by the stock wait: {found}",
    )


def test_bounded_channel_waits_read_that_message_at_the_next_slice():
    """With the patch, the reply is read within a slice or two; a given timeout still holds."""
    from atelier.upstream.jupyter_client import SLICE

    found = lost_wake_up("patched")
    assert found["first"] == "hello", found
    assert found["reply"] == "reply" and found["after"] <= 4 * SLICE, found
    name, waited = found["timeout"]
    assert name == "Empty" and 0.55 <= waited <= 0.6 + 2 * SLICE, found
