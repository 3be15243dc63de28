"""The public apps server (`atelier apps`) against adversarial visitors: adversarial cases V1-V3."""

from __future__ import annotations

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests
from harness import kernel_id_of, kernel_processes
from websockets.sync.client import connect

pytestmark = pytest.mark.server

APPS_SETTINGS = {"pool_size": 1, "max_kernels": 8, "cull_idle_timeout": 10, "cull_interval": 1}
PLANNER = "voila/render/planner/planner.en.ipynb"
MARKERS = ["SOURCE-MARKER", "SOLUTION-MARKER", "HELPER-MARKER", "TRACEBACK-MARKER", "root:x:0"]


def rss(process) -> int:
    """Resident memory of a process, 0 if it has gone."""
    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


def message(msg_type: str, content: dict, channel: str = "shell") -> dict:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "visitor",
            "session": uuid.uuid4().hex,
            "version": "5.3",
            "date": "2026-01-01T00:00:00Z",
        },
        "parent_header": {},
        "metadata": {},
        "content": content,
        "channel": channel,
        "buffers": [],
    }


def test_execute_and_introspection_requests_are_ignored(apps_server, tmp_path):
    """V1: does a visitor's execute/inspect/complete/history request get through?"""
    page = requests.get(apps_server.url + PLANNER, timeout=30).text
    kernel_id = kernel_id_of(page)
    proof = tmp_path / "executed"
    ws_url = apps_server.url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
    refused = {
        "execute_request": {"code": f"open({str(proof)!r}, 'w').write('ran')", "silent": False},
        "inspect_request": {"code": "open", "cursor_pos": 4, "detail_level": 1},
        "complete_request": {"code": "import o", "cursor_pos": 8},
        "history_request": {"output": True, "raw": True, "hist_access_type": "tail", "n": 10},
    }
    with connect(ws_url, open_timeout=10) as ws:
        for msg_type, content in refused.items():
            ws.send(json.dumps(message(msg_type, content)))
        # An allowed request afterwards proves the channel works and the refused ones went first.
        ws.send(json.dumps(message("kernel_info_request", {})))
        replies = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv(timeout=15))
            replies.append(msg["header"]["msg_type"])
            if msg["header"]["msg_type"] == "kernel_info_reply":
                break
        # Give any late reply to a refused request a moment to arrive.
        try:
            while True:
                replies.append(json.loads(ws.recv(timeout=1.5))["header"]["msg_type"])
        except TimeoutError:
            pass
    assert "kernel_info_reply" in replies
    for msg_type in refused:
        assert msg_type.replace("request", "reply") not in replies
    assert "execute_input" not in replies
    assert not proof.exists()


@pytest.mark.parametrize(
    "path",
    [
        "voila/files/planner/planner.en.ipynb",
        "voila/files/planner/helper.py",
        "voila/files/planner/data/unit.txt",
        "voila/files/planner/planner-solution.en.ipynb",
        "voila/render/planner/planner-solution.en.ipynb",
        "voila/render/planner/helper.py",
        "voila/files/../../../../etc/passwd",
        "voila/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "voila/render/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "voila/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "voila/templates/lab/static/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "voila/tree/planner",
        "voila/api/contents/planner",
        "voila/api/contents/planner/planner.en.ipynb",
        "api/contents/planner/planner.en.ipynb",
        "api/kernels",
        "tree",
        "lab",
    ],
)
def test_sources_and_files_are_not_served(apps_server, path):
    """V2: can a visitor fetch a source, a neighbour file, a solution, a listing, a system file?"""
    response = requests.get(apps_server.url + path, timeout=30)
    assert response.status_code in (403, 404, 500), (path, response.status_code)
    for marker in MARKERS:
        assert marker not in response.text


def test_app_page_hides_sources_tracebacks_and_cdns(apps_server):
    """V2: does a rendered app, or a failing one, show a source line, a traceback, a CDN address?"""
    for path in [PLANNER, "voila/render/broken/broken.en.ipynb", PLANNER + "?template=lab"]:
        response = requests.get(apps_server.url + path, timeout=60)
        assert response.status_code == 200
        for marker in MARKERS:
            assert marker not in response.text, (path, marker)
        assert "cdn." not in response.text
        if "planner" in path:
            # Graded exercises are not part of an app: no stub to fail, no error notice.
            assert "There was an error" not in response.text
        assert not re.search(r"""(src|href)=["']https?://""", response.text)


