"""The formgrader pod of `atelier kube manifests`, run for real against a real hub.

On Kubernetes a cohort's formgrader is not started by the hub: it is an external service
(``hub.services.C`` with a URL, in the chart's values) and a Deployment whose command and
environment ``atelier kube manifests`` renders. This module runs that rendered container here:
a real hub whose config lists cohort ``x``'s formgrader as an external service with a token (as
the chart does), and the rendered command with the rendered environment (only what a cluster
supplies is replaced: the token from the chart's Secret, the hub's address, the loopback address,
the mounted config file), as the cohort's grader account. Then a facilitator opens it through
the hub's login and a trainee is refused, exactly as with the hub-managed formgrader.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hubs import HUB_ROSTER, Hub, external_service, rendered_container, rendered_pod

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def cluster_formgrader(postgres):
    """A hub with formgrader x as an external service, and the rendered formgrader pod running."""
    root = Path(tempfile.mkdtemp(prefix="atelier-kubefg-"))
    root.chmod(0o755)
    config_d = root / "config.d"
    config_d.mkdir()
    port, token = external_service(config_d, "x")
    hub = Hub(
        root,
        {
            # On a cluster the gradebooks are in PostgreSQL (`atelier kube manifests` requires it).
            "database": {"url": postgres.database()},
            "hub": {"config_d": str(config_d)},
            "kubernetes": {"formgrader_url": f"http://formgrader-{{cohort}}:{port}"},
        },
    )
    try:
        hub.publish_workbooks()
        hub.import_roster(HUB_ROSTER)
        hub.start()  # creates cohort x's course and grader account, as `atelier release` would
        secret, container = rendered_container(hub, "formgrader-x")
        config = next(a for a in container["command"] if a.startswith("--config="))
        config_file = root / "nbgrader-config-x.py"  # what the Secret mount provides
        config_file.write_text(secret[config.rsplit("/", 1)[1]])
        config_file.chmod(0o644)
        command = [
            "--ip=127.0.0.1" if arg == "--ip=0.0.0.0"
            else f"--config={config_file}" if arg == config
            else arg
            for arg in container["command"]
        ]  # fmt: skip
        env = {
            "ATELIER_SETTINGS": str(hub.settings_path),
            "JUPYTER_RUNTIME_DIR": f"{container['workingDir']}/.runtime",  # /tmp is the pod's
        }
        # Ready when the proxy routes /services/x/ to it (the hub adds the route once running).
        with rendered_pod(
            hub,
            container,
            service="x",
            port=port,
            token=token,
            account=hub.account("grader-x"),
            log=root / "formgrader.log",
            ready_path="api",
            ready_status=(200,),
            command=command,
            env=env,
            cwd=container["workingDir"],
        ):
            yield hub
    finally:
        hub.teardown()
        shutil.rmtree(root, ignore_errors=True)


def logs(hub) -> str:
    """The ends of the hub's and the formgrader's logs, for a failure message."""
    hub_log = hub.log_path.read_text()[-3000:]
    return f"hub:\n{hub_log}\nformgrader:\n{(hub.root / 'formgrader.log').read_text()[-3000:]}"


def test_the_cohorts_facilitator_opens_the_rendered_formgrader(cluster_formgrader):
    """Does fiona, facilitator of x, reach the pod's formgrader through the hub's login?"""
    hub = cluster_formgrader
    fiona = hub.login("fiona")
    page = fiona.get(f"{hub.url}/services/x/formgrader", timeout=60)
    assert page.status_code == 200, logs(hub)
    assert page.url.startswith(f"{hub.url}/services/x/formgrader")
    assert "formgrader" in page.text.lower()


def test_a_trainee_cannot_open_the_rendered_formgrader(cluster_formgrader):
    """Is alice, a trainee, refused by the pod's formgrader, as by the hub-managed one?"""
    hub = cluster_formgrader
    alice = hub.login("alice")
    page = alice.get(f"{hub.url}/services/x/formgrader", timeout=60)
    assert page.status_code in (403, 404), (page.status_code, page.url)


def test_the_rendered_formgrader_gives_a_facilitator_no_kernel_or_terminal(cluster_formgrader):
    """Does the pod's formgrader refuse fiona kernels, terminals and contents writes too?"""
    import json

    hub = cluster_formgrader
    fiona = hub.login("fiona")
    assert fiona.get(f"{hub.url}/services/x/formgrader", timeout=60).status_code == 200
    xsrf = fiona.cookies.get("_xsrf", path="/services/x/") or fiona.cookies.get("_xsrf")
    headers = {"X-XSRFToken": xsrf}
    for method, path, body in (
        ("POST", "api/kernels", {"name": "python3"}),
        ("POST", "api/terminals", {}),
        ("PUT", "api/contents/x.py", {"type": "file", "format": "text", "content": "1"}),
    ):
        response = fiona.request(
            method, f"{hub.url}/services/x/{path}", data=json.dumps(body), headers=headers,
            timeout=60,
        )  # fmt: skip
        assert response.status_code == 403, (path, response.status_code, logs(hub))
