"""Backup and restore of an installation: hub database, gradebooks, exchange, homes, settings.

Rule: a backup is one tar archive whose ``manifest.json`` lists every file with its SHA-256, made
while the hub runs and still consistent. Databases are never copied as files (a copy taken during
a write can be torn): SQLite files go through SQLite's online backup API (a consistent snapshot,
WAL included) and PostgreSQL through ``pg_dump`` (one transaction). Everything else is archived
with its owner, group and mode, so a restored home still belongs to its trainee.

Archive layout (``ROOT`` names a settings path)::

    manifest.json         version, time, settings, database kind, {member: sha256}
    settings.yaml         the settings file the backup was made with
    state/                hub.state_dir (roster store, passwords, cookie secret, jupyterhub.sqlite)
    courses/              grading.courses_root (sources, submissions, gradebook.db per cohort)
    exchange/             grading.exchange_root
    homes/                accounts.home_root/<prefix>* (the trainees' and facilitators' homes)
    postgres.sql          pg_dump of database.url, when PostgreSQL is configured

A restore puts each part back under the paths of the *current* settings; it refuses a non-empty
state directory unless forced, and checks every checksum before anything is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

from atelier.errors import AtelierError
from atelier.files import atomic_open

MANIFEST = "manifest.json"
VERSION = 1
#: SQLite files are copied through the backup API, never as bytes.
SQLITE_SUFFIXES = (".sqlite", ".db")
# SQLite's side files are folded into the online snapshot; pid files name processes of the machine
# that made the backup, and a restored one would let `atelier start` stop an unrelated process.
SKIP_SUFFIXES = ("-wal", "-shm", "-journal", ".pid")


class BackupError(AtelierError):
    """A backup or restore cannot go on: the message names the archive or path and what to do."""


def parts(settings: Mapping) -> dict[str, Path]:
    """Archive folder -> directory on this machine, from the settings."""
    return {
        "state": Path(settings["hub"]["state_dir"]),
        "courses": Path(settings["grading"]["courses_root"]),
        "exchange": Path(settings["grading"]["exchange_root"]),
        "homes": Path(settings["accounts"]["home_root"]),
    }


def _is_sqlite(path: Path) -> bool:
    if not path.name.endswith(SQLITE_SUFFIXES):
        return False
    with path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def sqlite_snapshot(source: Path, target: Path) -> None:
    """A consistent copy of the SQLite database ``source`` (online backup API, safe in use)."""
    # A read-write connection: a read-only one cannot open a WAL database whose -shm is missing.
    src = sqlite3.connect(source, timeout=60)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


class _Writer:
    """Adds files to the archive and records their checksums."""

    def __init__(self, tar: tarfile.TarFile, scratch: Path):
        self.tar = tar
        self.scratch = scratch
        self.sums: dict[str, str] = {}

    def add_bytes(self, name: str, data: bytes, mode: int = 0o600) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        info.mtime = int(dt.datetime.now().timestamp())
        self.tar.addfile(info, io.BytesIO(data))
        self.sums[name] = hashlib.sha256(data).hexdigest()

    def add_file(self, path: Path, name: str) -> None:
        info = self.tar.gettarinfo(str(path), arcname=name)
        source = path
        if info.isfile() and _is_sqlite(path):
            source = self.scratch / f"snap-{len(self.sums)}.sqlite"
            sqlite_snapshot(path, source)
            info.size = source.stat().st_size
        if info.isfile():
            digest = hashlib.sha256()
            with source.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self.sums[name] = digest.hexdigest()
            with source.open("rb") as handle:
                self.tar.addfile(info, handle)
        else:
            self.tar.addfile(info)

    def add_tree(self, root: Path, name: str, only=None) -> None:
        if not root.is_dir():
            return
        self.add_file(root, name)
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            dirnames.sort()
            if here == root and only is not None:
                dirnames[:] = [d for d in dirnames if only(d)]
                filenames = [f for f in filenames if only(f)]
            for entry in sorted(dirnames) + sorted(filenames):
                path = here / entry
                if entry.endswith(SKIP_SUFFIXES) or path.is_socket() or path.is_fifo():
                    continue
                self.add_file(path, f"{name}/{path.relative_to(root).as_posix()}")


def pg_dump(url: str) -> bytes:
    """A plain SQL dump of the PostgreSQL database at ``url`` (one consistent transaction)."""
    from atelier.database import redact

    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    binary = shutil.which("pg_dump") or _pg_bin("pg_dump")
    result = subprocess.run(
        [binary, "--no-owner", "--clean", "--if-exists", "--dbname", libpq],
        capture_output=True,
        timeout=3600,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_dump of {redact(url)} failed: {result.stderr.decode()[-500:]}")
    return result.stdout


def _pg_bin(name: str) -> str:
    """A PostgreSQL client program from Debian's versioned folder."""
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    raise BackupError(f"{name} not found: apt-get install postgresql-client")


