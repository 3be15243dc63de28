"""The hub side of the server template: back-off when it fails, zombies counted as ended."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

import pytest

from atelier.hub_config import servertemplate
from atelier.hub_config.servertemplate import ServerTemplate, TemplateUnavailable
from atelier.hub_config.spawner import _is_zombie


def test_a_template_that_cannot_start_is_not_retried_at_every_spawn(monkeypatch):
    """After a failed template, do spawns fall back at once instead of waiting for a new one?"""
    template = ServerTemplate(logging.getLogger("test"))
    monkeypatch.setattr(sys, "executable", "/bin/false")
    request = {"uid": None, "home": "/", "env": {}, "argv": []}
    with pytest.raises(TemplateUnavailable, match="did not start"):
        asyncio.run(template.fork(request))
    assert template.process is None
    started = time.monotonic()
    with pytest.raises(TemplateUnavailable, match="failed recently"):
        asyncio.run(template.fork(request))
    assert template.process is None, "a new template was started within the back-off"
    assert time.monotonic() - started < 1
    monkeypatch.setattr(servertemplate.time, "monotonic", lambda: started + 3600)
    with pytest.raises(TemplateUnavailable, match="did not start"):
        asyncio.run(template.fork(request))


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
