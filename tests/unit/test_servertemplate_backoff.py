"""The hub side of the server template: back-off when it fails, zombies counted as ended."""

from __future__ import annotations

import logging
import os
import sys
import time

import pytest
from harness import run_apart

from atelier.hub_config.servers import servertemplate
from atelier.hub_config.servers.servertemplate import ServerTemplate, TemplateUnavailable
from atelier.hub_config.servers.spawner import _is_zombie


def test_a_template_that_cannot_start_is_not_retried_at_every_spawn(monkeypatch):
    """After a failed template, do spawns fall back at once instead of waiting for a new one?"""
    template = ServerTemplate(logging.getLogger("test"))
    monkeypatch.setattr(sys, "executable", "/bin/false")
    request = {"uid": None, "home": "/", "env": {}, "argv": []}
    with pytest.raises(TemplateUnavailable, match="did not start"):
        run_apart(template.fork(request))
    assert template.process is None
    started = time.monotonic()
    with pytest.raises(TemplateUnavailable, match="failed recently"):
        run_apart(template.fork(request))
    assert template.process is None, "a new template was started within the back-off"
    assert time.monotonic() - started < 1
    monkeypatch.setattr(servertemplate.time, "monotonic", lambda: started + 3600)
    with pytest.raises(TemplateUnavailable, match="did not start"):
        run_apart(template.fork(request))


def test_an_ended_process_nobody_reaped_counts_as_ended():
    """Is a zombie (a server that exited after its parent stopped reaping) seen as gone?"""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while not _is_zombie(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _is_zombie(pid)
    finally:
        os.waitpid(pid, 0)
    assert not _is_zombie(os.getpid())
    assert not _is_zombie(pid)  # reaped: no such process


REHOME_CHECK = """
import os, sys
from atelier.processes import forking
from atelier.hub_config.servers import servertemplate
from atelier.hub_config.servers.singleuser import import_server_modules

import_server_modules()
forking.preload(servertemplate.PRELOAD)
rehome = servertemplate.Rehome.scan(os.environ["HOME"])
assert rehome.traits and rehome.globals, "the scan found nothing: the check would prove nothing"
os.environ["HOME"] = sys.argv[1]
rehome.apply(sys.argv[1])
left = [
    f"{klass.__module__}.{klass.__name__}.{name}"
    for klass in servertemplate.traited_classes()
    for name, trait in klass.class_own_traits().items()
    if rehome._under_home(getattr(trait, "default_value", None))
]
left += [
    f"{klass.__name__} cache {key}"
    for klass in servertemplate.traited_classes()
    for key, value in klass.__dict__.get("_static_immutable_initial_values", {}).items()
    if rehome._under_home(value)
]
left += [
    f"{module_name}.{key}"
    for module_name, module in list(sys.modules.items())
    if module_name not in ("os", "posix") and module is not None
    for key, value in list(getattr(module, "__dict__", {}).items())
    if rehome._under_home(value)
]
from jupyterlab.labapp import LabApp
import send2trash.plat_other as trash

print(repr(left))
print(LabApp().user_settings_dir)
print(LabApp().workspaces_dir)
print(trash.HOMETRASH)
"""


def test_a_forked_server_finds_paths_in_its_trainees_home(tmp_path):
    """After the move, does nothing the imports computed point into the template's home?

    JupyterLab computes its user-settings folder when imported: without the move, a French
    trainee's server read the template's settings and her Lab came up in English.
    """
    import subprocess

    from atelier.hub_config.servers.servertemplate import TEMPLATE_HOME

    home = str(tmp_path / "trainee")
    result = subprocess.run(
        [sys.executable, "-c", REHOME_CHECK, home],
        env={"PATH": os.environ["PATH"], "HOME": TEMPLATE_HOME},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    left, settings, workspaces, trash = result.stdout.splitlines()[-4:]
    assert left == "[]", f"still under the template's home: {left}"
    assert settings == f"{home}/.jupyter/lab/user-settings"
    assert workspaces == f"{home}/.jupyter/lab/workspaces"
    assert trash == f"{home}/.local/share/Trash"
