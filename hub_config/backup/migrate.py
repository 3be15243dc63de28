"""SQLite to PostgreSQL: copy the hub database and every cohort's gradebook, table by table.

Rule: the target tables are created by the applications' own models (JupyterHub's ``orm.Base`` and
nbgrader's ``api.Base``), so types and constraints are theirs on PostgreSQL; rows are then copied in
foreign-key order inside one transaction per database, the ``alembic_version`` stamp with them (so
later upgrades of JupyterHub or nbgrader migrate from the right revision), and id sequences are
moved past the copied ids. A target that already holds rows is refused, never merged into. The
SQLite files stay where they were: going back is removing ``database.url``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from atelier.database import (
    DatabaseError,
    ensure_schema,
    gradebook_url,
    is_postgres,
    normalise,
    redact,
)


def copy_database(source_url: str, target_url: str, metadata) -> int:
    """Copy the tables of ``metadata`` and ``alembic_version`` to the target; rows copied."""
    import sqlalchemy as sa

    source = sa.create_engine(source_url)
    target = sa.create_engine(target_url)
    copied = 0
    try:
        reflected = sa.MetaData()
        reflected.reflect(source)
        metadata.create_all(target)
        tables = list(metadata.sorted_tables)
        if "alembic_version" in reflected.tables and "alembic_version" not in metadata.tables:
            stamp = sa.Table(
                "alembic_version",
                sa.MetaData(),
                sa.Column("version_num", sa.String(32), primary_key=True),
            )
            stamp.create(target, checkfirst=True)
            tables.append(stamp)
        with source.connect() as src, target.begin() as dst:
            for table in tables:
                if dst.execute(sa.select(sa.func.count()).select_from(table)).scalar():
                    raise DatabaseError(
                        f"{redact(target_url)}: table {table.name} already holds rows; "
                        "migrate into an empty database (or schema)"
                    )
            for table in tables:
                if table.name not in reflected.tables:
                    continue
                old = reflected.tables[table.name]
                columns = [c.name for c in table.columns if c.name in old.columns]
                rows = [
                    dict(r._mapping) for r in src.execute(sa.select(*[old.c[c] for c in columns]))
                ]
                if rows:
                    dst.execute(table.insert(), rows)
                    copied += len(rows)
                pk = list(table.primary_key.columns)
                if len(pk) == 1 and isinstance(pk[0].type, sa.Integer) and rows:
                    # Serial ids continue after the copied ones, or the next insert collides.
                    dst.execute(
                        sa.text(
                            "SELECT setval(pg_get_serial_sequence(:t, :c), "
                            f'(SELECT max("{pk[0].name}") FROM "{table.name}"))'
                        ),
                        {"t": table.name, "c": pk[0].name},
                    )
    finally:
        source.dispose()
        target.dispose()
    return copied


def migrate_to_postgres(settings: Mapping, url: str | None = None) -> dict[str, int]:
    """Copy the hub database and every gradebook into PostgreSQL; returns rows per database."""
    from jupyterhub import orm
    from nbgrader import api

    from atelier.grading.course import BUSY_TIMEOUT

    url = normalise(url or (settings.get("database") or {}).get("url") or "")
    if not is_postgres(url):
        raise DatabaseError(
            "no PostgreSQL URL: pass --to postgresql+psycopg://USER:PASSWORD@HOST/DB or set "
            "database.url in the settings file"
        )
    report = {}
    hub_db = Path(settings["hub"]["state_dir"]) / "jupyterhub.sqlite"
    if hub_db.exists():
        report["hub"] = copy_database(f"sqlite:///{hub_db}", url, orm.Base.metadata)
    courses = Path(settings["grading"]["courses_root"])
    for gradebook in sorted(courses.glob("*/gradebook.db")):
        cohort = gradebook.parent.name
        target = gradebook_url(url, cohort, gradebook, BUSY_TIMEOUT)
        ensure_schema(target)
        report[f"gradebook {cohort}"] = copy_database(
            f"sqlite:///{gradebook}", target, api.Base.metadata
        )
    return report
