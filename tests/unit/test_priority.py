"""Who goes first on a full machine (``core/processes/priority.py``).

What an admin relies on: the hub and its proxy run at ``hub.nice``, and nothing they start keeps
that priority (niceness is inherited): the services, the server template and trainees' servers run
at 0, the public apps lower. The real hub's processes are checked in ``tests/servers/test_hub.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from atelier.processes import priority

pytestmark = pytest.mark.unit

SAY_NICENESS = [sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"]


def _run(argv, preexec):
    done = subprocess.run(argv, preexec_fn=preexec, capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(os.geteuid() != 0, reason="only root lowers a niceness (CI runs as root)")
def test_at_gives_the_child_the_hubs_niceness():
    assert _run(SAY_NICENESS, priority.at(-10)) == -10


@pytest.mark.skipif(os.geteuid() != 0, reason="only root lowers a niceness (CI runs as root)")
def test_what_the_hub_starts_through_command_runs_at_zero():
    # As the hub starts a service: from a process at -10.
    assert _run(priority.command(SAY_NICENESS), priority.at(-10)) == 0


def test_a_process_already_nicer_keeps_its_niceness():
    # An admin who runs a service at 5 by hand: the reset only ever raises a niceness.
    assert _run(priority.command(SAY_NICENESS), priority.at(5)) == 5


def test_without_the_right_to_lower_it_the_child_keeps_what_it_has():
    def as_nobody():
        if os.geteuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
        priority.at(-10)()

    assert _run(SAY_NICENESS, as_nobody) == os.getpriority(os.PRIO_PROCESS, 0)


def test_the_wrapper_says_how_to_use_it():
    done = subprocess.run(priority.command([]), capture_output=True, text=True)
    assert done.returncode != 0 and "usage" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="only root lowers a niceness (CI runs as root)")
def test_a_login_hashes_its_password_behind_the_hubs_loop(tmp_path, monkeypatch):
    """From a hub thread at -10, is the password checked (right) in a thread at niceness 0?

    At -10 the hashing threads took turns with the hub's event loop in a burst of logins.
    """
    import asyncio
    import threading

    from atelier import accounts
    from atelier.hub_config.people import authenticator

    accounts.save_password_hashes(tmp_path, {"alice": accounts.hash_password("pa55-word")})
    seen = []

    def check(password, stored):
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return accounts.check_password(password, stored)

    monkeypatch.setattr(authenticator, "check_password", check)
    auth = authenticator.ImportPasswordAuthenticator(state_dir=str(tmp_path))
    results = []

    def hub_loop():
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)
        for password in ("pa55-word", "wrong"):
            data = {"username": "Alice", "password": password}
            results.append(asyncio.run(auth.authenticate(None, data)))
        results.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    loop = threading.Thread(target=hub_loop)
    loop.start()
    loop.join()
    assert results == ["alice", None, -10]
    assert seen == [0, 0]
