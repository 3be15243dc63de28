"""The public apps' line: visitors beyond ``max_kernels`` wait, first come, first served.

The kernels here are held by visitors who stay on the app, so none is culled during the test
(``cull_idle_timeout`` is long); pools are off, so every place is a visitor's.
"""

from __future__ import annotations

import re
import time

import psutil
import pytest
import requests
from harness import kernel_id_of, kernel_processes

pytestmark = pytest.mark.server

APPS_SETTINGS = {"pool_size": 0, "max_kernels": 4, "cull_idle_timeout": 600, "cull_interval": 5}
PLANNER = "voila/render/planner/planner.en.ipynb"


def kernel_running(apps_server, kernel: str) -> bool:
    """Whether a kernel process of the apps server has ``kernel``'s connection file."""
    for process in kernel_processes(apps_server.proc.pid):
        try:
            if kernel in " ".join(process.cmdline()):
                return True
        except psutil.NoSuchProcess:
            continue
    return False


def place_in_line(page: str) -> tuple[int, int]:
    """The visitor's place as the waiting page says it, in English and in French."""
    english = re.search(r"You are number (\d+) in line", page)
    french = re.search(r"Vous êtes numéro (\d+) dans la file", page)
    assert english and french, page
    return int(english.group(1)), int(french.group(1))


def wait_in_line(apps_server, session: requests.Session) -> int:
    """Ask for the app as the waiting page does; the place it gives (both languages agree)."""
    page = session.get(apps_server.url + PLANNER, timeout=60)
    assert page.status_code == 503, page.status_code
    assert int(page.headers["Retry-After"]) >= 1
    assert page.headers["Cache-Control"] == "no-store"
    assert f'http-equiv="refresh" content="{page.headers["Retry-After"]}"' in page.text
    english, french = place_in_line(page.text)
    assert english == french
    return english


def test_visitors_beyond_the_bound_keep_their_place_in_line(apps_server):
    """Beyond ``max_kernels``, do visitors wait in line, first come first served?

    Each gets a waiting page (never an error) saying their place in both languages, which asks
    again by itself; asking again keeps the place; a forged ticket or a newcomer goes to the
    back; a freed kernel goes to the first in line, then the next moves up.
    """
    holders = []
    while True:  # visitors who stay on the app hold every kernel
        visitor = requests.Session()
        page = visitor.get(apps_server.url + PLANNER, timeout=60)
        if page.status_code == 503:
            break
        assert page.status_code == 200, page.status_code
        holders.append((visitor, kernel_id_of(page.text)))
        assert len(holders) <= apps_server.settings["max_kernels"]
    first = visitor
    status = requests.get(apps_server.url + "atelier/status", timeout=30).json()
    assert status["waiting"] == 1 and status["kernels"] == status["max_kernels"]
    assert place_in_line(page.text) == (1, 1)
    assert first.cookies.get("atelier-apps-place"), "the place is not kept in a cookie"
    second = requests.Session()
    assert wait_in_line(apps_server, second) == 2
    assert wait_in_line(apps_server, first) == 1  # asking again keeps the place
    forged = requests.Session()
    forged.cookies.set("atelier-apps-place", "1.0000000000")
    assert wait_in_line(apps_server, forged) == 3  # a made-up ticket is a place at the back

    # One visitor leaves: their kernel frees, and it is not for a newcomer or the second.
    leaving, kernel = holders.pop(0)
    shutdown = apps_server.url + f"voila/api/shutdown/{kernel}"
    assert leaving.post(shutdown, data={"_xsrf": leaving.cookies.get("_xsrf")}, timeout=30).ok
    deadline = time.monotonic() + 30
    while kernel_running(apps_server, kernel):
        assert time.monotonic() < deadline, "the kernel outlived its visitor's beacon"
        time.sleep(0.2)
    assert wait_in_line(apps_server, requests.Session()) == 4
    assert wait_in_line(apps_server, second) == 2
    served = first.get(apps_server.url + PLANNER, timeout=60)
    assert served.status_code == 200 and kernel_id_of(served.text)
    assert wait_in_line(apps_server, second) == 1
