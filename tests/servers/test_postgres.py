"""PostgreSQL as the database: a real throwaway server, the hub and gradebooks on it, migration.

The server is the session's throwaway PostgreSQL (fixture ``postgres`` of ``tests/conftest.py``:
Debian's, which ``tests/run.sh`` installs). Each test uses its own database of that server. This
module runs in the default (SQLite) session; ``tests/run.sh`` also runs the hub and grading server
modules whole on PostgreSQL (``--database=postgres``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hubs import HUB_ROSTER, Hub
from seeds import seed_gradebook

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def pg_hub(postgres):
    """A real Atelier hub whose database (and gradebooks) are in PostgreSQL (database.url)."""
    url = postgres.database()
    root = Path(tempfile.mkdtemp(prefix="atelier-pghub-"))
    root.chmod(0o755)
    hub = Hub(root, {"database": {"url": url}})
    try:
        hub.publish_workbooks()
        hub.import_roster(HUB_ROSTER)
        hub.start()
        yield hub
    finally:
        hub.teardown()
        shutil.rmtree(root, ignore_errors=True)


def test_hub_runs_on_postgres_roster_login_spawn(pg_hub, postgres):
    """On PostgreSQL, do roster import, login and spawn work, with users and cohorts in the db?"""
    session = pg_hub.login("alice")
    assert session.login_response.status_code == 302
    pg_hub.start_server(session, "alice")
    url = pg_hub.settings["database"]["url"]
    users = {row[0] for row in postgres.query(url, "SELECT name FROM users")}
    groups = {row[0] for row in postgres.query(url, "SELECT name FROM groups")}
    assert {"alice", "bob", "chloe", "fiona"} <= users
    assert {"cohort-x", "cohort-y"} <= groups
    assert not (pg_hub.state_dir / "jupyterhub.sqlite").exists()


def test_gradebook_writes_and_reads_on_postgres(pg_hub, postgres):
    """Does a cohort's gradebook live in its own schema of the one database, grades included?"""
    from atelier.grading.course import Course
    from atelier.grading.courses.folders import ensure
    from atelier.settings import load_settings

    course = ensure(Course.from_settings(load_settings(pg_hub.settings_path), "x"))
    alice = pg_hub.account("alice")
    seed_gradebook(course, {alice: {"alpha-en": "graded", "beta-en": "needs grading"}})
    with course.gradebook() as gb:
        assert gb.find_submission("alpha-en", alice).score == 2
        assert gb.find_submission("beta-en", alice).needs_manual_grade
    url = pg_hub.settings["database"]["url"]
    tables = postgres.query(
        url, "SELECT table_name FROM information_schema.tables WHERE table_schema='gradebook_x'"
    )
    assert ("grade",) in tables
    assert not course.gradebook_path.exists()


def test_migration_from_sqlite_keeps_users_groups_and_grades(postgres, tmp_path):
    """Does `atelier db migrate-to-postgres` carry a SQLite hub db and gradebook over, usable?"""
    import yaml
    from jupyterhub import orm

    from atelier.database import DatabaseError
    from atelier.grading.course import Course
    from atelier.hub_config.backup.migrate import migrate_to_postgres
    from atelier.settings import load_settings

    state = tmp_path / "state"
    state.mkdir()
    db = orm.new_session_factory(f"sqlite:///{state / 'jupyterhub.sqlite'}")()
    users = [orm.User(name=name) for name in ("alice", "bob")]
    db.add_all(users)
    db.add(orm.Group(name="cohort-x", users=users))
    db.commit()
    db.close()
    settings_path = tmp_path / "settings.yaml"
    settings_path.write_text(
        yaml.safe_dump(
            {
                "hub": {"state_dir": str(state)},
                "grading": {"courses_root": str(tmp_path / "courses")},
            }
        )
    )
    course = Course.from_settings(load_settings(settings_path), "x")
    seed_gradebook(course, {"at-alice": {"alpha-en": "graded"}})

    url = postgres.database()
    cmd = [shutil.which("atelier") or "/opt/atelier/env/bin/atelier", "db", "migrate-to-postgres"]
    result = subprocess.run(
        [*cmd, "--settings", str(settings_path), f"--to={url}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    pg = orm.new_session_factory(url)()
    assert sorted(u.name for u in pg.query(orm.User)) == ["alice", "bob"]
    assert [u.name for u in pg.query(orm.Group).one().users] == ["alice", "bob"]
    pg.add(orm.User(name="chloe"))  # ids continue after the copied ones
    pg.commit()
    pg.close()
    migrated = Course.from_settings(load_settings(settings_path, {"database": {"url": url}}), "x")
    with migrated.gradebook() as gb:
        assert gb.find_submission("alpha-en", "at-alice").score == 2
    with pytest.raises(DatabaseError, match="already holds rows"):
        migrate_to_postgres(load_settings(settings_path), url)


def test_backup_and_restore_with_postgres(postgres, tmp_path):
    """With database.url set, does a backup carry a pg_dump that a restore replays?"""
    from atelier.grading.course import Course
    from atelier.hub_config.backup.backup import backup, restore
    from atelier.settings import load_settings

    url = postgres.database()

    def settings_in(folder: Path, database: str):
        return load_settings(
            None,
            {
                "hub": {"state_dir": str(folder / "state")},
                "grading": {
                    "courses_root": str(folder / "courses"),
                    "exchange_root": str(folder / "exchange"),
                },
                "accounts": {"home_root": str(folder / "home")},
                "database": {"url": database},
            },
        )

    source = settings_in(tmp_path / "a", url)
    course = Course.from_settings(source, "x")
    from atelier.database import ensure_schema

    ensure_schema(course.db_url)
    seed_gradebook(course, {"at-alice": {"alpha-en": "graded"}})
    (tmp_path / "a" / "state").mkdir(parents=True)
    (tmp_path / "a" / "state" / "roster.json").write_text("{}")
    manifest = backup(source, None, tmp_path / "b.tar.gz")
    assert manifest["database"] == "postgresql" and "postgres.sql" in manifest["files"]
    target = settings_in(tmp_path / "c", postgres.database())
    restore(target, tmp_path / "b.tar.gz")
    with Course.from_settings(target, "x").gradebook() as gb:
        assert gb.find_submission("alpha-en", "at-alice").score == 2
