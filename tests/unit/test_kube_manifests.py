"""`atelier kube manifests`: formgraders and public apps on Kubernetes, rendered, checked.

Each manifest is checked field by field against the Kubernetes API models of the official Python
client (``kubernetes.client``: every field name and type of the API; an unknown field fails), then
deserialised by that client (required fields), then checked for what makes the pieces fit: a
Service selects its Deployment's pods on a named port, every mount has its volume, the formgrader
takes the token the chart generates for the hub service of the same name, and the URLs the chart's
values give the hub are the Services rendered here.
"""

from __future__ import annotations

import re
import subprocess
import sys

import kubernetes.client
import pytest
import yaml
from test_kube_values import CHART, settings_file  # noqa: F401 (a fixture)

from atelier.hub_config.kubernetes import kube, kubemanifests
from atelier.settings import load_settings

pytestmark = pytest.mark.unit

MODELS = {
    ("apps/v1", "Deployment"): "V1Deployment",
    ("v1", "Service"): "V1Service",
    ("v1", "Secret"): "V1Secret",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
}
PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float)}


def field_errors(value, type_name: str, path: str = "") -> list[str]:
    """Where ``value`` does not fit the client's model ``type_name`` (unknown field, wrong type)."""
    if value is None:
        return []
    if match := re.fullmatch(r"list\[(.+)\]", type_name, re.IGNORECASE):
        if not isinstance(value, list):
            return [f"{path}: a list expected"]
        return [e for i, v in enumerate(value) for e in field_errors(v, match[1], f"{path}[{i}]")]
    if match := re.fullmatch(r"dict[\[(]str, (.+)[\])]", type_name, re.IGNORECASE):
        if not isinstance(value, dict):
            return [f"{path}: a mapping expected"]
        return [e for k, v in value.items() for e in field_errors(v, match[1], f"{path}.{k}")]
    if type_name in ("object", "datetime", "bytes"):  # IntOrString, free-form, encoded
        return []
    if type_name in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[type_name]) and not (
            type_name == "int" and isinstance(value, bool)
        )
        return [] if ok else [f"{path}: {type_name} expected, got {value!r}"]
    model = getattr(kubernetes.client, type_name)
    if not isinstance(value, dict):
        return [f"{path}: a {type_name} mapping expected"]
    by_json = {json: attr for attr, json in model.attribute_map.items()}
    errors = []
    for key, item in value.items():
        if key not in by_json:
            errors.append(f"{path}.{key}: no such field in {type_name}")
        else:
            errors += field_errors(item, model.openapi_types[by_json[key]], f"{path}.{key}")
    return errors


def manifest_errors(manifest: dict) -> list[str]:
    """Errors of one manifest against the Kubernetes API (empty: it is well-formed)."""
    model = MODELS.get((manifest.get("apiVersion"), manifest.get("kind")))
    if model is None:
        return [f"unknown apiVersion/kind {manifest.get('apiVersion')}/{manifest.get('kind')}"]
    errors = field_errors(manifest, model, manifest["kind"])
    try:  # required fields (the client refuses a missing one)
        kubernetes.client.ApiClient()._ApiClient__deserialize(manifest, model)
    except (ValueError, TypeError) as error:
        errors.append(f"{manifest['kind']}: {error}")
    return errors


@pytest.fixture
def manifests(settings_file):  # noqa: F811
    return kubemanifests.render_manifests(load_settings(settings_file))


def by_kind(manifests: list[dict], kind: str) -> dict:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def test_every_manifest_is_well_formed_kubernetes(manifests):
    """Do all rendered objects use only real Kubernetes fields, with the right types?"""
    kinds = sorted(m["kind"] for m in manifests)
    assert kinds.count("Deployment") == 4  # formgraders of x and y, public apps, peer review
    for manifest in manifests:
        assert manifest_errors(manifest) == [], manifest["metadata"]["name"]


