"""The port a hub service keeps across restarts (trainees' servers keep its address)."""

from __future__ import annotations

import socket

from atelier.processes.ports import kept_port


def test_a_service_gets_the_same_port_after_a_restart(tmp_path):
    """Is the recorded port given again while it is free, even just after a server closed it?"""
    record = tmp_path / "instant-port"
    first = kept_port(record)
    assert record.read_text().strip() == str(first)
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", first))
        server.listen()
        client = socket.create_connection(("127.0.0.1", first))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end waits in TIME_WAIT
        client.close()
    assert kept_port(record) == first


def test_a_taken_port_is_replaced_and_the_new_one_recorded(tmp_path):
    """If another program took the recorded port, is a free one chosen and written down?"""
    record = tmp_path / "instant-port"
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        record.write_text(f"{taken}\n")
        port = kept_port(record)
    assert port != taken
    assert record.read_text().strip() == str(port)


def test_a_damaged_record_gets_a_fresh_port(tmp_path):
    """A record that is not a port number (a half-edited file) is replaced, not trusted."""
    record = tmp_path / "instant-port"
    record.write_text("80; rm -rf /\n")
    port = kept_port(record)
    assert 0 < port < 65536 and record.read_text().strip() == str(port)
