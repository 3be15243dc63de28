"""Kernels over Unix sockets whose paths fit (``core/processes/kernelsockets.py``).

A kernel's five ZeroMQ sockets are Unix sockets named after its connection file. What a trainee
relies on: a kernel started in a folder with a long path (a long home or user name) still starts
and answers, no kernel listens on a TCP port that another process could take or another account
reach, and a kernel's sockets go when it does. The trainee's server (forked kernels) and the public
apps are checked on a real hub in ``tests/servers/test_kernel_zygote.py`` and
``tests/browser/test_hub_public_access.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat

import pytest
from harness import channel_sockets, sockets_of

from atelier.processes import kernelsockets

pytestmark = pytest.mark.unit


@pytest.fixture
def fresh_folder(monkeypatch, tmp_path):
    """A private folder made anew for the test, under a temporary folder with a short path."""
    monkeypatch.setattr(kernelsockets, "_folder", None)
    monkeypatch.setattr(kernelsockets.tempfile, "tempdir", None)
    monkeypatch.setenv("TMPDIR", "/tmp")
    yield
    folder = kernelsockets._folder
    if folder and os.path.isdir(folder):
        os.rmdir(folder)


@pytest.fixture
def long_folder(tmp_path):
    """A folder whose path leaves no room for a kernel's socket names (as a long home would)."""
    folder = tmp_path / ("home-of-a-trainee-with-a-long-name-" * 3) / ".local/share/jupyter/runtime"
    folder.mkdir(parents=True)
    assert len(str(folder)) > kernelsockets.SOCKET_PATH_MAX - 50
    return folder


def test_a_prefix_whose_sockets_fit_is_kept():
    runtime = "/home/tess/.local/share/jupyter/runtime"
    prefix = f"{runtime}/kernel-0b9c6f2e-3a8c-4c1e-9a51-2f1d6a5c7e10-ipc"
    assert kernelsockets.fits(prefix)
    assert kernelsockets.socket_prefix(prefix) == prefix


def test_a_long_prefix_moves_to_a_private_folder_of_this_account(fresh_folder, long_folder):
    prefix = str(long_folder / "kernel-0b9c6f2e-3a8c-4c1e-9a51-2f1d6a5c7e10-ipc")
    assert not kernelsockets.fits(prefix)
    short = kernelsockets.socket_prefix(prefix)
    assert kernelsockets.fits(short)
    assert os.path.basename(short) == os.path.basename(prefix)
    folder = os.stat(os.path.dirname(short))
    # Only this account may enter it: nobody else can connect to the kernel or swap a socket.
    assert stat.S_IMODE(folder.st_mode) == 0o700
    assert folder.st_uid == os.geteuid()
    # One folder per process, for every kernel.
    again = kernelsockets.socket_prefix(str(long_folder / "kernel-another-ipc" / ("x" * 60)))
    assert os.path.dirname(again) == os.path.dirname(short)


def test_the_private_folder_is_made_again_when_something_removed_it(fresh_folder, long_folder):
    prefix = str(long_folder / "kernel-0b9c6f2e-3a8c-4c1e-9a51-2f1d6a5c7e10-ipc")
    first = os.path.dirname(kernelsockets.socket_prefix(prefix))
    os.rmdir(first)
    second = os.path.dirname(kernelsockets.socket_prefix(prefix))
    assert second != first and os.path.isdir(second)


def test_a_temporary_folder_with_a_long_path_falls_back_to_tmp(monkeypatch, fresh_folder, tmp_path):
    deep = tmp_path / ("t" * 90)
    deep.mkdir()
    monkeypatch.setenv("TMPDIR", str(deep))
    short = kernelsockets.socket_prefix("/" + "p" * 120 + "/kernel-1-ipc")
    assert os.path.dirname(os.path.dirname(short)) == kernelsockets.FALLBACK_ROOT


def _start(km, provisioner: str) -> None:
    """Start ``km``'s kernel through ``provisioner`` (the factory is shared: put it back)."""
    from jupyter_client.provisioning import KernelProvisionerFactory

    factory = KernelProvisionerFactory.instance()
    before = factory.default_provisioner_name
    factory.default_provisioner_name = provisioner
    try:
        km.start_kernel()
    finally:
        factory.default_provisioner_name = before


def _answer(km) -> str:
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive("print(6 * 7)", timeout=60, output_hook=_collect)
        assert reply["content"]["status"] == "ok"
        return "".join(_collect.seen).strip()
    finally:
        client.stop_channels()


def _collect(msg):
    if msg["msg_type"] == "stream":
        _collect.seen.append(msg["content"]["text"])


_collect.seen = []


def test_a_kernel_named_in_a_long_folder_answers_over_unix_sockets_only(fresh_folder, long_folder):
    from jupyter_client.manager import KernelManager

    _collect.seen = []
    connection = str(long_folder / "kernel-long.json")
    km = KernelManager(kernel_name="python3", transport="ipc", connection_file=connection)
    _start(km, kernelsockets.NAME)
    try:
        assert _answer(km) == "42"
        info = json.loads((long_folder / "kernel-long.json").read_text())
        assert info["transport"] == "ipc"
        assert info["ip"].startswith(kernelsockets._folder + os.sep)
        # The five channels are Unix sockets in the private folder: no port for another process
        # to take first, none for another account to reach. (ipykernel's pipe for its forked
        # subprocesses' output is a TCP port the kernel binds itself, which no one can take.)
        assert channel_sockets(info) <= set(sockets_of(km.provisioner.pid)["unix"])
    finally:
        km.shutdown_kernel(now=True)
    # Its sockets go with it.
    assert not [p for p in os.listdir(kernelsockets._folder) if p.startswith("kernel-long")]


def test_stock_jupyter_client_still_names_sockets_past_the_unix_limit(long_folder):
    """Canary: the stock provisioner keeps a long prefix, and no socket can have that name.

    When upstream shortens the names itself, this fails: the provisioner's move can then go.
    """
    import errno

    from jupyter_client.manager import KernelManager

    connection = str(long_folder / "kernel-stock.json")
    km = KernelManager(kernel_name="python3", transport="ipc", connection_file=connection)
    try:
        # ZeroMQ's own error (a ZMQError), with the system's errno.
        with pytest.raises(Exception, match="File name too long") as failed:
            _start(km, "local-provisioner")
        assert failed.value.errno == errno.ENAMETOOLONG
    finally:
        # The kernel was started before its manager failed to connect: end it, and close the
        # socket left open by the failed connect (its context would wait for it at exit).
        with contextlib.suppress(Exception):
            km.provisioner.process.kill()
        km.context.destroy(linger=0)
