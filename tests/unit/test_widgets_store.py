"""The answers file: format, atomic writes, locking, restore after restart, bad files."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from atelier.errors import AtelierError
from atelier.widgets import store as store_module
from atelier.widgets.assessment import MultipleChoice
from atelier.widgets.store import ANSWERS_FILENAME, AnswersFileError, AnswerStore

pytestmark = pytest.mark.unit


def test_save_writes_the_documented_format(tmp_path):
    """Does a save produce the versioned document described in docs/widgets.md?"""
    store = AnswerStore(tmp_path, notebook="planner.ipynb")
    store.save("w2-q1", ["b"], "choice")
    document = json.loads((tmp_path / ANSWERS_FILENAME).read_text("utf-8"))
    assert document["format"] == "atelier-answers" and document["version"] == 1
    entry = document["answers"]["w2-q1"]
    assert (
        entry["value"] == ["b"]
        and entry["kind"] == "choice"
        and entry["notebook"] == "planner.ipynb"
    )
    assert entry["saved"].endswith("Z") and entry["attempts"] == 1
    assert oct((tmp_path / ANSWERS_FILENAME).stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == [ANSWERS_FILENAME], (
        "no temporary file left behind"
    )


def test_saves_merge_and_count_attempts(tmp_path):
    """Do answers of several widgets live side by side, each counting its attempts?"""
    store = AnswerStore(tmp_path)
    store.save("a", 1, "numeric")
    store.save("b", "x", "text")
    store.save("a", 2, "numeric")
    answers = AnswerStore(tmp_path).answers()
    assert answers["a"]["value"] == 2 and answers["a"]["attempts"] == 2
    assert answers["b"]["value"] == "x"


def test_every_save_is_recorded_with_its_time(tmp_path, monkeypatch):
    """Does each answer keep when each save happened and what it was (time on task, first try)?"""
    times = iter(["2026-11-28T10:00:00Z", "2026-11-28T10:01:00Z", "2026-11-28T10:05:00Z"])
    monkeypatch.setattr(store_module, "now", lambda: next(times))
    store = AnswerStore(tmp_path)
    store.save("q1", "a", "choice")
    store.save("q1", "b", "choice")
    store.save("essay", "word " * 200, "journal")
    answers = AnswerStore(tmp_path).answers()
    assert answers["q1"]["history"] == [
        {"saved": "2026-11-28T10:00:00Z", "value": "a"},
        {"saved": "2026-11-28T10:01:00Z", "value": "b"},
    ]
    # A long reflection is not copied into its history: its length stands for it.
    assert answers["essay"]["history"] == [
        {"saved": "2026-11-28T10:05:00Z", "chars": len(json.dumps("word " * 200))}
    ]


def test_the_history_keeps_the_newest_saves_only(tmp_path):
    """Does the history keep the newest saves only, so that no answers file grows without end?"""
    store = AnswerStore(tmp_path)
    for value in range(store_module.HISTORY_EVENTS + 10):
        store.save("n", value, "numeric")
    events = store.get("n")["history"]
    assert len(events) == store_module.HISTORY_EVENTS
    assert [e["value"] for e in events[-2:]] == [58, 59] and events[0]["value"] == 10


def test_a_failed_write_keeps_the_previous_answers(tmp_path, monkeypatch):
    """If the disk fails mid-save, is the earlier file intact and no temporary file left?"""
    store = AnswerStore(tmp_path)
    store.save("q1", "a", "choice")
    before = (tmp_path / ANSWERS_FILENAME).read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        store.save("q2", "b", "choice")
    assert (tmp_path / ANSWERS_FILENAME).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [ANSWERS_FILENAME]


def _save_many(directory: str, prefix: str) -> None:
    store = AnswerStore(directory)
    for number in range(40):
        store.save(f"{prefix}{number}", number, "numeric")


def test_two_kernels_saving_at_once_lose_nothing(tmp_path):
    """Do two processes saving into one folder at the same time keep every answer (lock works)?"""
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_save_many, args=(str(tmp_path), p)) for p in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    answers = AnswerStore(tmp_path).answers()
    assert len(answers) == 80


def test_a_widget_restores_its_answer_after_a_restart(tmp_path):
    """Does a widget created again (new kernel, reload) show the saved answer, unsaved?"""
    first = MultipleChoice("q1", "Q?", ["x", "y"], store=AnswerStore(tmp_path))
    first.value = "b"
    again = MultipleChoice("q1", "Q?", ["x", "y"], store=AnswerStore(tmp_path))
    assert again.value == "b" and again._radio.value == "b"
    assert AnswerStore(tmp_path).get("q1")["attempts"] == 1
    assert "back" in again.status


def test_a_widget_without_id_saves_nothing(tmp_path):
    """Is a widget with no id (a public app) kept out of the answers file?"""
    widget = MultipleChoice(None, "Q?", ["x", "y"], store=AnswerStore(tmp_path))
    widget.value = "a"
    assert not (tmp_path / ANSWERS_FILENAME).exists()


def test_saving_can_be_turned_off(tmp_path, monkeypatch):
    """Does ATELIER_ANSWERS=off (public apps) stop both reading and writing?"""
    AnswerStore(tmp_path).save("q1", "a", "choice")
    monkeypatch.setenv("ATELIER_ANSWERS", "off")
    widget = MultipleChoice("q1", "Q?", ["x", "y"], store=AnswerStore(tmp_path))
    assert widget.value is None
    widget.value = "b"
    monkeypatch.delenv("ATELIER_ANSWERS")
    assert AnswerStore(tmp_path).get("q1")["value"] == "a"


def test_an_unreadable_file_is_kept_aside_not_destroyed(tmp_path):
    """When the file was damaged by hand, is it moved aside and are new answers still saved?"""
    (tmp_path / ANSWERS_FILENAME).write_text("{not json", "utf-8")
    widget = MultipleChoice("q1", "Q?", ["x", "y"], store=AnswerStore(tmp_path))
    assert "could not be read" in widget.status
    widget.value = "a"
    assert AnswerStore(tmp_path).get("q1")["value"] == "a"
    aside = [p for p in tmp_path.iterdir() if ".unreadable-" in p.name]
    assert len(aside) == 1 and aside[0].read_text("utf-8") == "{not json"


@pytest.mark.parametrize(
    "content, message",
    [
        ("[]", "not an Atelier answers file"),
        ('{"format": "atelier-answers", "version": 99, "answers": {}}', "version 99"),
        ('{"format": "atelier-answers", "version": 1, "answers": []}', "must map widget ids"),
    ],
)
def test_a_wrong_file_is_named_in_the_error(tmp_path, content, message):
    """Does reading a file that is not an answers file name the file and the problem?"""
    (tmp_path / ANSWERS_FILENAME).write_text(content, "utf-8")
    with pytest.raises(AnswersFileError, match=message) as error:
        AnswerStore(tmp_path).read()
    assert ANSWERS_FILENAME in str(error.value)


def test_a_huge_file_is_refused_without_reading_it(tmp_path):
    """Is a 6 MB file refused as 'not written by a widget' instead of being loaded?"""
    with open(tmp_path / ANSWERS_FILENAME, "wb") as handle:
        handle.truncate(6_000_000)
    with pytest.raises(AnswersFileError, match="larger than an answers file"):
        AnswerStore(tmp_path).read()


@pytest.mark.parametrize("bad", ["", "has space", "../up", "x" * 65, ".hidden"])
def test_bad_widget_ids_are_refused(bad):
    """Are ids that would be unsafe or confusing refused with a message saying what is allowed?"""
    with pytest.raises(AtelierError, match="is not valid"):
        MultipleChoice(bad, "Q?", ["x", "y"])


def test_values_json_cannot_hold_are_refused_before_writing(tmp_path):
    """Is a NaN answer refused without touching the file?"""
    store = AnswerStore(tmp_path)
    with pytest.raises(ValueError):
        store.save("q1", float("nan"), "numeric")
    assert not (tmp_path / ANSWERS_FILENAME).exists()


def test_the_notebook_name_comes_from_the_kernel_session(tmp_path, monkeypatch):
    """Does the store record the notebook Jupyter Server started the kernel for?"""
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "w2-planner.ipynb"))
    assert AnswerStore(tmp_path).notebook == "w2-planner.ipynb"
    monkeypatch.chdir(tmp_path)
    assert AnswerStore().path == tmp_path / ANSWERS_FILENAME
    assert os.path.basename(AnswerStore().path) == ".atelier-answers.json"


def test_a_save_that_fails_is_said_under_the_widget(tmp_path):
    """When the folder cannot be written, does the trainee see 'could not be saved', answer kept?"""
    widget = MultipleChoice("q1", "Q?", ["x", "y"], store=AnswerStore(tmp_path / "gone"))
    widget._radio.value = "b"
    assert widget.value == "b"
    assert "could not be saved" in widget.status and "gone" in widget.status
