"""`database.url`: the hub's and gradebooks' URLs derived from one setting, and back."""

from __future__ import annotations

import pytest

from atelier.database import (
    database_of,
    gradebook_exists,
    gradebook_url,
    schema_of,
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
