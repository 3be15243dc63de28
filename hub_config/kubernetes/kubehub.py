"""What the hub pod does per trainee on Kubernetes (loaded by the chart's ``hub.extraConfig``).

Rule: on Kubernetes every trainee pod runs as uid 1000 (``jovyan``), so the exchange cannot rely on
Unix owners as one machine does. Isolation comes from what is mounted instead: a trainee's pod
mounts, for each cohort they belong to, the cohort's ``outbound/`` read-only, their own
``inbound/<account>/`` read-write and their own ``feedback/<account>/`` read-only, each as a
``subPath`` of the one exchange volume. Nobody else's folder exists inside their pod. The rest of
the hook sets what :mod:`atelier.hub_config.servers.singleuser` does on one machine: the interface
language and the workbooks (nbgitpuller, one branch per language).

The hub image has Atelier installed; this module reads only the roster store and the variants'
secret mounted from a Secret and the environment the chart sets (``ATELIER_*`` in
``hub.extraEnv``); a trainee's pod gets their variant seed, never the secret.
"""

from __future__ import annotations

import os
import shlex

from atelier.accounts import load_people

#: The chart's name for the exchange volume (see
#: :data:`atelier.hub_config.kubernetes.kube.EXCHANGE_VOLUME`).
EXCHANGE_VOLUME = "atelier-exchange"


def exchange_mounts(root: str, account: str, username: str, cohorts) -> list[dict]:
    """A trainee's exchange mounts: per cohort, outbound (ro), own inbound (rw), own feedback (ro).

    On the volume, folders are named by Unix account name as on one machine (so ``atelier collect``
    reads the same layout); inside the pod, nbgrader names the trainee by hub username
    (``JUPYTERHUB_USER``, since the pod user is ``jovyan``), so that is where they are mounted.
    """
    mounts = []
    for cohort in sorted(cohorts):
        base = f"{root.rstrip('/')}/{cohort}"
        for sub, inside, read_only in (
            (f"{cohort}/outbound", f"{base}/outbound", True),
            (f"{cohort}/inbound/{account}", f"{base}/inbound/{username}", False),
            (f"{cohort}/feedback/{account}", f"{base}/feedback/{username}", True),
        ):
            mounts.append(
                {
                    "name": EXCHANGE_VOLUME,
                    "mountPath": inside,
                    "subPath": sub,
                    "readOnly": read_only,
                }
            )
    return mounts


def exchange_init_container(image: str, account: str, cohorts, uid: int = 1000) -> dict:
    """An init container creating the trainee's own exchange folders, owned by the pod's uid.

    The kubelet would create a missing ``subPath`` as root (mode 755), which the trainee (uid
    1000) could not write to. This container runs as root, sees the whole volume only while it
    creates the folders, and exits before the trainee's server starts.
    """
    inbound = [f"/exchange/{c}/inbound/{account}" for c in sorted(cohorts)]
    feedback = [f"/exchange/{c}/feedback/{account}" for c in sorted(cohorts)]
    outbound = [f"/exchange/{c}/outbound" for c in sorted(cohorts)]
    quoted = " ".join(shlex.quote(path) for path in inbound + feedback + outbound)
    own = " ".join(shlex.quote(path) for path in inbound)
    script = f"mkdir -p {quoted} && chown {uid}:100 {own} && chmod 0700 {own}"
    return {
        "name": "atelier-exchange-folders",
        "image": image,
        "command": ["sh", "-c", script],
        "securityContext": {"runAsUser": 0, "runAsGroup": 0},
        "volumeMounts": [{"name": EXCHANGE_VOLUME, "mountPath": "/exchange"}],
    }


def gitpuller_command(url: str, language: str) -> list[str]:
    """The postStart command that merges the workbooks of ``language`` into ``~/workbooks``."""
    pull = f"gitpuller {shlex.quote(url)} {shlex.quote(language)} workbooks"
    # A failed pull must not stop the pod: the trainee can still work on what they have.
    return ["sh", "-c", f"cd /home/jovyan && {pull} || true"]


def pod_settings(person, environ=os.environ) -> dict:
    """Environment, mounts and lifecycle hooks of ``person``'s pod."""
    prefix = environ.get("ATELIER_ACCOUNT_PREFIX", "at-")
    root = environ.get("ATELIER_EXCHANGE_ROOT", "/srv/atelier/exchange")
    url = environ.get("ATELIER_WORKBOOKS_URL", "")
    account = f"{prefix}{person.username}"
    environment = {"ATELIER_LANGUAGE": person.language, "LANG": f"{person.language}.UTF-8"}
    if person.role == "trainee" and len(person.cohorts) == 1:
        # As the spawner does on one machine: the seed only, never the secret. Values rendered
        # before variants existed ship no secret: then the pod shows the default variant, and the
        # cluster's grading says the secret is missing rather than grading other numbers.
        from atelier.variants import (
            SEED_VARIABLE,
            VariantError,
            cohort_key,
            load_secret,
            trainee_seed,
        )

        try:
            secret = load_secret(environ.get("ATELIER_STATE_DIR", "/srv/atelier/state"))
        except VariantError:
            secret = None
        if secret is not None:
            key = cohort_key(secret, person.cohorts[0])
            environment[SEED_VARIABLE] = trainee_seed(key, person.username)
    settings = {
        "environment": environment,
        "volume_mounts": exchange_mounts(root, account, person.username, person.cohorts)
        if person.role == "trainee"
        else [],
        "lifecycle_hooks": {},
    }
    if url:
        settings["lifecycle_hooks"] = {
            "postStart": {"exec": {"command": gitpuller_command(url, person.language)}}
        }
    return settings


def pre_spawn_hook(spawner) -> None:
    """KubeSpawner's ``pre_spawn_hook``: the pod gets its trainee's language, workbooks, mounts."""
    people = load_people(os.environ.get("ATELIER_STATE_DIR", "/srv/atelier/state"))
    person = people.get(spawner.user.name)
    if person is None:
        return
    settings = pod_settings(person)
    spawner.environment = {**spawner.environment, **settings["environment"]}
    spawner.volume_mounts = [*spawner.volume_mounts, *settings["volume_mounts"]]
    if settings["volume_mounts"]:
        account = f"{os.environ.get('ATELIER_ACCOUNT_PREFIX', 'at-')}{person.username}"
        init = exchange_init_container(spawner.image, account, person.cohorts)
        spawner.init_containers = [*spawner.init_containers, init]
    if settings["lifecycle_hooks"]:
        spawner.lifecycle_hooks = settings["lifecycle_hooks"]
