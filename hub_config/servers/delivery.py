"""Workbook delivery: publish workbooks to a local git repository, pull them into trainees' homes.

The rule: the trainee's copy is theirs. The admin side (:func:`publish_workbooks`, run by
``atelier install``) commits the workbooks to a world-readable bare repository with one branch per
language (``en``, ``fr``), each holding that language's notebooks and every shared file; a new
commit is made only when content changed. The trainee side (:func:`deliver_workbooks`, run as the
trainee just before their server starts) clones that branch into ``~/workbooks`` on first start and
later merges new commits with nbgitpuller's rules: the trainee's edits always win, files they
deleted come back, new material arrives. Nothing here ever calls the internet.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from atelier.errors import AtelierError
from atelier.languages import LANGUAGES

#: A notebook's language, from its name: ``intro.fr.ipynb``, ``intro_fr.ipynb``, ``fr.ipynb``...
_NAME_LANGUAGE = re.compile(r"(?:^|[._-])(" + "|".join(LANGUAGES) + r")$")
#: Files and folders that never belong in a trainee's copy. ``answers/`` holds the prepared answer
#: sets of graded workbooks (docs/answer-sets.md): answers, never delivered.
_SKIPPED = {".git", ".ipynb_checkpoints", "__pycache__", ".DS_Store", "answers"}

log = logging.getLogger("atelier.delivery")

# git refuses to work in a repository owned by another account ("dubious ownership"): the published
# repository belongs to root and is read by every trainee, on purpose. git drops GIT_CONFIG_* for
# local transports, so the exception comes as a global config file used only by delivery.
_GIT_SAFE = {"GIT_CONFIG_GLOBAL": str(Path(__file__).with_name("delivery.gitconfig"))}


def notebook_language(path: Path) -> str | None:
    """The language a file is for, or None when it is shared by every language.

    A notebook's language comes from its name (``*.fr.ipynb``, ``*_fr.ipynb``, ``fr.ipynb``), else
    from its metadata (``metadata.atelier.language`` or ``metadata.language``).
    """
    if path.suffix != ".ipynb":
        return None
    match = _NAME_LANGUAGE.search(path.stem)
    if match:
        return match.group(1)
    try:
        metadata = json.loads(path.read_text("utf-8")).get("metadata", {})
    except (OSError, ValueError):
        return None
    language = (metadata.get("atelier") or {}).get("language") or metadata.get("language")
    return language if language in LANGUAGES else None


def files_for_language(source: Path, language: str) -> list[Path]:
    """The files of ``source`` (relative paths, sorted) a trainee working in ``language`` gets."""
    chosen = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part in _SKIPPED for part in relative.parts) or not path.is_file():
            continue
        if notebook_language(path) in (None, language):
            chosen.append(relative)
    return chosen


def write_student_version(source: Path, target: Path) -> None:
    """Write the trainee's version of a workbook notebook: solutions and hidden tests removed.

    Workbook notebooks are nbgrader sources (docs/workbook-format.md): what a trainee receives is
    what nbgrader would release, never the solutions.
    """
    import nbformat

    from atelier.workbook import WorkbookError, student_version

    try:
        notebook = nbformat.read(source, as_version=4)
        nbformat.write(student_version(notebook), target)
    except (WorkbookError, ValueError, OSError) as error:
        raise AtelierError(f"{source}: cannot make the trainee's version: {error}") from error


def _git(*args: str, cwd: Path | None = None, env: dict | None = None, check=True) -> str:
    full_env = {**os.environ, **_GIT_SAFE, **(env or {})}
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise AtelierError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def publish_workbooks(source: str | Path, repo: str | Path) -> dict[str, str]:
    """Commit the workbooks of ``source`` to the bare repository ``repo``, one branch per language.

    Returns, per language, ``"created"``, ``"updated"`` or ``"unchanged"``. The repository and its
    files are made world-readable (trainees clone it); nothing in it is secret.
    """
    source, repo = Path(source), Path(repo)
    if not source.is_dir():
        raise AtelierError(f"{source}: workbooks folder not found (give --workbooks PATH)")
    if not (repo / "HEAD").exists():
        repo.parent.mkdir(parents=True, exist_ok=True)
        _git("init", "--quiet", "--bare", "--initial-branch=en", str(repo))
    outcome = {}
    identity = {
        "GIT_AUTHOR_NAME": "Atelier",
        "GIT_AUTHOR_EMAIL": "atelier@localhost",
        "GIT_COMMITTER_NAME": "Atelier",
        "GIT_COMMITTER_EMAIL": "atelier@localhost",
    }
    for language in LANGUAGES:
        with tempfile.TemporaryDirectory() as tmp:
            tree_dir = Path(tmp) / "tree"
            tree_dir.mkdir()
            for relative in files_for_language(source, language):
                target = tree_dir / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                if relative.suffix == ".ipynb":
                    write_student_version(source / relative, target)
                else:
                    shutil.copy2(source / relative, target)
            env = {**identity, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
            common = ("--git-dir", str(repo), "--work-tree", str(tree_dir))
            _git(*common, "add", "--all", ".", env=env)
            tree = _git(*common, "write-tree", env=env)
            parent = _git("--git-dir", str(repo), "rev-parse", "--verify", "--quiet",
                          f"refs/heads/{language}^{{commit}}", check=False)  # fmt: skip
            if parent and _git("--git-dir", str(repo), "rev-parse", f"{parent}^{{tree}}") == tree:
                outcome[language] = "unchanged"
                continue
            message = f"Workbooks ({language}) from {source}"
            args = ["--git-dir", str(repo), "commit-tree", tree, "-m", message]
            if parent:
                args += ["-p", parent]
            commit = _git(*args, env=env)
            _git("--git-dir", str(repo), "update-ref", f"refs/heads/{language}", commit)
            outcome[language] = "updated" if parent else "created"
    _make_world_readable(repo)
    return outcome


def _make_world_readable(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            os.chmod(path, os.stat(path).st_mode | 0o444)


def deliver_workbooks(repo: str | Path, language: str, target: str | Path) -> None:
    """Bring ``target`` up to date with the ``language`` branch of ``repo``, keeping trainee edits.

    Runs as the trainee. nbgitpuller's merge: on first start a clone; later, the trainee's changes
    are committed locally, upstream changes merged with the trainee's side winning conflicts, and
    files the trainee deleted restored.
    """
    from nbgitpuller.pull import GitPuller

    saved = {name: os.environ.get(name) for name in _GIT_SAFE}
    os.environ.update(_GIT_SAFE)
    try:
        puller = GitPuller(str(repo), str(target), branch=language, depth=0)
        for line in puller.pull():
            log.debug("gitpuller: %s", line.rstrip())
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


LAB_LOCALES = {"en": "en", "fr": "fr_FR"}


def set_lab_language(language: str, home: str | Path) -> Path | None:
    """Make JupyterLab speak ``language`` for this trainee, unless they already chose a language.

    Writes the user setting of ``@jupyterlab/translation-extension:plugin`` (the only way
    JupyterLab's interface language is chosen) when it does not exist yet. Returns the path written,
    or None.
    """
    locale = LAB_LOCALES.get(language)
    if locale is None:
        return None
    path = (
        Path(home)
        / ".jupyter/lab/user-settings/@jupyterlab/translation-extension/plugin.jupyterlab-settings"
    )
    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"locale": locale}), "utf-8")
    return path
