"""Kubernetes manifests of the workloads the chart has no place for: formgraders and public apps.

Rule: like the chart values (:mod:`atelier.hub_config.kubernetes.kube`), these are rendered from the
one settings file and the roster store, by the same functions one machine uses, never written by
hand. ``atelier kube manifests`` writes them as one multi-document YAML file to ``kubectl apply`` in
the release's namespace, next to ``helm upgrade --install`` with the values.

What maps to what (single machine -> cluster):

- a cohort's formgrader, a hub-managed process run as the grader account
  (:func:`atelier.grading.hubconfig.formgrader_server_command`) -> a Deployment ``formgrader-C``
  of one pod running the same command (bound to the pod's address) with the courses volume and
  the whole exchange volume mounted, and a Service whose name and port are those of
  ``kubernetes.formgrader_url``; the hub knows it as the external service ``C`` of the values
  (``hub.services.C``), whose API token the chart generates and keeps in its ``hub`` Secret under
  ``hub.services.C.apiToken``; the pod gets it from there, with the environment the hub gives a
  managed service (``JUPYTERHUB_SERVICE_PREFIX=/services/C/``, the OAuth client ``service-C``...);
- the course's generated ``nbgrader_config.py`` and the cluster settings (``grading.identity:
  folder``) -> the Secret ``atelier-grading``, mounted read-only;
- the public apps service (:func:`atelier.public.apps.service`: ``atelier apps`` at
  ``/services/apps/``) -> a Deployment + Service at ``kubernetes.apps_url`` (no login, as on one
  machine), with no egress at all: the apps' kernels run visitors' widget callbacks;
- the peer review service ``atelier-peer`` (:mod:`atelier.grading.peerreview.service`, a
  hub-managed root process on one machine) -> a Deployment + Service at ``kubernetes.peer_url``
  running the same module as uid 1000, with the courses volume (the submissions it reads when
  a review opens, the gradebooks' course folders, and its records in
  ``<courses_root>/.atelier-peer``) and, from the Secret ``atelier-grading``, the cluster
  settings and the roster (``roster.json``: who is a trainee or facilitator of which cohort; no
  passwords) at ``hub.state_dir``; no exchange volume. It joins the hub as the formgraders do
  (external service, the chart's token, OAuth);
- who may reach them: a NetworkPolicy per workload admits only the chart's proxy (pods labelled
  ``hub.jupyter.org/network-access-singleuser: "true"``); formgrader pods carry the chart's
  ``hub.jupyter.org/network-access-hub: "true"`` label so the hub's policy lets them call its API.

Every pod runs as uid 1000 / gid 100 (the trainees' uid, which owns the exchange volume's files),
without privilege escalation and with all capabilities dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlsplit

import yaml

from atelier.hub_config.kubernetes.kube import (
    CLUSTER_SETTINGS,
    EXCHANGE_VOLUME,
    KubeError,
    cluster_grading,
    peer_enabled,
    split_image,
)
from atelier.settings import Settings

#: The chart's Secret holding the generated service tokens (``fullnameOverride: ""``, the default).
HUB_SECRET = "hub"
#: The hub's API inside the release's namespace (the chart's ``hub`` Service).
HUB_API_URL = "http://hub:8081/hub/api"
#: The Secret this module writes: cluster settings and each course's nbgrader config.
GRADING_SECRET = "atelier-grading"
#: Where formgrader pods read their course's nbgrader config (from :data:`GRADING_SECRET`).
FORMGRADER_CONFIG_DIR = "/etc/atelier/formgrader"
COURSES_VOLUME = "atelier-courses"
#: The ConfigMap of the public apps' settings: only :data:`APPS_SECTIONS` (visitors run code there).
APPS_CONFIG = "atelier-apps"
APPS_SECTIONS = ("apps", "widgets", "workbooks")
#: Labels of Zero to JupyterHub's network policies (who may talk to the hub, who to user pods).
ACCESS_HUB = "hub.jupyter.org/network-access-hub"
ACCESS_FROM_PROXY = "hub.jupyter.org/network-access-singleuser"
RUN_AS = {"runAsUser": 1000, "runAsGroup": 100, "fsGroup": 100, "runAsNonRoot": True}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def cluster_settings(settings: Mapping) -> Settings:
    """The settings as the cluster runs them: the ``grading`` section of :func:`cluster_grading`.

    Identity from the inbound folder, the peer reviews' records on the courses volume.
    """
    return Settings({**settings, "grading": cluster_grading(settings)})


def service_address(url: str, key: str) -> tuple[str, int]:
    """(Service name, port) of an in-namespace URL such as ``http://formgrader-x:8888``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    name = host.split(".", 1)[0]
    in_namespace = not host.count(".") or ".svc" in host
    if parts.scheme != "http" or not name or not in_namespace or name[0].isdigit():
        raise KubeError(
            f"settings key 'kubernetes.{key}': '{url}' must be http://<service>:<port> naming a "
            "Service of the release's namespace, which `atelier kube manifests` creates"
        )
    return name, parts.port or 80


