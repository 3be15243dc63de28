"""``atelier backup``, ``atelier restore`` and ``atelier db``: keep every cohort's work safe.

See :mod:`atelier.hub_config.backup.backup` (archive, manifest, restore rules),
:mod:`atelier.hub_config.backup.migrate` (SQLite to PostgreSQL) and ``docs/backup.md``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from traitlets import Bool, Unicode

from atelier.app import AtelierApp, base_aliases, base_flags, subverbs
from atelier.errors import AtelierError


class BackupApp(AtelierApp):
    """Write one backup archive of this installation, consistent while the hub runs."""

    name = "atelier backup"
    description = (
        "Back up the hub database, gradebooks, exchange, homes, roster state and settings into one "
        "archive with a checksummed manifest: atelier backup [--output FILE]."
    )
    aliases = {**base_aliases, "output": "BackupApp.output"}

    output = Unicode(
        "",
        help="Archive to write; '' means atelier-backup-<UTC time>.tar.gz in the current folder.",
    ).tag(config=True)

    def run(self):
        """Make the archive and say what it holds."""
        from atelier.hub_config.backup.backup import backup

        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        target = Path(self.output or f"atelier-backup-{stamp}.tar.gz")
        manifest = backup(self.settings, self.settings_file, target)
        self.log.info(
            "wrote %s: %d files, %s database", target, len(manifest["files"]), manifest["database"]
        )


class RestoreApp(AtelierApp):
    """Restore an archive of ``atelier backup`` under the paths of the current settings."""

    name = "atelier restore"
    description = (
        "Restore a backup: atelier restore ARCHIVE [--force]. Checks every checksum first; "
        "refuses a non-empty state directory unless --force."
    )
    flags = {
        **base_flags,
        "force": ({"RestoreApp": {"force": True}}, "Overwrite a non-empty state directory."),
    }

    force = Bool(False, help="Restore even if hub.state_dir is not empty.").tag(config=True)

    def run(self):
        """Verify, then restore."""
        from atelier.hub_config.backup.backup import restore

        if len(self.extra_args) != 1:
            raise AtelierError("usage: atelier restore ARCHIVE [--force]")
        manifest = restore(self.settings, Path(self.extra_args[0]), force=self.force)
        self.log.info(
            "restored %d files from a backup of %s; start the hub with `atelier start`",
            len(manifest["files"]),
            manifest["created"],
        )


class MigrateApp(AtelierApp):
    """Copy the SQLite hub database and every gradebook into PostgreSQL (``database.url``)."""

    name = "atelier db migrate-to-postgres"
    description = (
        "Copy the hub's SQLite database and each cohort's gradebook.db into the PostgreSQL "
        "database of database.url (stop the hub first; the SQLite files are kept)."
    )
    aliases = {**base_aliases, "to": "MigrateApp.to"}

    to = Unicode(
        "", help="PostgreSQL URL to migrate to; '' means database.url of the settings."
    ).tag(config=True)

    def run(self):
        """Migrate, then say what to set."""
        from atelier.hub_config.backup.migrate import migrate_to_postgres

        report = migrate_to_postgres(self.settings, self.to or None)
        for name, rows in report.items():
            self.log.info("%s: %d rows", name, rows)
        if not self.settings.get_path("database.url"):
            self.log.info("now set database.url in the settings file to %s", self.to)


class DbApp(AtelierApp):
    """``atelier db``: database maintenance."""

    name = "atelier db"
    description = "Databases: `atelier db migrate-to-postgres`."
    subcommands = subverbs(MigrateApp)
