"""The hardened exchange, trainee side: nbgrader's exchange classes with identity-checked folders.

Rule: a trainee reaches only their own folders. Stock nbgrader puts every submission in one
world-writable ``inbound/`` and every feedback file in one ``feedback/``, protected by unguessable
names (nbgrader issues #483, #978, #1097, #1104, #1225). Here each trainee has an
``inbound/<account>/`` folder they own (group: the course's grader account, mode 2770) and a
``feedback/<account>/`` folder they may only read (owner: grader, group: the trainee's own group,
mode 2750). Both parents are mode 0711, so nobody can list who else is there. Unix permissions
enforce this, not folder names.

These classes are set through ``ExchangeFactory`` in the trainees' nbgrader config (see
:func:`atelier.grading.hubconfig.trainee_nbgrader_config`), so the JupyterLab assignment list,
fetch, validate, submit and fetch-feedback buttons all use them. What the trainee's side does is a
courtesy (clear messages, limits refused early): the facilitator's side
(:mod:`atelier.grading.exchange.collect`) checks everything again, because a trainee can write into
their inbound folder without these classes.
"""

from __future__ import annotations

import base64
import glob
import os
import stat

from nbgrader.exchange.default import (
    ExchangeFetchAssignment,
    ExchangeFetchFeedback,
    ExchangeList,
    ExchangeSubmit,
)
from nbgrader.utils import get_username, notebook_hash
from traitlets import Integer, Unicode

from atelier.languages import LANGUAGES


def trainee_language(environ: os._Environ | dict | None = None) -> str:
    """The trainee's language: ``ATELIER_LANGUAGE`` if set, else the locale, else English."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("ATELIER_LANGUAGE", "")
    if explicit in LANGUAGES:
        return explicit
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        code = environ.get(name, "")[:2].lower()
        if code in LANGUAGES:
            return code
    return "en"


def assignment_language(assignment: str) -> str | None:
    """The language suffix of an assignment id ``<workbook>-<lang>``, or None."""
    _, _, suffix = assignment.rpartition("-")
    return suffix if suffix in LANGUAGES else None


class ReadOnlyRootMixin:
    """The exchange root belongs to root and is not writable: it only has to exist."""

    def ensure_root(self):
        """Fail with a clear message if the exchange is missing (nbgrader wants it writable)."""
        if not os.path.isdir(self.root):
            self.fail(f"The exchange {self.root} is missing: please tell your facilitator.")


class AtelierList(ReadOnlyRootMixin, ExchangeList):
    """Lists the trainee's own courses in the trainee's language; feedback per trainee."""

    language = Unicode(
        "",
        help="Language of the assignments shown (en or fr); empty means from the environment.",
    ).tag(config=True)

    def _member_of(self, course_id: str) -> bool:
        # The trainee's own inbound folder exists only in their cohort's course: membership is a
        # fact on disk written by `atelier release`, not a group lookup.
        return os.path.isdir(os.path.join(self.root, course_id, "inbound", get_username()))

    def init_dest(self):
        """Find assignments, then drop other cohorts' courses and other languages."""
        super().init_dest()
        if self.inbound:
            return
        language = self.language or trainee_language()
        kept = []
        for path in self.assignments:
            if self.cached:
                kept.append(path)
                continue
            course_id = os.path.basename(os.path.dirname(os.path.dirname(path)))
            own = assignment_language(os.path.basename(path))
            if self._member_of(course_id) and own in (None, language):
                kept.append(path)
        self.assignments = kept

    def parse_assignments(self):
        """Stock parsing, with feedback looked up in the trainee's own feedback folder."""
        assignments = super().parse_assignments()
        if not self.cached:
            return assignments
        me = get_username()
        for assignment in assignments:
            for info in assignment["submissions"]:
                secret = _read(os.path.join(info["path"], "submission_secret.txt"))
                for nb in info["notebooks"]:
                    found = False
                    if secret:
                        name = notebook_hash(secret=secret, notebook_id=nb["notebook_id"]) + ".html"
                        path = os.path.join(self.root, info["course_id"], "feedback", me, name)
                        found = os.path.isfile(path)
                        if found and nb["has_local_feedback"]:
                            nb["feedback_updated"] = _read_bytes(path) != _read_bytes(
                                nb["local_feedback_path"]
                            )
                    nb["has_exchange_feedback"] = found
                notebooks = info["notebooks"]
                info["has_exchange_feedback"] = bool(notebooks) and all(
                    nb["has_exchange_feedback"] for nb in notebooks
                )
                info["feedback_updated"] = any(nb["feedback_updated"] for nb in notebooks)
        return assignments


