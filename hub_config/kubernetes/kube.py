"""Helm values for Zero to JupyterHub 4.x, derived from the same settings file as one machine.

Rule: the chart gets the behaviour of ``jupyterhub_config.py`` by construction, not by copy. The
single-machine layers (:mod:`atelier.hub_config.hub.config`) build a traitlets ``Config`` from the
settings and the roster store; :func:`render_values` translates that Config into chart values
(``hub.loadRoles`` and ``hub.services`` are dicts keyed by name in the chart, lists in JupyterHub),
then adds what only Kubernetes needs: images, volumes, the exchange mounts, the database.

What maps to what (single machine -> chart):

- cohorts (``cohort-C``), facilitator groups and roles, formgrader roles -> ``hub.config.JupyterHub
  .load_groups`` and ``hub.loadRoles``;
- the authenticator and its traits, admins, allowed users -> ``hub.config``; the roster store
  (``roster.json``, ``passwords.json``) -> ``hub.extraFiles`` (a Secret) in ``/srv/atelier/state``;
- the idle-culler service -> the chart's own ``cull`` section;
- a cohort's formgrader (a hub-managed process) -> an external service at
  ``kubernetes.formgrader_url``, whose Deployment and Service
  :mod:`atelier.hub_config.kubernetes.kubemanifests` renders (``atelier kube manifests``);
- public apps -> an external service at ``kubernetes.apps_url`` (rendered there too);
- Unix isolation of the exchange -> per-trainee ``subPath`` mounts of one ReadWriteMany volume
  (see :mod:`atelier.hub_config.kubernetes.kubehub` and ``docs/deploy-kubernetes.md``);
- ``database.url`` -> ``hub.db`` (``postgres``), else ``sqlite-pvc``;
- the trainee's path (:mod:`atelier.hub_config.view`: home page, workbook view, Submit) ->
  ``singleuser.defaultUrl`` (``HOME_URL``) and ``hub.config.Spawner.args`` (the same server
  extensions on and off, the kernel culling of ``hub.culler.kernel_timeout``,
  :func:`~atelier.hub_config.hub.config.trainee_server_args`); the branded
  login page -> ``JupyterHub.template_paths`` set in the hub pod by ``hub.extraConfig`` (the
  template is the installed package's) and its links in ``hub.config.JupyterHub.template_vars``;
- instant grading: none (its sandbox needs root on the machine of the trainees' servers), so
  trainees' servers get no ``ATELIER_INSTANT_URL`` and Submit says the facilitator grades;
- peer review (the hub-managed ``atelier-peer`` service, root on one machine only to keep its
  records in root's state directory and to run the gradebook as the grader account) -> an
  external service at ``kubernetes.peer_url`` (:func:`peer_enabled`), whose Deployment and
  Service :mod:`atelier.hub_config.kubernetes.kubemanifests` renders; its role
  ``atelier-peer-user`` lets every cohort in, trainees' servers link to it
  (``ATELIER_PEER_URL``), and its records live on the courses volume
  (``grading.peer_review.state_dir``, :func:`cluster_grading`), where the pod (uid 1000, like
  the formgraders) and a grading pod running ``atelier peer`` share them.

Static parts live in ``kubernetes/values.base.yaml``; the derived values are deep-merged over them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import yaml
from traitlets.config import Config

from atelier.errors import AtelierError
from atelier.settings import deep_merge

#: Where the hub pod finds the roster store (mounted from a Secret by ``hub.extraFiles``).
HUB_STATE_DIR = "/srv/atelier/state"
#: Where the hub pod (and a grading pod mounting the same Secret) finds the settings file.
CLUSTER_SETTINGS = "/etc/atelier/settings.yaml"
#: Where trainee pods read the grading config (``JUPYTER_CONFIG_PATH``), mounted by the chart.
TRAINEE_CONFIG_DIR = "/etc/atelier/jupyter"
#: Name of the exchange volume in trainee pods.
EXCHANGE_VOLUME = "atelier-exchange"
#: Services the chart provides itself (so the single-machine ones are not copied).
CHART_PROVIDED = {"idle-culler"}
#: Single-machine services a cluster does not need: the home quota watchdog (a trainee's home is
#: a volume of the quota's size there).
NOT_ON_KUBERNETES = {"atelier-quota"}


#: Where the cluster keeps the peer reviews' records, under ``grading.courses_root``.
PEER_RECORDS = ".atelier-peer"


class KubeError(AtelierError):
    """The settings cannot be rendered as chart values: the message names the key and the fix."""


def base_values() -> dict:
    """The static values shipped in ``hub_config/kubernetes/values.base.yaml``."""
    text = resources.files("atelier.hub_config.kubernetes").joinpath("values.base.yaml")
    return yaml.safe_load(text.read_text("utf-8")) or {}


def single_machine_config(settings: Mapping) -> Config:
    """The hub Config one machine would run with (layers 2-3), plus nbgrader's groups and roles."""
    from atelier.accounts import load_people
    from atelier.grading.course import Course, GradingError
    from atelier.grading.courses.people import cohort_people
    from atelier.grading.hubconfig import cohort_groups_and_roles
    from atelier.hub_config.hub import config as layers

    c = Config()
    layers.apply_settings(c, settings)
    layers.apply_roster(c, settings)
    groups = dict(c.JupyterHub.load_groups)
    roles = list(c.JupyterHub.load_roles)
    cohorts = sorted(
        {x for p in load_people(settings["hub"]["state_dir"]).values() for x in p.cohorts}
    )
    formgraders = []
    for cohort in cohorts:
        try:
            course = Course.from_settings(settings, cohort)
        except GradingError as error:
            raise KubeError(f"roster cohort {cohort!r}: {error}") from error
        trainees, facilitators = cohort_people(settings, cohort)
        more, role = cohort_groups_and_roles(course, [t.username for t in trainees], facilitators)
        groups.update(more)
        roles.append(role)
        formgraders.append(course.course_id)
    if peer_enabled(settings) and formgraders:
        from atelier.grading.hubconfig import course_groups
        from atelier.grading.peerreview.service import hub_role

        # The same groups as one machine's atelier-peer role (grading/hubconfig.py).
        roles.append(
            hub_role([g for c_ in formgraders for g in (course_groups(c_), f"formgrade-{c_}")])
        )
    c.JupyterHub.load_groups = groups
    c.JupyterHub.load_roles = roles
    c.Atelier.formgraders = formgraders
    return c