def backup(settings: Mapping, settings_file: str | None, target: Path) -> dict:
    """Write a backup archive to ``target`` (temp file renamed into place); return its manifest."""
    from atelier.database import database_url

    target = Path(target)
    prefix = settings["accounts"]["prefix"]
    manifest: dict = {
        "version": VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "database": "postgresql" if database_url(settings) else "sqlite",
        "parts": {name: str(path) for name, path in parts(settings).items()},
    }
    # Mode 600 from the start: the archive holds the hub's state (passwords, secrets).
    with (
        atomic_open(target, mode=0o600, fsync=False) as archive,
        tempfile.TemporaryDirectory() as scratch,
        tarfile.open(fileobj=archive, mode="w:gz") as tar,
    ):
        writer = _Writer(tar, Path(scratch))
        if settings_file and Path(settings_file).exists():
            writer.add_bytes("settings.yaml", Path(settings_file).read_bytes())
        for name, path in parts(settings).items():
            only = (lambda entry: entry.startswith(prefix)) if name == "homes" else None
            writer.add_tree(path, name, only)
        if database_url(settings):
            writer.add_bytes("postgres.sql", pg_dump(database_url(settings)))
        manifest["files"] = writer.sums
        writer.add_bytes(MANIFEST, json.dumps(manifest, indent=1).encode())
    return manifest


def read_manifest(archive: Path) -> dict:
    """The manifest of ``archive``, or a :class:`BackupError` saying why it is not a backup."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            return json.load(tar.extractfile(MANIFEST))
    except (OSError, tarfile.TarError, KeyError, json.JSONDecodeError) as exc:
        raise BackupError(f"{archive}: not an Atelier backup ({exc})") from exc


def verify(archive: Path) -> dict:
    """Check every checksum of ``archive`` against its manifest; return the manifest."""
    manifest = read_manifest(archive)
    seen = set()
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            if not member.isfile() or member.name == MANIFEST:
                continue
            expected = manifest["files"].get(member.name)
            digest = hashlib.sha256(tar.extractfile(member).read()).hexdigest()
            if expected != digest:
                raise BackupError(f"{archive}: {member.name} does not match its checksum")
            seen.add(member.name)
    missing = set(manifest["files"]) - seen
    if missing:
        raise BackupError(f"{archive}: missing {sorted(missing)[:5]}")
    return manifest


def check_member(archive: Path, member: tarfile.TarInfo, targets: Mapping) -> None:
    """Refuse a member `atelier backup` would not write (checked for all before any is written).

    No path out of its part, no hard links or devices, symlinks only relative and inside: a
    crafted archive must not write elsewhere.
    """
    top, _, rest = member.name.partition("/")
    if top not in targets:
        return
    unsafe_link = member.issym() and (
        Path(member.linkname).is_absolute() or ".." in Path(member.linkname).parts
    )
    if ".." in Path(rest).parts or member.islnk() or member.isdev() or unsafe_link:
        raise BackupError(f"{archive}: refusing unsafe member {member.name}")


def restore(settings: Mapping, archive: Path, *, force: bool = False) -> dict:
    """Restore ``archive`` under the paths of ``settings``; returns the manifest.

    Refuses a non-empty state directory unless ``force``. Owners and modes come back as archived
    (numeric ids: the accounts are the same machine's, or were recreated with the same ids).
    PostgreSQL data is replayed with ``psql`` into ``database.url``.
    """
    from atelier.database import database_url

    archive = Path(archive)
    manifest = verify(archive)
    targets = parts(settings)
    state = targets["state"]
    if state.exists() and any(state.iterdir()) and not force:
        raise BackupError(
            f"{state} (hub.state_dir) is not empty: restore onto a fresh state directory, "
            "or pass --force to overwrite it"
        )
    if manifest.get("database") == "postgresql" and not database_url(settings):
        raise BackupError(
            f"{archive} holds a PostgreSQL dump but database.url is empty: set it first"
        )
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            check_member(archive, member, targets)
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            top, _, rest = member.name.partition("/")
            if top not in targets:
                continue
            dest = targets[top] / rest if rest else targets[top]
            if member.isdir():
                dest.mkdir(parents=True, exist_ok=True)
            elif member.issym():
                dest.unlink(missing_ok=True)
                os.symlink(member.linkname, dest)
                continue
            else:
                owner = (member.uid, member.gid) if os.geteuid() == 0 else None
                with (
                    tar.extractfile(member) as src,
                    atomic_open(dest, mode=member.mode, owner=owner, fsync=False) as out,
                ):
                    shutil.copyfileobj(src, out)
                continue
            if os.geteuid() == 0:
                os.chown(dest, member.uid, member.gid, follow_symlinks=False)
            os.chmod(dest, member.mode)
        if manifest.get("database") == "postgresql":
            url = database_url(settings)
            sql = tar.extractfile("postgres.sql").read()
            libpq = url.replace("postgresql+psycopg://", "postgresql://")
            result = subprocess.run(
                [shutil.which("psql") or _pg_bin("psql"), "-q", "-v", "ON_ERROR_STOP=1", libpq],
                input=sql,
                capture_output=True,
                timeout=3600,
                check=False,
            )
            if result.returncode != 0:
                raise BackupError(f"psql restore failed: {result.stderr.decode()[-500:]}")
    # Directory modes were set before their content was written; set them again now.
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            top, _, rest = member.name.partition("/")
            if member.isdir() and top in targets:
                dest = targets[top] / rest if rest else targets[top]
                os.chmod(dest, member.mode)
    return manifest
