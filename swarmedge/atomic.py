"""Writes that either complete or leave nothing: stage beside the target, then swap it in.

Files (``write_bytes``) go to a temporary file in the same folder and are renamed into place.

A bundle is a directory, so ``staged_directory`` builds it in a hidden folder beside its
final place and swaps it in whole:

- **The swap is atomic on Linux.** ``renameat2(RENAME_EXCHANGE)`` trades the new folder and
  the old bundle in one step (``RENAME_NOREPLACE`` when there is no old bundle), so at every
  instant the target path holds either the complete old bundle or the complete new one,
  whatever kills the process. Where ``renameat2`` is missing (another OS, an old kernel or C
  library, a filesystem that refuses the flags), the old bundle is renamed aside to
  ``.NAME.old-TOKEN``, the new one renamed in, and the old one deleted; a kill between those
  two renames leaves the target missing for a moment, and ``recover_directory`` (called by
  every export, and meant for whatever opens a bundle) renames the intact old bundle back.
- **Leftovers of dead exports are removed by the next export into the same folder.** Each
  export holds an exclusive ``flock`` on ``.NAME.lock-TOKEN`` from before it creates
  ``.NAME.staging-TOKEN`` until after it removed it. A later export deletes the folders of a
  token only when it can take that lock, so a live concurrent export is never touched and a
  reused PID cannot fool it. Without ``fcntl`` (Windows) the test is whether the lock file can
  be deleted, which Windows refuses while its owner holds it open.
- **Racing exports to one destination both succeed, in turn:** each swap is atomic, and the
  bundle whose swap comes last stays, as with ``mv``. No export fails because another one
  replaced the bundle while it ran.
- Ctrl-C or SIGTERM before the swap deletes the staging folder and leaves the old bundle as it
  was; one that arrives during the swap is held until the swap is done. Files are fsynced
  before the swap so that the renamed bundle is on disk too.
"""

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: liveness falls back to "can the lock file be deleted?"
    fcntl = None

