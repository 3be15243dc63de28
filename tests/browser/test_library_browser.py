"""The offline library in Chromium: pages open from disk and ask for nothing beyond the library."""

from __future__ import annotations

import pytest
from harness import FIXTURES

from atelier.public.library import build_library

pytestmark = pytest.mark.browser


def test_library_reads_offline(tmp_path, page):
    """Do the index and a page open from files, with every request inside the library folder?"""
    out = tmp_path / "library"
    build_library(FIXTURES / "library", out)
    page.goto((out / "index.html").as_uri())
    page.get_by_role("link", name="Cahier d'exemple").click()
    page.wait_for_load_state("load")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("img[alt='a dot']").evaluate("img => img.naturalWidth") > 0
    page.get_by_role("link", name="Read in English").click()
    page.wait_for_load_state("load")
    assert page.locator("html").get_attribute("lang") == "en"
    library = out.as_uri()
    assert page.requests_seen
    assert all(url.startswith(library) for url in page.requests_seen), page.requests_seen