def peer_enabled(settings: Mapping) -> bool:
    """Whether the cluster runs the peer review pages (the service on, and its URL set)."""
    return bool(
        settings["grading"].get("peer_review", {}).get("service", True)
        and settings["kubernetes"].get("peer_url")
    )


def cluster_grading(settings: Mapping) -> dict:
    """The ``grading`` section as the cluster runs it.

    ``identity: folder`` (every trainee pod runs as one uid, so collect takes identity from the
    per-trainee inbound folder only that trainee's pod mounts); ``instant`` off (its sandbox
    needs root on the trainees' machine); the peer reviews' records on the courses volume
    (:data:`PEER_RECORDS`), which the ``atelier-peer`` pod and the grading pod both mount, and
    the service on only when :func:`peer_enabled`.
    """
    grading = settings["grading"]
    peer = {
        **grading.get("peer_review", {}),
        "service": peer_enabled(settings),
        "state_dir": f"{str(grading['courses_root']).rstrip('/')}/{PEER_RECORDS}",
    }
    return {**grading, "identity": "folder", "instant": False, "peer_review": peer}


def split_image(image: str, key: str) -> dict:
    """``name:tag`` as the chart's ``{name, tag}``; the tag is required (no implicit latest)."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag or not name:
        raise KubeError(f"settings key 'kubernetes.{key}': '{image}' must be name:tag")
    return {"name": name, "tag": tag}


def _by_name(items: list[dict]) -> dict:
    """A JupyterHub list of named objects as the chart's dict keyed by name (name kept)."""
    return {item["name"]: dict(item) for item in items}