# <linux/fs.h>
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_AT_FDCWD = -100
# .NAME.staging-TOKEN (folder being built), .NAME.old-TOKEN (old bundle set aside, fallback swap
# only), .NAME.trash-TOKEN (an old bundle being deleted), .NAME.lock-TOKEN (held while alive).
# Staging folders of swarmedge before locks existed have tempfile's 8-character tokens.
_ENTRY = re.compile(r"\.(?P<name>.+)\.(?P<kind>staging|old|trash|lock)-(?P<token>[a-z0-9_]{8,})")
_SWAP_ATTEMPTS = 20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same directory + rename).

    Missing parent folders are created. Raises ``InputError`` (one line) when the folder
    cannot be made or written, e.g. a file stands where a folder should be, when ``path`` is a
    folder, or when ``path`` lies inside a bundle (``swarmedge.output_paths.check_output_file``).
    """
    from swarmedge.errors import InputError
    from swarmedge.output_paths import check_output_file

    path = Path(path)
    check_output_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}; choose another output path") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp, path)
        except IsADirectoryError:  # a folder appeared at path since the check above
            raise InputError(f"{path} is a folder; give a file path inside it or another name") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so `kill` cleans up like Ctrl-C does."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def staged_directory(target: Path, check: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield an empty staging directory; on success it replaces ``target`` as a whole.

    ``check(target)``, when given, runs once more right before the swap (after the body), so
    that what was true of ``target`` when the work began still holds; an exception from it
    leaves ``target`` as it is and removes the staging directory.

    Before staging, leftovers of dead exports in ``target``'s folder are removed and a bundle
    that a killed fallback swap left aside is put back (``recover_directory``). Raises
    ``InputError`` when ``target`` exists and is not a directory; any exception from the body
    removes the staging directory and leaves ``target`` as it was. See the module docstring.

    >>> with staged_directory(Path("bundle")) as tmp:  # doctest: +SKIP
    ...     (tmp / "manifest.json").write_text("{}")
    """
    from swarmedge.errors import InputError

    target = Path(target).absolute()
    if target.is_symlink():  # replace the bundle the link points to, keep the link
        target = target.resolve()
    if target.exists() and not target.is_dir():
        raise InputError(f"{target} exists and is not a directory; choose another output path or remove it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {target.parent}: {exc.strerror or exc}; choose another output path") from None
    with contextlib.suppress(OSError):  # tidying is a courtesy; the export must not fail for it
        _tidy(target.parent)
    token, lock_fd = _new_lock(target.parent, target.name)
    try:
        stage = _entry(target, "staging", token)
        os.mkdir(stage)  # mode 0777 less the umask: a bundle is meant to be copied around
        try:
            with sigterm_as_interrupt():
                yield stage
                if check is not None:
                    check(target)
                _fsync_tree(stage)
                old = _swap_in(stage, target, token)
        except BaseException:  # the old bundle may lie at either path if a signal came right after the swap
            shutil.rmtree(stage, ignore_errors=True)
            shutil.rmtree(_entry(target, "trash", token), ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        _release(_entry(target, "lock", token), lock_fd)


def recover_directory(target: Path) -> bool:
    """Put back a bundle that a killed export left aside; return True if one was restored.

    Only acts when ``target`` is missing and an intact ``.NAME.old-*`` of a dead export lies
    beside it (the fallback swap, killed between its two renames). Cheap when ``target`` exists
    (one ``lstat``). Never raises: a read-only folder just leaves things as they are.

    >>> recover_directory(Path("model.bundle"))  # doctest: +SKIP
    False
    """
    target = Path(target).absolute()
    if os.path.lexists(target):
        return False
    with contextlib.suppress(OSError):
        _tidy(target.parent, only=target.name, restore_only=True)
    return os.path.lexists(target)


def _entry(target: Path, kind: str, token: str) -> Path:
    return target.parent / f".{target.name}.{kind}-{token}"


# ---- liveness: one lock file per export ----------------------------------------------------

def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _new_lock(parent: Path, name: str) -> tuple[str, int]:
    """Create and hold ``.NAME.lock-TOKEN``; return the token and the open descriptor."""
    from swarmedge.errors import InputError

    for _ in range(100):
        token = secrets.token_hex(6)
        path = parent / f".{name}.lock-{token}"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise InputError(f"cannot write in {parent}: {exc.strerror or exc}; choose another output path") from None
        if fcntl is None:
            return token, fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks only while a sweeper that saw the new file checks it
        except OSError:  # a filesystem without flock: export anyway; sweepers will take it for alive
            return token, fd
        if _same_file(fd, path):
            return token, fd
        os.close(fd)  # a sweeper took it for a dead export's lock and removed it: take another token
    raise InputError(f"cannot create a lock file in {parent}; check that the folder is writable")


def _release(path: Path, fd: int) -> None:
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(path)


def _claim(path: Path) -> int | None | bool:
    """Whether the export that owns lock ``path`` is dead.

    Returns an open descriptor holding the lock (dead; close it when done), True (dead and
    the lock file is gone) or None (alive: leave its folders alone).
    """
    if fcntl is None:
        try:
            os.unlink(path)  # Windows refuses while the owner holds the file open
        except FileNotFoundError:
            return True
        except OSError:
            return None
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    except OSError:  # e.g. another user's export: not ours to judge
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held (alive), or no flock on this filesystem (unknown: leave it)
        os.close(fd)
        return None
    if not _same_file(fd, path):  # another sweeper cleaned this token meanwhile
        os.close(fd)
        return True
    return fd


def _real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _tidy(parent: Path, only: str | None = None, restore_only: bool = False) -> None:
    """Clean up after dead exports in ``parent``: restore set-aside bundles, delete the rest."""
    tokens = {}
    for entry in os.scandir(parent):
        m = _ENTRY.fullmatch(entry.name)
        if m and (only is None or m["name"] == only):
            tokens[(m["name"], m["token"])] = None
    if restore_only:
        tokens = {k: v for k, v in tokens.items() if _real_dir(parent / f".{k[0]}.old-{k[1]}")}

    def newest_first(key):  # several bundles set aside for one name: the newest one goes back
        with contextlib.suppress(OSError):
            return -os.stat(parent / f".{key[0]}.old-{key[1]}").st_mtime
        return 0.0

    for name, token in sorted(tokens, key=newest_first):
        target = parent / name
        lock = _entry(target, "lock", token)
        claim = _claim(lock)
        if claim is None:
            continue
        try:
            old = _entry(target, "old", token)
            # Put back only a real folder (not a link) that a swarmedge export set aside: its lock file
            # is still there (the export died holding it). A hidden .NAME.old-* made by hand, or a link
            # planted there, is never moved into place.
            if (_real_dir(old) and not os.path.lexists(target) and (claim is not True or not restore_only)):
                with contextlib.suppress(OSError):
                    os.rename(old, target)
            if restore_only:
                continue
            for kind in ("old", "staging", "trash"):
                shutil.rmtree(_entry(target, kind, token), ignore_errors=True)
            with contextlib.suppress(OSError):
                os.unlink(lock)
        finally:
            if claim is not True:
                os.close(claim)


# ---- the swap --------------------------------------------------------------------------------

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


def _swap_in(stage: Path, target: Path, token: str) -> Path | None:
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
    old, trash = _entry(target, "old", token), _entry(target, "trash", token)
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


def _fsync_tree(root: Path) -> None:
    """Flush every regular file and folder under ``root`` to disk, so a power cut after the swap
    finds the data too. Links and special files (a FIFO would block ``open``) are left alone."""
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                _fsync_tree(Path(entry.path))
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
