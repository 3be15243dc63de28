"""`atelier kube values`: Zero to JupyterHub values from the one settings file, chart-checked.

The chart's schema and defaults are the repository's pinned copy in ``hub_config/kubernetes/z2jh/``
(chart 4.4.0, with its licence): the tests read nothing outside the checkout. Values are merged
over the defaults as helm does and validated (draft 7).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from atelier.accounts import save_password_hashes, save_people
from atelier.hub_config.hub import config
from atelier.hub_config.kubernetes import kube, kubehub
from atelier.roster import parse_roster
from atelier.settings import load_settings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "hub_config" / "kubernetes" / "z2jh"

ROSTER = """username,full name,email,institution,country,language,role,cohort
alice,Alice,alice@example.org,U,KE,en,trainee,x
chloe,Chloé,chloe@example.org,U,SN,fr,trainee,y
fiona,Fiona,fiona@example.org,U,SN,en,facilitator,x
"""


@pytest.fixture
def settings_file(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    people = parse_roster(ROSTER)
    save_people(state, {p.username: p for p in people})
    save_password_hashes(state, {"alice": "pbkdf2:x"})
    path = tmp_path / "settings.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "hub": {"state_dir": str(state), "admin_users": ["fiona"]},
                "database": {"url": "postgresql://atelier:pw@db.example.org/atelier"},
                "kubernetes": {
                    "host": "atelier.example.org",
                    "tls_secret": "atelier-tls",
                    "singleuser_image": "registry.example.org/atelier-trainee:2026.11",
                    "workbooks_url": "https://git.example.org/atelier/workbooks.git",
                    "apps_url": "http://atelier-apps:8866",
                },
            }
        )
    )
    return path


def test_rendered_values_pass_the_chart_schema(settings_file):
    """Do the rendered values, merged over the chart's defaults, validate against its schema?"""
    values = kube.render_values(load_settings(settings_file))
    assert kube.validate_values(values, CHART) == []


def test_a_wrong_key_fails_the_chart_schema(settings_file):
    """Would a misspelt or misplaced key be caught (the check is not vacuous)?"""
    values = kube.render_values(load_settings(settings_file))
    values["singleuser"]["memoryLimit"] = "1G"
    values["hub"]["db"]["type"] = "mongodb"
    errors = kube.validate_values(values, CHART)
    assert any("memoryLimit" in e for e in errors), errors
    assert any(e.startswith("hub.db.type") for e in errors), errors


def test_values_carry_the_single_machine_behaviour(settings_file):
    """Are cohorts, roles, authenticator, culling, formgraders, apps, database as on one machine?"""
    settings = load_settings(settings_file)
    v = kube.render_values(settings)
    hub = v["hub"]
    groups = hub["config"]["JupyterHub"]["load_groups"]
    assert groups["cohort-x"] == {"users": ["alice"]}
    assert groups["facilitators-x"] == {"users": ["fiona"]}
    assert groups["nbgrader-x"] == {"users": ["alice"]}
    assert groups["formgrade-x"] == {"users": ["fiona"]}
    assert set(hub["loadRoles"]) >= {"facilitator-x", "facilitator-y", "formgrader-x"}
    assert all(name == role["name"] for name, role in hub["loadRoles"].items())
    assert "idle-culler" not in hub["loadRoles"] and "idle-culler" not in hub["services"]
    assert hub["services"]["x"]["url"] == "http://formgrader-x:8888"
    assert hub["services"]["apps"]["url"] == "http://atelier-apps:8866"
    assert hub["config"]["JupyterHub"]["authenticator_class"].endswith(
        "ImportPasswordAuthenticator"
    )
    assert hub["config"]["Authenticator"]["admin_users"] == ["fiona"]
    assert hub["config"]["Authenticator"]["allowed_users"] == ["alice", "chloe", "fiona"]
    assert hub["db"] == {
        "type": "postgres",
        "url": "postgresql+psycopg://atelier:pw@db.example.org/atelier",
    }
    assert v["cull"]["timeout"] == settings["hub"]["culler"]["timeout"]
    # Use reaches the chart's culler four times per timeout, from the pods and the proxy.
    reports = config.activity_interval(settings["hub"]["culler"])
    assert reports < 300 and hub["config"]["JupyterHub"]["last_activity_interval"] == reports
    assert v["singleuser"]["extraEnv"]["JUPYTERHUB_ACTIVITY_INTERVAL"] == str(reports)
    assert v["singleuser"]["image"] == {
        "name": "registry.example.org/atelier-trainee",
        "tag": "2026.11",
    }
    assert v["singleuser"]["defaultUrl"] == "/atelier/home"
    nbgrader_config = next(
        f["stringData"]
        for f in v["singleuser"]["extraFiles"].values()
        if f["mountPath"].endswith("nbgrader_config.py")
    )
    assert "atelier.grading.exchange.trainee.AtelierSubmit" in nbgrader_config
    roster_file = hub["extraFiles"]["atelier-roster-json"]
    assert (
        roster_file["mountPath"] == f"{kube.HUB_STATE_DIR}/roster.json"
        and "chloe" in roster_file["stringData"]
    )
    assert v["ingress"]["tls"] == [{"hosts": ["atelier.example.org"], "secretName": "atelier-tls"}]


