"""Writing a file so that a reader sees the old content or the new one, never half of either.

Rule: every room writes a file that something else reads (settings, roster, passwords, notebooks,
answers, certificates, archives) through :func:`atomic_open` or :func:`atomic_write`: a temporary
file beside the target, its mode and owner set before it has a name anyone looks up, then one
``rename``. Only the options call sites need are here: ``mode``, ``owner``, ``fsync``. A folder
built whole (the static library, the staged apps) takes its place with :func:`replacing_folder`.

This is for folders the writing process trusts (its own, or root's). Where root writes into a
folder another account can change (a course owned by the grader account, a trainee's inbound
folder), :mod:`atelier.grading.safefs` is the way instead: it works one name at a time through
open folder descriptors and never follows a link an attacker could have put there.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike,
    *,
    mode: int | None = None,
    owner: tuple[int, int] | None = None,
    fsync: bool = True,
    fsync_folder: bool = False,
) -> Iterator[BinaryIO]:
    """A binary file to write; on leaving the block it replaces ``path`` at once.

    Args:
        path: the file to write; missing parent folders are created.
        mode: its permission bits; ``None`` means what a new file gets (``0o666`` less the umask).
        owner: ``(uid, gid)`` to give it (root only), set before ``mode`` because changing the
            owner clears set-id bits.
        fsync: flush the data to disk before the rename, so a crash leaves old or new, not empty.
        fsync_folder: flush the folder after the rename too, so the new name itself survives a
            crash (for files whose loss would lose someone's work).

    If the block raises, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        # A dot name that no other writer can choose: two writers of one file never share it.
        temporary = folder / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            break
        except FileExistsError:
            continue
    handle = os.fdopen(fd, "wb")
    try:
        with handle:
            if owner is not None:
                os.fchown(fd, *owner)
            if mode is not None:
                os.fchmod(fd, mode)
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if fsync_folder:
        folder_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)


def atomic_write(
    path: str | os.PathLike,
    data: str | bytes,
    mode: int | None = None,
    *,
    owner: tuple[int, int] | None = None,
    fsync: bool = True,
    fsync_folder: bool = False,
) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` by :func:`atomic_open`: never half-written."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_open(
        path, mode=mode, owner=owner, fsync=fsync, fsync_folder=fsync_folder
    ) as handle:
        handle.write(raw)


@contextlib.contextmanager
def replacing_folder(path: str | os.PathLike, *, mode: int = 0o755) -> Iterator[Path]:
    """A fresh folder to fill beside ``path``; on leaving the block it takes the place of ``path``.

    The old folder is renamed aside before the new one is renamed in, so a reader sees the old
    set or the new one, never a mix of the two, and then removed. If the block raises, the new
    folder is removed and ``path`` is untouched.

    Args:
        path: the folder to replace (it need not exist yet; missing parents are created).
        mode: the new folder's permission bits (a temporary folder is created private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        yield building
        building.chmod(mode)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}-old-", dir=path.parent))
            path.rename(old / path.name)
        building.rename(path)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
