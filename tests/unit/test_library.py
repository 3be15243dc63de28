"""The offline library: every workbook, both languages, readable offline, light, no solutions."""

from __future__ import annotations

import html
import json
import re
import subprocess

import pytest
from harness import BIN, FIXTURES

from atelier.public.library import build_library

pytestmark = pytest.mark.unit

#: Markup that makes a browser fetch something: any pointing off the machine breaks offline.
RESOURCE = re.compile(
    r"""(?:\bsrc=|<link\b[^>]*\bhref=|url\(|@import\s)\s*["']?\s*(?:https?:)?//""", re.I
)
CDN_HOSTS = ("cdn", "jsdelivr", "unpkg", "cloudflare", "googleapis", "mathjax")


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    out = tmp_path_factory.mktemp("library") / "library"
    pages = build_library(FIXTURES / "library", out)
    return out, pages


def test_every_workbook_in_both_languages_with_an_index(library):
    """Does the library hold a page per workbook and language, linked from index and each other?"""
    out, pages = library
    assert sorted(p.path for p in pages) == [
        "01-sample/sample.en.html",
        "01-sample/sample.fr.html",
    ]
    index = (out / "index.html").read_text("utf-8")
    assert 'href="01-sample/sample.en.html"' in index
    assert 'href="01-sample/sample.fr.html"' in index
    assert "Cahier d'exemple" in html.unescape(index)
    french = (out / "01-sample/sample.fr.html").read_text("utf-8")
    assert '<html lang="fr">' in french
    assert 'href="sample.en.html"' in french
    assert (out / "01-sample/images/dot.svg").exists()


def test_pages_contain_no_external_address(library):
    """Does any page, the index or the stylesheet load anything from another machine?"""
    out, _ = library
    files = [*out.rglob("*.html"), *out.rglob("*.css")]
    assert len(files) == 4
    for path in files:
        text = path.read_text("utf-8")
        assert not RESOURCE.search(text), (path, RESOURCE.search(text).group(0))
        assert "<script" not in text, path
        for host in CDN_HOSTS:
            assert host not in text.lower(), (path, host)
    english = (out / "01-sample/sample.en.html").read_text("utf-8")
    # The remote image became a link; the cited source stays a link.
    assert '<a href="https://example.org/logo.png">[remote logo]</a>' in english
    assert 'href="https://www.unesco.org/en"' in english


def test_pages_are_student_versions(library):
    """Does a solution written by the author reach the public library?"""
    out, _ = library
    for path in out.rglob("*.html"):
        assert "LIB-SOLUTION-MARKER" not in path.read_text("utf-8")


def test_size_report_and_weight(library):
    """Is every page's size reported, and is a page light enough for a phone on a slow link?"""
    out, pages = library
    report = json.loads((out / "sizes.json").read_text("utf-8"))
    assert {r["path"] for r in report} == {p.path for p in pages}
    for row in report:
        assert row["bytes"] == (out / row["path"]).stat().st_size
        assert 0 < row["gzip_bytes"] < 30_000
        assert row["slow_link_seconds"] < 2


def test_command_prints_the_size_report(tmp_path):
    """Does `atelier library build` write the library and print a size per page?"""
    result = subprocess.run(
        [
            str(BIN / "atelier"),
            "library",
            "build",
            f"--workbooks={FIXTURES / 'library'}",
            f"--out={tmp_path / 'lib'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "01-sample/sample.fr.html" in result.stdout
    assert "gzip KiB" in result.stdout
    assert (tmp_path / "lib" / "index.html").exists()