def test_index_lists_only_apps_in_both_languages(apps_server):
    """Does the index list every app, English and French, and nothing that is not an app?"""
    index = requests.get(apps_server.url, timeout=10).text
    assert "planner/planner.en.ipynb" in index
    assert "planner/planner.fr.ipynb" in index
    assert 'lang="fr"' in index
    assert "solution" not in index
    assert "helper" not in index


def test_a_visitor_who_leaves_frees_their_kernel_at_once(apps_server):
    """Does the page's shutdown beacon (sent when a visitor leaves) end that visitor's kernel?

    Voila's page reads the ``_xsrf`` token for the beacon from its cookie: the page must set it,
    or every beacon is refused and each departed visitor holds a kernel until it is culled.
    """
    visitor = requests.Session()
    page = visitor.get(apps_server.url + PLANNER, timeout=60)
    assert page.status_code == 200
    kernel = kernel_id_of(page.text)
    token = visitor.cookies.get("_xsrf")
    assert token, "the app page sets no _xsrf cookie"
    assert kernel_running(apps_server, kernel)
    shutdown = apps_server.url + f"voila/api/shutdown/{kernel}"
    stranger = requests.post(shutdown, data={"_xsrf": "forged"}, timeout=30)
    assert stranger.status_code == 403  # a beacon needs the visitor's own token
    left = visitor.post(shutdown, data={"_xsrf": token}, timeout=30)
    assert left.status_code in (200, 204), left.status_code
    deadline = time.monotonic() + 30
    while kernel_running(apps_server, kernel):
        assert time.monotonic() < deadline, "the kernel outlived its visitor's beacon"
        time.sleep(0.2)


def kernel_running(apps_server, kernel: str) -> bool:
    """Whether a kernel process of the apps server has ``kernel``'s connection file."""
    alive = []
    for process in kernel_processes(apps_server.proc.pid):
        try:
            alive.append(kernel in " ".join(process.cmdline()))
        except psutil.NoSuchProcess:
            continue
    return any(alive)


def test_visitors_opening_and_leaving_keep_kernels_bounded(apps_server):
    """V3: with 50 visitors opening an app and leaving, are kernels bounded, then culled?

    Visitors beyond the bound must get the "busy" page, never an error.
    """
    limit = apps_server.settings["max_kernels"]
    peak = peak_rss = 0
    statuses = []

    def visit(i):
        path = PLANNER if i % 2 else "voila/render/planner/planner.fr.ipynb"
        response = requests.get(apps_server.url + path, timeout=60)
        return response.status_code, response.text

    with ThreadPoolExecutor(max_workers=25) as pool:
        futures = [pool.submit(visit, i) for i in range(50)]
        while not all(f.done() for f in futures):
            kernels = kernel_processes(apps_server.proc.pid)
            peak = max(peak, len(kernels))
            peak_rss = max(peak_rss, sum(rss(k) for k in kernels))
            time.sleep(0.05)
        for f in futures:
            statuses.append(f.result())
    peak = max(peak, len(kernel_processes(apps_server.proc.pid)))
    codes = [code for code, _ in statuses]
    assert set(codes) <= {200, 503}, codes
    assert codes.count(200) >= 1
    assert codes.count(503) >= 1, "50 visitors against 8 kernels must meet the busy page"
    busy = next(text for code, text in statuses if code == 503)
    assert "Please wait a moment" in busy and "Merci de patienter" in busy
    assert peak <= limit, f"{peak} kernels alive, limit {limit}"
    # Memory follows: a widget kernel is ~60-80 MiB, so the bound caps it too.
    assert peak_rss < limit * 150 * 2**20, f"kernels used {peak_rss / 2**20:.0f} MiB"
    assert apps_server.proc.poll() is None

    # Abandoned visitors' kernels are culled; what stays is the preheated pools (3 app notebooks).
    pooled = 3 * apps_server.settings["pool_size"]
    deadline = time.monotonic() + apps_server.settings["cull_idle_timeout"] + 30
    while len(kernel_processes(apps_server.proc.pid)) > pooled:
        assert time.monotonic() < deadline, "idle kernels were not culled"
        time.sleep(0.5)
    # And the app opens again once room is back, for a visitor whose page asks again as told (the
    # places of the 50, who never asked again, lapse within a few missed polls).
    visitor = requests.Session()
    deadline = time.monotonic() + 90
    while (page := visitor.get(apps_server.url + PLANNER, timeout=60)).status_code == 503:
        assert time.monotonic() < deadline, "the app never opened again"
        time.sleep(int(page.headers["Retry-After"]))
    assert page.status_code == 200