def _labels(component: str, cohort: str = "") -> dict:
    labels = {
        "app.kubernetes.io/name": "atelier",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "atelier-kube-manifests",
    }
    if cohort:
        labels["atelier/cohort"] = cohort
    return labels


def _resources(kube: Mapping, memory_limit: str) -> dict:
    return {
        "requests": {"memory": kube["memory_guarantee"], "cpu": str(kube["cpu_guarantee"])},
        "limits": {"memory": memory_limit, "cpu": str(kube["cpu_limit"])},
    }


def _image(kube: Mapping) -> str:
    image = split_image(kube["singleuser_image"], "singleuser_image")
    return f"{image['name']}:{image['tag']}"


def _service_container(
    kube: Mapping, name: str, command: list[str], service: str, env: Mapping, port: int, **more
) -> dict:
    """A hub service's container: its API token, ``env``, one HTTP port, the cluster's limits.

    ``more`` adds the fields that differ between services (the working folder, volume mounts).
    """
    return {
        "name": name,
        "image": _image(kube),
        "command": command,
        "env": [
            {
                "name": "JUPYTERHUB_API_TOKEN",
                "valueFrom": {
                    "secretKeyRef": {"name": HUB_SECRET, "key": f"hub.services.{service}.apiToken"}
                },
            },
            *({"name": k, "value": v} for k, v in env.items()),
        ],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 10},
        "resources": _resources(kube, kube["memory_limit"]),
        "securityContext": CONTAINER_SECURITY,
        **more,
    }