def test_a_trainee_pod_mounts_only_their_own_exchange_folders():
    """Does a pod see its cohort's outbound and its own inbound and feedback, nobody else's?"""
    chloe = next(p for p in parse_roster(ROSTER) if p.username == "chloe")
    pod = kubehub.pod_settings(
        chloe,
        {
            "ATELIER_ACCOUNT_PREFIX": "at-",
            "ATELIER_EXCHANGE_ROOT": "/srv/ex",
            "ATELIER_WORKBOOKS_URL": "https://g/w.git",
        },
    )
    mounts = {m["subPath"]: (m["mountPath"], m["readOnly"]) for m in pod["volume_mounts"]}
    assert mounts == {
        "y/outbound": ("/srv/ex/y/outbound", True),
        "y/inbound/at-chloe": ("/srv/ex/y/inbound/chloe", False),
        "y/feedback/at-chloe": ("/srv/ex/y/feedback/chloe", True),
    }
    assert pod["environment"]["ATELIER_LANGUAGE"] == "fr"
    init = kubehub.exchange_init_container("img:1", "at-chloe", chloe.cohorts)
    script = init["command"][-1]
    assert "chown 1000:100 /exchange/y/inbound/at-chloe " in script
    assert "at-alice" not in script and init["securityContext"]["runAsUser"] == 0
    assert (
        "gitpuller https://g/w.git fr workbooks"
        in pod["lifecycle_hooks"]["postStart"]["exec"]["command"][-1]
    )


def test_kube_values_command_writes_checked_values(settings_file, tmp_path):
    """Does `atelier kube values --check-against` write values helm would accept, mode 600?"""
    out = tmp_path / "values.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "atelier",
            "kube",
            "values",
            "--settings",
            str(settings_file),
            "--output",
            str(out),
            "--check-against",
            str(CHART),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    assert kube.validate_values(yaml.safe_load(out.read_text()), CHART) == []


def test_a_bad_image_setting_names_the_key(settings_file, tmp_path):
    """Is an image without a tag refused with the settings key named?"""
    text = settings_file.read_text().replace("atelier-trainee:2026.11", "atelier-trainee")
    settings_file.write_text(text)
    with pytest.raises(kube.KubeError, match=r"kubernetes\.singleuser_image"):
        kube.render_values(load_settings(settings_file))


def test_the_cluster_settings_make_collect_take_identity_from_the_folder(settings_file):
    """Do the rendered values ship the settings with grading.identity 'folder' for collect?"""
    values = kube.render_values(load_settings(settings_file))
    shipped = values["hub"]["extraFiles"]["atelier-settings-yaml"]
    assert shipped["mountPath"] == kube.CLUSTER_SETTINGS
    grading = yaml.safe_load(shipped["stringData"])["grading"]
    assert grading["identity"] == "folder" and grading["exchange_uid"] == 1000


#: Ways a path in the code could leave the checkout (a clone has nothing beside it); written in
#: two halves so that this file, scanned too, does not match itself.
OUTSIDE = ("REPO" + ".parent", '"shared"' + " / ", ".." + "/shared", "shared" + "/reference")


def test_the_chart_copy_is_pinned_with_its_licence_and_nothing_reads_outside_the_checkout():
    """Does a clone hold the chart files the tests use, and does no code look beside the clone?"""
    assert "BSD 3-Clause License" in (CHART / "LICENSE").read_text()
    assert "4.4.0" in (CHART / "README.md").read_text()
    assert yaml.safe_load((CHART / "values.schema.yaml").read_text())["type"] == "object"
    found = []
    for room in (
        "core",
        "authoring",
        "public",
        "hub_config",
        "grading",
        "widgets",
        "tests",
        "benchmarks",
    ):
        for path in (REPO / room).rglob("*"):
            if path.suffix not in (".py", ".sh"):
                continue
            text = path.read_text("utf-8", errors="replace")
            found += [f"{path.relative_to(REPO)}: {s}" for s in OUTSIDE if s in text]
    assert not found, found


