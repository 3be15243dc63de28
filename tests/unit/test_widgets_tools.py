"""Workbook tools, headless: right numbers, warnings and saved state."""

from __future__ import annotations

import ipywidgets as widgets
import pytest

from atelier.errors import AtelierError
from atelier.widgets import bandwidth, tables
from atelier.widgets.bandwidth import BandwidthCalculator
from atelier.widgets.gapmap import GapMap
from atelier.widgets.journal import ReflectionJournal
from atelier.widgets.rubric import RubricScorer
from atelier.widgets.schedule import HomeLearningBalancer
from atelier.widgets.selfassessment import ICTCFTSelfAssessment
from atelier.widgets.store import AnswerStore
from atelier.widgets.timeline import TimelinePlanner, quiet_stretches

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path):
    return AnswerStore(tmp_path)


@pytest.mark.parametrize(
    "name", ["ictcft", "zoom_bandwidth", "a4ai", "handbook", "science", "oscqr"]
)
def test_every_data_table_is_cited(name):
    """Does every shipped table name its source, address, date and licence?"""
    table = tables.load(name)
    assert all(table[field] for field in tables.PROVENANCE)
    assert table["address"].startswith("https://")


def test_each_bandwidth_vintage_has_its_own_source_and_date():
    """Are the current and the 2020 Zoom figures kept apart, each dated and cited?"""
    for vintage in ("current", "2020"):
        figures = bandwidth.figures(vintage)
        assert figures["source"] and figures["address"].startswith("https://") and figures["date"]
    assert bandwidth.figures("2020")["meetings"]["group"]["1080p"] == {"up": 3000, "down": 2500}
    assert bandwidth.figures("current")["meetings"]["group"]["1080p"] == {"up": 3800, "down": 3000}


def test_bandwidth_arithmetic_matches_the_content_map():
    """Is 0.6 Mbps for an hour 270 MB each way, and are totals and costs multiplied out?"""
    result = bandwidth.estimate("one_to_one", "360p", minutes=60, participants=30, price_per_gb=2.0)
    assert result.mb_sent == pytest.approx(270) and result.mb_received == pytest.approx(270)
    assert result.mb_per_participant == pytest.approx(540) and result.mb_total == pytest.approx(
        16200
    )
    assert result.cost_per_participant == pytest.approx(
        1.08
    ) and result.cost_total == pytest.approx(32.4)


def test_affordability_against_the_a4ai_targets():
    """Is 1 GB at 3 for an income of 150 a month 2 % (meets '1 for 2'), and 5 GB 10 %?"""
    assert bandwidth.affordability(3, 150) == pytest.approx(2.0)
    assert bandwidth.affordability(3, 150, gigabytes=5) == pytest.approx(10.0)
    assert [t["gigabytes"] for t in bandwidth.targets()] == [1, 5]
    with pytest.raises(AtelierError, match="income"):
        bandwidth.affordability(3, 0)


def test_bandwidth_errors_name_what_is_available():
    """Does asking for a setting a vintage lacks say which settings exist?"""
    with pytest.raises(AtelierError, match="hq"):
        bandwidth.estimate("group", "360p", vintage="2020")
    with pytest.raises(AtelierError, match="no figure set"):
        bandwidth.figures("1999")


def test_bandwidth_calculator_widget(store):
    """Does the calculator start from the author's inputs (unsaved), then save on change?"""
    calc = BandwidthCalculator(
        "w2-calc",
        meeting="one_to_one",
        minutes=60,
        participants=10,
        price_per_gb=3,
        monthly_income=150,
        currency="XOF",
        store=store,
    )
    assert store.get("w2-calc") is None, "the author's starting inputs are not the trainee's answer"
    assert calc.result.mb_total == pytest.approx(5400)
    assert "540.0 MB" in calc._result.value and "Meets the 2018 target" in calc._result.value
    assert "Misses the 2021 target" in calc._result.value and "XOF" in calc._price.description
    calc._participants.value = 20
    assert calc.result.mb_total == pytest.approx(10800)
    assert store.get("w2-calc")["value"]["participants"] == 20
    calc._vintage.value = "2020"  # 360p does not exist in 2020: the first setting is chosen
    assert calc.value["resolution"] == "hq" and "2020" in calc._source.value
    calc._price.value = "2,5"
    assert calc.value["price_per_gb"] == 2.5


def test_bandwidth_calculator_in_french_uses_french_units_and_numbers(store):
    """Are megabytes 'Mo' and decimals written with a comma in French?"""
    calc = BandwidthCalculator(minutes=90, participants=2, language="fr", store=store)
    assert "Mo" in calc._result.value and "," in calc._result.value


