"""Files in folders another account can write, opened by root without following what it swapped in.

Rule: root never resolves a path below a folder that a trainee or the grader account can write.
It opens a trusted top folder by path (one whose chain only root can change: the courses root, the
exchange's root-owned folders), then every name below it one at a time, relative to the open
folder's descriptor, with ``O_NOFOLLOW``; it checks what it opened with ``fstat`` (type, owner,
link count) and then acts on the descriptor (read, write, ``fchown``, ``fchmod``, rename within a
folder it holds open). A symbolic link, a pipe or device, a wrong owner or a hard-linked file found
on the way is refused with :class:`UnsafePath`, whose message names the path: the other account
can make Atelier fail, never make root read, write or change anything else.

Its writes (``write_at``, ``replacing_dir_at``) are atomic too, but they are not
:mod:`atelier.files`, on purpose: that module writes by path into folders the writer trusts; this
one is for the folders it must not trust.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from atelier.errors import AtelierError

#: A folder below the trusted top: never a link, never the terminal of a pipe.
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: A file read below the trusted top: ``O_NONBLOCK`` so that a pipe swapped in cannot block root.
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
#: A file created below the trusted top: exclusive, so nothing already there is opened.
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
#: A log appended to below the trusted top.
APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

FIX = (
    "Atelier does not follow links or open pipes, devices or hard links where another account "
    "can write; look at it, remove it and run the command again"
)


class UnsafePath(AtelierError):
    """A path below a folder another account can write is a link, the wrong type or owner."""


def refusal(path: Path | str, what: str) -> UnsafePath:
    """The error for ``path``, which ``what`` (is a symbolic link, ...); names the fix."""
    return UnsafePath(f"{path}: {what}. {FIX}.")


def describe(error: OSError, dir_fd: int | None = None, name: str = "") -> str:
    """What an ``open(..., O_NOFOLLOW)`` error means about the entry it was refused.

    With the folder and name, a refused entry's real type is named (``O_DIRECTORY`` refuses a
    link with ``ENOTDIR``, not ``ELOOP``).
    """
    if dir_fd is not None and error.errno in (errno.ELOOP, errno.ENOTDIR):
        try:
            return f"is {kind(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)}"
        except OSError:
            pass
    if error.errno == errno.ELOOP:
        return "is a symbolic link"
    if error.errno == errno.ENOTDIR:
        return "is not a folder (or a link to one)"
    if error.errno == errno.ENOENT:
        return "does not exist (it was removed or renamed)"
    return f"cannot be opened ({error.strerror})"


def kind(mode: int) -> str:
    """A file type in words, for messages."""
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISREG, "a plain file"),
    ):
        if test(mode):
            return name
    return "of an unknown type"


def open_dir_at(
    dir_fd: int, name: str, shown: Path | str, owners: Iterable[int] | None = None
) -> int:
    """Open folder ``name`` of ``dir_fd`` without following a link; check its owner."""
    try:
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        except PermissionError:
            # A folder this account may pass through but not list (the exchange's 0711 folders,
            # for the grader account): a path-only descriptor still anchors what is below it.
            fd = os.open(name, DIR_FLAGS | os.O_PATH, dir_fd=dir_fd)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(shown)) from None
    except PermissionError as error:
        raise PermissionError(error.errno, error.strerror, str(shown)) from None
    except OSError as error:
        raise refusal(shown, describe(error, dir_fd, name)) from None
    if owners is not None:
        owner = os.fstat(fd).st_uid
        if owner not in set(owners):
            os.close(fd)
            raise refusal(shown, f"is owned by uid {owner}, not by root or the course")
    return fd


def open_dir(top: Path, parts: Iterable[str] = (), owners: Iterable[int] | None = None) -> int:
    """A descriptor of ``top/parts...``: ``top`` opened by path, each part below without links.

    ``top`` is trusted (its chain is root's); every part below it must be a real folder, owned by
    one of ``owners`` when given. The caller closes the descriptor.
    """
    owners = None if owners is None else set(owners)
    try:
        fd = os.open(top, DIR_FLAGS)
    except PermissionError:
        fd = os.open(top, DIR_FLAGS | os.O_PATH)  # as in open_dir_at
    shown = Path(top)
    try:
        for part in parts:
            shown = shown / part
            child = open_dir_at(fd, part, shown, owners)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def opened_dir(top: Path, parts: Iterable[str] = (), owners: Iterable[int] | None = None):
    """:func:`open_dir` as a context manager that closes the descriptor."""
    fd = open_dir(top, parts, owners)
    try:
        yield fd
    finally:
        os.close(fd)


def ensure_dir_at(
    dir_fd: int, name: str, mode: int, shown: Path | str, uid: int = -1, gid: int = -1
) -> int:
    """Create folder ``name`` of ``dir_fd`` if missing, open it without links, set owner and mode.

    Root sets owner and mode through the descriptor; another account sets the mode of what it
    owns and leaves the rest as it is. Returns the open descriptor.
    """
    with suppress(FileExistsError):
        os.mkdir(name, mode & 0o777, dir_fd=dir_fd)
    fd = open_dir_at(dir_fd, name, shown)
    try:
        if os.geteuid() == 0:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
        elif os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_plain_file(fd: int, shown: Path | str, owners: Iterable[int] | None = None):
    """``fstat`` of an open file that must be a plain file with one link (and a known owner)."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise refusal(shown, f"is {kind(info.st_mode)}, not a plain file")
    if info.st_nlink != 1:
        raise refusal(shown, f"has {info.st_nlink} hard links")
    if owners is not None and info.st_uid not in set(owners):
        raise refusal(shown, f"is owned by uid {info.st_uid}")
    return info


def read_at(
    dir_fd: int,
    name: str,
    shown: Path | str,
    limit: int = 50 * 1024 * 1024,
    owners: Iterable[int] | None = None,
) -> bytes:
    """The content of plain file ``name`` of ``dir_fd``, opened without following a link."""
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise FileNotFoundError(errno.ENOENT, "no such file", str(shown)) from None
        raise refusal(shown, describe(error)) from None
    try:
        check_plain_file(fd, shown, owners)
        data = read_fd(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise refusal(shown, f"is larger than {limit} bytes")
    return data


def read_fd(fd: int, most: int) -> bytes:
    """Up to ``most`` bytes from ``fd``, to its end."""
    chunks, total = [], 0
    while total < most:
        chunk = os.read(fd, min(1 << 20, most - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def write_at(
    dir_fd: int,
    name: str,
    data: bytes | str,
    mode: int,
    shown: Path | str,
    uid: int = -1,
    gid: int = -1,
) -> None:
    """Replace ``name`` of ``dir_fd`` with ``data``: a new file, owner and mode set, renamed over.

    The rename replaces whatever the name was (a link is replaced, never followed), and nothing is
    ever half-written.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = f".{name}.{secrets.token_hex(6)}"
    fd = os.open(tmp, CREATE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            if os.geteuid() == 0 and (uid != -1 or gid != -1):
                os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def append_at(
    dir_fd: int, name: str, data: bytes, shown: Path | str, mode: int = 0o660, sync: bool = False
) -> None:
    """Append ``data`` in one ``write`` to log ``name`` of ``dir_fd``, created if missing.

    A link, pipe or hard-linked file in its place is refused, never written through.
    """
    try:
        fd = os.open(name, APPEND_FLAGS, mode, dir_fd=dir_fd)
    except OSError as error:
        raise refusal(shown, describe(error, dir_fd, name)) from None
    try:
        check_plain_file(fd, shown)
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree_at(dir_fd: int, name: str) -> None:
    """Remove ``name`` of ``dir_fd`` and all in it, following no link (rmtree's descriptor walk)."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(name, ignore_errors=True, dir_fd=dir_fd)
    else:
        with suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)


def entries(dir_fd: int) -> Iterator[str]:
    """The names in an open folder, sorted (without consuming the caller's descriptor)."""
    fd = os.dup(dir_fd)
    try:
        names = os.listdir(fd)
    finally:
        os.close(fd)
    yield from sorted(names)


def swap_at(dir_fd: int, staged: str, final: str) -> None:
    """Move folder ``staged`` of ``dir_fd`` to ``final``, replacing it (names, never paths).

    As :func:`atelier.grading.exchange.release.swap_into_place`: the old folder is moved aside
    first, then the new one in; :func:`recover_swaps_at` puts back an old folder that lost its
    successor.
    """
    old = None
    try:
        os.stat(final, dir_fd=dir_fd, follow_symlinks=False)
        old = f".{final}.old-{secrets.token_hex(4)}"
        os.rename(final, old, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    os.rename(staged, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    if old is not None:
        remove_tree_at(dir_fd, old)


@contextmanager
def replacing_dir_at(dir_fd: int, final: str, shown: Path | str):
    """An open new private folder that replaces folder ``final`` of ``dir_fd`` when the block ends.

    The folder is made beside ``final`` under a ``.tmp-`` name (which :func:`recover_swaps_at`
    drops after a crash) and swapped in (:func:`swap_at`) only if the block succeeds; otherwise it
    is removed and ``final`` is left as it was: nothing is ever half-written.
    """
    staged = f".{final}.tmp-{secrets.token_hex(4)}"
    os.mkdir(staged, 0o700, dir_fd=dir_fd)
    try:
        target = open_dir_at(dir_fd, staged, shown)
        try:
            yield target
        finally:
            os.close(target)
        swap_at(dir_fd, staged, final)
    except BaseException:
        remove_tree_at(dir_fd, staged)
        raise


def recover_swaps_at(dir_fd: int) -> None:
    """After a crash: drop staged folders, put back an old one that lost its successor."""
    for name in entries(dir_fd):
        if not name.startswith("."):
            continue
        if ".tmp-" in name:
            remove_tree_at(dir_fd, name)
        elif ".old-" in name:
            final = name[1:].rsplit(".old-", 1)[0]
            try:
                os.stat(final, dir_fd=dir_fd, follow_symlinks=False)
                remove_tree_at(dir_fd, name)
            except FileNotFoundError:
                os.rename(name, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def copy_tree_at(
    src_fd: int,
    dst_fd: int,
    shown: Path,
    owners: Iterable[int] | None = None,
    modes: tuple[int, int] = (0o644, 0o755),
    uid: int = -1,
    gid: int = -1,
    depth: int = 0,
) -> None:
    """Copy the folder open as ``src_fd`` into the empty folder ``dst_fd``, all by descriptor.

    Only plain files (one link each) and folders are copied, read from descriptors opened without
    following links (owned by one of ``owners`` when given); anything else is refused, naming it.
    Each copy gets ``modes`` (files, folders) and, when root, the owner ``uid``/``gid``.
    """
    if depth > 32:
        raise refusal(shown, "is nested deeper than 32 folders")
    file_mode, dir_mode = modes
    for name in entries(src_fd):
        path = shown / name
        try:
            info = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise refusal(path, "was removed while it was being copied") from None
        if stat.S_ISDIR(info.st_mode):
            child = open_dir_at(src_fd, name, path, owners)
            try:
                os.mkdir(name, 0o700, dir_fd=dst_fd)
                out = open_dir_at(dst_fd, name, name)
                try:
                    copy_tree_at(child, out, path, owners, modes, uid, gid, depth + 1)
                    _set_owner_mode(out, dir_mode, uid, gid)
                finally:
                    os.close(out)
            finally:
                os.close(child)
        elif stat.S_ISREG(info.st_mode):
            try:
                fd = os.open(name, READ_FLAGS, dir_fd=src_fd)
            except OSError as error:
                raise refusal(path, describe(error, src_fd, name)) from None
            try:
                check_plain_file(fd, path, owners)
                out = os.open(name, CREATE_FLAGS, 0o600, dir_fd=dst_fd)
                try:
                    while chunk := os.read(fd, 1 << 20):
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(out, view) :]
                    _set_owner_mode(out, file_mode, uid, gid)
                finally:
                    os.close(out)
            finally:
                os.close(fd)
        else:
            raise refusal(path, f"is {kind(info.st_mode)}, not a plain file or folder")


def _set_owner_mode(fd: int, mode: int, uid: int, gid: int) -> None:
    if os.geteuid() == 0 and (uid != -1 or gid != -1):
        os.fchown(fd, uid, gid)
    os.fchmod(fd, mode)


def remove_roots_leftover(dir_fd: int, name: str) -> None:
    """Remove folder ``name`` of ``dir_fd`` if root made it (by an older Atelier, say).

    What nbgrader makes as root, the grader account cannot replace; steps that now run as the
    grader remove such leftovers first, as nbgrader itself would before remaking them.
    """
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode) and info.st_uid == 0:
        shutil.rmtree(name, ignore_errors=True, dir_fd=dir_fd)
