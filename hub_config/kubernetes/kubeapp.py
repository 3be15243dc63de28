"""``atelier kube``: Kubernetes deployment helpers, rendered from the one settings file.

``atelier kube values`` renders the Helm values (:mod:`atelier.hub_config.kubernetes.kube`);
``atelier kube manifests`` the formgrader and public apps workloads the chart has no place for
(:mod:`atelier.hub_config.kubernetes.kubemanifests`). Both read the same settings file (and roster
store) as one machine; see ``docs/deploy-kubernetes.md``.
"""

from __future__ import annotations

from traitlets import Unicode

from atelier.app import AtelierApp, OutputApp, base_aliases, subverbs
from atelier.errors import AtelierError


class KubeValuesApp(OutputApp):
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
    # What it writes holds password hashes or the cluster's secrets: private.
    output_mode = 0o600

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
        self.write_output(dump(values))


class KubeManifestsApp(OutputApp):
    """Write the manifests of the formgraders and public apps (stdout or ``--output``)."""

    name = "atelier kube manifests"
    description = (
        "Render the Kubernetes manifests the chart has no place for, from the settings file: per "
        "cohort a formgrader Deployment, Service and NetworkPolicy; the public apps' Deployment, "
        "Service and NetworkPolicy; the Secret with the cluster settings and nbgrader configs. "
        "Apply them with kubectl in the release's namespace."
    )
    aliases = {**base_aliases, "output": "KubeManifestsApp.output"}
    # What it writes holds password hashes or the cluster's secrets: private.
    output_mode = 0o600

    def run(self):
        """Render, then write."""
        from atelier.hub_config.kubernetes.kubemanifests import dump_manifests, render_manifests

        self.write_output(dump_manifests(render_manifests(self.settings)))


class KubeApp(AtelierApp):
    """``atelier kube``: Kubernetes helpers (``values``, ``manifests``)."""

    name = "atelier kube"
    description = (
        "Deploy on Kubernetes with Zero to JupyterHub: `atelier kube values` (the chart's "
        "values) and `atelier kube manifests` (formgraders and public apps)."
    )
    subcommands = subverbs(KubeValuesApp, KubeManifestsApp)
