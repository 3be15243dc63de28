"""Translations: complete catalogues, every key used exists, language follows workbook."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import ipywidgets
import pytest

from atelier.errors import AtelierError
from atelier.widgets import i18n, tables
from atelier.widgets.assessment import Matching, MultipleChoice, NumericAnswer, Ordering, ShortText
from atelier.widgets.bandwidth import BandwidthCalculator
from atelier.widgets.gapmap import GapMap
from atelier.widgets.journal import ReflectionJournal
from atelier.widgets.rubric import RubricScorer
from atelier.widgets.schedule import HomeLearningBalancer
from atelier.widgets.selfassessment import ICTCFTSelfAssessment
from atelier.widgets.timeline import TimelinePlanner

pytestmark = pytest.mark.unit

WIDGETS_DIR = Path(i18n.__file__).parent


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_catalogues_have_the_same_keys_and_no_empty_text():
    """Do English and French have exactly the same keys, none empty, with the same placeholders?"""
    en, fr = i18n.catalogue("en"), i18n.catalogue("fr")
    assert set(en) == set(fr)
    for key in en:
        assert en[key].strip() and fr[key].strip(), key
        assert fields(en[key]) == fields(fr[key]), key


def test_french_is_not_a_copy_of_english():
    """Is the French catalogue actually translated (few strings identical to English)?"""
    en, fr = i18n.catalogue("en"), i18n.catalogue("fr")
    same = [k for k in en if en[k] == fr[k]]
    # Only names spelt the same in both (Application, Interaction, Transformation...).
    assert len(same) <= 12, same


def test_every_literal_key_in_the_code_exists():
    """Does every key the code names literally have a text (no raw key shown to a trainee)?"""
    en = i18n.catalogue("en")
    used = set()
    for path in WIDGETS_DIR.glob("*.py"):
        source = path.read_text("utf-8")
        pattern = r"""(?:_|translate)\(\s*["']([a-z_]+(?:\.[a-z_0-9]+)+)["']"""
        used |= set(re.findall(pattern, source))
    assert used, "the scan found no keys: the pattern is wrong"
    assert not used - set(en), used - set(en)


def all_texts(widget) -> list[str]:
    """Every label, option, placeholder, tooltip and HTML text in ``widget``'s tree."""
    texts = [getattr(widget, name, None) for name in ("description", "placeholder", "tooltip")]
    if isinstance(widget, ipywidgets.HTML | ipywidgets.Label):
        texts.append(widget.value)
    texts += list(getattr(widget, "_options_labels", ()))
    texts = [text for text in texts if isinstance(text, str)]
    for child in getattr(widget, "children", ()):
        texts += all_texts(child)
    return texts


def test_every_data_name_has_a_text():
    """Does every name a data table can put on screen (vintages, categories, cells) have text?"""
    en = i18n.catalogue("en")
    for vintage, figures in tables.load("zoom_bandwidth")["vintages"].items():
        assert f"bandwidth.vintage.{vintage}" in en
        for meeting, settings in figures["meetings"].items():
            assert f"bandwidth.meeting.{meeting}" in en
            assert all(f"bandwidth.resolution.{r}" in en for r in settings)
    oscqr = tables.load("oscqr")
    assert all(f"oscqr.category.{c}" in en for c in oscqr["categories"])
    assert all(f"oscqr.rating.{r}" in en for r in oscqr["ratings"])
    assert all(f"handbook.{d}" in en for d in tables.load("handbook")["dimensions"])
    matrix = tables.load("ictcft")
    assert all(f"ictcft.aspect_short.{aspect}" in en for aspect in matrix["aspects"])
    for language in ("en", "fr"):
        names = tables.ictcft_names(matrix, language)
        assert set(names["levels"]) == set(matrix["levels"])
        assert set(names["aspects"]) == set(matrix["aspects"])
        for aspect in matrix["aspects"]:
            assert set(names["cells"][aspect]) == set(matrix["levels"])
            assert all(names["cells"][aspect].values())


def every_widget(language):
    return [
        MultipleChoice(None, "Q", ["x", "y"], language=language),
        MultipleChoice(None, "Q", ["x", "y"], multiple=True, language=language),
        NumericAnswer(None, "Q", unit="MB", language=language),
        ShortText(None, "Q", language=language),
        Ordering(None, "Q", ["x", "y"], language=language),
        Matching(None, "Q", ["x", "y"], ["c", "d"], language=language),
        ICTCFTSelfAssessment(language=language),
        BandwidthCalculator(price_per_gb=1, monthly_income=100, language=language),
        TimelinePlanner(language=language),
        HomeLearningBalancer(language=language),
        GapMap(language=language),
        RubricScorer(language=language),
        ReflectionJournal(None, ["Why?"], language=language),
    ]


@pytest.mark.parametrize("language", ["en", "fr"])
def test_no_widget_shows_a_raw_key(language):
    """Built in each language, does any widget show a catalogue key instead of words?"""
    keys = set(i18n.catalogue("en"))
    for widget in every_widget(language):
        for text in all_texts(widget):
            assert text not in keys, f"{type(widget).__name__} shows the raw key {text!r}"
            assert not re.search(r"\{[a-z_]+\}", text), (
                f"{type(widget).__name__}: unfilled placeholder in {text!r}"
            )


def test_french_widgets_speak_french():
    """Does a French workbook get French labels?"""
    assert (
        MultipleChoice(None, "Q", ["x", "y"], language="fr")._radio.description
        == "Choisissez une réponse"
    )
    assert "Mo" in BandwidthCalculator(language="fr")._result.value


def test_language_follows_the_workbook(tmp_path, monkeypatch):
    """Is the order: argument, set_language, ATELIER_LANGUAGE, notebook metadata, English?"""
    notebook = tmp_path / "w.ipynb"
    notebook.write_text(
        json.dumps({"metadata": {"atelier": {"language": "fr"}}, "cells": []}), "utf-8"
    )
    monkeypatch.delenv("ATELIER_LANGUAGE", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    i18n.set_language(None)
    assert i18n.get_language() == "en"
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))
    assert i18n.get_language() == "fr"
    monkeypatch.setenv("ATELIER_LANGUAGE", "en_GB")
    assert i18n.get_language() == "en"
    try:
        i18n.set_language("fr-CA")
        assert i18n.get_language() == "fr" and i18n.get_language("en") == "en"
    finally:
        i18n.set_language(None)


def test_unknown_language_is_a_clear_error():
    """Does asking for a language without a catalogue say which ones exist?"""
    with pytest.raises(AtelierError, match="en, fr"):
        i18n.set_language("xx")


def test_unreadable_notebook_means_no_language(tmp_path):
    """Does a missing or broken notebook file fall through to the next rule, not crash?"""
    broken = tmp_path / "b.ipynb"
    broken.write_text("{", "utf-8")
    assert i18n.notebook_language(broken) is None
    assert i18n.notebook_language(tmp_path / "missing.ipynb") is None


@pytest.mark.parametrize(
    "typed, number",
    [("2.5", 2.5), ("2,5", 2.5), ("1 200", 1200), ("1\u202f200,5", 1200.5), ("1.200,5", 1200.5)],
)
def test_numbers_typed_either_way(typed, number):
    """Are numbers read with a decimal comma or point and spaces between thousands?"""
    assert i18n.parse_number(typed) == number


@pytest.mark.parametrize("typed", ["", "abc", "nan", "inf", "1e999"])
def test_not_numbers(typed):
    """Are words, NaN and infinity not numbers?"""
    assert i18n.parse_number(typed) is None


def test_numbers_are_written_the_local_way():
    """Is 1234.5 written 1,234.5 in English and 1 234,5 in French?"""
    assert i18n.format_number(1234.5, "en") == "1,234.5"
    assert i18n.format_number(1234.5, "fr") == "1\u202f234,5"


def test_voila_pages_find_their_notebook(tmp_path, monkeypatch):
    """In Voila (no JPY_SESSION_NAME), is the notebook found from the page address and folder?"""
    notebook = tmp_path / "plan été.ipynb"
    notebook.write_text(json.dumps({"metadata": {"atelier": {"language": "fr"}}}), "utf-8")
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("ATELIER_LANGUAGE", raising=False)
    monkeypatch.setenv("SCRIPT_NAME", "/voila/render/sub/plan%20%C3%A9t%C3%A9.ipynb")
    monkeypatch.chdir(tmp_path)
    assert i18n.kernel_notebook() == notebook
    assert i18n.get_language() == "fr"


def test_a_notebook_run_in_its_own_folder_speaks_its_language(tmp_path, monkeypatch):
    """Run as nbgrader runs it (no session, no page), does a widget speak the notebook's language?

    Autograde runs a submission in its folder, and Atelier's sandbox forgets a language chosen by
    an earlier cell and holds no notebook: the folder's only notebook, else the language the
    answers there were saved in, says which language the answers are shown in.
    """
    for name in ("JPY_SESSION_NAME", "SCRIPT_NAME", "ATELIER_LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    i18n.set_language(None)
    notebook_folder, sandbox, mixed = (tmp_path / name for name in ("nb", "sandbox", "mixed"))
    for folder in (notebook_folder, sandbox, mixed):
        folder.mkdir()
    (notebook_folder / "plan.fr.ipynb").write_text(
        json.dumps({"metadata": {"atelier": {"language": "fr"}}}), "utf-8"
    )
    monkeypatch.chdir(notebook_folder)
    assert i18n.get_language() == "fr"
    for folder, saved in ((sandbox, ["fr", "fr"]), (mixed, ["fr", "en"])):
        answers = {f"q{n}": {"value": 1, "language": code} for n, code in enumerate(saved)}
        document = {"format": "atelier-answers", "version": 1, "answers": answers}
        (folder / ".atelier-answers.json").write_text(json.dumps(document), "utf-8")
    monkeypatch.chdir(sandbox)
    assert i18n.get_language() == "fr"
    monkeypatch.chdir(mixed)
    assert i18n.get_language() == "en"  # answers in two languages: the default
