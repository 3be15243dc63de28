"""The peer review pod of `atelier kube manifests`, run for real against a real hub.

On Kubernetes ``atelier-peer`` is not started by the hub: it is an external service
(``hub.services.atelier-peer`` with a URL, in the chart's values) and a Deployment whose command
and environment ``atelier kube manifests`` renders, running as the pods' uid (not root) with its
records on the courses volume. This module runs that rendered container here, as the pattern of
``test_kube_formgrader.py``: a real hub whose config lists ``atelier-peer`` as an external service
with a token (as the chart does), and the rendered command with the rendered environment, as the
cohort's grader account (the owner of the course files, as uid 1000 is on the cluster). Only what
a cluster supplies is replaced: the token from the chart's Secret, the hub's address, the loopback
address, and the Secret's files (the cluster settings and ``roster.json``) where the pod mounts
them. The review is opened with the same cluster settings, as a grading pod would; its record is
then handed to the grader account, which owns everything on a cluster's courses volume.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from harness import BIN
from hubs import Hub, external_service, rendered_container, rendered_pod
from peer_cohort import REFLECTIONS, ROSTER, SERVICE, submit_reflections

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def cluster_peer(postgres):
    """A hub with atelier-peer as an external service, and the rendered peer pod running."""
    root = Path(tempfile.mkdtemp(prefix="atelier-kubepeer-"))
    root.chmod(0o755)
    config_d = root / "config.d"
    config_d.mkdir()
    port, token = external_service(config_d, "atelier-peer")
    hub = Hub(
        root,
        {
            "database": {"url": postgres.database()},
            "hub": {"config_d": str(config_d)},
            "grading": {"instant": False},
            "kubernetes": {"peer_url": f"http://atelier-peer:{port}"},
        },
    )
    try:
        hub.publish_workbooks()
        hub.import_roster(ROSTER)
        hub.start()
        submit_reflections(hub)
        secret, container = rendered_container(hub, "atelier-peer")
        # The Secret's files where the pod mounts them: the settings, and the roster at the
        # settings' hub.state_dir (here a folder of its own: the hub's is root's).
        mounted = root / "secret-state"
        mounted.mkdir(mode=0o755)
        cluster = yaml.safe_load(secret["settings.yaml"])
        cluster["hub"]["state_dir"] = str(mounted)
        (mounted / "roster.json").write_text(secret["roster.json"])
        settings_file = root / "cluster-settings.yaml"
        settings_file.write_text(yaml.safe_dump(cluster))
        for each in (mounted / "roster.json", settings_file):
            each.chmod(0o644)
        records = Path(cluster["grading"]["peer_review"]["state_dir"])
        assert records == Path(hub.settings["grading"]["courses_root"]) / ".atelier-peer"
        # The grading pod opens the review with the cluster settings; on a cluster everything on
        # the courses volume is uid 1000's: here the grader account's.
        opened = subprocess.run(
            [str(BIN / "atelier"), "peer", "open", "--cohort=p", "reflect", "--reviewers=2",
             "--seed=k8s", "--due=2099-01-01", "--settings", str(settings_file)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert "4 submissions" in opened.stdout, opened.stdout + opened.stderr
        grader = pwd.getpwnam(hub.account("grader-p"))
        for folder, _, files in os.walk(records):
            for name in [folder, *(os.path.join(folder, f) for f in files)]:
                os.chown(name, grader.pw_uid, grader.pw_gid)
        with rendered_pod(
            hub,
            container,
            service="atelier-peer",
            port=port,
            token=token,
            account=grader.pw_name,
            log=root / "peer.log",
            ready_path="",
            ready_status=(302, 303),  # its own answer: off to the hub's login
            env={"ATELIER_SETTINGS": str(settings_file)},
        ):
            hub.records = records
            yield hub
    finally:
        hub.teardown()
        shutil.rmtree(root, ignore_errors=True)


def logs(hub) -> str:
    """The ends of the hub's and the peer pod's logs, for a failure message."""
    hub_log = hub.log_path.read_text()[-3000:]
    return f"hub:\n{hub_log}\npeer:\n{(hub.root / 'peer.log').read_text()[-3000:]}"


def test_a_trainee_writes_a_review_in_the_rendered_pod_kept_on_the_courses_volume(cluster_peer):
    """Does ana reach her reviews through the hub's login and save one, on the courses volume?"""
    hub = cluster_peer
    ana = hub.login("ana")
    home = ana.get(f"{hub.url}{SERVICE}", timeout=60)
    assert home.status_code == 200, logs(hub)
    ids = sorted(set(re.findall(r"review/([0-9a-f]{16})", home.text)))
    assert len(ids) == 2, home.text
    page = ana.get(f"{hub.url}{SERVICE}review/{ids[0]}", timeout=60)
    assert page.status_code == 200
    assert any(text.split()[0] in page.text for text in REFLECTIONS.values())
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    count = len(set(re.findall(r'name="score-(\d+)"', page.text)))
    form = {"_xsrf": xsrf, "comment": "Clear plan.", **{f"score-{i}": "1" for i in range(count)}}
    saved = ana.post(f"{hub.url}{SERVICE}review/{ids[0]}", data=form, timeout=60)
    assert saved.status_code == 200, logs(hub)
    file = hub.records / "peerreview" / "p" / "reflect.json"
    record = json.loads(file.read_text("utf-8"))
    assert record["reviews"][ids[0]]["state"] == "done"
    assert record["reviews"][ids[0]]["comment"] == "Clear plan."
    assert file.stat().st_uid == pwd.getpwnam(hub.account("grader-p")).pw_uid


def test_the_rendered_pod_shows_nobody_what_is_not_theirs(cluster_peer):
    """Is another's review 404, and the review's page for the cohort's facilitator alone?"""
    hub = cluster_peer
    record = json.loads((hub.records / "peerreview" / "p" / "reflect.json").read_text("utf-8"))
    bens = [r for r, each in record["reviews"].items() if each["reviewer"] == hub.account("ben")]
    ana = hub.login("ana")
    assert ana.get(f"{hub.url}{SERVICE}review/{bens[0]}", timeout=60).status_code == 404
    assert ana.get(f"{hub.url}{SERVICE}cohort/p/reflect", timeout=60).status_code == 403
    fred = hub.login("fred")  # facilitator of q
    assert fred.get(f"{hub.url}{SERVICE}cohort/p/reflect", timeout=60).status_code == 403
    fay = hub.login("fay")
    page = fay.get(f"{hub.url}{SERVICE}cohort/p/reflect", timeout=120)
    assert page.status_code == 200, logs(hub)
    assert "Ana Lopes" in page.text  # the facilitator sees who wrote what
