"""Ports for trainees' servers below the ephemeral range (``core/processes/ports.py``).

In a burst of starts, a server's port is chosen by the hub and bound by the server a moment later;
what a trainee relies on is that nothing else takes it meanwhile: not ``bind(0)``, not an outgoing
connection's local port (both only ever land in the ephemeral range), not another server.
"""

from __future__ import annotations

import socket

import pytest

from atelier.processes import ports

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def nothing_handed_out(monkeypatch):
    monkeypatch.setattr(ports, "_handed_out", {})


def test_a_server_port_is_below_the_ephemeral_range_and_free():
    low, _high = ports.ephemeral_range()
    for _ in range(20):
        port = ports.server_port()
        assert ports.SERVER_PORTS_FROM <= port < low
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_port_handed_out_is_not_handed_out_again_before_its_server_binds_it(monkeypatch):
    choices = iter([24001, 24001, 24002])
    monkeypatch.setattr(ports.random, "randint", lambda low, high: next(choices))
    assert ports.server_port() == 24001
    # The first server has not bound 24001 yet: the next start must not get it too.
    assert ports.server_port() == 24002


def test_a_port_something_listens_on_is_skipped(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        choices = iter([busy, 24003])
        monkeypatch.setattr(ports.random, "randint", lambda low, high: next(choices))
        monkeypatch.setattr(ports, "SERVER_PORTS_FROM", 1024)
        monkeypatch.setattr(ports, "ephemeral_range", lambda: (65000, 65535))
        assert ports.server_port() == 24003


def test_a_machine_whose_ephemeral_range_starts_low_gets_any_free_port(monkeypatch, tmp_path):
    proc = tmp_path / "ip_local_port_range"
    proc.write_text("20500\t60999\n")
    assert ports.ephemeral_range(str(proc)) == (20500, 60999)
    monkeypatch.setattr(ports, "ephemeral_range", lambda: (20500, 60999))
    port = ports.server_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_an_unreadable_range_is_linuxs_default(tmp_path):
    assert ports.ephemeral_range(str(tmp_path / "missing")) == (32768, 60999)
