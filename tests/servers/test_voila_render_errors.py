"""A Voila page whose render fails ends with a sentence instead of hanging.

Voila 0.5.13 renders a page served on request in a task it never awaits; when the render raises
(here: a kernel that never answers ``kernel_info`` within ``startup_timeout``), the page never
ends and the person waits on heartbeats forever. ``end_pages_on_render_errors`` (in
``atelier.upstream.voila``, applied by the workbook view, the dashboard and the public apps) ends
it with the room's sentence.
The fixture notebook's kernel (``atelier-silent``, written here) only sleeps.
"""

from __future__ import annotations

import json
import sys
import time

import psutil
import pytest
import requests
from harness import FIXTURES, start_server, stop_process

from atelier.processes.ports import free_port

pytestmark = pytest.mark.server

NOTEBOOK = FIXTURES / "voila_errors" / "silent-kernel"
#: The sentence the room configures; markup in it must reach the page as text.
SENTENCE = "Reload <b>this</b> page & tell your facilitator"
MARKER = "atelier-silent-kernel-marker"
PATCHED = (
    "from atelier.upstream.voila import end_pages_on_render_errors\nend_pages_on_render_errors()\n"
)
LAUNCH = "import sys\nfrom voila.app import main\nsys.exit(main())\n"


def silent_kernels() -> list:
    """The fixture's sleeping kernel processes still alive."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if MARKER in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def voila(tmp_path, *, patched: bool):
    """A real Voila server over the fixture folder, with the patch applied or not."""
    spec = tmp_path / "jupyter" / "kernels" / "atelier-silent"
    spec.mkdir(parents=True)
    sleeper = f"import time  # {MARKER}\ntime.sleep(300)"
    argv = [sys.executable, "-c", sleeper, "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "silent", "language": "python"})
    )
    port = free_port()
    command = [
        sys.executable,
        "-c",
        (PATCHED if patched else "") + LAUNCH,
        str(NOTEBOOK),
        f"--port={port}",
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        "--VoilaExecutor.startup_timeout=3",
        f"--VoilaExecutor.cell_error_instruction={SENTENCE}",
    ]
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "JUPYTER_PATH": str(tmp_path / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path / "voila.log"
    proc = start_server(command, url, log, cwd=tmp_path, env=env)
    return proc, url + "voila/render/page.ipynb", log


def read_page(url: str, limit: float) -> tuple[str, bool]:
    """The page's text read for at most ``limit`` seconds, and whether it ended by then."""
    body = []
    deadline = time.monotonic() + limit
    with requests.get(url, stream=True, timeout=limit) as response:
        assert response.status_code == 200
        try:
            for chunk in response.iter_content(chunk_size=None, decode_unicode=True):
                body.append(chunk)
                if time.monotonic() > deadline:
                    return "".join(body), False
        except requests.exceptions.ConnectionError:  # the read timeout, raised mid-stream
            return "".join(body), False
    return "".join(body), True


def test_a_page_whose_kernel_never_answers_ends_with_the_sentence(tmp_path):
    """Does the page end, with the configured sentence escaped, and is its kernel shut down?"""
    proc, page_url, log = voila(tmp_path, patched=True)
    try:
        page, ended = read_page(page_url, limit=30)
        assert ended, f"the page did not end within 30 s: ...{page[-300:]}"
        assert "Reload &lt;b&gt;this&lt;/b&gt; page &amp; tell your facilitator" in page
        assert "<b>this</b>" not in page
        assert 'role="alert"' in page
        assert "never reached" not in page
        deadline = time.monotonic() + 15
        while silent_kernels() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not silent_kernels(), "the failed page's kernel was left running"
        assert "could not be rendered" in log.read_text(), "the error was not logged"
    finally:
        stop_process(proc)
        for kernel in silent_kernels():
            kernel.kill()


def test_stock_voila_still_leaves_such_a_page_hanging(tmp_path):
    """Canary: without the patch, does Voila still never end the page (the patch is needed)?

    When this fails, Voila ends a failed page itself: drop ``end_pages_on_render_errors``
    (docs/upstream-patches.md).
    """
    proc, page_url, _ = voila(tmp_path, patched=False)
    try:
        _, ended = read_page(page_url, limit=10)
        assert not ended, "stock Voila now ends a page whose render failed: the patch can go"
    finally:
        stop_process(proc)
        for kernel in silent_kernels():
            kernel.kill()
