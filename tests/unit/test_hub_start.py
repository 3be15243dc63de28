"""``atelier start`` ends what a stopped hub left of its services, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from atelier.hub_config.hub.processes import end_leftover_services
from atelier.processes.ports import free_port


def sleeper(**env) -> subprocess.Popen:
    """A process with these JupyterHub variables: stands in for a service or a server."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], env={**clean, **env}
    )


def test_a_stopped_hubs_services_end_and_trainees_servers_stay():
    """Are the leftover services of this hub ended, its trainees' servers and other hubs' kept?"""
    ours, theirs = free_port(), free_port()
    api = f"http://127.0.0.1:{ours}/hub/api"
    service = sleeper(JUPYTERHUB_SERVICE_NAME="dashboard", JUPYTERHUB_API_URL=api)
    server = sleeper(JUPYTERHUB_USER="bob", JUPYTERHUB_API_URL=api)
    other = sleeper(
        JUPYTERHUB_SERVICE_NAME="dashboard",
        JUPYTERHUB_API_URL=f"http://127.0.0.1:{theirs}/hub/api",
    )
    try:
        time.sleep(0.2)  # each child has its own environment in /proc by now
        ended = end_leftover_services(f"http://127.0.0.1:{ours}", grace=5)
        assert ended == [service.pid]
        assert service.wait(timeout=10) == -15  # asked to stop, and it did
        assert server.poll() is None and other.poll() is None
    finally:
        for proc in (service, server, other):
            proc.kill()
            proc.wait()
