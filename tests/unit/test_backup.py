"""Backup archives: checksums, refusal of damaged or crafted archives, no silent overwrite."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import tarfile

import pytest

from atelier.hub_config.backup.backup import BackupError, backup, restore, verify
from atelier.settings import load_settings

pytestmark = pytest.mark.unit


def settings_in(folder):
    return load_settings(
        None,
        {
            "hub": {"state_dir": str(folder / "state")},
            "grading": {
                "courses_root": str(folder / "courses"),
                "exchange_root": str(folder / "exchange"),
            },
            "accounts": {"home_root": str(folder / "home"), "prefix": "zz-"},
        },
    )


@pytest.fixture
def archive(tmp_path):
    source = tmp_path / "a"
    (source / "state").mkdir(parents=True)
    con = sqlite3.connect(source / "state" / "jupyterhub.sqlite")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE users (name TEXT)")
    con.execute("INSERT INTO users VALUES ('alice')")
    con.commit()  # left open: the row is in the WAL, as in a running hub
    (source / "home" / "zz-alice").mkdir(parents=True)
    (source / "home" / "zz-alice" / "plan.txt").write_text("plan")
    (source / "home" / "zz-alice" / "plan.txt").chmod(0o600)
    (source / "home" / "someone-else").mkdir()
    (source / "state" / "proxy.pid").write_text("1")  # the running proxy of the backed-up machine
    path = tmp_path / "backup.tar.gz"
    backup(settings_in(source), None, path)
    con.close()
    return path


def test_a_restore_brings_back_the_live_database_and_modes(archive, tmp_path):
    """Does a row still in the WAL come back, with homes of the prefix only and their modes?"""
    target = tmp_path / "b"
    restore(settings_in(target), archive)
    con = sqlite3.connect(target / "state" / "jupyterhub.sqlite")
    assert con.execute("SELECT name FROM users").fetchall() == [("alice",)]
    plan = target / "home" / "zz-alice" / "plan.txt"
    assert plan.read_text() == "plan" and plan.stat().st_mode & 0o777 == 0o600
    assert not (target / "home" / "someone-else").exists()


def test_a_restore_names_no_process_of_the_old_machine(archive, tmp_path):
    """Is the proxy's pid file left out, so a restored hub never stops an unrelated process?"""
    target = tmp_path / "b"
    restore(settings_in(target), archive)
    assert (target / "state" / "jupyterhub.sqlite").exists()
    assert not (target / "state" / "proxy.pid").exists()


def test_a_non_empty_state_is_not_overwritten_unless_forced(archive, tmp_path):
    """Is a restore onto a used state directory refused, and allowed with force?"""
    target = tmp_path / "b"
    (target / "state").mkdir(parents=True)
    (target / "state" / "roster.json").write_text("{}")
    with pytest.raises(BackupError, match="not empty"):
        restore(settings_in(target), archive)
    restore(settings_in(target), archive, force=True)
    assert (target / "state" / "jupyterhub.sqlite").exists()


def rewrite(archive, out, change):
    """Copy ``archive`` to ``out`` with ``change(name, data) -> data`` applied (manifest kept)."""
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for member in src:
            data = src.extractfile(member).read() if member.isfile() else None
            if data is not None:
                data = change(member.name, data)
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
        return json.load(src.extractfile("manifest.json"))


def test_a_damaged_archive_is_refused_before_anything_is_written(archive, tmp_path):
    """Does a file changed after the backup fail its checksum, with nothing restored?"""
    bad = tmp_path / "bad.tar.gz"
    rewrite(archive, bad, lambda name, data: b"edited" if name.endswith("plan.txt") else data)
    with pytest.raises(BackupError, match="checksum"):
        verify(bad)
    with pytest.raises(BackupError):
        restore(settings_in(tmp_path / "b"), bad)
    assert not (tmp_path / "b").exists()


def test_a_crafted_member_cannot_write_outside_its_folder(archive, tmp_path):
    """Is a member escaping with '..' refused (even with a matching checksum)?"""
    crafted = tmp_path / "crafted.tar.gz"
    with tarfile.open(archive) as src:
        manifest = json.load(src.extractfile("manifest.json"))
        members = [(m, src.extractfile(m).read() if m.isfile() else None) for m in src]
    manifest["files"]["state/../../escaped"] = hashlib.sha256(b"x").hexdigest()
    with tarfile.open(crafted, "w:gz") as dst:
        for member, data in members:
            if member.name == "manifest.json":
                data = json.dumps(manifest).encode()
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
        evil = tarfile.TarInfo("state/../../escaped")
        evil.size = 1
        dst.addfile(evil, io.BytesIO(b"x"))
    with pytest.raises(BackupError, match="unsafe"):
        restore(settings_in(tmp_path / "b"), crafted)
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "b").exists()  # refused before anything was written
