"""A public app against hostile visitors' values and hostile titles (issue 15, items 6 and 8).

A visitor talks to an app's kernel through widget messages only. Whatever they send (a value of the
wrong type, NaN, a huge string, a nested object, a click on a button whose callback fails, a
message for a widget that does not exist), the browser must get no traceback, no file path and no
exception text: a short sentence in the app's language, while the service's log keeps the detail.
The list of apps shows the titles authors wrote as text, never as markup.
"""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from html.parser import HTMLParser

import pytest
import requests
from harness import FIXTURES
from websockets.sync.client import connect

from atelier.public.appskernel import LOG_PREFIX, MESSAGES

pytestmark = pytest.mark.server

APPS_SETTINGS = {"pool_size": 0, "max_kernels": 6, "cull_idle_timeout": 60, "cull_interval": 5}
APPS_WORKBOOKS = FIXTURES / "apps_hostile"
HOSTILE_APP = "voila/render/hostile/hostile.fr.ipynb"
CONTROLS = "@jupyter-widgets/controls"
#: Text that must never reach a visitor: traceback furniture, paths, exception names and texts.
LEAKS = [
    "Traceback",
    "site-packages",
    "/opt/",
    "/usr/",
    ".py",
    "TraitError",
    "ValueError",
    "RuntimeError",
    "CALLBACK-MARKER",
    "invalid literal",
    "KERNEL-DEATH-MARKER",
    "\x1b[",
]


def message(msg_type: str, content: dict, session: str) -> dict:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "visitor",
            "session": session,
            "version": "5.3",
            "date": "2026-01-01T00:00:00Z",
        },
        "parent_header": {},
        "metadata": {},
        "content": content,
        "channel": "shell",
        "buffers": [],
    }


def receive_all(ws, quiet: float = 3.0) -> list[str]:
    """Every frame the kernel sends until it has been quiet for ``quiet`` seconds."""
    frames = []
    try:
        while True:
            frames.append(ws.recv(timeout=quiet))
    except TimeoutError:
        pass
    return frames


def widget_states(ws, session: str) -> dict[str, dict]:
    """The state of every widget of the kernel, by comm id (as the browser would ask for it)."""
    ws.send(json.dumps(message("comm_info_request", {"target_name": "jupyter.widget"}, session)))
    comms = {}
    deadline = time.monotonic() + 20
    while not comms and time.monotonic() < deadline:
        reply = json.loads(ws.recv(timeout=20))
        if reply["header"]["msg_type"] == "comm_info_reply":
            comms = reply["content"]["comms"]
    for comm_id in comms:
        request = {"comm_id": comm_id, "data": {"method": "request_state"}}
        ws.send(json.dumps(message("comm_msg", request, session)))
    states = {}
    for frame in receive_all(ws):
        msg = json.loads(frame)
        data = msg["content"].get("data", {}) if msg["msg_type"] == "comm_msg" else {}
        if data.get("method") == "update":
            states[msg["content"]["comm_id"]] = data["state"]
    return states


def update(comm_id: str, state: dict, session: str) -> str:
    content = {"comm_id": comm_id, "data": {"method": "update", "state": state, "buffer_paths": []}}
    return json.dumps(message("comm_msg", content, session), allow_nan=True)


#: What a hostile visitor puts in a widget's value: wrong types, NaN and infinities, a huge string,
#: nested objects, markup and a template expression.
HOSTILE_VALUES = [
    None,
    12345,
    float("nan"),
    float("inf"),
    -1e308,
    "x" * 300_000,
    {"a": {"b": [1, {"c": [2, {"d": None}]}]}},
    [[[[["deep"]]]]],
    "<script>alert(1)</script>",
    "{{7*7}}",
    "../../etc/passwd",
    True,
]


