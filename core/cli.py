"""The ``atelier`` command: one entry point, one verb per job.

Verbs are registered here by import path, so that ``atelier --help`` and a verb's start stay fast:
a verb's module (and the heavy libraries it uses) is imported only when that verb runs. Each room
owns its verbs' applications; this table is the only place that names them all.
"""

from __future__ import annotations

from atelier.app import AtelierApp

#: verb -> (application import path, one-line help). Kept in the order a newcomer meets them.
VERBS: dict[str, tuple[str, str]] = {
    "install": (
        "atelier.hub_config.hub.installapp.InstallApp",
        "Install or repair everything the hub needs on this machine (idempotent).",
    ),
    "start": (
        "atelier.hub_config.hub.startapp.StartApp",
        "Start the multi-user hub (JupyterHub with configurable-http-proxy).",
    ),
    "roster": (
        "atelier.hub_config.people.rosterapp.RosterApp",
        "Manage trainees and facilitators: import a roster CSV, list people.",
    ),
    "servers": (
        "atelier.hub_config.servers.serversapp.ServersApp",
        "Start a cohort's servers ahead of a session: `atelier servers start|status --cohort C`.",
    ),
    "apps": (
        "atelier.public.appsapp.AppsApp",
        "Serve the workbooks marked as apps with Voila, publicly (no login).",
    ),
    "grade": (
        "atelier.grading.gradeapp.GradeApp",
        "Autograde a cohort's submissions in parallel sandboxes: atelier grade --cohort C W.",
    ),
    "library": (
        "atelier.public.libraryapp.LibraryApp",
        "The offline library: `atelier library build` renders every workbook to static HTML.",
    ),
    "certificates": (
        "atelier.grading.certificatesapp.CertificatesApp",
        "Completion certificates (PDF) of a cohort; `atelier certificates verify CODE` checks one.",
    ),
    "release": (
        "atelier.grading.releaseapp.ReleaseApp",
        "Release a graded workbook to a cohort as nbgrader assignments (one per language).",
    ),
    "collect": (
        "atelier.grading.collectapp.CollectApp",
        "Collect a cohort's latest valid submissions of a workbook from the exchange.",
    ),
    "feedback": (
        "atelier.grading.feedbackapp.FeedbackApp",
        "Generate feedback on a graded workbook and return it to each trainee.",
    ),
    "grades": (
        "atelier.grading.gradesapp.GradesApp",
        "Grade reports of a cohort: `atelier grades export --cohort C [--moodle]`.",
    ),
    "report": (
        "atelier.grading.reportapp.ReportApp",
        "Item analysis of a workbook's graded items: `atelier report items --cohort C WORKBOOK`.",
    ),
    "peer": (
        "atelier.grading.peerreview.peerapp.PeerApp",
        "Peer review of a workbook's reflection: `atelier peer open|status|reassign|close`.",
    ),
    "dashboard": (
        "atelier.grading.dashboard.dashboardapp.DashboardApp",
        "The facilitators' dashboard (Voila), run by the hub as a service.",
    ),
    "new": (
        "atelier.authoring.newapp.NewApp",
        "Start a workbook from the template: atelier new ID --lang en.",
    ),
    "translate": (
        "atelier.authoring.translateapp.TranslateApp",
        "Create or update a language version of a workbook: atelier translate ID --to fr.",
    ),
    "check": (
        "atelier.authoring.checkapp.CheckApp",
        "Check workbooks (metadata, execution, nbgrader, translations, apps); exit 1 on error.",
    ),
    "catalogue": (
        "atelier.authoring.catalogue.CatalogueApp",
        "Regenerate the workbook catalogue (workbooks/index.<lang>.ipynb) from workbook metadata.",
    ),
    "kube": (
        "atelier.hub_config.kubernetes.kubeapp.KubeApp",
        "Kubernetes: `atelier kube values` renders Helm values for Zero to JupyterHub 4.x.",
    ),
    "backup": (
        "atelier.hub_config.backup.backupapp.BackupApp",
        "Back up hub database, gradebooks, exchange, homes and settings (safe while the hub runs).",
    ),
    "restore": (
        "atelier.hub_config.backup.backupapp.RestoreApp",
        "Restore a backup made by `atelier backup` onto this machine's (empty) state.",
    ),
    "db": (
        "atelier.hub_config.backup.backupapp.DbApp",
        "Databases: `atelier db migrate-to-postgres` copies the SQLite hub db and gradebooks.",
    ),
}


class AtelierCommand(AtelierApp):
    """The top-level ``atelier`` command; it only dispatches to a verb."""

    name = "atelier"
    description = "Atelier: hands-on training of teachers in teaching with ICT, on Jupyter."
    subcommands = VERBS

    def run(self):
        """Without a verb, list the verbs."""
        self.print_subcommands()
        self.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Run the ``atelier`` command line."""
    AtelierCommand.launch_instance(argv)


if __name__ == "__main__":
    main()