def test_trainee_pods_get_the_same_limits_as_one_machine(settings_file):
    """Do hub.limits become the pod's memory, CPU, home size, /tmp, /dev/shm and file cap?"""
    text = Path(settings_file).read_text()
    data = yaml.safe_load(text)
    data["hub"]["limits"] = {"memory_mb": 700, "cpu": 0.5, "home_quota_mb": 300, "tmp_mb": 40}
    data["hub"]["limits"].update(shm_mb=8, file_size_mb=50)
    Path(settings_file).write_text(yaml.safe_dump(data))
    single = kube.render_values(load_settings(settings_file))["singleuser"]
    assert single["memory"]["limit"] == "700Mi"
    assert single["cpu"]["limit"] == 0.5
    storage = single["storage"]
    # The home volume is the quota: it cannot grow past it, so no watchdog service is rendered.
    assert storage["capacity"] == "300Mi"
    volumes = {v["name"]: v for v in storage["extraVolumes"]}
    mounts = {m["mountPath"]: m["name"] for m in storage["extraVolumeMounts"]}
    assert volumes[mounts["/tmp"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "40Mi"}
    assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Mi"}
    assert single["extraEnv"]["ATELIER_FILE_SIZE_MB"] == "50"
    values = kube.render_values(load_settings(settings_file))
    assert "atelier-quota" not in values["hub"]["loadRoles"]
    # Limits off: the kubernetes section's own sizes, and nothing more.
    data["hub"]["limits"] = {"enabled": False}
    Path(settings_file).write_text(yaml.safe_dump(data))
    single = kube.render_values(load_settings(settings_file))["singleuser"]
    assert single["memory"]["limit"] == "1G" and single["storage"]["capacity"] == "2Gi"
    assert "ATELIER_FILE_SIZE_MB" not in single["extraEnv"]


def test_a_pod_server_caps_its_own_file_size_for_good():
    """Does ATELIER_FILE_SIZE_MB cap the server and its children, beyond their reach to lift?"""
    code = (
        "import os, resource, subprocess, sys\n"
        "from atelier.hub_config.servers.singleuser import cap_file_size\n"
        "cap_file_size({'ATELIER_FILE_SIZE_MB': '1'})\n"
        "child = 'import resource; print(resource.getrlimit(resource.RLIMIT_FSIZE))'\n"
        "print(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True)"
        ".stdout.strip())\n"
        "os.setuid(65534) if os.getuid() == 0 else None\n"
        "try:\n"
        "    resource.setrlimit(resource.RLIMIT_FSIZE, (-1, -1))\n"
        "    print('LIFTED')\n"
        "except (ValueError, OSError):\n"
        "    print('KEPT')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["(1048576, 1048576)", "KEPT"], out.stdout + out.stderr


def test_trainees_on_kubernetes_take_the_same_path_as_on_one_machine(settings_file):
    """Do trainees' pods land on the home page, with the view's extensions on, as on one machine?

    From the same constants as one machine's hub; and does the hub pod show the branded,
    bilingual login page?
    """
    from traitlets.config import Config

    from atelier.hub_config.hub import config as layers
    from atelier.hub_config.people import loginpage

    values = kube.render_values(load_settings(settings_file))
    one_machine = Config()
    layers.apply_invariants(one_machine)
    layers.apply_settings(one_machine, load_settings(settings_file))
    assert values["singleuser"]["defaultUrl"] == one_machine.Spawner.default_url == layers.HOME_URL
    args = values["hub"]["config"]["Spawner"]["args"]
    assert args == list(one_machine.Spawner.args)
    # Pods cull idle kernels as one machine's servers do (the view's page left open included).
    assert "--MappingKernelManager.cull_connected=True" in args
    for extension in layers.TRAINEE_EXTENSIONS_ON:
        assert f"--ServerApp.jpserver_extensions={extension}=True" in args
    # The hub pod runs the chart's extraConfig with Atelier installed: run it as the chart does.
    c = Config()
    for _name, snippet in sorted(values["hub"]["extraConfig"].items()):
        exec(compile(snippet, "extraConfig", "exec"), {"c": c})
    (folder,) = c.JupyterHub.template_paths
    assert Path(folder) == loginpage.TEMPLATES and (Path(folder) / "login.html").is_file()
    links = values["hub"]["config"]["JupyterHub"]["template_vars"]["atelier_links"]
    assert links["apps"] == "/services/apps/"  # the cluster's apps service (kubernetes.apps_url)
    assert "library" in links
    # No instant grading on a cluster: no address for it in trainees' pods, off in the settings.
    assert "ATELIER_INSTANT_URL" not in values["singleuser"]["extraEnv"]
    shipped = yaml.safe_load(values["hub"]["extraFiles"]["atelier-settings-yaml"]["stringData"])
    assert shipped["grading"]["instant"] is False
    assert kube.validate_values(values, CHART) == []
