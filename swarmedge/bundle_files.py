"""Reading a bundle's files without following links or reading more than the manifest promises.

A bundle is flat: every entry is a regular file named in ``manifest.json``'s ``files``
(or ``manifest.json`` itself). Symlinks are never followed (``lstat``, ``O_NOFOLLOW``),
and a file is read through one descriptor, at most one byte past its expected size, so a
file that grew, or a FIFO or device put in its place, cannot make the runner hang or
read gigabytes before it is refused. Numpy- and onnxruntime-free: used on the device.
"""

import hashlib
import os
import stat
from pathlib import Path

from swarmedge.errors import BundleError

# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


_SPECIAL_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def entry_kind(mode: int) -> str:
    """What a non-regular entry is, with its article: 'a symbolic link', 'a FIFO (named pipe)'..."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    return next((what for test, what in _SPECIAL_KINDS if test(mode)), "not a regular file")


def check_entries(bundle: Path, listed: dict[str, int], manifest_name: str) -> None:
    """Refuse anything in ``bundle`` but regular files named in ``listed`` (and ``manifest_name``).

    ``listed`` maps each file name to its size in bytes. Raises BundleError (one line) naming
    the first offending entry, in sorted order: an unlisted file or folder, a symlink (even to
    a listed name), a FIFO/device/socket; then a listed file that is missing or of another
    size. Sizes are cheap to check here, so an incomplete copy is refused when the bundle is
    opened, even where the damaged file is one this run would not read; hashes are checked
    when a file is read (:func:`read_verified`).
    """
    try:
        names = sorted(os.listdir(bundle))
    except OSError as exc:
        raise BundleError(f"cannot list bundle {bundle}: {exc.strerror or exc}") from None
    for name in names:
        path = Path(bundle) / name
        try:
            mode = os.lstat(path).st_mode
        except OSError:  # removed while we looked: reading it later says so
            continue
        if name not in listed and name != manifest_name:
            what = "file" if stat.S_ISREG(mode) else entry_kind(mode)
            raise BundleError(
                f"bundle {bundle} holds {what} {name!r}, which {manifest_name} does not list (no hash covers it); "
                "remove it, or copy or export the bundle again")
        if not stat.S_ISREG(mode):
            raise BundleError(f"{path} is {entry_kind(mode)}; a bundle holds only regular files: "
                              "replace it with the file itself, or copy or export the bundle again")
    for name, size in sorted(listed.items()):
        path = Path(bundle) / name
        try:
            actual = os.lstat(path).st_size
        except FileNotFoundError:
            raise BundleError(f"{path} is missing: the bundle is incomplete; copy or export it again") from None
        except OSError:  # unreadable: reading it later says why
            continue
        if actual != size:
            raise BundleError(f"{path} does not match the size and sha256 recorded in {manifest_name} ({actual} "
                              f"bytes, the manifest says {size}): corrupted, truncated or modified; copy or export "
                              "the bundle again")


def _open_regular(path: Path) -> tuple[int, int]:
    """An O_NOFOLLOW descriptor of ``path`` and its size; BundleError unless a regular file."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise BundleError(f"{path} is missing: the bundle is incomplete; copy or export it again") from None
    except OSError as exc:
        try:  # ELOOP from O_NOFOLLOW, or no permission: say which
            mode = os.lstat(path).st_mode
        except OSError:
            mode = 0
        if mode and not stat.S_ISREG(mode):
            raise BundleError(f"{path} is {entry_kind(mode)}; a bundle holds only regular files: "
                              "copy or export the bundle again") from None
        raise BundleError(f"cannot read {path}: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise BundleError(f"{path} is {entry_kind(st.st_mode)}; a bundle holds only regular files: "
                          "copy or export the bundle again")
    return fd, st.st_size


def read_capped(path: Path, cap: int, what: str) -> bytes:
    """All of regular file ``path`` if it holds at most ``cap`` bytes; BundleError otherwise."""
    fd, size = _open_regular(path)
    with os.fdopen(fd, "rb") as f:
        if size > cap:
            raise BundleError(f"{path} is {size} bytes, more than any {what} ({cap}); "
                              "it is not a swarmedge bundle's; export the bundle again")
        data = f.read(cap + 1)
    if len(data) > cap:
        raise BundleError(f"{path} grew while being read; copy or export the bundle again")
    return data


def read_verified(path: Path, size: int, sha256: str, manifest_name: str) -> bytes:
    """The bytes of ``path`` after checking its ``size`` (first) and ``sha256`` (hex).

    At most ``size + 1`` bytes are read, and the bytes returned are the ones hashed, so
    nothing is re-read from disk after the check. Raises BundleError (one line) when the
    file is missing, not a regular file, of another size, or of another hash.
    """
    fd, actual = _open_regular(path)

    def mismatch(detail: str) -> BundleError:
        return BundleError(f"{path} does not match the size and sha256 recorded in {manifest_name} ({detail}): "
                           "corrupted, truncated or modified; copy or export the bundle again")

    with os.fdopen(fd, "rb") as f:
        if actual != size:
            raise mismatch(f"{actual} bytes, the manifest says {size}")
        data = f.read(size + 1)  # buffered read: loops until size + 1 bytes or the end
    if len(data) != size:
        raise mismatch(f"{len(data)} bytes read, the manifest says {size}")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise mismatch("sha256 differs")
    return data