def _workload(name: str, labels: dict, pod: dict, port: int) -> list[dict]:
    """A one-replica Deployment of ``pod`` and its ClusterIP Service ``name`` on ``port``."""
    selector = {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/component")}
    if "atelier/cohort" in labels:
        selector["atelier/cohort"] = labels["atelier/cohort"]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            # One pod at a time: a gradebook and a course folder have one writer per cohort.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": pod.pop("labels")}, "spec": pod},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return [deployment, service]


def _proxy_only(name: str, labels: dict, port: int, egress: list | None) -> dict:
    """A NetworkPolicy: ingress from the chart's proxy only; ``egress`` None leaves it open."""
    selector = {k: labels[k] for k in labels if k != "app.kubernetes.io/managed-by"}
    spec: dict = {
        "podSelector": {"matchLabels": selector},
        "policyTypes": ["Ingress"] + ([] if egress is None else ["Egress"]),
        "ingress": [
            {
                "from": [{"podSelector": {"matchLabels": {ACCESS_FROM_PROXY: "true"}}}],
                "ports": [{"port": port, "protocol": "TCP"}],
            }
        ],
    }
    if egress is not None:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


def formgrader_manifests(settings: Mapping, cohort: str) -> list[dict]:
    """Deployment, Service and NetworkPolicy of ``cohort``'s formgrader."""
    from atelier.grading.course import Course
    from atelier.grading.hubconfig import formgrader_server_command

    kube = settings["kubernetes"]
    course = Course.from_settings(cluster_settings(settings), cohort)
    name, port = service_address(kube["formgrader_url"].format(cohort=cohort), "formgrader_url")
    # A pod that fails restarts on its own and never stops the hub: no launcher here.
    command = ["python", *formgrader_server_command(course, port)[1:]]
    config_key = f"nbgrader-config-{course.course_id}.py"
    command = [
        "--ip=0.0.0.0"
        if arg == "--ip=127.0.0.1"
        else f"--config={FORMGRADER_CONFIG_DIR}/{config_key}"
        if arg.startswith("--config=")
        else arg
        for arg in command
    ]
    prefix = f"/services/{course.course_id}/"
    env = {
        "JUPYTERHUB_SERVICE_NAME": course.course_id,
        "JUPYTERHUB_USER": course.course_id,
        "JUPYTERHUB_CLIENT_ID": f"service-{course.course_id}",
        "JUPYTERHUB_API_URL": HUB_API_URL,
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_SERVICE_URL": f"http://0.0.0.0:{port}{prefix}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        "JUPYTERHUB_OAUTH_SCOPES": json.dumps([f"access:services!service={course.course_id}"]),
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(
            [f"access:services!service={course.course_id}"]
        ),
        "HOME": str(course.root),
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime",
        "JUPYTERHUB_DISABLE_USER_CONFIG": "1",
        "ATELIER_SETTINGS": CLUSTER_SETTINGS,
    }
    labels = _labels("formgrader", cohort)
    pod = {
        "labels": {**labels, ACCESS_HUB: "true"},
        "securityContext": RUN_AS,
        "automountServiceAccountToken": False,
        "containers": [
            _service_container(
                kube,
                "formgrader",
                command,
                course.course_id,
                env,
                port,
                workingDir=str(course.root),
                volumeMounts=[
                    {"name": COURSES_VOLUME, "mountPath": str(course.courses_root)},
                    {"name": EXCHANGE_VOLUME, "mountPath": str(course.exchange_root)},
                    {
                        "name": GRADING_SECRET,
                        "mountPath": CLUSTER_SETTINGS,
                        "subPath": "settings.yaml",
                        "readOnly": True,
                    },
                    {
                        "name": GRADING_SECRET,
                        "mountPath": f"{FORMGRADER_CONFIG_DIR}/{config_key}",
                        "subPath": config_key,
                        "readOnly": True,
                    },
                ],
            )
        ],
        "volumes": [
            {
                "name": COURSES_VOLUME,
                "persistentVolumeClaim": {"claimName": kube["courses_claim"]},
            },
            {
                "name": EXCHANGE_VOLUME,
                "persistentVolumeClaim": {"claimName": kube["exchange_claim"]},
            },
            {
                "name": GRADING_SECRET,
                "secret": {"secretName": GRADING_SECRET, "defaultMode": 0o440},
            },
        ],
    }
    return [*_workload(name, labels, pod, port), _proxy_only(name, labels, port, None)]


def apps_manifests(settings: Mapping) -> list[dict]:
    """Deployment, Service and NetworkPolicy of the public apps (``atelier apps``)."""
    from atelier.public.apps import SERVICE_NAME, service

    kube = settings["kubernetes"]
    name, port = service_address(kube["apps_url"], "apps_url")
    on_hub = service(settings)["command"]
    command = ["python", *on_hub[1:]]
    command = [
        "--ip=0.0.0.0"
        if arg.startswith("--ip=")
        else f"--port={port}"
        if arg.startswith("--port=")
        else arg
        for arg in command
    ]
    command.append(f"--settings={CLUSTER_SETTINGS}")
    labels = _labels("apps")
    pod = {
        "labels": dict(labels),
        "securityContext": RUN_AS,
        "automountServiceAccountToken": False,
        "containers": [
            {
                "name": "apps",
                "image": _image(kube),
                "command": command,
                "env": [{"name": "HOME", "value": "/tmp"}],
                "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
                "readinessProbe": {
                    "httpGet": {"path": f"/services/{SERVICE_NAME}/", "port": "http"},
                    "periodSeconds": 10,
                },
                "resources": _resources(kube, kube["apps_memory_limit"]),
                "securityContext": CONTAINER_SECURITY,
                "volumeMounts": [
                    {
                        "name": APPS_CONFIG,
                        "mountPath": CLUSTER_SETTINGS,
                        "subPath": "settings.yaml",
                        "readOnly": True,
                    }
                ],
            }
        ],
        "volumes": [{"name": APPS_CONFIG, "configMap": {"name": APPS_CONFIG}}],
    }
    # Only the sections the apps read: no database URL or password within a visitor's reach.
    public = {k: settings[k] for k in APPS_SECTIONS if k in settings}
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": APPS_CONFIG, "labels": labels},
        "data": {"settings.yaml": yaml.safe_dump(json.loads(json.dumps(public)))},
    }
    # No egress: the apps' kernels run visitors' callbacks and need nothing outside the pod.
    return [config, *_workload(name, labels, pod, port), _proxy_only(name, labels, port, [])]


