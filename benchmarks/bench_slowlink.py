"""Benchmark: Atelier on a slow link against the stock setup, in Chromium, same machine and run.

Run as root: ``/opt/atelier/env/bin/python benchmarks/bench_slowlink.py``.

Chromium (Debian's, through Playwright) emulates a weak link with CDP
``Network.emulateNetworkConditions``: 1 Mbit/s down (125000 B/s), 0.5 Mbit/s up, 300 ms round
trip. Transferred bytes are Chromium's own count (``Network.loadingFinished`` ``encodedDataLength``:
bodies as sent, compressed or not, plus headers); requests served from the browser cache cost 0.

Measured, for Atelier's hub and a stock JupyterHub 6 (LocalProcessSpawner, DummyAuthenticator,
default ``jupyterhub-singleuser`` JupyterLab; see ``bench_hub.start_stock``), with the trainee's
server already started:

- JupyterLab, first visit (empty cache) and repeat visit (same browser): bytes, requests, and the
  time from navigating to the workbook until its first code cell has run ("time to usable");
- a public app, first visit: ``atelier apps`` against plain ``voila`` on the same notebook; bytes,
  requests, and time until the app's widget answers a keystroke;
- Atelier's workbook view (``/atelier/view/<workbook>``, Voila inside the trainee's server), first
  visit (empty cache) and repeat visit: bytes, requests, and the time from navigating to the view
  until the first answer given shows "Saved"; beside it, Notebook 7 (``/notebooks/<workbook>``, the
  other candidate for the view) on the same server: first visit bytes until its cells are shown.

The workbook is ``tests/fixtures/view/quiz/quiz.en.ipynb`` (its first cell shows a question), the
same in every path.

Accounts (prefix ``s<4 letters>-``) and temporary folders are removed at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_hub  # the hubs are started as in the hub benchmark
from harness import Meter  # tests/harness.py, put on sys.path by bench_hub

REPO = bench_hub.REPO
ENV_BIN = bench_hub.ENV_BIN
#: The emulated link: ~1 Mbit/s down, 300 ms round trip.
SLOW_LINK = {
    "offline": False,
    "latency": 300,
    "downloadThroughput": 125_000,
    "uploadThroughput": 62_500,
}
WORKBOOK = "workbooks/quiz/quiz.en.ipynb"
APP = "planner/planner.en.ipynb"
GOALS = {
    "lab_first": 2_000_000,
    "lab_repeat": 200_000,
    "app_first": 1_500_000,
    "view_first": 1_000_000,
    "view_repeat": 100_000,
}
#: The option of the quiz's first question chosen at each visit of the view.
VIEW_ANSWERS = {"first": "Four", "repeat": "Three"}


def load(step: str) -> None:
    """Say what is measured next, with the machine's load average (others may share it)."""
    one, five, _ = os.getloadavg()
    print(f"{time.strftime('%H:%M:%S')} load {one:.1f} / {five:.1f}  {step}", flush=True)


def measured(meter: Meter, seconds: float) -> dict:
    """A visit's figures, with the list of its responses (where the bytes went)."""
    return {"bytes": meter.bytes, "requests": meter.requests, "s": seconds, "log": list(meter.log)}