def _state_files(settings: Mapping) -> dict:
    """The roster store and the variants' secret as ``hub.extraFiles`` (the chart: a Secret).

    The secret (made here on first use, as on one machine) lets the hub pod give each trainee's
    pod their variant seed and the cluster's grading verbs compute it (``atelier.variants``).
    """
    from atelier.accounts import PASSWORDS_FILE, ROSTER_FILE
    from atelier.variants import SECRET_FILE, load_secret

    files = {}
    state = Path(settings["hub"]["state_dir"])
    for name in (ROSTER_FILE, PASSWORDS_FILE):
        text = (state / name).read_text("utf-8") if (state / name).exists() else "{}"
        key = "atelier-" + name.replace(".", "-")
        files[key] = {"mountPath": f"{HUB_STATE_DIR}/{name}", "stringData": text, "mode": 0o440}
    files["atelier-variants-secret"] = {
        "mountPath": f"{HUB_STATE_DIR}/{SECRET_FILE}",
        "stringData": load_secret(state, create=True).hex() + "\n",
        "mode": 0o440,
    }
    return files


def _settings_file(settings: Mapping) -> dict:
    """The settings as a ``hub.extraFiles`` entry (a Secret), for the cluster's grading verbs.

    Their ``grading`` section is :func:`cluster_grading`'s.
    """
    # No instant grading service on a cluster (see the module's rule): said in the settings too.
    cluster = {**settings, "grading": cluster_grading(settings)}
    text = yaml.safe_dump(json.loads(json.dumps(cluster)), sort_keys=False)
    return {
        "atelier-settings-yaml": {
            "mountPath": CLUSTER_SETTINGS,
            "stringData": text,
            "mode": 0o440,
        }
    }


def _trainee_files(settings: Mapping) -> dict:
    """The trainees' grading config (hardened exchange classes, Lab plugins off) for every pod."""
    from atelier.grading.hubconfig import trainee_config_files

    files = {}
    for relative, text in sorted(trainee_config_files(settings).items()):
        key = "atelier-" + relative.replace("/", "-").replace(".", "-").replace("_", "-").lower()
        files[key] = {"mountPath": f"{TRAINEE_CONFIG_DIR}/{relative}", "stringData": text}
    return files


def trainee_pod_limits(settings: Mapping) -> dict:
    """``hub.limits`` as a trainee pod's: memory and CPU limits, home volume, /tmp, /dev/shm.

    The same limits as one machine (:mod:`atelier.hub_config.servers.limits`), in the chart's terms:
    memory (``singleuser.memory.limit``) and CPU limits; the home volume's size is the home quota (a
    volume cannot grow past it, so no watchdog is needed); ``/tmp`` and ``/dev/shm`` are
    memory-backed ``emptyDir`` volumes of the configured sizes (the kubelet evicts a pod that writes
    past them); the file-size cap is applied by the server itself at start
    (``ATELIER_FILE_SIZE_MB``, :func:`atelier.hub_config.servers.singleuser.cap_file_size`: lowering
    a limit needs no root, and nothing the trainee runs can raise it again). The process cap is the
    kubelet's ``podPidsLimit`` (node configuration; see ``docs/deploy-kubernetes.md``). With
    ``hub.limits.enabled`` false, the ``kubernetes`` section's own sizes apply and nothing more.
    """
    kube, limits = settings["kubernetes"], settings["hub"]["limits"]
    if not limits["enabled"]:
        return {
            "memory": kube["memory_limit"],
            "cpu": kube["cpu_limit"],
            "storage": kube["storage_capacity"],
            "volumes": [],
            "volume_mounts": [],
            "env": {},
        }
    scratch = {
        "atelier-tmp": ("/tmp", limits["tmp_mb"]),
        "atelier-shm": ("/dev/shm", limits["shm_mb"]),
    }
    return {
        "memory": f"{limits['memory_mb']}Mi",
        "cpu": limits["cpu"] or kube["cpu_limit"],
        "storage": (
            f"{limits['home_quota_mb']}Mi" if limits["home_quota_mb"] else kube["storage_capacity"]
        ),
        "volumes": [
            {"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": f"{size}Mi"}}
            for name, (_, size) in scratch.items()
        ],
        "volume_mounts": [{"name": name, "mountPath": path} for name, (path, _) in scratch.items()],
        "env": {"ATELIER_FILE_SIZE_MB": str(limits["file_size_mb"])},
    }


