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
import os
import re
import secrets
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from swarmedge.swap import entry_path, fsync_tree, swap_in

try:
    import fcntl
except ImportError:  # Windows: liveness falls back to "can the lock file be deleted?"
    fcntl = None

# .NAME.staging-TOKEN (folder being built), .NAME.old-TOKEN (old bundle set aside, fallback swap
# only), .NAME.trash-TOKEN (an old bundle being deleted), .NAME.lock-TOKEN (held while alive).
# Staging folders of swarmedge before locks existed have tempfile's 8-character tokens.
_ENTRY = re.compile(r"\.(?P<name>.+)\.(?P<kind>staging|old|trash|lock)-(?P<token>[a-z0-9_]{8,})")


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
        stage = entry_path(target, "staging", token)
        os.mkdir(stage)  # mode 0777 less the umask: a bundle is meant to be copied around
        try:
            with sigterm_as_interrupt():
                yield stage
                if check is not None:
                    check(target)
                fsync_tree(stage)
                old = swap_in(stage, target, token)
        except BaseException:  # the old bundle may lie at either path if a signal came right after the swap
            shutil.rmtree(stage, ignore_errors=True)
            shutil.rmtree(entry_path(target, "trash", token), ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        _release(entry_path(target, "lock", token), lock_fd)


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
        lock = entry_path(target, "lock", token)
        claim = _claim(lock)
        if claim is None:
            continue
        try:
            old = entry_path(target, "old", token)
            # Put back only a real folder (not a link) that a swarmedge export set aside: its lock file
            # is still there (the export died holding it). A hidden .NAME.old-* made by hand, or a link
            # planted there, is never moved into place.
            if (_real_dir(old) and not os.path.lexists(target) and (claim is not True or not restore_only)):
                with contextlib.suppress(OSError):
                    os.rename(old, target)
            if restore_only:
                continue
            for kind in ("old", "staging", "trash"):
                shutil.rmtree(entry_path(target, kind, token), ignore_errors=True)
            with contextlib.suppress(OSError):
                os.unlink(lock)
        finally:
            if claim is not True:
                os.close(claim)