def test_a_wrong_field_is_caught(manifests):
    """Would a misspelt field or a wrong type be caught (the check is not vacuous)?"""
    deployment = by_kind(manifests, "Deployment")["formgrader-x"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["volumeMount"] = container.pop("volumeMounts")
    deployment["spec"]["replicas"] = "one"
    errors = manifest_errors(deployment)
    assert any("containers[0].volumeMount: no such field" in e for e in errors), errors
    assert any("spec.replicas: int expected" in e for e in errors), errors
    del deployment["spec"]["selector"]
    assert any("selector" in e for e in manifest_errors(deployment))


def test_services_route_to_their_pods_and_mounts_have_volumes(manifests):
    """Does each Service select its Deployment's pods on a named port, each mount a volume?"""
    services = by_kind(manifests, "Service")
    for name, deployment in by_kind(manifests, "Deployment").items():
        pod = deployment["spec"]["template"]
        labels = pod["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
        service = services[name]
        assert service["spec"]["selector"].items() <= labels.items()
        (container,) = pod["spec"]["containers"]
        port_names = {p["name"] for p in container["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
        volumes = {v["name"] for v in pod["spec"]["volumes"]}
        assert {m["name"] for m in container["volumeMounts"]} <= volumes
        assert pod["spec"]["securityContext"]["runAsUser"] == 1000
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_hub_services_of_the_values_are_these_workloads(settings_file):  # noqa: F811
    """Is each hub service URL of the values a rendered Service, with the chart's token?"""
    settings = load_settings(settings_file)
    values = kube.render_values(settings)
    manifests = kubemanifests.render_manifests(settings)
    services = by_kind(manifests, "Service")
    deployments = by_kind(manifests, "Deployment")
    secret = by_kind(manifests, "Secret")[kubemanifests.GRADING_SECRET]["stringData"]
    for key, spec in values["hub"]["services"].items():
        host, port = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", spec["url"]).groups()
        assert [p["port"] for p in services[host]["spec"]["ports"]] == [int(port)]
        (container,) = deployments[host]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        if key == "apps":
            assert container["command"][:4] == ["python", "-m", "atelier", "apps"]
            assert "--base-url=/services/apps/" in container["command"]
            continue
        token = env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert token == {"name": "hub", "key": f"hub.services.{key}.apiToken"}
        assert env["JUPYTERHUB_SERVICE_PREFIX"]["value"] == f"/services/{key}/"
        assert env["JUPYTERHUB_CLIENT_ID"]["value"] == f"service-{key}"
        if key == "atelier-peer":
            assert container["command"][-1] == "atelier.grading.peerreview.service"
            assert f":{port}/services/atelier-peer/" in env["JUPYTERHUB_SERVICE_URL"]["value"]
            continue
        config = next(a for a in container["command"] if a.startswith("--config="))
        assert config.rsplit("/", 1)[1] in secret
        assert f"c.CourseDirectory.course_id = '{key}'" in secret[config.rsplit("/", 1)[1]]
        assert "--ip=0.0.0.0" in container["command"]
    assert yaml.safe_load(secret["settings.yaml"])["grading"]["identity"] == "folder"
    # The chart's objects keep the plain names the manifests refer to (Secret and Service "hub").
    assert values["fullnameOverride"] == "" and kube.validate_values(values, CHART) == []


def test_public_apps_see_no_database_and_reach_nothing(manifests):
    """Are the apps' settings free of the database URL, and is all their egress denied?"""
    config = by_kind(manifests, "ConfigMap")[kubemanifests.APPS_CONFIG]
    shipped = yaml.safe_load(config["data"]["settings.yaml"])
    assert set(shipped) <= set(kubemanifests.APPS_SECTIONS) and "db.example.org" not in str(shipped)
    policy = by_kind(manifests, "NetworkPolicy")["atelier-apps"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"] and policy["egress"] == []
    ingress = policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert ingress == {"hub.jupyter.org/network-access-singleuser": "true"}
    formgrader = by_kind(manifests, "NetworkPolicy")["formgrader-x"]["spec"]
    assert formgrader["policyTypes"] == ["Ingress"]


def test_a_formgrader_url_outside_the_namespace_names_the_key(settings_file):  # noqa: F811
    """Is a formgrader URL that is not an in-namespace Service refused, naming the key?"""
    text = settings_file.read_text().replace(
        "kubernetes:\n", "kubernetes:\n  formgrader_url: https://grading.example.org/{cohort}\n"
    )
    settings_file.write_text(text)
    with pytest.raises(kube.KubeError, match=r"kubernetes\.formgrader_url"):
        kubemanifests.render_manifests(load_settings(settings_file))


def test_sqlite_gradebooks_are_refused_on_kubernetes(settings_file):  # noqa: F811
    """Are gradebooks kept off SQLite on a shared network volume, naming database.url?"""
    text = settings_file.read_text().replace("postgresql://atelier:pw@db.example.org/atelier", "''")
    settings_file.write_text(text)
    with pytest.raises(kube.KubeError, match=r"database\.url"):
        kubemanifests.render_manifests(load_settings(settings_file))


def test_kube_manifests_command_writes_them_private(settings_file, tmp_path):  # noqa: F811
    """Does `atelier kube manifests --output` write the documents, mode 600 (they hold secrets)?"""
    out = tmp_path / "manifests.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "atelier", "kube", "manifests", "--settings", str(settings_file),
         "--output", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    documents = list(yaml.safe_load_all(out.read_text()))
    assert [manifest_errors(d) for d in documents] == [[]] * len(documents)
    assert len(documents) == 14  # secret, 2 x (formgrader x 3), apps x 4, peer review x 3


def test_peer_review_runs_on_the_cluster_with_its_records_on_the_courses_volume(
    settings_file,  # noqa: F811
):
    """Is atelier-peer a pod of the courses volume, the roster and settings, and nothing more?

    Its records go to the courses volume the grading pod shares (the cluster settings say where),
    it mounts no exchange, it reads the roster (no passwords) where the settings put hub.state_dir,
    and only the chart's proxy reaches it.
    """
    settings = load_settings(settings_file)
    manifests = kubemanifests.render_manifests(settings)
    deployment = by_kind(manifests, "Deployment")["atelier-peer"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    courses = settings["grading"]["courses_root"]
    assert mounts[courses]["name"] == kubemanifests.COURSES_VOLUME
    assert kubemanifests.EXCHANGE_VOLUME not in {v["name"] for v in pod["volumes"]}
    roster = mounts[f"{settings['hub']['state_dir']}/roster.json"]
    assert roster["readOnly"] and roster["subPath"] == "roster.json"
    secret = by_kind(manifests, "Secret")[kubemanifests.GRADING_SECRET]["stringData"]
    assert "alice" in secret["roster.json"] and "pbkdf2" not in str(secret)
    shipped = yaml.safe_load(secret["settings.yaml"])["grading"]["peer_review"]
    assert shipped == {**shipped, "service": True, "state_dir": f"{courses}/.atelier-peer"}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["hub.jupyter.org/network-access-hub"] == "true"
    policy = by_kind(manifests, "NetworkPolicy")["atelier-peer"]["spec"]
    ingress = policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert ingress == {"hub.jupyter.org/network-access-singleuser": "true"}
    # The values register it with the hub and give trainees' servers its address.
    values = kube.render_values(settings)
    assert values["hub"]["services"]["atelier-peer"]["url"] == "http://atelier-peer:8890"
    role = values["hub"]["loadRoles"]["atelier-peer-user"]
    assert role["scopes"] == ["access:services!service=atelier-peer"]
    assert set(role["groups"]) == {"nbgrader-x", "formgrade-x", "nbgrader-y", "formgrade-y"}
    assert values["singleuser"]["extraEnv"]["ATELIER_PEER_URL"] == "/services/atelier-peer/"
    assert kube.validate_values(values, CHART) == []


@pytest.mark.parametrize(
    "change",
    [
        ("kubernetes:\n", "kubernetes:\n  peer_url: ''\n"),
        ("kubernetes:\n", "grading:\n  peer_review:\n    service: false\nkubernetes:\n"),
    ],
)
def test_peer_review_off_on_the_cluster_is_off_everywhere(settings_file, change):  # noqa: F811
    """With no peer_url or the service off: no pod, no hub service or role, no link, said so?"""
    settings_file.write_text(settings_file.read_text().replace(*change, 1))
    settings = load_settings(settings_file)
    manifests = kubemanifests.render_manifests(settings)
    assert "atelier-peer" not in by_kind(manifests, "Deployment")
    secret = by_kind(manifests, "Secret")[kubemanifests.GRADING_SECRET]["stringData"]
    assert "roster.json" not in secret
    assert yaml.safe_load(secret["settings.yaml"])["grading"]["peer_review"]["service"] is False
    values = kube.render_values(settings)
    assert "atelier-peer" not in values["hub"]["services"]
    assert "atelier-peer-user" not in values["hub"]["loadRoles"]
    assert "ATELIER_PEER_URL" not in values["singleuser"]["extraEnv"]


def test_a_peer_url_outside_the_namespace_names_the_key(settings_file):  # noqa: F811
    """Is a peer review URL that is not an in-namespace Service refused, naming the key?"""
    text = settings_file.read_text().replace(
        "kubernetes:\n", "kubernetes:\n  peer_url: https://peer.example.org/\n"
    )
    settings_file.write_text(text)
    with pytest.raises(kube.KubeError, match=r"kubernetes\.peer_url"):
        kubemanifests.render_manifests(load_settings(settings_file))
