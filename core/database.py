"""Where the hub database and the gradebooks live: one setting, ``database.url``, decides for both.

Rule: every database URL Atelier uses is derived here from the settings, never typed twice.

- ``database.url`` empty (the default): SQLite files on this machine,
  ``<hub.state_dir>/jupyterhub.sqlite`` for the hub and
  ``<grading.courses_root>/<cohort>/gradebook.db`` per cohort.
- ``database.url`` a PostgreSQL URL: one database for everything. The hub's tables live in the
  schema ``public``; each cohort's nbgrader gradebook in its own schema ``gradebook_<cohort>``
  (nbgrader's table names are fixed, so schemas keep cohorts apart as the separate files did),
  selected per connection with libpq's ``options=-csearch_path=...``.
- ``hub.db_url`` (older key) still overrides the hub's URL alone, for an admin who set it before.

The driver is psycopg 3 (``postgresql+psycopg://``); a plain ``postgresql://`` URL is rewritten to
it so that SQLAlchemy does not look for psycopg2.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from atelier.errors import AtelierError

#: The SQLAlchemy dialect+driver Atelier uses for PostgreSQL.
PG_SCHEME = "postgresql+psycopg"


class DatabaseError(AtelierError):
    """A database cannot be reached, created or migrated: the message names the URL and the fix."""


def normalise(url: str) -> str:
    """``url`` with the psycopg 3 driver named explicitly (``postgresql://`` -> ``postgresql+psycopg://``)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return PG_SCHEME + url[url.index("://") :]
    return url


def is_postgres(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database."""
    return url.startswith("postgresql") or url.startswith("postgres://")


def database_url(settings: Mapping) -> str:
    """The one configured database (``database.url``), normalised; empty means SQLite files."""
    return normalise((settings.get("database") or {}).get("url") or "")


def hub_db_url(settings: Mapping) -> str:
    """SQLAlchemy URL of the hub database."""
    explicit = settings["hub"].get("db_url") or ""
    if explicit:
        return normalise(explicit)
    shared = database_url(settings)
    if shared:
        return shared
    return f"sqlite:///{Path(settings['hub']['state_dir']) / 'jupyterhub.sqlite'}"


def sqlite_file(url: str) -> str:
    """The file a ``sqlite:///`` URL names ('' for any other URL or an in-memory database)."""
    if not url.startswith("sqlite:///"):
        return ""
    path = url.removeprefix("sqlite:///").partition("?")[0]
    return "" if path in ("", ":memory:") else path


def connect_wal(path: str, timeout: float = 10.0) -> sqlite3.Connection:
    """A connection to the SQLite file ``path`` in WAL mode, whose commits skip the fsync.

    The hub commits on its event loop (every spawn, every activity report); in SQLite's default
    rollback journal with ``synchronous=FULL`` each commit waits for the disk, and the whole hub
    waits with it (27 % of the hub's time in the webinar burst of docs/benchmarks.md). In WAL
    mode with ``synchronous=NORMAL``, a commit is an append to the ``-wal`` file and the fsyncs
    come at checkpoints: commits stay atomic and the database consistent; a power cut can lose
    the last commits before it, never corrupt the file. The WAL mode is kept in the file, so
    every later connection (``atelier backup``, ``jupyterhub upgrade-db``) reads it as one.
    When another process holds the file locked, the switch waits for it (``timeout``) and,
    failing that, the connection stays in the file's current mode.
    """
    # check_same_thread=False: what JupyterHub's own SQLite connections use (orm.py).
    con = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
    try:
        wal_commits(con, switch=True)
    except BaseException:
        con.close()
        raise
    return con


def wal_commits(con, *, switch: bool) -> bool:
    """Commit without an fsync each (``synchronous=NORMAL``) on a DB-API connection to a WAL file.

    ``switch``: first switch a file in another mode to WAL, if no other process holds it (else
    the next connection tries). Without it, only a file already in WAL is tuned: the gradebooks
    are switched once, before their grading processes start (switching raced between them).
    Returns whether the connection is in WAL mode.
    """
    mode = con.execute("PRAGMA journal_mode").fetchone()[0].lower()
    if mode != "wal" and switch:
        with contextlib.suppress(sqlite3.OperationalError):
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower()
    if mode == "wal":
        con.execute("PRAGMA synchronous=NORMAL")
    return mode == "wal"


def hub_db_kwargs(settings: Mapping) -> dict:
    """Keyword arguments for the hub's ``create_engine`` (``JupyterHub.db_kwargs``).

    A SQLite hub database connects through :func:`connect_wal`; PostgreSQL needs nothing here.
    """
    path = sqlite_file(hub_db_url(settings))
    return {"creator": functools.partial(connect_wal, path)} if path else {}


def gradebook_schema(cohort: str) -> str:
    """The PostgreSQL schema of ``cohort``'s gradebook (cohort ids are ``[a-z0-9-]``)."""
    return "gradebook_" + re.sub(r"[^a-z0-9]", "_", cohort)


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` first (libpq ``options=-csearch_path=``)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def gradebook_url(database: str, cohort: str, sqlite_path: Path, busy_timeout: int) -> str:
    """SQLAlchemy URL of ``cohort``'s gradebook: its schema in ``database``, or its SQLite file."""
    if database:
        return with_search_path(normalise(database), gradebook_schema(cohort))
    return f"sqlite:///{sqlite_path}?timeout={busy_timeout}"


def schema_of(url: str) -> str:
    """The schema a ``with_search_path`` URL selects ('' for SQLite or a plain URL)."""
    options = dict(parse_qsl(urlsplit(url).query)).get("options", "")
    return options.split("=", 1)[1] if options.startswith("-csearch_path=") else ""


def database_of(url: str) -> str:
    """The shared ``database.url`` behind a gradebook URL ('' for a SQLite gradebook file).

    nbgrader's configuration holds only the gradebook's URL (``CourseDirectory.db_url``); code
    that starts from it (formgrader's buttons) rebuilds the :class:`Course` with this.
    """
    if not is_postgres(url):
        return ""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def gradebook_exists(url: str) -> bool:
    """Whether the gradebook at ``url`` (see :func:`gradebook_url`) has been created yet."""
    if not is_postgres(url):
        path = sqlite_file(url)
        return bool(path) and Path(path).exists()
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as con:
            found = con.execute(
                sqlalchemy.text(
                    "SELECT 1 FROM information_schema.tables "
                    "WHERE table_schema = :schema AND table_name = 'assignment'"
                ),
                {"schema": schema_of(url)},
            ).first()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise DatabaseError(
            f"cannot read {redact(url)}: {exc.orig or exc} (check database.url)"
        ) from exc
    finally:
        engine.dispose()
    return found is not None


def ensure_schema(url: str) -> None:
    """Create the schema a ``with_search_path`` URL selects, if missing (PostgreSQL only)."""
    import sqlalchemy

    schema = schema_of(url)
    if not schema:
        return
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as con:
            con.execute(sqlalchemy.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise DatabaseError(
            f"cannot create schema {schema} in {redact(url)}: {exc.orig or exc} "
            "(check database.url and that its role may CREATE in the database)"
        ) from exc
    finally:
        engine.dispose()


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
