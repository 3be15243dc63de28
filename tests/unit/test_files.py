"""The one way to write a file or a folder whole: atelier.files."""

from __future__ import annotations

import os
import stat

import pytest

from atelier.files import atomic_write, replacing_folder


def test_a_write_replaces_the_file_with_the_mode_asked_and_leaves_nothing_beside_it(tmp_path):
    """Does atomic_write create missing folders, set the mode and leave no temporary file?"""
    target = tmp_path / "state" / "passwords.json"
    atomic_write(target, "{}", 0o600)
    atomic_write(target, "é", 0o640)
    assert target.read_text("utf-8") == "é"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in target.parent.iterdir()] == ["passwords.json"]


def test_without_a_mode_a_file_gets_what_the_umask_gives(tmp_path):
    """Is a file written with no mode as readable as one created by open() (0666 less umask)?"""
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "nb.ipynb", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "nb.ipynb").stat().st_mode) == 0o640


def test_a_failed_write_keeps_the_old_file(tmp_path):
    """Does a write that fails half-way leave the old content and no temporary file?"""
    from atelier.files import atomic_open

    target = tmp_path / "roster.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["roster.json"]


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    """Does replacing_folder swap in the new folder (mode 755) and keep the old one on failure?"""
    dest = tmp_path / "library"
    with replacing_folder(dest) as building:
        (building / "index.html").write_text("one")
    with pytest.raises(RuntimeError), replacing_folder(dest) as building:
        (building / "index.html").write_text("two")
        raise RuntimeError("a page failed")
    assert (dest / "index.html").read_text() == "one"
    with replacing_folder(dest) as building:
        (building / "other.html").write_text("three")
    assert [p.name for p in dest.iterdir()] == ["other.html"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["library"]