def test_hostile_widget_values_get_a_sentence_not_a_traceback(apps_server):
    """Do wrong types, NaN, huge or nested values and failing callbacks leak a traceback?"""
    page = requests.get(apps_server.url + HOSTILE_APP, timeout=120).text
    config = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S
    )
    kernel_id = json.loads(config.group(1))["kernelId"]
    ws_url = apps_server.url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
    session = uuid.uuid4().hex
    log_before = apps_server.log.read_text()
    with connect(ws_url, open_timeout=10, max_size=None) as ws:
        states = widget_states(ws, session)
        by_model = {}
        for comm_id, state in states.items():
            by_model.setdefault(state["_model_name"], []).append(comm_id)
        text, slider, button = (
            by_model["TextModel"][0],
            by_model["IntSliderModel"][0],
            by_model["ButtonModel"][0],
        )
        sent = []
        for comm_id in (text, slider):
            for value in HOSTILE_VALUES:
                sent.append(update(comm_id, {"value": value}, session))
        # A number-like text the callback cannot read, other traits, the failing button, a widget
        # that does not exist, a method nobody knows.
        sent.append(update(text, {"value": "douze"}, session))
        sent.append(update(slider, {"min": "zero", "max": {"x": 1}, "step": float("nan")}, session))
        sent.append(update(text, {"layout": "IPY_MODEL_" + "0" * 32}, session))
        click = {"comm_id": button, "data": {"method": "custom", "content": {"event": "click"}}}
        sent.append(json.dumps(message("comm_msg", click, session)))
        ghost = {"comm_id": uuid.uuid4().hex, "data": {"method": "update", "state": {}}}
        sent.append(json.dumps(message("comm_msg", ghost, session)))
        odd = {"comm_id": text, "data": {"method": "nonsense", "state": [1, 2]}}
        sent.append(json.dumps(message("comm_msg", odd, session)))
        # New widgets the visitor asks the kernel to make: unknown classes, wrong states, a
        # target nobody registered.
        for target, state in [
            ("jupyter.widget", {"_model_name": "<script>", "_model_module": "../../etc"}),
            ("jupyter.widget", {"_model_name": "IntSliderModel", "value": {"x": [1]}}),
            ("jupyter.widget", {"_model_name": "TextModel", "_model_module": CONTROLS,
              "_model_module_version": "2.0.0", "value": float("nan")}),
            ("no.such.target", {"value": 1}),
        ]:  # fmt: skip
            opened = {"comm_id": uuid.uuid4().hex, "target_name": target,
                      "data": {"state": state, "buffer_paths": []}}  # fmt: skip
            sent.append(json.dumps(message("comm_open", opened, session), allow_nan=True))
        for frame in sent:
            ws.send(frame)
        frames = receive_all(ws, quiet=4.0)
        # The app still answers a good value afterwards.
        ws.send(update(text, {"value": "21"}, session))
        after = receive_all(ws)
    for frame in frames + after:
        for leak in LEAKS:
            assert leak not in frame, (leak, frame[:400])
    errors = [json.loads(f) for f in frames if '"msg_type": "error"' in f]
    assert len(errors) >= len(HOSTILE_VALUES), "the hostile values should have failed"
    for error in errors:
        assert error["content"]["traceback"] == [MESSAGES["fr"]]
        assert error["content"]["ename"] == "Error"
    assert any('"value": "42"' in f for f in after), "the app stopped answering"
    # The detail is in the service's log, for whoever runs it.
    deadline = time.monotonic() + 10
    while True:
        log = apps_server.log.read_text()[len(log_before) :]
        if "CALLBACK-MARKER-5e1d" in log and "invalid literal for int()" in log:
            break
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.5)
    assert LOG_PREFIX in log and "Traceback (most recent call last)" in log


class _Tags(HTMLParser):
    """The tags, attributes and text of a page, as a browser would parse them."""

    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_app_titles_are_text_in_the_list_of_apps(apps_server):
    """Does an app title holding markup, a template expression or Unicode stay text in the index?"""
    index = requests.get(apps_server.url, timeout=10).text
    parsed = _Tags()
    parsed.feed(index)
    assert not [t for t, _ in parsed.tags if t in ("script", "img")]
    assert not [a for _, a in parsed.tags if any(k.startswith("on") for k in a)]
    text = "".join(parsed.text)
    assert "<script>alert('title')</script>\"><img src=x onerror=alert(1)> {{7*7}}" in text
    assert "{{7*7}}" in html.unescape(index) and "49" not in text
    assert "Écoles ☃" in text
    links = [a["href"] for t, a in parsed.tags if t == "a"]
    assert "/voila/render/hostile/hostile.fr.ipynb" in links


def test_a_kernel_that_dies_shows_no_detail(apps_server):
    """When an app's kernel dies while the page is built, does the visitor see a trace or a path?"""
    response = requests.get(apps_server.url + "voila/render/dies/dies.en.ipynb", timeout=120)
    for leak in LEAKS:
        assert leak not in response.text, leak
    assert "--show_tracebacks" not in response.text and "--debug" not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "voila/render/nothing/here.ipynb",
        "voila/render/%00",
        "voila/static/" + "a" * 5000,
        "voila/api/shutdown/not-a-kernel",
        "api/kernels/not-a-kernel",
        "voila/templates/atelier/static/<script>",
    ],
)
def test_error_pages_show_no_detail(apps_server, path):
    """Do the server's error pages (404, 500, 405) tell a visitor anything but the status?"""
    for method in ("GET", "POST"):
        response = requests.request(method, apps_server.url + path, timeout=30)
        assert response.status_code >= 400, (path, method)
        for leak in [*LEAKS, "<script>"]:
            assert leak not in response.text, (path, method, leak)