def run_first_cell(page, url: str, timeout: float = 600) -> float:
    """Open the workbook and run its first code cell; seconds from navigation to its output.

    As a trainee does: wait until the status bar shows the notebook's kernel idle, then run the
    cell (Ctrl+Enter runs it in place, so pressing again never adds cells), and press again if
    nothing came within 2 s (a keystroke can land before the notebook takes it). The short
    retry keeps the measure within ~2 s of the moment the workbook became usable.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = time.monotonic()
    page.goto(url)
    cell = page.locator(".jp-CodeCell").first
    output = cell.locator(".jp-OutputArea-output").first
    page.get_by_text("(ipykernel) | Idle").first.wait_for(timeout=timeout * 1000)
    while time.monotonic() - started < timeout:
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        try:
            output.wait_for(timeout=2_000)
            return time.monotonic() - started
        except PlaywrightTimeout:
            continue
    page.screenshot(path="bench_slowlink-failed.png")
    raise SystemExit(f"the first cell of {url} gave no output in {timeout:.0f} s (see screenshot)")


def measure_lab(browser, hub: bench_hub.BenchHub, username: str) -> dict:
    """First and repeat visit of the workbook in JupyterLab, on the emulated link."""
    session = hub.login(username)
    ready, _ = hub.press_start_and_wait(session, username)
    assert ready, f"{hub.name}: {username}'s server did not start"
    context = browser.new_context()
    context.add_cookies(
        [
            {"name": c.name, "value": c.value, "domain": "127.0.0.1", "path": c.path or "/"}
            for c in session.cookies
        ]
    )
    page = context.new_page()
    page.set_default_timeout(600_000)
    meter = Meter(context, page, SLOW_LINK)
    url = f"{hub.url}/user/{username}/lab/tree/{WORKBOOK}"
    result = {}
    for visit in ("first", "repeat"):
        meter.reset()
        seconds = run_first_cell(page, url)
        # Lab polls the server every few seconds, so "network idle" never comes on a slow link:
        # count what arrives in the few seconds after the cell ran (late chunks, settings).
        page.wait_for_timeout(5000)
        result[f"lab_{visit}"] = measured(meter, seconds)
        # The next visit starts a fresh kernel too, as a trainee coming back the next day would.
        base = f"{hub.url}/user/{username}"
        headers = {"X-XSRFToken": session.cookies.get("_xsrf", path=f"/user/{username}/") or ""}
        for one in session.get(f"{base}/api/sessions", timeout=60).json():
            session.delete(f"{base}/api/sessions/{one['id']}", headers=headers, timeout=60)
    context.close()
    return result


def logged_in_context(browser, hub: bench_hub.BenchHub, session):
    """A browser context carrying ``session``'s hub cookies (the trainee is logged in)."""
    context = browser.new_context()
    context.add_cookies(
        [
            {"name": c.name, "value": c.value, "domain": "127.0.0.1", "path": c.path or "/"}
            for c in session.cookies
        ]
    )
    return context


