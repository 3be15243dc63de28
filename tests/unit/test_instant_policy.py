"""A released workbook's policy, and what it lets a trainee see: no server, no account."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from atelier.grading.course import GradingError
from atelier.grading.exchange.collect import Limits
from atelier.grading.exchange.policy import Policy, limits_for
from atelier.grading.instant.items import for_trainee

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
RESULTS = {
    "score": 2.0,
    "max_score": 3.0,
    "items": [
        {"id": "t1", "status": "right", "score": 2.0, "max": 2.0, "kind": "auto"},
        {
            "id": "t2",
            "status": "wrong",
            "score": 0.0,
            "max": 1.0,
            "kind": "auto",
            "diagnostic": "Averages hide the spread.",
        },
        {"id": "r", "status": "waiting", "score": None, "max": 3.0, "kind": "manual"},
    ],
}


def test_defaults_are_one_assessed_attempt_with_instant_feedback():
    """Released with no option, is a workbook assessed, one attempt, feedback at once?"""
    policy = Policy.make()
    assert (policy.mode, policy.attempts, policy.instant_feedback, policy.close_at_due) == (
        "assessed", 1, True, False)  # fmt: skip
    assert Policy.make("practice").attempts == 0  # unlimited


def test_policy_file_round_trips_and_names_a_wrong_key():
    """Is policy.json read back as written, and a wrong value refused naming its key?"""
    policy = Policy.make("assessed", 2, False, True, NOW)
    assert Policy.parse(policy.text("quiz-en")) == policy
    data = json.loads(policy.text("quiz-en"))
    data["attempts"] = "two"
    with pytest.raises(GradingError, match="'attempts'"):
        Policy.parse(json.dumps(data), "outbound/quiz-en/policy.json")
    with pytest.raises(GradingError, match="--due"):
        Policy.make(close_at_due=True)


def test_collect_counts_attempts_and_closes_at_the_due_date():
    """Does the policy cap collect's submissions and set the closing time?"""
    base = Limits(max_submissions=20)
    assert limits_for(Policy.make(), base).max_submissions == 1
    assert limits_for(Policy.make("practice"), base).max_submissions == 20
    closing = limits_for(Policy.make(due=NOW, close_at_due=True), base)
    assert closing.closes_at == NOW.timestamp()
    assert limits_for(Policy.make(due=NOW), base).closes_at is None


def test_between_attempts_the_trainee_sees_right_or_wrong_not_why():
    """Assessed, attempts left, before the due date: no diagnostic; after the last one: shown."""
    policy = Policy.make("assessed", 2, due=NOW + timedelta(days=1))
    now = NOW.timestamp()
    between = for_trainee(RESULTS, policy, 1, now=now)
    assert [i["status"] for i in between["items"]] == ["right", "wrong", "waiting"]
    assert "diagnostic" not in between["items"][1] and not between["diagnostics"]
    assert between["attempts_left"] == 1 and between["waiting"] == ["r"]
    last = for_trainee(RESULTS, policy, 2, now=now)
    assert last["items"][1]["diagnostic"] == "Averages hide the spread."
    after_due = for_trainee(RESULTS, policy, 1, now=now + 2 * 86400)
    assert after_due["diagnostics"]
    assert for_trainee(RESULTS, Policy.make("practice"), 1, now=now)["diagnostics"]
