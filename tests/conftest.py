"""Fixtures every tier shares, and the server fixtures the server and browser tiers share.

Tests never touch the host's Jupyter configuration: each session gets temporary
``JUPYTER_CONFIG_DIR``, ``JUPYTER_DATA_DIR`` and ``JUPYTER_RUNTIME_DIR``. Servers listen on random
free loopback ports. What tests import (paths, a hub, seeds) is in plain modules beside this one
(``harness.py``, ``hubs.py``, ``seeds.py``), never in a conftest; the browser tier's fixtures are in
``tests/browser/conftest.py``.
"""

from __future__ import annotations

import os
import signal

import pytest
from harness import BIN, FIXTURES, start_server, stop_process
from hubs import Postgres, running_hub

from atelier.processes.ports import free_port


def pytest_configure(config):
    """Give the processes the tests start a SIGINT that stops them, whoever started pytest.

    A shell running the suite in the background (a CI runner, ``cmd &``) starts it with SIGINT
    ignored, and every process started from it inherits that. JupyterHub stops a service or a
    server with SIGINT first and waits ``interrupt_timeout`` (30 s) before SIGTERM: a hub that a
    test starts directly then took 30 s per service to stop (``test_hub_public_access``: 60 s).
    ``atelier start`` gives its hub a handler of its own, so the hubs it starts were never slow;
    this gives every process a test starts the disposition a terminal or systemd gives.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser):
    """``--database``: which database the test hubs and gradebooks use."""
    parser.addoption(
        "--database",
        choices=("sqlite", "postgres"),
        default=os.environ.get("ATELIER_TEST_DATABASE", "sqlite"),
        help="Database of the test hubs and gradebooks (fixture test_database): SQLite files (the "
        "default) or a throwaway PostgreSQL server (tests/run.sh runs the hub and grading server "
        "modules both ways).",
    )


@pytest.fixture(scope="session", autouse=True)
def isolated_jupyter(tmp_path_factory):
    """Keep the host's Jupyter config and runtime files out of every test."""
    root = tmp_path_factory.mktemp("jupyter")
    saved = {
        k: os.environ.get(k)
        for k in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR")
    }
    for name in saved:
        path = root / name.lower()
        path.mkdir()
        os.environ[name] = str(path)
    os.environ["JUPYTER_PLATFORM_DIRS"] = "1"
    yield root
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def apps_server(tmp_path_factory, request):
    """``atelier apps`` over the fixture apps on a free port; a module may set ``APPS_SETTINGS``.

    Yields an object with ``url`` (ending in /), ``proc`` and ``settings`` (the apps section used).
    """
    import types

    import yaml

    apps = {"pool_size": 1, "max_kernels": 8, "cull_idle_timeout": 10, "cull_interval": 1}
    apps.update(getattr(request.module, "APPS_SETTINGS", {}))
    tmp = tmp_path_factory.mktemp("apps")
    settings = tmp / "settings.yaml"
    settings.write_text(yaml.safe_dump({"apps": apps}))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [
        str(BIN / "atelier"),
        "apps",
        f"--settings={settings}",
        f"--port={port}",
        f"--workbooks={getattr(request.module, 'APPS_WORKBOOKS', FIXTURES / 'apps')}",
    ]
    proc = start_server(command, url, tmp / "apps.log", cwd=tmp)
    yield types.SimpleNamespace(url=url, proc=proc, settings=apps, log=tmp / "apps.log")
    stop_process(proc)


@pytest.fixture(scope="session")
def postgres():
    """A running throwaway PostgreSQL server for the session (started on first use)."""
    server = Postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def test_database(request):
    """A function giving the settings of a new, empty database for one hub or course.

    With ``--database=sqlite`` (the default) it gives ``{}``: SQLite files under the hub's state
    directory and each course. With ``--database=postgres`` it gives
    ``{"database": {"url": ...}}`` naming a fresh database of the session's :func:`postgres`
    server, so the hub and every gradebook of that settings file live in PostgreSQL.
    """
    if request.config.getoption("database") != "postgres":
        return dict
    server = request.getfixturevalue("postgres")
    return lambda: {"database": {"url": server.database()}}


@pytest.fixture(scope="session")
def hub_extra_settings() -> dict:
    """Settings sections merged over the test hub's defaults (override in a conftest to change)."""
    return {}


@pytest.fixture(scope="session")
def hub(hub_extra_settings, test_database):
    """A real Atelier hub for the session, with :data:`HUB_ROSTER` imported (see :class:`Hub`).

    Its hub database and gradebooks are on the database chosen with ``--database``.
    """
    with running_hub({**test_database(), **hub_extra_settings}) as instance:
        yield instance
