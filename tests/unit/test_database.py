"""`database.url`: the hub's and gradebooks' URLs derived from one setting, and back."""

from __future__ import annotations

import sqlite3

import pytest

from atelier.database import (
    connect_wal,
    database_of,
    gradebook_exists,
    gradebook_url,
    hub_db_kwargs,
    hub_db_url,
    schema_of,
    sqlite_file,
)

pytestmark = pytest.mark.unit


def test_a_gradebook_url_leads_back_to_the_one_database():
    """Does formgrader's side (which has only the gradebook URL) find the shared database again?"""
    url = gradebook_url("postgresql://atelier:pw@db.example.org/atelier", "c-1", None, 30)
    assert schema_of(url) == "gradebook_c_1"
    assert database_of(url) == "postgresql+psycopg://atelier:pw@db.example.org/atelier"


def test_a_sqlite_gradebook_has_no_shared_database(tmp_path):
    """Is a SQLite gradebook its own file, existing only once created?"""
    url = gradebook_url("", "x", tmp_path / "gradebook.db", 30)
    assert database_of(url) == "" and schema_of(url) == ""
    assert not gradebook_exists(url)
    (tmp_path / "gradebook.db").write_bytes(b"")
    assert gradebook_exists(url)


def test_sqlite_file_names_only_a_file():
    """Does only a ``sqlite:///`` URL of a file name a file (not memory, not PostgreSQL)?"""
    assert sqlite_file("sqlite:////srv/state/jupyterhub.sqlite") == "/srv/state/jupyterhub.sqlite"
    assert sqlite_file("sqlite:///gradebook.db?timeout=30") == "gradebook.db"
    assert sqlite_file("sqlite:///:memory:") == ""
    assert sqlite_file("postgresql+psycopg://u:p@db/atelier") == ""


def test_the_hubs_sqlite_commits_in_wal_without_a_sync_per_commit(tmp_path):
    """Does JupyterHub's engine, given the hub's db_kwargs, write WAL with synchronous=NORMAL?

    Its foreign keys are still enforced, and the mode stays in the file for later readers.
    """
    from jupyterhub import orm
    from sqlalchemy import text

    settings = {"hub": {"state_dir": str(tmp_path), "db_url": ""}, "database": {"url": ""}}
    db_file = tmp_path / "jupyterhub.sqlite"
    factory = orm.new_session_factory(hub_db_url(settings), **hub_db_kwargs(settings))
    db = factory()
    db.add(orm.User(name="alice"))
    db.commit()
    # 1 is NORMAL (2, FULL, is SQLite's default); JupyterHub's foreign-key listener still runs.
    assert db.execute(text("PRAGMA synchronous")).scalar() == 1
    assert db.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert (tmp_path / "jupyterhub.sqlite-wal").exists()
    reader = sqlite3.connect(db_file)
    assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert reader.execute("SELECT name FROM users").fetchall() == [("alice",)]
    reader.close()
    db.close()


def test_a_locked_hub_database_still_connects_and_switches_later(tmp_path):
    """While another process reads the file, does the hub still connect, and switch later?

    A backup's open transaction holds a shared lock: the hub connects in the file's mode, and a
    later connection switches to WAL once the reader is done.
    """
    db_file = tmp_path / "jupyterhub.sqlite"
    holder = sqlite3.connect(db_file, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN")
    holder.execute("SELECT * FROM t").fetchall()  # a shared lock: the switch needs it exclusive
    con = connect_wal(str(db_file), timeout=0.1)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert con.execute("PRAGMA synchronous").fetchone()[0] == 2
    con.close()
    holder.execute("COMMIT")
    holder.close()
    con = connect_wal(str(db_file), timeout=0.1)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA synchronous").fetchone()[0] == 1
    con.close()


def test_a_postgresql_hub_needs_no_engine_arguments():
    """Is PostgreSQL left to JupyterHub's defaults (WAL is a SQLite file's setting)?"""
    settings = {"hub": {"db_url": ""}, "database": {"url": "postgresql://u:p@db/atelier"}}
    assert hub_db_kwargs(settings) == {}