def test_quiet_stretches():
    """Is a 20-minute talk flagged, interaction or a break resetting the count?"""
    plan = [
        {"activity": "talk", "minutes": 8},
        {"activity": "demo", "minutes": 12},
        {"activity": "poll", "minutes": 2},
        {"activity": "talk", "minutes": 8},
        {"activity": "break", "minutes": 5},
        {"activity": "video", "minutes": 9},
    ]
    assert quiet_stretches(plan, 10) == [(0.0, 20.0)]
    assert quiet_stretches(plan, 25) == []
    assert quiet_stretches([{"activity": "talk", "minutes": 30}], 10) == [(0.0, 30.0)]


def test_timeline_planner_widget(store):
    """Can segments be added, edited and removed, with the warning following the plan?"""
    planner = TimelinePlanner(
        "w3-plan", segments=[{"activity": "talk", "minutes": 10}], limit=10, store=store
    )
    assert planner.warnings() == [] and store.get("w3-plan") is None
    planner._add.click()
    assert planner.plan()[-1] == {"activity": "talk", "minutes": 5}
    assert planner.warnings() == [(0, 15)] and "From minute 0 to minute 15" in planner.feedback
    activity, minutes, remove = planner._rows.children[1].children
    activity.value = "poll"
    assert planner.warnings() == [] and store.get("w3-plan")["value"][1]["activity"] == "poll"
    minutes.value = 3
    assert planner.value[1] == {"activity": "poll", "minutes": 3}
    remove.click()
    assert planner.value == [{"activity": "talk", "minutes": 10}]
    assert activity.description == "Segment 2" and remove.description == "Remove segment 2"


def test_home_learning_balancer(store):
    """Does the balancer flag missing play, exercise and reflection, and clear when balanced?"""
    week = HomeLearningBalancer("w7-week", max_learning_minutes=180, store=store)
    week._inputs["learning"].value = 200
    problems = dict(week.problems())
    assert problems["no_play"] == ["mon"] and len(problems["no_exercise"]) == 7
    assert "no_reflection" in problems and problems["too_much_learning"] == ["mon"]
    for activity, minutes in (
        ("learning", 120),
        ("play", 60),
        ("exercise", 30),
        ("reflection", 10),
    ):
        week._inputs[activity].value = minutes
    week.copy_to_school_days()
    week._day.value = "sat"
    assert week._inputs["learning"].value == 0
    week._inputs["exercise"].value = 45
    week._day.value = "sun"
    week._inputs["exercise"].value = 45
    assert week.problems() == [] and "in balance" in week.feedback
    assert store.get("w7-week")["value"]["fri"]["play"] == 60


def test_gap_map(store):
    """Are gaps computed per dimension and priorities listed largest first?"""
    gaps = GapMap("w1-gaps", store=store)
    for dimension, now, needed in (("infrastructure", 1, 3), ("tools", 2, 3), ("services", 3, 2)):
        gaps._menus[dimension, "now"].value = now
        gaps._menus[dimension, "needed"].value = needed
    assert gaps.gaps() == {"infrastructure": 2, "tools": 1, "services": 0}
    assert gaps.priorities() == ["infrastructure", "tools"]
    assert "<ol><li>Infrastructure (2)</li><li>Learning tools (1)</li></ol>" in gaps.feedback
    assert "<table>" in gaps._chart.value and 'role="img"' in gaps._chart.value
    assert store.get("w1-gaps")["value"]["tools"] == {"now": 2, "needed": 3}


def test_rubric_scorer_writes_an_action_plan(store):
    """Is the plan ordered by severity, with notes, and are trainee notes escaped in HTML?"""
    rubric = RubricScorer("w6-review", store=store)
    rubric._ratings["interaction"].value = "minor"
    rubric._ratings["design"].value = "major"
    rubric._notes["design"].value = "<script>x</script> headings"
    rubric._ratings["overview"].value = "sufficient"
    plan = rubric.action_plan()
    assert [step["category"] for step in plan] == ["design", "interaction"]
    assert (
        "1. **Design and Layout** (Major revision): <script>x</script> headings"
        in rubric.action_plan_markdown()
    )
    assert "<script>" not in rubric._plan.value and "&lt;script&gt;" in rubric._plan.value
    assert store.get("w6-review")["value"]["design"]["rating"] == "major"


def test_reflection_journal(store):
    """Are reflections saved per prompt, with word counts and the words still expected?"""
    journal = ReflectionJournal(
        "w3-reflect", ["What went well?", "What will you change?"], min_words=10, store=store
    )
    journal._boxes["a"].value = "The poll woke everyone up."
    assert journal.value == {"a": "The poll woke everyone up."}
    assert "5 words; about 5 more expected" in journal.feedback
    assert journal._boxes["b"].description == "Your reflection 2"
    again = ReflectionJournal(
        "w3-reflect", ["What went well?", "What will you change?"], store=store
    )
    assert again._boxes["a"].value == "The poll woke everyone up."