def peer_manifests(settings: Mapping) -> list[dict]:
    """Deployment, Service and NetworkPolicy of the peer review service (``atelier-peer``)."""
    from atelier.accounts import ROSTER_FILE
    from atelier.grading.peerreview.service import SERVICE

    kube = settings["kubernetes"]
    cluster = cluster_settings(settings)
    name, port = service_address(kube["peer_url"], "peer_url")
    roster = f"{str(cluster['hub']['state_dir']).rstrip('/')}/{ROSTER_FILE}"
    prefix = f"/services/{SERVICE}/"
    env = {
        "JUPYTERHUB_SERVICE_NAME": SERVICE,
        "JUPYTERHUB_CLIENT_ID": f"service-{SERVICE}",
        "JUPYTERHUB_API_URL": HUB_API_URL,
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_SERVICE_URL": f"http://0.0.0.0:{port}{prefix}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        "JUPYTERHUB_OAUTH_SCOPES": json.dumps([f"access:services!service={SERVICE}"]),
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps([f"access:services!service={SERVICE}"]),
        "HOME": "/tmp",
        "ATELIER_SETTINGS": CLUSTER_SETTINGS,
    }
    labels = _labels("peer-review")
    pod = {
        "labels": {**labels, ACCESS_HUB: "true"},
        "securityContext": RUN_AS,
        "automountServiceAccountToken": False,
        "containers": [
            _service_container(
                kube,
                "peer-review",
                # The module one machine's hub starts (grading/peerreview/service.py).
                ["python", "-P", "-m", "atelier.grading.peerreview.service"],
                SERVICE,
                env,
                port,
                volumeMounts=[
                    {"name": COURSES_VOLUME, "mountPath": str(cluster["grading"]["courses_root"])},
                    {
                        "name": GRADING_SECRET,
                        "mountPath": CLUSTER_SETTINGS,
                        "subPath": "settings.yaml",
                        "readOnly": True,
                    },
                    {
                        "name": GRADING_SECRET,
                        "mountPath": roster,
                        "subPath": ROSTER_FILE,
                        "readOnly": True,
                    },
                ],
            )
        ],
        "volumes": [
            {
                "name": COURSES_VOLUME,
                "persistentVolumeClaim": {"claimName": kube["courses_claim"]},
            },
            {
                "name": GRADING_SECRET,
                "secret": {"secretName": GRADING_SECRET, "defaultMode": 0o440},
            },
        ],
    }
    # Egress stays open: the pod calls the hub's API (logins) and the gradebooks' database.
    return [*_workload(name, labels, pod, port), _proxy_only(name, labels, port, None)]


def grading_secret(settings: Mapping, cohorts: list[str]) -> dict:
    """The Secret with the cluster settings and every course's generated nbgrader config.

    With peer review on, the roster too (``roster.json``, no passwords), which only the
    ``atelier-peer`` pod mounts.
    """
    from atelier.grading.course import Course

    cluster = cluster_settings(settings)
    data = {"settings.yaml": yaml.safe_dump(json.loads(json.dumps(cluster)), sort_keys=False)}
    if peer_enabled(settings) and cohorts:
        from pathlib import Path

        from atelier.accounts import ROSTER_FILE

        roster = Path(settings["hub"]["state_dir"]) / ROSTER_FILE
        data[ROSTER_FILE] = roster.read_text("utf-8") if roster.exists() else "{}"
    for cohort in cohorts:
        course = Course.from_settings(cluster, cohort)
        data[f"nbgrader-config-{course.course_id}.py"] = course.nbgrader_config_text()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": GRADING_SECRET, "labels": _labels("grading")},
        "type": "Opaque",
        "stringData": data,
    }


def render_manifests(settings: Mapping) -> list[dict]:
    """Every manifest: the grading Secret, formgraders, public apps, then peer review."""
    from atelier.database import database_url, is_postgres
    from atelier.hub_config.kubernetes.kube import single_machine_config

    if not is_postgres(database_url(settings)):
        # The formgrader pods and the grading pod would share SQLite gradebooks over a network
        # volume, where SQLite's WAL (shared memory) and locks do not hold across nodes.
        raise KubeError(
            "settings key 'database.url': on Kubernetes the gradebooks must be in PostgreSQL "
            "(formgraders and grading run in different pods; SQLite over a network volume can "
            "lose grades): set a postgresql:// URL, see docs/backup.md"
        )
    cohorts = list(single_machine_config(settings).Atelier.formgraders)
    manifests = [grading_secret(settings, cohorts)]
    for cohort in cohorts:
        manifests += formgrader_manifests(settings, cohort)
    if settings["kubernetes"]["apps_url"]:
        manifests += apps_manifests(settings)
    if peer_enabled(settings) and cohorts:
        manifests += peer_manifests(settings)
    return manifests


def dump_manifests(manifests: list[dict]) -> str:
    """The manifests as one multi-document YAML stream with a header saying where it comes from."""
    from atelier.hub_config.kubernetes.kube import BlockDumper

    header = (
        "# Generated by `atelier kube manifests` from the Atelier settings; do not edit by hand.\n"
        "# kubectl apply --namespace <the release's namespace> -f FILE\n"
    )
    return header + yaml.dump_all(
        manifests, Dumper=BlockDumper, sort_keys=False, allow_unicode=True, width=100
    )
