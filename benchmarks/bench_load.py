"""Load: simulated trainees and visitors on a real hub, through the real protocols (issue 20).

One command, as root (it creates Unix accounts and a memory cgroup on this machine):

    /opt/atelier/env/bin/python benchmarks/bench_load.py --profile day|webinar|deadline|all
        [--scale 0.1] [--rates 0.5,1,2] [--work 120] [--target atelier|stock|both] [--prestart]
        [--hub-url URL --roster FILE [--token T] [--cohort C --assignment A --app PATH]]

Built on Locust used as a library (``locust.env.Environment``, one gevent greenlet per person,
``HttpUser`` for HTTP and a websocket client of its own for the kernel's channels). Each person
follows an arrival plan (``benchmarks/loadplan.py``: the issue's three profiles, scaled by
``--scale``, at rate factors ``--rates``: 2 = the same people in half the window) and does what
a trainee's browser does:

- trainee: the hub's login form (XSRF cookie, POST), Start (``/hub/spawn``, then the spawn's
  progress event stream until ready; a 429 "try again" is waited out, as the page does), the
  workbook view (``/user/<name>/atelier/home/open/<cohort>/<assignment>``: fetch, then Voila's
  page, which starts the kernel and runs the notebook), the kernel's websocket (Jupyter messages
  as JSON text frames: ``kernel_info_request``, then ipywidgets' control comm
  ``jupyter.widget.control`` with ``request_states``, as the widget manager does), and for a
  share JupyterLab (its page and the notebook's contents). "Login → workbook usable" runs from
  the login form to the widget states. Active trainees then send a widget event every ~10 s (a
  ``comm_msg`` ``update`` of an answer's RadioButtons ``index``: the widget saves the answer and
  the kernel goes idle, which is when the page says "Saved"; a widget reporting a failed save is
  a failure), and the Lab share saves the notebook (``PUT`` contents) every ~30 s. Deadline
  trainees are ready beforehand (not timed) and submit at their moment (the view's
  ``POST /atelier/submit/<assignment>``: confirm step, then submission), then poll
  ``/atelier/feedback`` until graded ("submit → feedback").
- visitor: a public app of the hub's apps service (``/services/apps/voila/render/<app>``); the
  waiting page (503, ``Retry-After``, the visitor's place in line) is a polite wait, not a
  failure: the visitor asks again when told, as the page does, keeping their place (its cookie);
  an error page, or still waiting after ``--visitor-patience`` s, is a failure. "Click → first
  page" is the first answer's headers (app or waiting page), "click → app rendered" runs to the
  whole rendered page, waiting included (and, for those who waited, "waited in line, then app
  rendered"); then the app's kernel websocket and widget states, as the browser does.

``--prestart``: before each of Atelier's runs, ``atelier servers start --cohort`` starts every
trainee's server (untimed, as a facilitator does before a session); the trainees' Start then
finds their server running. Its wall time and summary go into the figures (``prestart``).

Throughout: the hub's API (``GET /hub/api/users`` with an admin token, every 2 s, timed by
``hubprobe.py`` in a process of its own at ``--probe-nice``; for a hub the harness started, also
the hub's own time for each from its log) and, on this
machine, PSS per process kind (hub, proxy, trainee servers, kernels, apps service, instant
grading; stock hub, stock voila) every 10 s; the harness's own CPU (psutil).

Stock, same run (``--target both``): JupyterHub 6 with LocalProcessSpawner and
``jupyterhub-singleuser`` (``benchmarks/bench_hub.py``'s stock hub), and stock ``voila`` on the same
app, each in a memory cgroup (``--stock-memory-mb``). Stock has no workbook view and no submit
endpoint: its trainees open the notebook in JupyterLab, start a kernel (``POST /api/sessions``), run
every cell (as Run All) and then drive the same widgets; the deadline profile runs on Atelier only
(``benchmarks/bench_feedback.py`` measures stock nbgrader's feedback pipeline).

Against another hub (``--hub-url``, e.g. a Kubernetes deployment): no accounts or servers are
made; ``--roster`` gives usernames and passwords (CSV, ``username,password``), ``--token`` an
admin token for the hub API sampler (optional), ``--cohort``/``--assignment`` the released
workbook, ``--app`` the public app's path. Only loopback hubs are started here.

Writes ``docs/load-<profile>.png`` (p95 per action against the rate; memory per kind over time)
and prints the tables of ``docs/benchmarks.md``; ``--out FILE`` keeps every figure as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

import gevent
import gevent.event
import locust  # noqa: F401  (imported first: it patches the standard library for gevent)
import psutil
import requests
import websocket
from locust import HttpUser, constant, task
from locust.env import Environment
from locust.exception import StopUser

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))
import bench_hub as bh  # noqa: E402
import loadplan as lp  # noqa: E402
from harness import FIXTURES, start_server, stop_process  # noqa: E402

BIN = Path(sys.executable).parent
WORKBOOK = REPO / "workbooks" / "07-home-learning"
APP = "planner/planner.en.ipynb"
CONFIG_DATA = re.compile(
    r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', re.S
)
HUB_API = lp.HUB_TARGET
#: A diagnostic beside it: the hub's own handling time of the same requests, from its log (the
#: rest of a sample is the proxy and the network stack).
HUB_API_HUB_SIDE = "hub API, the hub's own handling time from its log (diagnostic)"
USABLE = lp.USABLE_TARGET
WIDGET = lp.WIDGET_TARGET
RENDERED = lp.RENDERED_TARGET
#: Seconds between two polls of the feedback (the figure's resolution; the view's page polls too).
FEEDBACK_POLL = 0.5
FIRST_PAGE = lp.FIRST_RESPONSE_TARGET
#: Seconds a visitor keeps waiting on the apps' waiting page before giving up (a failure);
#: ``--visitor-patience`` sets it.
BUSY_PATIENCE = 600


class Abandon(Exception):
    """A person gives up after a failure that was already reported as a request event."""


class Run:
    """What every simulated person of one run reads: the target, the plan, the clock."""

    def __init__(self, target, profile, plan, work: float):
        self.target = target  # a Target
        self.profile = profile
        self.plan = list(plan)
        self.work = work
        self.t0 = time.monotonic() + 2  # every greenlet is spawned before the first arrival
        self.done = 0
        self.ended = gevent.event.Event()
        self.deadline_ready = gevent.event.Event()  # deadline: everyone prepared
        self.prepared = 0


#: The run under way (Locust makes the users; they read their run from here).
RUN: Run | None = None


class Target:
    """A hub under load: its URL, people, workbook and app."""

    def __init__(self, name, url, people, token=None, cohort="", assignment="", notebook="",
                 app_url="", stock=False):  # fmt: skip
        self.name = name
        self.url = url.rstrip("/")
        self.people = people  # [(username, password)]
        self.token = token
        self.cohort = cohort
        self.assignment = assignment
        self.notebook = notebook  # the notebook's path under a trainee's server root
        self.app_url = app_url  # full URL of the public app
        self.stock = stock
        self.pids = {}  # for PSS: root pid of each part
        self.log: Path | None = None  # the hub's log, when the harness started the hub


# --- the kernel's websocket ------------------------------------------------------------------


def fire(env, kind, name, started, length=0, exception=None, response_time=None):
    """Report one action to Locust (times in ms from ``started``, a ``time.monotonic()``).

    ``response_time`` (ms), when given, is the action's time instead (measured elsewhere).
    """
    if response_time is None:
        response_time = (time.monotonic() - started) * 1000
    env.events.request.fire(
        request_type=kind, name=name, response_time=response_time,
        response_length=length, exception=exception, context={},
    )  # fmt: skip


class KernelChannel:
    """A kernel's ``/channels`` websocket, JSON text frames, as a browser page opens it."""

    def __init__(self, env, url: str, cookies: str, label: str):
        self.env = env
        self.session = uuid.uuid4().hex
        started = time.monotonic()
        try:
            self.ws = websocket.create_connection(
                f"{url}?session_id={self.session}", cookie=cookies, timeout=120
            )
        except Exception as error:
            fire(env, "WS", f"{label}: kernel websocket", started, exception=error)
            raise Abandon from None
        fire(env, "WS", f"{label}: kernel websocket", started)

    def send(self, msg_type: str, content: dict, channel: str = "shell", metadata=None) -> str:
        """Send one message; its ``msg_id``."""
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": msg_type, "username": "", "version": "5.3",
                  "session": self.session}  # fmt: skip
        message = {"header": header, "parent_header": {}, "metadata": metadata or {},
                   "content": content, "channel": channel, "buffers": []}  # fmt: skip
        self.ws.send(json.dumps(message))
        return msg_id

    def until(self, wanted, timeout: float = 120, seen=None):
        """Read messages until ``wanted(msg)``; every message read goes to ``seen`` too."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = self.ws.recv()
            if not isinstance(frame, str):
                continue  # a binary frame (buffers): not what a widget state change needs
            msg = json.loads(frame)
            if seen is not None:
                seen.append(msg)
            if wanted(msg):
                return msg
        raise TimeoutError(f"no answer in {timeout:.0f} s")

    def call(self, name, msg_type, content, wanted, timeout=120, channel="shell"):
        """Send, wait for the answer ``wanted(msg, msg_id)``; one request event named ``name``."""
        started = time.monotonic()
        seen = []
        try:
            msg_id = self.send(msg_type, content, channel)
            answer = self.until(lambda m: wanted(m, msg_id), timeout, seen)
        except Exception as error:
            fire(self.env, "WS", name, started, exception=error)
            raise Abandon from None
        fire(self.env, "WS", name, started, length=len(seen))
        return answer, seen

    def close(self):
        """Close the socket (the page is left)."""
        with contextlib.suppress(Exception):
            self.ws.close()


def parent_is(msg, msg_id):
    return msg.get("parent_header", {}).get("msg_id") == msg_id


def idle_after(msg, msg_id):
    return (parent_is(msg, msg_id) and msg["msg_type"] == "status"
            and msg["content"].get("execution_state") == "idle")  # fmt: skip


def widget_states(channel: KernelChannel, label: str) -> dict:
    """What ipywidgets 8's manager does on a page: kernel info, then every model's state."""
    channel.call(f"{label}: kernel_info", "kernel_info_request", {},
                 lambda m, i: parent_is(m, i) and m["msg_type"] == "kernel_info_reply")  # fmt: skip
    comm_id = uuid.uuid4().hex
    # The control comm's protocol version goes in the metadata, or the kernel refuses the comm.
    channel.send("comm_open", {"comm_id": comm_id, "target_name": "jupyter.widget.control",
                               "data": {}}, metadata={"version": "1.0.0"})  # fmt: skip

    def states(msg, _msg_id):
        data = msg.get("content", {}).get("data", {})
        return (msg["msg_type"] == "comm_msg" and msg["content"].get("comm_id") == comm_id
                and data.get("method") == "update_states")  # fmt: skip

    answer, _ = channel.call(f"{label}: widget states (control comm)", "comm_msg",
                             {"comm_id": comm_id, "data": {"method": "request_states"}},
                             states)  # fmt: skip
    return answer["content"]["data"]["states"]


def radios(states: dict) -> list[tuple[str, int]]:
    """(model id, number of options) of every RadioButtons: the answers a trainee clicks."""
    found = []
    for model_id, model in states.items():
        if model.get("model_name") == "RadioButtonsModel":
            found.append((model_id, len(model.get("state", {}).get("_options_labels", []))))
    return [r for r in found if r[1] > 1]


# --- the people ------------------------------------------------------------------------------


class Person(HttpUser):
    """One trainee or visitor of :data:`RUN`'s plan (Locust runs it in a greenlet of its own)."""

    host = "http://127.0.0.1"
    wait_time = constant(0)

    @task
    def live(self):
        """The person's whole visit: wait for the arrival moment, act, stop."""
        run = RUN
        arrival = run.plan.pop(0)
        try:
            if arrival.kind == "visitor":
                self.sleep_until(run, arrival.at)
                self.visit(run)
            elif run.profile.submit:
                self.deadline(run, arrival)
            else:
                self.sleep_until(run, arrival.at)
                self.trainee(run, arrival)
        except Abandon:
            pass
        except Exception as error:
            fire(self.environment, "ERROR", f"unexpected: {type(error).__name__}",
                 time.monotonic(), exception=error)  # fmt: skip
        finally:
            if run.profile.submit and not getattr(self, "counted", False):
                self.ready_for_deadline(run)  # gave up while getting ready: do not wait for me
            run.done += 1
            if run.done >= len_plan(run):
                run.ended.set()
        raise StopUser()

    def ready_for_deadline(self, run):
        """Count me as ready (or given up); the last one opens the window in 2 s."""
        self.counted = True
        run.prepared += 1
        if run.prepared >= len_plan(run):
            run.submit_t0 = time.monotonic() + 2
            run.deadline_ready.set()

    @staticmethod
    def sleep_until(run, at):
        """Sleep until ``at`` seconds after the run's start."""
        gevent.sleep(max(0.0, run.t0 + at - time.monotonic()))

    # -- helpers
    def check(self, response, ok, why):
        """Mark a ``catch_response`` response failed unless ``ok``; give up on failure."""
        if ok:
            response.success()
            return
        # No answer at all (HTTP 0): say what ended the request (reset, refused, read timeout).
        error = getattr(response, "error", None) if not response.status_code else None
        detail = f": {type(error).__name__}: {str(error)[:200]}" if error else ""
        response.failure(f"{why} (HTTP {response.status_code}{detail})")
        raise Abandon

    def cookies(self) -> str:
        """The session's cookies as a ``Cookie`` header (the websocket sends them)."""
        return "; ".join(f"{c.name}={c.value}" for c in self.client.cookies)

    def xsrf(self, path: str) -> dict:
        """The XSRF header a page under ``path`` sends with its API calls."""
        # The hub and each server set their own ``_xsrf``, on their own paths.
        mine = [c.value for c in self.client.cookies if c.name == "_xsrf" and c.path == path]
        anyone = [c.value for c in self.client.cookies if c.name == "_xsrf"]
        return {"X-XSRFToken": (mine or anyone or [""])[0]}

    # -- trainee
    def log_in(self, target, username, password):
        """The hub's login form, as a browser posts it (its XSRF cookie in the form)."""
        self.client.get(f"{target.url}/hub/login", name="login page")
        data = {"username": username, "password": password,
                "_xsrf": self.client.cookies.get("_xsrf", path="/hub/") or ""}  # fmt: skip
        with self.client.post(f"{target.url}/hub/login", data=data, allow_redirects=False,
                              name="login (form POST)", catch_response=True) as r:  # fmt: skip
            ok = r.status_code == 302 and "/login" not in r.headers.get("Location", "")
            self.check(r, ok, "login refused")

    def start_server(self, target, username):
        """Start, as the hub's pages do; returns when the server is ready."""
        started = time.monotonic()
        hub = target.url
        while True:
            with self.client.get(f"{hub}/hub/spawn", allow_redirects=False,
                                 name="spawn: press Start", catch_response=True) as r:  # fmt: skip
                if r.status_code == 429:
                    # "Too many users starting now, try again shortly": a wait, not a failure.
                    r.success()
                    fire(self.environment, "HTTP", "spawn: asked to wait (429)", time.monotonic())
                    gevent.sleep(float(r.headers.get("Retry-After") or 5))
                    continue
                self.check(r, r.status_code in (200, 302, 303), "Start failed")
                break
        with self.client.get(f"{hub}/hub/api/users/{username}/server/progress", stream=True,
                             headers=self.xsrf("/hub/"), name="spawn: progress (event stream)",
                             catch_response=True, timeout=300) as r:  # fmt: skip
            ready = failed = False
            message = ""
            if r.status_code == 200:
                for line in r.iter_lines():
                    if not line.startswith(b"data:"):
                        continue
                    event = json.loads(line[5:])
                    message = event.get("message", message)
                    ready, failed = bool(event.get("ready")), bool(event.get("failed"))
                    if ready or failed:
                        break
            self.check(r, ready, f"spawn failed: {message[:200]}")
        fire(self.environment, "FLOW", "spawn: Start → server ready", started)

    def open_view(self, target, username) -> tuple[str, str]:
        """The workbook view of the released workbook; its kernel's websocket and shutdown URLs."""
        url = (f"{target.url}/user/{username}/atelier/home/open/"
               f"{quote(target.cohort)}/{quote(target.assignment)}")  # fmt: skip
        with self.client.get(url, name="open workbook view (fetch + Voila render)",
                             catch_response=True, timeout=300) as r:  # fmt: skip
            found = CONFIG_DATA.search(r.text or "")
            ok = r.status_code == 200 and "/atelier/view/" in r.url and found is not None
            self.check(r, ok, "the view did not render")
        kernel = json.loads(found.group(1))["kernelId"]
        base = f"{target.url}/user/{username}"
        return f"ws{base[4:]}/api/kernels/{kernel}/channels", f"{base}/voila/api/shutdown/{kernel}"

    def open_lab(self, target, username) -> dict:
        """JupyterLab on the notebook: its page and the notebook's contents (as Lab loads it)."""
        base = f"{target.url}/user/{username}"
        with self.client.get(f"{base}/lab/tree/{quote(target.notebook)}", name="open JupyterLab",
                             catch_response=True, timeout=300) as r:  # fmt: skip
            self.check(r, r.status_code == 200 and "/lab" in r.url, "JupyterLab did not open")
        with self.client.get(f"{base}/api/contents/{quote(target.notebook)}?content=1",
                             headers=self.xsrf(f"/user/{username}/"),
                             name="lab: notebook contents", catch_response=True) as r:  # fmt: skip
            self.check(r, r.status_code == 200, "the notebook did not load")
            return r.json()

    def lab_kernel(self, target, username) -> str:
        """Stock: a kernel for the notebook (Lab's session), every cell run; its websocket URL."""
        base = f"{target.url}/user/{username}"
        body = {"path": target.notebook, "type": "notebook", "name": target.notebook,
                "kernel": {"name": "python3"}}  # fmt: skip
        with self.client.post(f"{base}/api/sessions", json=body, name="lab: start kernel",
                              headers=self.xsrf(f"/user/{username}/"),
                              catch_response=True) as r:  # fmt: skip
            self.check(r, r.status_code == 201, "no kernel")
            kernel = r.json()["kernel"]["id"]
        return f"ws{target.url[4:]}/user/{username}/api/kernels/{kernel}/channels"

    def run_all(self, channel, notebook):
        """Run every code cell in order, as Run All does; one action."""
        started = time.monotonic()
        for cell in notebook["content"]["cells"]:
            if cell["cell_type"] != "code" or not "".join(cell["source"]).strip():
                continue
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            msg_id = channel.send("execute_request", {"code": source, "silent": False,
                                  "store_history": True, "allow_stdin": False})  # fmt: skip
            try:
                channel.until(lambda m, i=msg_id: idle_after(m, i), 300)
            except Exception as error:
                fire(self.environment, "WS", "lab: run all cells", started, exception=error)
                raise Abandon from None
        fire(self.environment, "WS", "lab: run all cells", started)

    def trainee(self, run, arrival):
        """Log in, start, open the workbook (view, or Lab for stock), then work if active."""
        target = run.target
        username, password = target.people[arrival.index]
        started = time.monotonic()
        self.log_in(target, username, password)
        self.start_server(target, username)
        notebook = None
        leave = None
        if target.stock:
            notebook = self.open_lab(target, username)
            channel = KernelChannel(self.environment, self.lab_kernel(target, username),
                                    self.cookies(), "lab")  # fmt: skip
            self.run_all(channel, notebook)
            label = "lab"
        else:
            url, leave = self.open_view(target, username)
            channel = KernelChannel(self.environment, url, self.cookies(), "view")
            label = "view"
        try:
            choices = radios(widget_states(channel, label))
            fire(self.environment, "FLOW", USABLE, started)
            if arrival.lab and not target.stock:
                notebook = self.open_lab(target, username)
            if arrival.active:
                self.work(run, channel, choices, username, notebook)
        finally:
            self.leave(channel, leave)

    def widget_event(self, channel, choices, clicks):
        """Change one answer (a new option each time); the kernel saves it and goes idle."""
        model_id, options = choices[clicks % len(choices)]
        index = (clicks // len(choices)) % options
        content = {
            "comm_id": model_id,
            "data": {"method": "update", "state": {"index": index}, "buffer_paths": []},
        }
        _, seen = channel.call(WIDGET, "comm_msg", content, idle_after, timeout=60)
        if any("atelier-save-failed" in json.dumps(m.get("content", {})) for m in seen):
            fire(self.environment, "WS", "answer saved", time.monotonic(),
                 exception=RuntimeError("the widget could not save the answer"))  # fmt: skip

    def work(self, run, channel, choices, username, notebook):
        """Work until the run's end: a widget event every ~10 s, Lab's save every ~30 s."""
        rng = random.Random(username)
        until = run.t0 + run.profile.window / run.rate + run.work
        next_save = time.monotonic() + rng.uniform(0, lp.SAVE_EVERY)
        clicks = 0
        while time.monotonic() < until:
            gevent.sleep(rng.uniform(0.5, 1.5) * lp.WIDGET_EVERY)
            if not choices or time.monotonic() >= until:
                break
            self.widget_event(channel, choices, clicks)
            clicks += 1
            if notebook is not None and time.monotonic() >= next_save:
                base = f"{run.target.url}/user/{username}"
                body = {"type": "notebook", "format": "json", "content": notebook["content"]}
                with self.client.put(f"{base}/api/contents/{quote(run.target.notebook)}",
                                     json=body, headers=self.xsrf(f"/user/{username}/"),
                                     name="lab: save notebook (PUT contents)",
                                     catch_response=True) as r:  # fmt: skip
                    self.check(r, r.status_code == 200, "save failed")
                next_save = time.monotonic() + rng.uniform(0.5, 1.5) * lp.SAVE_EVERY

    def deadline(self, run, arrival):
        """Ready beforehand (not timed), then at the moment: Submit, and wait for the feedback."""
        target = run.target
        username, password = target.people[arrival.index]
        self.log_in(target, username, password)
        self.start_server(target, username)
        url, _ = self.open_view(target, username)
        channel = KernelChannel(self.environment, url, self.cookies(), "view")
        try:
            choices = radios(widget_states(channel, "view"))
            for clicks in range(arrival.index % 4):  # a quarter answer nothing, others some
                self.widget_event(channel, choices, clicks)
        finally:
            channel.close()  # the page stays open until the deadline: its kernel lives
        self.ready_for_deadline(run)
        run.deadline_ready.wait()
        self.sleep_until(run, run.submit_t0 - run.t0 + arrival.at)
        base = f"{target.url}/user/{username}/atelier"
        query = f"?course={quote(target.cohort)}"
        headers = self.xsrf(f"/user/{username}/")
        started = time.monotonic()
        for confirm, name in ((False, "submit: confirm step"), (True, "submit")):
            with self.client.post(f"{base}/submit/{target.assignment}{query}",
                                  json={"confirm": confirm}, headers=headers, name=name,
                                  catch_response=True, timeout=300) as r:  # fmt: skip
                wanted = "submitted" if confirm else "confirm"
                ok = r.status_code == 200 and r.json().get("state") == wanted
                self.check(r, ok, f"{name}: {r.text[:200]}")
                attempt = r.json().get("attempt") or 1
        while True:
            with self.client.get(f"{base}/feedback/{target.assignment}{query}", headers=headers,
                                 name="feedback poll", catch_response=True) as r:  # fmt: skip
                self.check(r, r.status_code == 200, "feedback failed")
                answer = r.json()
                state = answer.get("state")
            # Graded means this attempt's results, not an earlier run's still in the file.
            if state == "graded" and answer.get("attempts_used", attempt) < attempt:
                state = "grading"
            if state in ("graded", "error", "by_facilitator"):
                break
            if time.monotonic() - started > 600:
                fire(self.environment, "FLOW", "submit → feedback", started,
                     exception=TimeoutError("no feedback in 600 s"))  # fmt: skip
                raise Abandon
            gevent.sleep(FEEDBACK_POLL)
        error = None if state == "graded" else RuntimeError(f"feedback state {state}")
        fire(self.environment, "FLOW", "submit → feedback", started, exception=error)

    # -- visitor
    def visit(self, run):
        """Open the public app; wait politely in line; then its kernel and widgets.

        A visitor told to wait (503, ``Retry-After``, the waiting page saying their place) asks
        again when told, as the page does: that is a wait, reported with how long it lasted, not
        a failure. Any other answer (an error page, a 503 without ``Retry-After``) is a failure,
        and so is a visitor still waiting after ``--visitor-patience`` seconds.
        """
        target = run.target
        started = time.monotonic()
        waited = False
        estimate = None  # (minutes, when) of the first estimate the waiting page showed
        while True:
            if time.monotonic() - started > run.patience:
                fire(self.environment, "FLOW", RENDERED, started,
                     exception=TimeoutError(f"still waiting after {run.patience:g} s"))  # fmt: skip
                raise Abandon
            asked = time.monotonic()
            with self.client.get(target.app_url, name="app page", catch_response=True,
                                 timeout=300) as r:  # fmt: skip
                if not waited:
                    # Its headers: what a browser starts to show (Voila streams the app page).
                    fire(self.environment, "FLOW", FIRST_PAGE, started,
                         response_time=r.elapsed.total_seconds() * 1000)  # fmt: skip
                # A 503 with Retry-After is the apps' waiting page; the proxy's own 503 (the
                # service down) has none, and is an error page.
                if r.status_code == 503 and r.headers.get("Retry-After"):
                    r.success()
                    fire(self.environment, "HTTP", "app: waiting page (asked to wait)",
                         asked)  # fmt: skip
                    waited = True
                    minutes = lp.estimate_shown(r.text)
                    if estimate is None and minutes is not None:
                        estimate = (minutes, time.monotonic())
                    gevent.sleep(float(r.headers["Retry-After"]))
                    continue
                found = CONFIG_DATA.search(r.text or "")
                why = "an error page" if r.status_code != 200 else "the app failed"
                self.check(r, r.status_code == 200 and found is not None, why)
                break
        if waited:
            fire(self.environment, "FLOW", "visitor: waited in line, then app rendered", started)
            fire(self.environment, "FLOW", "visitor: app page once let in", asked)
        if estimate is not None:
            # Does the line keep what its page said? The estimate as a time, the real wait from
            # that page until the request that was let in, and a count of each outcome.
            minutes, shown = estimate
            fire(self.environment, "FLOW", "visitor: estimate first shown", shown,
                 response_time=minutes * 60_000)  # fmt: skip
            fire(self.environment, "FLOW", "visitor: real wait from that estimate", shown,
                 response_time=(asked - shown) * 1000)  # fmt: skip
            fire(self.environment, "HTTP",
                 f"visitor: served {lp.against_estimate(minutes, asked - shown)}",
                 time.monotonic())  # fmt: skip
        fire(self.environment, "FLOW", RENDERED, started)
        config = json.loads(found.group(1))
        base = config.get("baseUrl", "/").rstrip("/")
        origin = target.app_url.split("/", 3)[:3]
        url = f"ws{'/'.join(origin)[4:]}{base}/api/kernels/{config['kernelId']}/channels"
        channel = KernelChannel(self.environment, url, self.cookies(), "app")
        origin = "/".join(origin)
        try:
            widget_states(channel, "app")
            gevent.sleep(20)  # a visitor looks at the app a while, then leaves
        finally:
            self.leave(channel, f"{origin}{base}/voila/api/shutdown/{config['kernelId']}")

    def leave(self, channel, shutdown_url):
        """Leave the page: Voila's page sends a beacon that shuts its kernel down, then closes."""
        channel.close()
        if shutdown_url:
            path = urlsplit(shutdown_url).path.split("voila/api/shutdown")[0]
            form = {"_xsrf": self.xsrf(path)["X-XSRFToken"]}
            # The person sees nothing of it either way: not a failure, but counted by outcome
            # (a refused beacon leaves the kernel to the culler, holding a place meanwhile).
            with self.client.post(shutdown_url, data=form, catch_response=True,
                                  name="leave page: shutdown beacon sent") as r:  # fmt: skip
                r.success()
            outcome = "kernel shut down" if r.status_code in (200, 204) else (
                f"refused ({r.status_code}), kernel left to the culler")  # fmt: skip
            fire(self.environment, "HTTP", f"leave page: {outcome}", time.monotonic())


def len_plan(run) -> int:
    return run.size


# --- samplers --------------------------------------------------------------------------------


def sample_hub_api(env, target, stop, nice: int):
    """The hub's responsiveness: ``GET /hub/api/users`` with an admin token, every 2 s.

    Timed by ``hubprobe.py`` in a process of its own at niceness ``nice``, as a client on
    another machine sees it, not after the waits of this loop and its hundreds of people.
    """
    probe = subprocess.Popen(
        [sys.executable, str(HERE / "hubprobe.py"), f"{target.url}/hub/api/users",
         "--every", "2", "--nice", str(nice)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "HUBPROBE_TOKEN": target.token},
    )  # fmt: skip

    def read_probe():
        for line in probe.stdout:
            line = line.strip()
            if line.startswith("error"):
                fire(env, "HTTP", HUB_API, time.monotonic(), exception=RuntimeError(line))
            elif line:
                fire(env, "HTTP", HUB_API, 0, response_time=float(line))

    reader = gevent.spawn(read_probe)
    try:
        stop.wait()
    finally:
        probe.terminate()
        probe.wait(timeout=10)
        reader.join(timeout=10)


def pss_by_kind(roots: dict, context: dict) -> dict:
    """PSS in MiB per process kind (loadplan.process_kind) of the run's processes now."""
    ancestry = {}
    for name, pid in roots.items():
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            for p in [process, *process.children(recursive=True)]:
                ancestry.setdefault(p.pid, set()).add(name)
    totals = dict.fromkeys(lp.KINDS, 0.0)
    trainees = context.get("trainee_uids", set())
    for p in psutil.process_iter(["pid", "uids", "cmdline"]):
        uid = p.info["uids"].real if p.info["uids"] else -1
        if p.pid not in ancestry and uid not in trainees and uid != context.get("apps_uid"):
            continue
        kind = lp.process_kind(" ".join(p.info["cmdline"] or []), uid,
                               ancestry.get(p.pid, set()), context)  # fmt: skip
        if kind is None:
            continue
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p.pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    totals[kind] += int(line.split()[1]) / 1024
    return {k: round(v, 1) for k, v in totals.items() if v}


def sample_memory(target, context, samples, stop, t0):
    """PSS per kind every 10 s, read in a thread of the gevent hub's pool (not the load's loop)."""
    pool = gevent.get_hub().threadpool
    while not stop.is_set():
        kinds = pool.apply(pss_by_kind, (target.pids, context))
        samples.append({"t": round(time.monotonic() - t0, 1), **kinds})
        stop.wait(10)


# --- one run ---------------------------------------------------------------------------------


def run_once(target, profile, rate, args, context) -> dict:
    """One profile at one rate against one target; every figure of it."""
    global RUN
    plan = lp.schedule(profile, args.scale, rate, args.seed)
    if target.stock:
        plan = [a for a in plan if not a.submit]
    if not plan:
        return {}
    run = Run(target, profile, plan, args.work)
    run.rate = rate
    run.size = len(plan)
    run.submit_t0 = 0.0
    run.patience = args.visitor_patience
    RUN = run
    raw: dict[str, list] = {}
    failures: dict[str, int] = {}

    def on_request(request_type, name, response_time, exception=None, **_):
        raw.setdefault(name, []).append(response_time)
        if exception is not None:
            failures[name] = failures.get(name, 0) + 1
            if failures[name] <= 3:
                print(f"    failure: {name}: {str(exception)[:300]}", flush=True)

    env = Environment(user_classes=[Person], host=target.url, catch_exceptions=True)
    env.events.request.add_listener(on_request)
    runner = env.create_local_runner()
    me = psutil.Process()
    cpu0 = sum(me.cpu_times()[:2])
    wall0 = time.monotonic()
    stop = gevent.event.Event()
    memory: list[dict] = []
    samplers = []
    if target.token:
        samplers.append(gevent.spawn(sample_hub_api, env, target, stop, args.probe_nice))
    log_from = target.log.stat().st_size if target.log and target.log.exists() else 0
    if target.pids or context.get("trainee_uids"):
        samplers.append(gevent.spawn(sample_memory, target, context, memory, stop, wall0))
    print(f"  {target.name} {profile.name} ×{rate:g}: {len(plan)} people, "
          f"{lp.arrival_rate(profile, args.scale, rate):.2f} arrivals/s", flush=True)  # fmt: skip
    runner.start(len(plan), spawn_rate=max(len(plan), 1))
    if profile.submit:
        # Deadline: everyone gets ready first (not part of the figures), then the window.
        run.deadline_ready.wait(timeout=900)
        raw.clear()
        failures_before = dict(failures)
        failures.clear()
        print(f"    ready (or given up): {run.prepared}/{len(plan)} (failures getting ready: "
              f"{sum(failures_before.values())})", flush=True)  # fmt: skip
    limit = profile.window / rate + args.work + 900
    run.ended.wait(timeout=limit)
    stop.set()
    gevent.joinall(samplers, timeout=30)
    runner.quit()
    if target.log and target.log.exists():
        with target.log.open("rb") as log:
            log.seek(log_from)
            for ms in lp.hub_side_times(log.read().decode(errors="replace")):
                fire(env, "HTTP", HUB_API_HUB_SIDE, 0, response_time=ms)
    wall = time.monotonic() - wall0
    cpu = sum(me.cpu_times()[:2]) - cpu0
    p50 = {k: lp.percentile(v, 0.5) for k, v in raw.items()}
    p95 = {k: lp.percentile(v, 0.95) for k, v in raw.items()}
    held, reasons = lp.meets_targets(profile.name, p95, sum(failures.values()))
    peak = {}
    for sample in memory:
        for kind, value in sample.items():
            if kind != "t":
                peak[kind] = max(peak.get(kind, 0), value)
    total_peak = max((sum(v for k, v in s.items() if k != "t") for s in memory), default=0)
    return {
        "target": target.name, "profile": profile.name, "rate": rate,
        "arrivals_per_s": lp.arrival_rate(profile, args.scale, rate), "people": len(plan),
        "count": {k: len(v) for k, v in raw.items()}, "p50": p50, "p95": p95,
        "failures": failures, "held": held, "reasons": reasons,
        "harness_cpu_s": cpu, "wall_s": wall, "harness_core_share": cpu / wall if wall else 0,
        "memory": memory, "peak_pss": peak, "peak_total_pss": total_peak,
        "load": os.getloadavg(),
    }  # fmt: skip


# --- the hubs on this machine ----------------------------------------------------------------


class MemoryGroup:
    """A memory cgroup (v2, else v1's memory controller) or, failing both, RLIMIT_AS per process.

    The stock hub and stock Voila run inside one each, so that they cannot take the machine down.
    """

    def __init__(self, name: str, limit_mb: int):
        self.limit = limit_mb * 1024 * 1024
        self.path = None
        self.kind = "prlimit"
        v2 = Path("/sys/fs/cgroup")
        v1 = v2 / "memory"
        try:
            controllers = v2 / "cgroup.controllers"
            if controllers.is_file() and "memory" in controllers.read_text().split():
                self.path, self.kind = v2 / name, "cgroup v2"
                self.path.mkdir()
                (self.path / "memory.max").write_text(str(self.limit))
            elif (v1 / "cgroup.procs").is_file():
                self.path, self.kind = v1 / name, "cgroup v1 (memory)"
                self.path.mkdir()
                (self.path / "memory.limit_in_bytes").write_text(str(self.limit))
        except OSError as error:
            print(f"  no memory cgroup ({error}): RLIMIT_AS per process instead", flush=True)
            self.path, self.kind = None, "prlimit"

    def add(self, pid: int) -> None:
        """Move ``pid`` and its descendants (their children then start inside)."""
        pids = [pid]
        with contextlib.suppress(psutil.Error):
            pids += [p.pid for p in psutil.Process(pid).children(recursive=True)]
        for each in pids:
            with contextlib.suppress(OSError, psutil.Error):
                if self.path is not None:
                    (self.path / "cgroup.procs").write_text(str(each))
                else:
                    psutil.Process(each).rlimit(psutil.RLIMIT_AS, (self.limit, self.limit))

    def report(self) -> str:
        """The limit, the peak and how often the limit was hit or the OOM killer ran."""
        if self.path is None:
            return f"RLIMIT_AS {self.limit >> 20} MiB per process (no writable memory cgroup)"
        if self.kind == "cgroup v2":
            events = dict(line.split() for line in (self.path / "memory.events").read_text()
                          .splitlines())  # fmt: skip
            peak = (self.path / "memory.peak").read_text().strip() if (
                self.path / "memory.peak").exists() else "?"  # fmt: skip
            return (
                f"{self.kind}, max {self.limit >> 20} MiB, peak {int(peak) >> 20} MiB, "
                f"OOM kills {events.get('oom_kill', '?')}"
            )
        peak = int((self.path / "memory.max_usage_in_bytes").read_text())
        failcnt = (self.path / "memory.failcnt").read_text().strip()
        oom = (self.path / "memory.oom_control").read_text()
        kills = re.search(r"oom_kill (\d+)", oom)
        return (
            f"{self.kind}, limit {self.limit >> 20} MiB, peak {peak >> 20} MiB, "
            f"limit hit {failcnt} times, OOM kills {kills.group(1) if kills else '?'}"
        )

    def remove(self) -> None:
        """Remove the group once its processes are gone."""
        if self.path is None:
            return
        for _ in range(50):
            with contextlib.suppress(OSError):
                self.path.rmdir()
                return
            time.sleep(0.2)


def atelier_hub(
    root: Path, trainees: int, token: str, app_pool: int = 0, app: str = APP, cull_after: int = 0
):
    """Atelier's hub (tests/hubs.py's, product defaults) with apps, instant grading, workbook 07.

    ``app_pool`` > 0 preheats that many kernels of ``app`` (``apps.pool_sizes``), as a
    site does for the app a session links to; 0 keeps the product's default. ``cull_after`` > 0
    culls servers idle that many seconds (``hub.culler.timeout``, a pass every tenth of it),
    as an admin would for a day whose arrivals outlast the default's 900 s.

    Returns the hub and the released assignment's (cohort, assignment, notebook path).
    """
    from hubs import Hub

    from atelier.grading.course import assignment_id, notebook_name

    config_d = root / "config_d"
    config_d.mkdir()
    (config_d / "zz-load.py").write_text(
        "c = get_config()  # noqa\n"
        f"c.JupyterHub.services.append({{'name': 'load', 'api_token': {token!r}}})\n"
        "c.JupyterHub.load_roles.append({'name': 'load', 'services': ['load'],"
        " 'scopes': ['admin:users', 'admin:servers', 'list:users', 'read:users']})\n"
    )
    apps = root / "apps"
    shutil.copytree(FIXTURES / "apps" / "planner", apps / "planner")
    hub = Hub(root, {"hub": {"config_d": str(config_d)}})
    hub.settings["apps"] = {"workbooks_dir": str(apps), "port": bh.free_port(), "on_hub": True,
                            "dashboard": False, "service_user": f"{hub.prefix}apps"}  # fmt: skip
    if app_pool:
        hub.settings["apps"]["pool_sizes"] = {app: app_pool}
    # The product's spawn limit and culler, not the test hub's.
    hub.settings["hub"].pop("concurrent_spawn_limit", None)
    if cull_after:
        hub.settings["hub"]["culler"] = {"timeout": cull_after, "every": max(10, cull_after // 10)}
    import yaml

    hub.settings_path.write_text(yaml.safe_dump(hub.settings))
    hub.publish_workbooks()
    names = [f"l{i:03d}" for i in range(trainees)]
    hub.import_roster(
        "username,full name,email,institution,country,language,role,cohort\n"
        + "".join(f"{n},Trainee {n},{n}@example.org,U,Kenya,en,trainee,load\n" for n in names)
    )
    hub.launch()
    hub.atelier("release", str(WORKBOOK), "--cohort=load", "--mode=practice")
    aid = assignment_id("home-learning", "en")
    return hub, names, ("load", aid, f"load/{aid}/{notebook_name('home-learning', 'en')}")


def prestart(hub, cohort: str) -> dict:
    """``atelier servers start --cohort`` before a run (untimed, as a facilitator's is).

    Returns its wall time and summary line, for the report.
    """
    started = time.monotonic()
    command = [str(bh.PREFIX / "env" / "bin" / "atelier"), "servers", "start", "--settings",
               str(hub.settings_path), f"--cohort={cohort}", "--no-progress"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.monotonic() - started
    line = (done.stdout.strip().splitlines() or [done.stderr.strip()])[0]
    print(f"  servers started ahead in {seconds:.1f} s: {line}", flush=True)
    if done.returncode != 0:
        raise SystemExit(f"atelier servers start failed:\n{done.stdout}\n{done.stderr}")
    return {"seconds": round(seconds, 1), "summary": line}


def stop_servers(target) -> None:
    """Stop every server of the target's people (between runs: each run starts from none)."""
    headers = {"Authorization": f"token {target.token}"}
    api = f"{target.url}/hub/api"
    for username, _ in target.people:
        with contextlib.suppress(requests.RequestException):
            requests.delete(f"{api}/users/{username}/server", headers=headers, timeout=120)
    deadline = time.monotonic() + 180
    names = {u for u, _ in target.people}
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, ValueError):
            users = requests.get(f"{api}/users", headers=headers, timeout=60).json()
            if not any(u["servers"] for u in users if u["name"] in names):
                return
        time.sleep(1)


def stock_hub(root, accounts, token, group, notebook: Path):
    """bench_hub.py's stock JupyterHub in ``group``; the notebook in every trainee's home."""
    for account in accounts:
        entry = pwd.getpwnam(account)
        dest = Path(entry.pw_dir) / notebook.name
        shutil.copy(notebook, dest)
        os.chown(dest, entry.pw_uid, entry.pw_gid)
    hub = bh.start_stock(root, list(accounts), token)
    group.add(hub.process.pid)
    return hub


def stock_voila(root: Path, group):
    folder = root / "stock-apps"
    shutil.copytree(FIXTURES / "apps" / "planner", folder / "planner")
    port = bh.free_port()
    base = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "ATELIER_NO_IMPORT_FIX": "1"}
    process = start_server([str(BIN / "voila"), "--no-browser", f"--port={port}", str(folder)],
                           base, root / "stock-voila.log", cwd=folder, env=env,
                           timeout=120)  # fmt: skip
    group.add(process.pid)
    return process, base


# --- report ----------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    """The Markdown table of docs/benchmarks.md: one block of rows per run."""
    lines = ["| target | profile × rate (arrivals/s) | action | n | p50 ms | p95 ms | failed |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        head = (f"| {r.get('label', r['target'])} | {r['profile']} ×{r['rate']:g} "
                f"({r['arrivals_per_s']:.2f}/s) ")  # fmt: skip
        for name in sorted(r["count"]):
            target = lp.TARGETS_MS.get(name)
            mark = f" (≤ {target})" if target else ""
            lines.append(f"{head}| {name}{mark} | {r['count'][name]} | {r['p50'][name]:.0f} "
                         f"| {r['p95'][name]:.0f} | {r['failures'].get(name, 0)} |")  # fmt: skip
            head = "| | "
    return "\n".join(lines)


def summary(results: list[dict]) -> str:
    lines = ["| target | profile × rate | held | why not | harness CPU | peak PSS (MiB) by kind |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        kinds = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["peak_pss"].items()))
        lines.append(
            f"| {r.get('label', r['target'])} | {r['profile']} ×{r['rate']:g} "
            f"| {'yes' if r['held'] else 'no'} "
            f"| {'; '.join(r['reasons']) or '—'} | {r['harness_cpu_s']:.0f} CPU-s in "
            f"{r['wall_s']:.0f} s ({100 * r['harness_core_share']:.0f}% of a core) "
            f"| {kinds or '—'} (total {r['peak_total_pss']:.0f}) |"
        )
    best = {}
    for r in results:
        best.setdefault((r.get("label", r["target"]), r["profile"]), []).append(
            (r["rate"], r["held"])
        )
    lines.append("")
    for (target, profile), runs in best.items():
        rate = lp.highest_rate(runs)
        held = "none (the lowest rate tried did not hold)" if rate is None else f"×{rate:g}"
        lines.append(f"- {target}, {profile}: highest rate that held: {held}")
        # Target by target: which one gives out first, and at which rate.
        each: dict[str, list] = {}
        for r in results:
            if (r.get("label", r["target"]), r["profile"]) != (target, profile):
                continue
            failed = sum(r["failures"].values())
            for action, ok in lp.targets_held(profile, r["p95"], failed).items():
                each.setdefault(action, []).append((r["rate"], ok))
        for action, action_runs in each.items():
            rate = lp.highest_rate(action_runs)
            lines.append(f"  - {action}: {'none' if rate is None else f'×{rate:g}'}")
    return "\n".join(lines)


#: What the plots show (the tables have every action).
PLOTTED = (USABLE, WIDGET, RENDERED, FIRST_PAGE, HUB_API, "spawn: Start → server ready",
           "submit → feedback", "lab: save notebook (PUT contents)")  # fmt: skip


def plot(results: list[dict], docs: Path, tag: str) -> list[Path]:
    """Write ``docs/load-<profile>[-tag].png`` for each profile; their paths.

    Left: p95 of the main actions against the arrival rate, the targets dotted. Then, for each
    target, PSS per process kind over its fastest run.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for profile in sorted({r["profile"] for r in results}):
        runs = [r for r in results if r["profile"] == profile]
        targets = [t for t in ("atelier", "stock") if any(r["target"] == t for r in runs)]
        fig, axes = plt.subplots(1, 1 + len(targets), figsize=(6 * (1 + len(targets)), 5))
        left = axes[0]
        colours = dict(zip(PLOTTED, plt.rcParams["axes.prop_cycle"].by_key()["color"],
                           strict=False))  # fmt: skip
        for target, style in (("atelier", "-o"), ("stock", "--s")):
            mine = sorted((r for r in runs if r["target"] == target), key=lambda r: r["rate"])
            for name in PLOTTED:
                points = [(r["arrivals_per_s"], r["p95"][name] / 1000) for r in mine
                          if r["p95"].get(name) is not None]  # fmt: skip
                if points:
                    left.plot(*zip(*points, strict=True), style, color=colours[name],
                              label=f"{target}: {name}")  # fmt: skip
        for name, limit in lp.TARGETS_MS.items():
            if any(r["p95"].get(name) is not None for r in runs):
                left.axhline(limit / 1000, color=colours[name], linestyle=":", linewidth=1)
        left.set_xlabel("arrivals per second")
        left.set_ylabel("p95 (s), targets dotted")
        left.set_yscale("log")
        left.set_title(f"{profile}: p95 per action")
        left.legend(fontsize=6)
        for axis, target in zip(axes[1:], targets, strict=True):
            last = max((r for r in runs if r["target"] == target), key=lambda r: r["rate"])
            kinds = sorted({k for s in last["memory"] for k in s if k != "t"})
            if kinds:
                ts = [s["t"] for s in last["memory"]]
                axis.stackplot(ts, *[[s.get(k, 0) for s in last["memory"]] for k in kinds],
                               labels=kinds)  # fmt: skip
                axis.legend(fontsize=7, loc="upper left")
            axis.set_xlabel("seconds")
            axis.set_ylabel("PSS (MiB)")
            axis.set_title(f"{target} ×{last['rate']:g}: memory by process kind")
        fig.tight_layout()
        path = docs / f"load-{profile}{'-' + tag if tag else ''}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="all", choices=[*lp.PROFILES, "all"])
    parser.add_argument("--scale", type=float, default=1.0, help="people × this (0.05: 20 of 400)")
    parser.add_argument(
        "--rates", default="1", help="rate factors, e.g. 0.5,1,2 (2 = twice as fast)"
    )
    parser.add_argument(
        "--work", type=float, default=120, help="seconds active trainees work after the window"
    )
    parser.add_argument("--target", default="atelier", choices=["atelier", "stock", "both"])
    parser.add_argument(
        "--stock-memory-mb", type=int, default=8192, help="memory cgroup of each stock part"
    )
    parser.add_argument("--hub-url", help="an existing hub (then --roster is needed)")
    parser.add_argument("--roster", type=Path, help="CSV of username,password (with --hub-url)")
    parser.add_argument("--token", default=os.environ.get("ATELIER_LOAD_TOKEN"), help="admin token")
    parser.add_argument("--cohort", default="load")
    parser.add_argument("--assignment", default="home-learning-en")
    parser.add_argument("--notebook", default="", help="the workbook's path in a trainee's server")
    parser.add_argument("--app", default=APP, help="the public app's path under /services/apps/")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument(
        "--app-pool",
        type=int,
        default=0,
        help="preheated kernels of the visitors' app (apps.pool_sizes); 0: the product default",
    )
    parser.add_argument(
        "--cull-after",
        type=int,
        default=0,
        help="hub.culler.timeout in seconds for the harness's own hub; 0: the product default",
    )
    parser.add_argument(
        "--visitor-patience",
        type=float,
        default=BUSY_PATIENCE,
        help="seconds a visitor waits in the apps' line before giving up (a failure)",
    )
    parser.add_argument(
        "--plots", default="", help="tag for the PNG names (docs/load-<profile>-<tag>.png)"
    )
    parser.add_argument(
        "--prestart",
        action="store_true",
        help="before each Atelier run, start the cohort's servers with `atelier servers start` "
        "(a session's servers started ahead; the harness's own hub only)",
    )
    parser.add_argument(
        "--probe-nice",
        type=int,
        default=-10,
        help="niceness of the hub API probe's process (hubprobe.py): a client elsewhere has "
        "cores of its own; here it goes first as the hub does (Atelier's hub.nice default)",
    )
    parser.add_argument("--out", type=Path, help="write every figure as JSON here")
    parser.add_argument(
        "--from-json",
        type=Path,
        nargs="*",
        default=[],
        help="only report and plot the --out files of earlier runs, together",
    )
    args = parser.parse_args()
    if args.from_json:
        return report([r for f in args.from_json for r in json.loads(f.read_text())], args)
    profiles = list(lp.PROFILES.values()) if args.profile == "all" else [lp.PROFILES[args.profile]]
    rates = sorted(float(r) for r in args.rates.split(","))
    need = max(lp.scaled(p.trainees, args.scale) for p in profiles)
    results = []
    if args.hub_url:
        if args.prestart:
            raise SystemExit("--prestart runs `atelier servers start` on the harness's own hub")
        try:
            people = lp.read_roster(args.roster) if args.roster else []
        except lp.RosterError as error:
            raise SystemExit(str(error)) from None
        if len(people) < need:
            raise SystemExit(f"{args.roster}: {len(people)} people, the profiles need {need}")
        notebook = args.notebook or f"{args.cohort}/{args.assignment}/home-learning.en.ipynb"
        target = Target("atelier", args.hub_url, people, args.token, args.cohort,
                        args.assignment, notebook, f"{args.hub_url.rstrip('/')}/services/apps/"
                        f"voila/render/{args.app}")  # fmt: skip
        for profile in profiles:
            for rate in rates:
                results.append(run_once(target, profile, rate, args, {}))
                if target.token:
                    stop_servers(target)  # each run starts from no server, as here
        return report([r for r in results if r], args)
    # A SIGTERM (a time limit) still runs the clean-up below: accounts, hubs, cgroups.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.geteuid() != 0:
        raise SystemExit("run as root: the harness creates Unix accounts and a memory cgroup")
    root = Path(tempfile.mkdtemp(prefix="atelier-load-"))
    root.chmod(0o755)
    token = secrets.token_hex(16)
    hub = stock = voila = None
    groups = []
    try:
        print(f"Atelier's hub with {need} trainees...", flush=True)
        hub, names, (cohort, aid, notebook) = atelier_hub(
            root, need, token, args.app_pool, args.app, args.cull_after
        )
        accounts = [hub.account(n) for n in names]
        uids = {pwd.getpwnam(a).pw_uid for a in accounts}
        apps_uid = pwd.getpwnam(f"{hub.prefix}apps").pw_uid
        app_url = f"{hub.url}/services/apps/voila/render/{APP}"
        atelier = Target("atelier", hub.url, [(n, hub.passwords[n]) for n in names], token,
                         cohort, aid, notebook, app_url)  # fmt: skip
        atelier.pids = {"atelier": hub.process.pid}
        atelier.log = hub.log_path
        with contextlib.suppress(OSError, ValueError):
            atelier.pids["proxy"] = int((hub.state_dir / "proxy.pid").read_text())
        targets = [atelier] if args.target != "stock" else []
        if args.target in ("stock", "both"):
            groups = [MemoryGroup(f"atelier-load-{hub.prefix}{part}", args.stock_memory_mb)
                      for part in ("hub", "voila")]  # fmt: skip
            released = next((root / "courses").glob(f"*/release/{aid}/*.ipynb"), None) or \
                next(WORKBOOK.glob("*.en.ipynb"))  # fmt: skip
            stock = stock_hub(root, accounts, token, groups[0], released)
            voila, voila_base = stock_voila(root, groups[1])
            stock_target = Target("stock", stock.url, [(a, stock.passwords[a]) for a in accounts],
                                  token, notebook=released.name, stock=True,
                                  app_url=f"{voila_base}voila/render/{APP}")  # fmt: skip
            stock_target.pids = {"stock": stock.process.pid, "voila": voila.pid}
            targets.append(stock_target)
            print(f"  stock limits: {groups[0].kind}, {args.stock_memory_mb} MiB each", flush=True)
        context = {"trainee_uids": uids, "apps_uid": apps_uid}
        for profile in profiles:
            for rate in rates:
                for target in targets:
                    if target.stock and profile.submit:
                        continue
                    # Atelier's hub stays up, idle, during the stock runs: its parts are left out.
                    mine = {**context, "apps_uid": None} if target.stock else context
                    ahead = None
                    if args.prestart and not target.stock:
                        ahead = prestart(hub, cohort)
                    result = run_once(target, profile, rate, args, mine)
                    if result and ahead:
                        # The plots group by target; the tables say which runs started ahead.
                        result["label"] = "atelier, servers started ahead"
                        result["prestart"] = ahead
                    if result:
                        results.append(result)
                        print(f"    held: {result['held']} {result['reasons']}", flush=True)
                    stop_servers(target)
        for group, part in zip(groups, ("stock hub", "stock voila"), strict=False):
            print(f"{part}: {group.report()}", flush=True)
            for r in results:
                r.setdefault("stock_limits", {})[part] = group.report()
    finally:
        if args.out and hub is not None:
            # The hub's log (its services' too) beside the figures: where a failure came from.
            with contextlib.suppress(OSError):
                shutil.copy(hub.log_path, args.out.with_suffix(".hub.log"))
        if voila is not None:
            stop_process(voila, grace=20)
        if stock is not None:
            bh.stop_hub(stock)
        if hub is not None:
            hub.teardown()
        for group in groups:
            group.remove()
        shutil.rmtree(root, ignore_errors=True)
    report(results, args)


def report(results: list[dict], args) -> None:
    print()
    print(table(results))
    print()
    print(summary(results))
    if args.out:
        # Before the plots: a figure that cannot be drawn must not lose the run's figures.
        args.out.write_text(json.dumps(results, indent=1, default=str))
    for path in plot(results, REPO / "docs", args.plots):
        print(f"plot: {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
