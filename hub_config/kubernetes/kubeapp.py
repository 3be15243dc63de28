"""``atelier kube``: Kubernetes deployment helpers, rendered from the one settings file.

``atelier kube values`` renders the Helm values (:mod:`atelier.hub_config.kubernetes.kube`);
``atelier kube manifests`` the formgrader and public apps workloads the chart has no place for
(:mod:`atelier.hub_config.kubernetes.kubemanifests`). Both read the same settings file (and roster
store) as one machine; see ``docs/deploy-kubernetes.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from traitlets import Unicode

from atelier.app import AtelierApp, base_aliases
from atelier.errors import AtelierError
from atelier.files import atomic_write


class KubeValuesApp(AtelierApp):
    """Write the Zero to JupyterHub 4.x values of this installation (stdout or ``--output``)."""

    name = "atelier kube values"
    description = (
        "Render Helm values for Zero to JupyterHub 4.x from the settings file: cohorts, roles, "
        "authenticator, culling, images, exchange mounts, formgraders, apps, database."
    )
    aliases = {
        **base_aliases,
        "output": "KubeValuesApp.output",
        "check-against": "KubeValuesApp.check_against",
    }

    output = Unicode(
        "", help="File to write the values to (written whole or not at all); '' = stdout."
    ).tag(config=True)
    check_against = Unicode(
        "",
        help="A folder holding the chart's values.yaml and values.schema.yaml: validate the values "
        "merged over the chart defaults before writing, and refuse invalid ones.",
    ).tag(config=True)

    def run(self):
        """Render, optionally validate, then write."""
        from atelier.hub_config.kubernetes.kube import dump, render_values, validate_values

        values = render_values(self.settings)
        if self.check_against:
            errors = validate_values(values, self.check_against)
            if errors:
                raise AtelierError(
                    "rendered values fail the chart schema:\n  " + "\n  ".join(errors)
                )
        # The values hold password hashes (roster store): private, and never half-written.
        _write(dump(values), self.output, self.log)


class KubeManifestsApp(AtelierApp):
    """Write the manifests of the formgraders and public apps (stdout or ``--output``)."""

    name = "atelier kube manifests"
    description = (
        "Render the Kubernetes manifests the chart has no place for, from the settings file: per "
        "cohort a formgrader Deployment, Service and NetworkPolicy; the public apps' Deployment, "
        "Service and NetworkPolicy; the Secret with the cluster settings and nbgrader configs. "
        "Apply them with kubectl in the release's namespace."
    )
    aliases = {**base_aliases, "output": "KubeManifestsApp.output"}

    output = Unicode(
        "", help="File to write the manifests to (written whole or not at all); '' = stdout."
    ).tag(config=True)

    def run(self):
        """Render, then write."""
        from atelier.hub_config.kubernetes.kubemanifests import dump_manifests, render_manifests

        _write(dump_manifests(render_manifests(self.settings)), self.output, self.log)


def _write(text: str, output: str, log) -> None:
    """``text`` to stdout, or to ``output`` mode 600 (it holds secrets), never half-written."""
    if not output:
        sys.stdout.write(text)
        return
    target = Path(output)
    atomic_write(target, text, 0o600, fsync=False)
    log.info("wrote %s", target)


class KubeApp(AtelierApp):
    """``atelier kube``: Kubernetes helpers (``values``, ``manifests``)."""

    name = "atelier kube"
    description = (
        "Deploy on Kubernetes with Zero to JupyterHub: `atelier kube values` (the chart's "
        "values) and `atelier kube manifests` (formgraders and public apps)."
    )
    subcommands = {
        "values": (
            "atelier.hub_config.kubernetes.kubeapp.KubeValuesApp",
            "Render the Helm values for Zero to JupyterHub 4.x from the settings file.",
        ),
        "manifests": (
            "atelier.hub_config.kubernetes.kubeapp.KubeManifestsApp",
            "Render the formgrader and public apps manifests from the settings file.",
        ),
    }
