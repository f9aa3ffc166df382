"""Swapping a finished staging folder in for a bundle, as atomically as the system allows.

Used by ``swarmedge.atomic.staged_directory`` (whose docstring tells the whole story): on
Linux one ``renameat2(RENAME_EXCHANGE)`` (``RENAME_NOREPLACE`` for a new bundle); elsewhere
the move-aside fallback, whose ``.NAME.old-TOKEN`` folder ``recover_directory`` puts back
after a kill. SIGINT/SIGTERM are held while a swap runs.
"""

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

# <linux/fs.h>
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_SWAP_ATTEMPTS = 20


def entry_path(target: Path, kind: str, token: str) -> Path:
    """``.NAME.KIND-TOKEN`` beside ``target``: staging, old, trash or lock of one export."""
    return target.parent / f".{target.name}.{kind}-{token}"


def _load_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _load_renameat2()


def _rename2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``: True when done, False when this system cannot do it.

    Raises ``OSError`` otherwise (e.g. ``FileExistsError`` for ``RENAME_NOREPLACE``).
    """
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # old kernel, or a filesystem without the flags
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


_AGAIN = object()  # another export's swap came in between: try again


def swap_in(stage: Path, target: Path, token: str) -> Path | None:
    """Put ``stage`` at ``target``; return where the old bundle now lies (to delete), or None."""
    from swarmedge.errors import SwarmedgeError

    for _ in range(_SWAP_ATTEMPTS):
        with _signals_held():
            old = _swap_once(stage, target, token)
        if old is not _AGAIN:
            _fsync_dir(target.parent)
            return old
    raise SwarmedgeError(f"{target} kept being replaced by other exports; export again once they are done")


def _swap_once(stage: Path, target: Path, token: str):
    from swarmedge.errors import InputError

    if not os.path.lexists(target):
        try:
            if _rename2(stage, target, RENAME_NOREPLACE):
                return None
        except FileExistsError:
            return _AGAIN
    elif not target.is_dir():
        # Another export moved the bundle aside after lexists, and maybe put its own in before
        # this second look: a race (try again), not a file.
        if not os.path.lexists(target) or target.is_dir():
            return _AGAIN
        raise InputError(f"{target} was replaced by a file during the export; remove it and export again")
    else:
        try:
            if _rename2(stage, target, RENAME_EXCHANGE):
                return stage  # the staging path now holds the old bundle
        except FileNotFoundError:
            return _AGAIN
    return _swap_aside(stage, target, token)


def _swap_aside(stage: Path, target: Path, token: str):
    """The fallback swap: old bundle aside, new one in. Returns like ``_swap_once``."""
    old, trash = entry_path(target, "old", token), entry_path(target, "trash", token)
    try:
        os.rename(target, old)
        moved = True
    except FileNotFoundError:
        moved = False
    try:
        os.rename(stage, target)  # fails when another export's bundle arrived since
    except OSError as exc:
        if moved:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                os.rename(old, trash)  # superseded by the bundle that arrived meanwhile
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.rename(old, target)
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return _AGAIN
        raise
    if not moved:
        return None
    os.rename(old, trash)  # an .old- folder is always whole: a half-deleted one must never go back
    return trash


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block is done, then raise KeyboardInterrupt if one came."""
    caught = []
    try:
        previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum))
                    for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: Python delivers no signals here anyway
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        raise KeyboardInterrupt(f"signal {caught[0]}")


def fsync_tree(root: Path) -> None:
    """Flush every regular file and folder under ``root`` to disk, so a power cut after the swap
    finds the data too. Links and special files (a FIFO would block ``open``) are left alone."""
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                fsync_tree(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    fd = os.open(entry.path, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
    _fsync_dir(root)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder to fsync it
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