class AtelierFetchAssignment(ReadOnlyRootMixin, ExchangeFetchAssignment):
    """Fetch, refusing courses the trainee is not in with a clear message."""

    def init_src(self):
        """Check membership before nbgrader's own checks."""
        inbound = os.path.join(self.root, self.coursedir.course_id, "inbound", get_username())
        if self.coursedir.course_id and not os.path.isdir(inbound):
            self.fail(f"You are not a trainee of course {self.coursedir.course_id}.")
        super().init_src()


class AtelierSubmit(ReadOnlyRootMixin, ExchangeSubmit):
    """Submit into the trainee's own inbound folder, under the trainee's own account name only."""

    max_submissions = Integer(
        20,
        help="Most submissions of one assignment a trainee may make (collect enforces it again).",
    ).tag(config=True)

    def init_dest(self):
        """Point the submission at ``inbound/<account>/`` and refuse another student id."""
        me = get_username()
        if self.coursedir.student_id not in ("*", "", me):
            self.fail(
                f"You can only submit as yourself ({me}), not as {self.coursedir.student_id}."
            )
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        own = os.path.join(self.root, self.coursedir.course_id, "inbound", me)
        if not os.path.isdir(own) or not os.access(own, os.W_OK | os.X_OK):
            self.fail(
                f"You are not a trainee of course {self.coursedir.course_id} (no inbound folder "
                "for you): ask your facilitator to release the workbook to your cohort again."
            )
        self.inbound_path = own
        self.cache_path = os.path.join(self.cache, self.coursedir.course_id)
        # The random string keeps two submissions in the same second apart; the folder name is not
        # what protects it (its parent folder is).
        random_str = base64.urlsafe_b64encode(os.urandom(9)).decode("ascii")
        self.assignment_filename = (
            f"{me}+{self.coursedir.assignment_id}+{self.timestamp}+{random_str}"
        )
        earlier = glob.glob(os.path.join(own, f"{me}+{self.coursedir.assignment_id}+*"))
        if len(earlier) >= self.max_submissions:
            self.fail(
                f"You have already submitted {self.coursedir.assignment_id} {len(earlier)} times, "
                f"the most allowed ({self.max_submissions}); your facilitator grades the latest."
            )

    def copy_files(self):
        """Copy as nbgrader does, then close the folder to everyone but its owner and the grader."""
        self.add_random_string = True
        super().copy_files()
        dest = os.path.join(self.inbound_path, self.assignment_filename)
        # nbgrader opens the submission folder to everyone (0777) so an instructor can delete it;
        # here the grader group reads it and nobody else can even reach it.
        os.chmod(dest, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP)


class AtelierFetchFeedback(ReadOnlyRootMixin, ExchangeFetchFeedback):
    """Fetch feedback from the trainee's own feedback folder (``feedback/<account>/``)."""

    def init_src(self):
        """Find, for each cached submission of the assignment, the feedback released for it."""
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        me = get_username()
        self.src_path = self.outbound_path = os.path.join(
            self.root, self.coursedir.course_id, "feedback", me
        )
        self.cache_path = os.path.join(self.cache, self.coursedir.course_id)
        if not os.path.isdir(self.src_path):
            self.fail(f"No feedback has been released to you in {self.coursedir.course_id} yet.")
        assignment_id = self.coursedir.assignment_id or "*"
        self.feedback_files = []
        for submission in sorted(glob.glob(os.path.join(self.cache_path, f"*+{assignment_id}+*"))):
            _, _, timestamp = os.path.basename(submission).split("+")[:3]
            secret = _read(os.path.join(submission, "submission_secret.txt"))
            if not secret:
                continue
            for notebook in sorted(glob.glob(os.path.join(submission, "*.ipynb"))):
                notebook_id = os.path.splitext(os.path.basename(notebook))[0]
                name = notebook_hash(secret=secret, notebook_id=notebook_id) + ".html"
                path = os.path.join(self.src_path, name)
                if os.path.isfile(path):
                    self.feedback_files.append((notebook_id, timestamp, path))
                    self.log.info("Found feedback for %s submitted at %s", notebook_id, timestamp)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return ""


def _read_bytes(path: str | None) -> bytes:
    if not path:
        return b""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""
