"""Loading a course's ``nbgrader_config.py`` only from where no other account can change it.

Rule: loading a config file runs it, so a process loads one only when no other account can
change it: the course folder when it is this account's (or root's) alone, else root's trusted
copy of a cohort's config (``<courses_root>/.config/C``, written by
:func:`atelier.grading.courses.folders.ensure_trusted_config`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from atelier.grading.course import TRUSTED_CONFIG, GradingError


def config_folder(course_root: str | os.PathLike) -> Path:
    """The folder whose ``nbgrader_config.py`` this process may load for ``course_root``.

    Loading a config file runs it. A process loads one only when no other account can change it:
    the course folder itself when it and its config belong to this account (or root) and nobody
    else may write them; else, for a cohort's course (the grader account's folder), the copy
    root keeps in ``<courses_root>/.config/C`` (:attr:`Course.trusted_config_dir`). Otherwise a
    :class:`GradingError` says what to do.
    """
    root = Path(course_root)
    config = root / "nbgrader_config.py"
    if _only_ours(root) and (not os.path.lexists(config) or _only_ours(config)):
        return root
    trusted = root.parent / TRUSTED_CONFIG / root.name
    if all(_only_ours(p) for p in (trusted.parent, trusted, trusted / "nbgrader_config.py")):
        return trusted
    raise GradingError(
        f"{config} can be changed by another account than this one, so it is not loaded here. "
        f"For a cohort's course, `atelier release` as root writes the copy root loads ({trusted}); "
        "for another course, run as the account that owns it, or make the folder and its "
        "nbgrader_config.py writable by this account only"
    )


def without_foreign_config(app_class):
    """A subclass of the traitlets ``app_class`` loading no config file others can change.

    nbgrader's apps load ``nbgrader_config.py`` from the course folder whatever the working
    directory (``NbGrader.initialize``); a cohort's course folder is the grader account's, so as
    root that file would be code the grader account wrote. Such a folder is skipped (with a
    warning on the app's log); :func:`config_folder` gives the one to load instead.
    """

    class Guarded(app_class):
        @classmethod
        def _load_config_files(cls, basefilename, path=None, log=None, **kwargs):
            if os.path.isabs(basefilename):
                path, basefilename = [os.path.dirname(basefilename)], os.path.basename(basefilename)
            paths = [path] if isinstance(path, str) or path is None else list(path)
            kept = []
            for folder in paths:
                where = Path(folder or os.getcwd())
                files = [where / f"{basefilename}{ext}" for ext in (".py", ".json")]
                if _only_ours(where) and all(
                    not os.path.lexists(f) or _only_ours(f) for f in files
                ):
                    kept.append(folder)
                elif log is not None and any(os.path.lexists(f) for f in files):
                    log.warning("not loading %s: another account can change it", where)
            if kept:
                yield from super()._load_config_files(basefilename, path=kept, log=log, **kwargs)

    Guarded.__name__ = Guarded.__qualname__ = app_class.__name__
    return Guarded


def _only_ours(path: Path) -> bool:
    """Whether ``path`` (not a link) is this account's or root's and no one else may write it."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISLNK(st.st_mode) or st.st_uid not in (0, os.geteuid()):
        return False
    return not st.st_mode & 0o022