def render_values(settings: Mapping) -> dict:
    """The chart values of an Atelier installation (static base + settings + roster)."""
    from atelier.database import database_url, hub_db_url, is_postgres
    from atelier.hub_config.hub.config import HOME_URL, trainee_server_args
    from atelier.hub_config.people.loginpage import login_links

    kube = settings["kubernetes"]
    hub = settings["hub"]
    c = single_machine_config(settings)
    auth_class = c.JupyterHub.authenticator_class
    # The login page's links: the public apps where the cluster serves them, the offline library.
    # In hub.config, which the chart applies after its own keys (hub.templateVars is {} there).
    links = {**login_links(settings), "apps": "/services/apps/" if kube["apps_url"] else ""}
    hub_config: dict = {
        "JupyterHub": {
            "authenticator_class": auth_class,
            "load_groups": dict(c.JupyterHub.load_groups),
            "template_vars": {"atelier_links": links},
            # Use reaches the chart's culler in time, as on one machine (config.activity_interval).
            "last_activity_interval": c.JupyterHub.last_activity_interval,
        },
        "Authenticator": {
            "admin_users": sorted(c.Authenticator.admin_users),
            "allowed_users": sorted(c.Authenticator.allowed_users),
        },
        # Trainees' servers load the view extension (home, workbook view, Submit), leave off
        # what one machine's leave off, and cull idle kernels as one machine's do.
        "Spawner": {"args": trainee_server_args(hub["culler"])},
    }
    for trait, value in hub["authenticator"].get("config", {}).items():
        hub_config.setdefault(auth_class.rsplit(".", 1)[-1], {})[trait] = value

    roles = _by_name(
        [r for r in c.JupyterHub.load_roles if r["name"] not in CHART_PROVIDED | NOT_ON_KUBERNETES]
    )
    services = {}
    for cohort in c.Atelier.formgraders:
        services[cohort] = {
            "name": cohort,
            "display": True,
            "oauth_no_confirm": True,
            "url": kube["formgrader_url"].format(cohort=cohort),
        }
    if kube["apps_url"]:
        services["apps"] = {"name": "apps", "display": True, "url": kube["apps_url"]}
    peer_env = {}
    if peer_enabled(settings) and c.Atelier.formgraders:
        from atelier.grading.peerreview.service import SERVICE

        services[SERVICE] = {
            "name": SERVICE,
            "display": True,
            "oauth_no_confirm": True,
            "url": kube["peer_url"],
        }
        # "My workbooks" links to the peer review pages, as one machine's hub sets it.
        peer_env = {"ATELIER_PEER_URL": f"/services/{SERVICE}/"}

    culler = hub["culler"]
    pod = trainee_pod_limits(settings)
    memory = {"guarantee": kube["memory_guarantee"], "limit": pod["memory"]}
    storage: dict = {
        "capacity": pod["storage"],
        "extraVolumes": [
            {
                "name": EXCHANGE_VOLUME,
                "persistentVolumeClaim": {"claimName": kube["exchange_claim"]},
            },
            *pod["volumes"],
        ],
        "extraVolumeMounts": pod["volume_mounts"],
    }
    if kube["storage_class"]:
        storage["dynamic"] = {"storageClass": kube["storage_class"]}
    values: dict = {
        "hub": {
            "image": split_image(kube["hub_image"], "hub_image"),
            "config": hub_config,
            "loadRoles": roles,
            "services": services,
            "concurrentSpawnLimit": hub["concurrent_spawn_limit"],
            "extraFiles": {**_state_files(settings), **_settings_file(settings)},
            "extraEnv": {
                "ATELIER_EXCHANGE_ROOT": settings["grading"]["exchange_root"],
                "ATELIER_ACCOUNT_PREFIX": settings["accounts"]["prefix"],
                "ATELIER_WORKBOOKS_URL": kube["workbooks_url"],
                "ATELIER_STATE_DIR": HUB_STATE_DIR,
            },
        },
        "singleuser": {
            "image": split_image(kube["singleuser_image"], "singleuser_image"),
            # Trainees land on their home page ("My workbooks"), as on one machine.
            "defaultUrl": HOME_URL,
            "startTimeout": hub["start_timeout"],
            "memory": memory,
            "cpu": {"guarantee": kube["cpu_guarantee"], "limit": pod["cpu"]},
            "storage": storage,
            "extraFiles": _trainee_files(settings),
            "extraEnv": {
                "JUPYTER_CONFIG_PATH": TRAINEE_CONFIG_DIR,
                **c.Spawner.environment,
                **pod["env"],
                **peer_env,
            },
        },
        "cull": {
            "enabled": culler["enabled"],
            "timeout": culler["timeout"],
            "every": culler["every"],
            "maxAge": culler["max_age"],
        },
    }
    url = database_url(settings) or (hub["db_url"] and hub_db_url(settings))
    if url and is_postgres(url):
        values["hub"]["db"] = {"type": "postgres", "url": url}
    elif url:
        values["hub"]["db"] = {"type": "other", "url": url}
    else:
        values["hub"]["db"] = {"type": "sqlite-pvc"}
    if kube["host"]:
        ingress: dict = {"enabled": True, "hosts": [kube["host"]]}
        if kube["tls_secret"]:
            ingress["tls"] = [{"hosts": [kube["host"]], "secretName": kube["tls_secret"]}]
        values["ingress"] = ingress
    return deep_merge(base_values(), values)


