"""Answers given through widgets, kept in one JSON file beside the notebook, travelling with it.

Rule: the file ``.atelier-answers.json`` in the notebook's folder (the kernel's working directory in
JupyterLab, Voila, papermill and nbgrader autograde alike) holds the latest answer of every widget
that has an id. Every save is a read-merge-write under an exclusive lock on the folder, written to a
temporary file, flushed to disk and renamed over the old file, so that a crash leaves either the old
or the new file, never half of one. The format is documented in ``docs/widgets.md``::

    {"format": "atelier-answers", "version": 1,
     "answers": {"q1": {"value": ["b"], "kind": "choice", "saved": "2026-11-28T10:30:00Z",
                        "notebook": "planner.ipynb", "attempts": 2,
                        "history": [{"saved": "2026-11-28T10:29:12Z", "value": ["a"]},
                                    {"saved": "2026-11-28T10:30:00Z", "value": ["b"]}]}}}

nbgrader's ``submit`` copies the file with the assignment (it is not in ``CourseDirectory.ignore``)
and ``autograde`` copies it into the autograded folder, where test cells read it with
:mod:`atelier.widgets.grading`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atelier.errors import AtelierError
from atelier.files import atomic_write
from atelier.widgets.i18n import kernel_notebook

ANSWERS_FILENAME = ".atelier-answers.json"
FORMAT = "atelier-answers"
VERSION = 1
#: A larger file is not an answers file a widget wrote: refuse it rather than load it into memory.
MAX_BYTES = 5_000_000
#: Widget ids: short, readable, safe in file names and nbgrader grade ids.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: ``ATELIER_ANSWERS=off`` turns saving off (public apps, where visitors must not share a file).
DISABLE_ENV = "ATELIER_ANSWERS"


class AnswersFileError(AtelierError):
    """The answers file exists but cannot be used (not JSON, wrong format, too large)."""


def check_id(widget_id: str) -> str:
    """Return ``widget_id`` if valid, else raise :class:`AtelierError` saying what is allowed."""
    if not isinstance(widget_id, str) or not ID_PATTERN.match(widget_id):
        raise AtelierError(
            f"widget id {widget_id!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (for example 'w2-q1')"
        )
    return widget_id


def now() -> str:
    """The current UTC time as ``2026-11-28T10:30:00Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: Save events kept per answer (the newest), and the longest value (as JSON) kept in one; a longer
#: one (a reflection) is recorded by its length: time on task and item analysis need when and
#: what, and the file must stay far below ``MAX_BYTES`` with every answer at its cap.
HISTORY_EVENTS = 50
HISTORY_VALUE_CHARS = 500


def history(previous: dict, saved: str, value: Any) -> list[dict]:
    """``previous``'s save events with one more: ``{"saved": time, "value": value}``.

    The oldest events go first once there are :data:`HISTORY_EVENTS`; a value longer than
    :data:`HISTORY_VALUE_CHARS` as JSON is kept as ``{"saved": time, "chars": length}``.
    """
    events = previous.get("history")
    events = [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []
    text = json.dumps(value, ensure_ascii=False)
    event = {"saved": saved, "value": value} if len(text) <= HISTORY_VALUE_CHARS else {
        "saved": saved, "chars": len(text)}  # fmt: skip
    return [*events, event][-HISTORY_EVENTS:]


def empty() -> dict:
    """An answers document with no answers."""
    return {"format": FORMAT, "version": VERSION, "answers": {}}


def parse(text: str, source: str = ANSWERS_FILENAME) -> dict:
    """Parse and check an answers document; :class:`AnswersFileError` naming ``source`` if bad."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise AnswersFileError(
            f"{source}: is not JSON ({exc}); it was not written by a widget"
        ) from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise AnswersFileError(
            f'{source}: is not an Atelier answers file (no "format": "{FORMAT}")'
        )
    if document.get("version") != VERSION:
        raise AnswersFileError(
            f"{source}: answers format version {document.get('version')!r} is not supported "
            f"(this Atelier reads version {VERSION}); update Atelier"
        )
    answers = document.get("answers")
    if not isinstance(answers, dict) or not all(isinstance(e, dict) for e in answers.values()):
        raise AnswersFileError(f'{source}: "answers" must map widget ids to entries')
    return document


class AnswerStore:
    """The answers file of one folder.

    Args:
        directory: the notebook's folder; default the working directory (where Jupyter starts
            kernels).
        notebook: the notebook's file name, recorded with each answer; default from
            ``JPY_SESSION_NAME``.
    """

    def __init__(self, directory: str | os.PathLike | None = None, notebook: str | None = None):
        self.directory = Path(directory) if directory is not None else Path.cwd()
        running = kernel_notebook()
        self.notebook = notebook or (running.name if running else None)

    @property
    def path(self) -> Path:
        """Where the answers file is (or will be)."""
        return self.directory / ANSWERS_FILENAME

    @property
    def enabled(self) -> bool:
        """False when ``ATELIER_ANSWERS=off`` (public apps): nothing is read or written."""
        return os.environ.get(DISABLE_ENV, "").lower() not in {"off", "0", "false", "no"}

    def read(self) -> dict:
        """The whole document; an absent file is an empty document.

        Raises:
            AnswersFileError: the file is not an answers file or is too large.
        """
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return empty()
        if size > MAX_BYTES:
            raise AnswersFileError(
                f"{self.path}: {size} bytes is larger than an answers file can be ({MAX_BYTES}); "
                "it was not written by a widget"
            )
        return parse(self.path.read_text("utf-8", errors="replace"), str(self.path))

    def answers(self) -> dict[str, dict]:
        """Widget id -> entry (``value``, ``kind``, ``saved``, ...)."""
        return self.read()["answers"] if self.enabled else {}

    def get(self, widget_id: str) -> dict | None:
        """The entry saved for ``widget_id``, or ``None``."""
        return self.answers().get(widget_id)

    @contextlib.contextmanager
    def _locked(self):
        """Hold an exclusive lock on the folder, so two kernels never interleave read and write."""
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def save(self, widget_id: str, value: Any, kind: str, **extra: Any) -> dict:
        """Save ``value`` as the answer of ``widget_id`` and return its entry.

        A file that is not a valid answers file (edited by hand, say) is moved aside to
        ``.atelier-answers.json.unreadable-<time>`` rather than overwritten, so nothing is
        destroyed.

        Raises:
            OSError: the folder is not writable or the disk is full (the old file is untouched).
        """
        check_id(widget_id)
        # Round-trip now so that a value JSON cannot represent fails here, before anything is
        # written.
        value = json.loads(json.dumps(value, allow_nan=False))
        with self._locked():
            try:
                document = self.read()
            except AnswersFileError:
                aside = self.path.with_name(
                    f"{ANSWERS_FILENAME}.unreadable-{now().replace(':', '')}"
                )
                os.replace(self.path, aside)
                document = empty()
            previous = document["answers"].get(widget_id, {})
            saved = now()
            entry = {
                "value": value,
                "kind": kind,
                "saved": saved,
                "attempts": int(previous.get("attempts", 0)) + 1,
                "history": history(previous, saved, value),
                **({"notebook": self.notebook} if self.notebook else {}),
                **extra,
            }
            document["answers"][widget_id] = entry
            self._write(document)
        return entry

    def _write(self, document: dict) -> None:
        """Write ``document`` atomically: temporary file, fsync, rename, fsync of the folder."""
        text = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
        # 0644: the facilitator's tools (and nbgrader's copies) must read it.
        atomic_write(self.path, text, 0o644, fsync_folder=True)