def test_self_assessment_radar(store):
    """Does the self-assessment save ratings and draw a radar with a matching text table?"""
    selfassessment = ICTCFTSelfAssessment("w0-self", store=store)
    assert len(selfassessment._menus) == 18
    selfassessment._menus["3.KD"].value = 2
    selfassessment._menus["6.KA"].value = 3
    assert selfassessment.value == {"3.KD": 2, "6.KA": 3}
    assert selfassessment.profile()["KD"]["3"] == 2
    chart = selfassessment._chart.value
    assert chart.count("<polygon") == 3 + 3  # three rings and one shape per level
    assert "<caption>" in chart and 'aria-label="Your ICT CFT profile' in chart
    assert (
        selfassessment._menus["3.KD"].description == "Complex Problem-solving (Knowledge Deepening)"
    )
    assert store.get("w0-self")["value"] == {"3.KD": 2, "6.KA": 3}


def test_self_assessment_speaks_the_official_french_edition(store):
    """In French, are the names those of UNESCO's French edition, and is « aspect » the word?"""
    widget = ICTCFTSelfAssessment("w0-fr", language="fr", store=store)
    assert widget._menus["4.KD"].description == "Imprégnation (Approfondissement des connaissances)"
    assert widget._menus["6.KC"].description == (
        "Enseignant en tant qu'innovateur (Création de connaissances)"
    )
    texts = [c.value for c in widget.children if isinstance(c, widgets.HTML)]
    headings = [c.children[0].value for c in widget.children if isinstance(c, widgets.VBox)]
    assert "<h4>6. Formation professionnelle des enseignants</h4>" in headings
    assert any("pf0000368966" in t for t in texts)  # the French edition is cited
    widget.value = {"3.KD": 2}
    chart = widget._chart.value
    assert "Aspect" in chart and "Domaine" not in chart and "Approfondissement" in chart


def coverage_lines(widget, aspect):
    """The coverage line under each competency of ``aspect``, in level order."""
    group = next(
        c
        for c in widget.children
        if isinstance(c, widgets.VBox) and f">{aspect}. " in c.children[0].value
    )
    return [c.value for c in group.children[1:] if isinstance(c, widgets.HTML)]


def test_self_assessment_says_which_workbook_addresses_each_competency(store, monkeypatch):
    """Under each competency: the workbooks that claim it, or "Beyond this programme"?"""
    coverage = {key: [] for key in (f"{a}.{lv}" for a in "123456" for lv in ("KA", "KD", "KC"))}
    coverage["6.KA"] = [
        {
            "number": "00",
            "id": "orientation",
            "folder": "00-orientation",
            "titles": {"en": "Where do you stand?", "fr": "Où en êtes-vous ?"},
        }
    ]
    real_load = tables.load

    def load(name):
        return {"cells": coverage} if name == "ictcft_coverage" else real_load(name)

    monkeypatch.setattr(tables, "load", load)
    english = ICTCFTSelfAssessment(language="en", store=store)
    assert coverage_lines(english, 6) == [
        "<small>Addressed in: workbook 00, Where do you stand?</small>",
        "<small>Beyond this programme</small>",
        "<small>Beyond this programme</small>",
    ]
    french = ICTCFTSelfAssessment(language="fr", store=store)
    assert coverage_lines(french, 6)[0] == (
        "<small>Abordée dans\u00a0: cahier 00, «\u00a0Où en êtes-vous ?\u00a0»</small>"
    )
    assert coverage_lines(french, 2)[2] == "<small>Au-delà de ce programme</small>"


def test_self_assessment_without_coverage_says_nothing(store, monkeypatch):
    """With no coverage table shipped, does the widget leave the lines out rather than guess?"""
    real_load = tables.load

    def load(name):
        if name == "ictcft_coverage":
            raise AtelierError("widgets: no data table named 'ictcft_coverage'")
        return real_load(name)

    monkeypatch.setattr(tables, "load", load)
    widget = ICTCFTSelfAssessment(language="en", store=store)
    assert coverage_lines(widget, 1) == []


def test_shipped_coverage_covers_the_18_cells():
    """Does the shipped coverage table hold the 18 cells, each a list of workbooks?"""
    coverage = tables.load("ictcft_coverage")
    assert all(coverage[field] for field in tables.PROVENANCE)
    assert len(coverage["cells"]) == 18
    assert all(isinstance(v, list) for v in coverage["cells"].values())


def test_self_assessment_follows_the_core_matrix():
    """Are the cell names those of the project's one ICT CFT matrix?"""
    matrix = tables.load("ictcft")
    assert matrix["cells"]["6"] == {
        "KA": "Digital Literacy",
        "KD": "Networking",
        "KC": "Teacher as Innovator",
    }
    assert matrix["aspects"] == ["1", "2", "3", "4", "5", "6"]