def helm_merge(defaults: Mapping, values: Mapping) -> dict:
    """``values`` over the chart's ``defaults`` as helm does: mappings merged, lists replaced.

    A ``null`` in ``values`` deletes the default key, as in helm.
    """
    merged = copy.deepcopy(dict(defaults))
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def validate_values(values: Mapping, chart_dir: str | Path) -> list[str]:
    """Errors of ``values`` merged over the chart's defaults against its schema (empty: valid)."""
    import jsonschema

    chart_dir = Path(chart_dir)
    schema = yaml.safe_load((chart_dir / "values.schema.yaml").read_text("utf-8"))
    defaults = yaml.safe_load((chart_dir / "values.yaml").read_text("utf-8"))
    merged = helm_merge(defaults, values)
    # Helm hands the schema JSON; YAML-only types (dates) never occur in values.
    merged = json.loads(json.dumps(merged))
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}"
        for e in sorted(validator.iter_errors(merged), key=lambda e: list(map(str, e.path)))
    ]


def dump(values: Mapping) -> str:
    """The values as a YAML document with a header saying where they come from."""
    header = (
        "# Generated by `atelier kube values` from the Atelier settings; do not edit by hand.\n"
        "# helm upgrade --install atelier jupyterhub/jupyterhub --version 4.4.0 --values FILE\n"
    )
    return header + yaml.dump(
        dict(values), Dumper=BlockDumper, sort_keys=False, allow_unicode=True, width=100
    )


class BlockDumper(yaml.SafeDumper):
    """A YAML dumper writing multi-line strings (config snippets, files) as ``|`` blocks."""


def _str_block(dumper, data: str):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


BlockDumper.add_representer(str, _str_block)
