"""Where trainees' servers call the instant grading service (they outlive hub restarts)."""

from __future__ import annotations

import pytest

from atelier.grading.hubconfig import instant_url_for_servers
from atelier.processes.ports import free_port


@pytest.mark.parametrize(
    ("ip", "address"),
    [
        ("127.0.0.1", "http://127.0.0.1:{port}"),
        ("0.0.0.0", "http://127.0.0.1:{port}"),
        ("", "http://127.0.0.1:{port}"),
        ("::", "http://[::1]:{port}"),
        ("192.0.2.10", "http://192.0.2.10:{port}"),
        ("2001:db8::5", "http://[2001:db8::5]:{port}"),
    ],
)
def test_servers_call_the_service_through_the_hubs_proxy(ip, address):
    """Is the address the proxy's, which follows the service to whatever port a restart gives it?

    The service's own port changes when the hub restarts; a server started before the restart
    keeps the address it was given, so that address must be the proxy's.
    """
    port = free_port()
    settings = {"hub": {"ip": ip, "port": port}, "grading": {"instant_port": 0}}
    assert instant_url_for_servers(settings) == address.format(port=port)