def measure_view(browser, hub: bench_hub.BenchHub, username: str) -> dict:
    """First and repeat visit of the workbook view until the first answer shows "Saved".

    Then, in a fresh context, Notebook 7 on the same notebook: bytes until its cells are shown.
    """
    from atelier.hub_config.view.workbook import page_words

    saved = page_words("en")["saved"]
    session = hub.login(username)
    ready, _ = hub.press_start_and_wait(session, username)
    assert ready, f"{hub.name}: {username}'s server did not start"
    context = logged_in_context(browser, hub, session)
    page = context.new_page()
    page.set_default_timeout(600_000)
    meter = Meter(context, page, SLOW_LINK)
    url = f"{hub.url}/user/{username}/atelier/view/{WORKBOOK}"
    result = {}
    for visit in ("first", "repeat"):
        meter.reset()
        started = time.monotonic()
        page.goto(url)
        # A different option each visit: checking the saved one again would change nothing.
        page.get_by_label(VIEW_ANSWERS[visit], exact=True).check()
        page.locator("#atelier-save", has_text=saved).wait_for()
        seconds = time.monotonic() - started
        page.wait_for_timeout(3000)
        result[f"view_{visit}"] = measured(meter, seconds)
        page.goto("about:blank")  # Voila shuts the page's kernel down as it is left
    context.close()
    context = logged_in_context(browser, hub, session)
    page = context.new_page()
    page.set_default_timeout(600_000)
    meter = Meter(context, page, SLOW_LINK)
    started = time.monotonic()
    page.goto(f"{hub.url}/user/{username}/notebooks/{WORKBOOK}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    seconds = time.monotonic() - started
    page.wait_for_timeout(5000)
    result["notebook7_first"] = measured(meter, seconds)
    context.close()
    return result


def measure_app(browser, url: str) -> dict:
    """First visit of an app until its widget answers, on the emulated link."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(600_000)
    meter = Meter(context, page, SLOW_LINK)
    started = time.monotonic()
    page.goto(url)
    box = page.locator(".widget-text input")
    box.fill("3")
    page.get_by_text("You typed: 3").wait_for()
    seconds = time.monotonic() - started
    context.close()
    return {"app_first": measured(meter, seconds)}


def start_process(cmd, log: Path, cwd: Path, env=None) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=cwd, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def measure_apps(browser, root: Path) -> tuple[dict, dict]:
    """``atelier apps`` and plain ``voila`` on the same app notebook."""
    apps = REPO / "tests" / "fixtures" / "apps"
    port = bench_hub.free_port()
    settings = root / "apps.yaml"
    settings.write_text(json.dumps({"apps": {"pool_size": 1, "max_kernels": 8}}))
    ours_proc = start_process(
        [str(ENV_BIN / "atelier"), "apps", f"--settings={settings}", f"--port={port}",
         f"--workbooks={apps}"], root / "apps.log", root,
    )  # fmt: skip
    stock_dir = root / "stock-app"
    shutil.copytree(apps / "planner", stock_dir)
    stock_port = bench_hub.free_port()
    stock_proc = start_process(
        [str(ENV_BIN / "voila"), "--no-browser", f"--port={stock_port}", "planner.en.ipynb"],
        root / "voila.log", stock_dir, {"ATELIER_NO_IMPORT_FIX": "1"},
    )  # fmt: skip
    try:
        bench_hub.wait_http(f"http://127.0.0.1:{port}/", timeout=600)
        bench_hub.wait_http(f"http://127.0.0.1:{stock_port}/voila/static/voila.js", timeout=600)
        ours = measure_app(browser, f"http://127.0.0.1:{port}/voila/render/{APP}")
        stock = measure_app(browser, f"http://127.0.0.1:{stock_port}/")
    finally:
        for proc in (ours_proc, stock_proc):
            proc.terminate()
            proc.wait(30)
    return ours, stock


def report(ours: dict, stock: dict) -> None:
    print()
    print(f"Emulated link: {SLOW_LINK['downloadThroughput'] * 8 / 1e6:.1f} Mbit/s down, "
          f"{SLOW_LINK['latency']} ms round trip")  # fmt: skip
    head = f"{'page':<12}{'':>2}{'Atelier':>24}{'stock':>24}{'bytes ×':>9}{'time ×':>8}  goal"
    print(head)
    print("-" * len(head))
    for name in ("lab_first", "lab_repeat", "app_first"):
        a, s = ours[name], stock[name]
        goal = GOALS[name]
        ok = "ok" if a["bytes"] <= goal else "MISSED"
        print(
            f"{name:<14}"
            f"{a['bytes'] / 1e3:>8.0f} kB {a['requests']:>4} rq {a['s']:>5.1f} s"
            f"{s['bytes'] / 1e3:>8.0f} kB {s['requests']:>4} rq {s['s']:>5.1f} s"
            f"{a['bytes'] / max(s['bytes'], 1):>9.2f}{a['s'] / s['s']:>8.2f}"
            f"  ≤ {goal / 1e3:.0f} kB {ok}"
        )
    ratio = ours["lab_first"]["s"] / stock["lab_first"]["s"]
    print(f"time to a usable workbook (first visit) vs stock: {ratio:.2f} (goal ≤ 0.50)")
    print()
    print("Atelier's workbook view (against stock JupyterLab's first cell on the same workbook)")
    for name in ("view_first", "view_repeat", "notebook7_first"):
        a = ours[name]
        goal = GOALS.get(name)
        verdict = ""
        if goal:
            verdict = f"  ≤ {goal / 1e3:.0f} kB {'ok' if a['bytes'] <= goal else 'MISSED'}"
        print(
            f"{name:<16}{a['bytes'] / 1e3:>8.0f} kB {a['requests']:>4} rq {a['s']:>5.1f} s"
            + verdict
        )
    ratio = ours["view_first"]["s"] / stock["lab_first"]["s"]
    print(f"first answer saved in the view vs stock Lab's first cell: {ratio:.2f} (goal ≤ 0.50)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests",
        metavar="FILE",
        help="Write every visit's responses (URL, bytes, encoding, cache headers) to FILE (JSON).",
    )
    parser.add_argument(
        "--stock-first",
        action="store_true",
        help="Measure stock JupyterHub before Atelier (alternate between runs).",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark creates Unix accounts")
    from playwright.sync_api import sync_playwright

    prefix = "s" + "".join(random.choices(string.ascii_lowercase, k=4)) + "-"
    root = Path(tempfile.mkdtemp(prefix="atelier-slowlink-"))
    root.chmod(0o755)
    hubs = []  # stopped at the end whatever happens
    try:
        from atelier.hub_config.servers.delivery import publish_workbooks

        published = root / "published"
        shutil.copytree(REPO / "tests" / "fixtures" / "hub_workbooks", published)
        shutil.copytree(REPO / "tests" / "fixtures" / "view" / "quiz", published / "quiz")
        publish_workbooks(published, root / "workbooks.git")
        username = "u00"
        (root / "roster.csv").write_text(
            "username,full name,email,institution,country,language,role,cohort\n"
            f"{username},Trainee,{username}@example.org,U,KE,en,trainee,bench\n"
        )
        token = secrets.token_hex(16)

        def import_roster(settings_path: Path) -> None:
            # Before the hub starts, as the tests do: a roster with a new cohort imported into a
            # running hub restarts it and waits for that cohort's formgrader service.
            subprocess.run(
                [str(ENV_BIN / "atelier"), "roster", "import", "--settings", str(settings_path),
                 str(root / "roster.csv"), "--passwords-file", str(root / "pw.csv")],
                capture_output=True, text=True, check=True,
            )  # fmt: skip

        atelier = bench_hub.start_atelier(root, prefix, [username], {}, token, import_roster)
        with (root / "pw.csv").open() as handle:
            atelier.passwords = {row["username"]: row["password"] for row in csv.DictReader(handle)}
        hubs.append(atelier)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=["--no-sandbox", "--disable-dev-shm-usage"],
            )

            def run_ours() -> dict:
                load("Atelier's hub (JupyterLab, then the workbook view and Notebook 7)...")
                result = measure_lab(browser, atelier, username)
                result.update(measure_view(browser, atelier, username))
                atelier.stop_all([username])
                bench_hub.stop_hub(atelier)
                return result

            def run_stock() -> dict:
                load("Stock JupyterHub...")
                stock_hub = bench_hub.start_stock(root, [f"{prefix}{username}"], token)
                hubs.append(stock_hub)
                result = measure_lab(browser, stock_hub, f"{prefix}{username}")
                stock_hub.stop_all([f"{prefix}{username}"])
                bench_hub.stop_hub(stock_hub)
                return result

            # Atelier's hub made the trainee's account; it waits idle while stock goes first,
            # after one start of the trainee's server there has delivered the workbooks to
            # their home (stock JupyterHub opens the same files).
            if args.stock_first:
                session = atelier.login(username)
                assert atelier.press_start_and_wait(session, username)[0], "no Atelier server"
                atelier.stop_all([username])
                stock = run_stock()
                ours = run_ours()
            else:
                ours = run_ours()
                stock = run_stock()
            load("Public app: atelier apps and plain voila...")
            ours_app, stock_app = measure_apps(browser, root)
            browser.close()
        load("Done.")
        report({**ours, **ours_app}, {**stock, **stock_app})
        if args.requests:
            visits = {"atelier": {**ours, **ours_app}, "stock": {**stock, **stock_app}}
            Path(args.requests).write_text(json.dumps(visits, indent=1))
    finally:
        for hub in hubs:
            if hub.process.poll() is None:
                bench_hub.stop_hub(hub)
        bench_hub.cleanup(prefix, root)


if __name__ == "__main__":
    main()
