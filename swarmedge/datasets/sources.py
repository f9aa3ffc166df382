"""Where data files come from: --data, $SWARMEDGE_DATA, the cache, else a verified download.

That is the one search order for every data file swarmedge reads by name (MNIST, IMDB,
bert-base-uncased's vocabulary). A download is said out loud before it starts (logger
``swarmedge``, which the command line prints as a note): what, how big, from where, into where.

A download is bounded and leaves nothing behind:

- **deadline**: each file must arrive within ``max(60 s, expected size at 50 kB/s)`` (MNIST's
  largest file: 198 s; the 84 MB IMDB tarball: 28 min). 50 kB/s is a floor that a poor mobile or
  shared link still beats, so only a stalled or dripping server hits it. Each socket read also
  waits at most 30 s, so a download ends at most 30 s past its deadline. The env var
  ``SWARMEDGE_DOWNLOAD_DEADLINE`` (seconds) or the ``deadline`` argument overrides it.
  The deadline is checked between reads of the body; the connection and headers are bounded by
  the per-read timeout only.
- **size cap**: every :class:`RemoteFile` knows its exact byte count. A Content-Length other than
  that, or a body running past it, is refused at once, with no more than that many bytes written.
- **redirects**: at most 10 (urllib's bound, loops end sooner), and only to http(s) URLs.
- **no leftovers**: the body goes to a ``.NAME.*.part`` file beside the target, checked against
  a known sha256/md5 and moved into place atomically; any failure, Ctrl-C or SIGTERM removes it.
  A download holds an exclusive ``flock`` on its ``.part`` file, which the kernel drops when the
  process dies however it dies (SIGKILL, power loss), so the next :func:`fetch` removes the
  ``.part`` files nobody holds: those of dead downloads, never a live concurrent one.

Why not pooch (checked at 1.9.0): its ``HTTPDownloader`` passes a per-socket ``timeout`` to
requests, with no overall deadline and no size cap, and its temporary files are removed by a
``finally`` only, so a killed process leaves them for good. Adding those three would mean writing
our own downloader inside pooch's, while the device install would grow by requests, urllib3,
idna, charset-normalizer, certifi, platformdirs and packaging. The standard library does it here.
"""

import contextlib
import glob
import hashlib
import http.client
import logging
import os
import signal
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from swarmedge.errors import InputError

try:
    import fcntl
except ImportError:  # Windows: no flock, so no lock and no sweep of stale .part files
    fcntl = None

log = logging.getLogger("swarmedge.data")
DEADLINE_ENV = "SWARMEDGE_DOWNLOAD_DEADLINE"
MIN_DEADLINE_S = 60.0
FLOOR_BYTES_PER_S = 50_000  # the slowest link a download is given time for
SOCKET_TIMEOUT_S = 30.0  # longest wait for any one connect or read
_CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name in the data directory and the cache
    urls: tuple[str, ...]  # canonical source first, then mirrors
    bytes: int  # exact size: the download's cap, and what its deadline is derived from
    sha256: str | None = None
    md5: str | None = None  # where the canonical source only publishes an md5


class _Refused(Exception):
    """A download that arrived but is not the file: wrong size, too slow, bad checksum."""


def cache_dir() -> Path:
    """``$SWARMEDGE_CACHE``, default ``~/.cache/swarmedge`` (it need not exist yet).

    Raises InputError (one line) when something other than a folder stands there.
    """
    path = Path(os.environ.get("SWARMEDGE_CACHE") or Path.home() / ".cache" / "swarmedge")
    if os.path.lexists(path) and not path.is_dir():
        where = "SWARMEDGE_CACHE" if os.environ.get("SWARMEDGE_CACHE") else "the cache"
        raise InputError(f"{where} {path} is not a folder; set SWARMEDGE_CACHE to a folder (it is created if missing)")
    return path


def search_dirs(data: Path | None = None) -> list[Path]:
    """The directories searched, in order: --data, $SWARMEDGE_DATA, the cache.

    A --data folder or $SWARMEDGE_DATA that does not exist is an InputError (one line): a typo
    there must not turn into a silent download.
    """
    dirs = [Path(data)] if data else []
    if data and not Path(data).exists():
        raise InputError(f"data folder {data} does not exist: check the path given with --data/--data-dir")
    if os.environ.get("SWARMEDGE_DATA"):
        env = Path(os.environ["SWARMEDGE_DATA"])
        if not env.is_dir():
            raise InputError(f"SWARMEDGE_DATA={env} is not a folder: point it at the folder holding the data, "
                             "or unset it")
        dirs.append(env)
    dirs.append(cache_dir())
    return dirs


def find_local(names: list[str], data: Path | None = None) -> Path | None:
    """The first search directory holding every one of ``names`` (relative paths)."""
    for d in search_dirs(data):
        if all((d / n).is_file() for n in names):
            return d
    return None


def fetch(files: list[RemoteFile], what: str, data: Path | None = None, download: bool = True,
          option: str = "--data DIR") -> Path:
    """A directory holding all ``files``: found locally, or downloaded into the cache.

    Also removes the ``.part`` files that killed downloads of these files left in the cache.
    Raises InputError (one line) when they are nowhere and cannot be downloaded; its advice
    names ``option``, the command's way of pointing at a local copy.
    """
    target = cache_dir()
    for f in files:
        remove_stale_parts(target / f.name)
    found = find_local([f.name for f in files], data)
    if found is not None:
        return found
    if not download:
        raise _not_found(files, what, data, option=option)
    missing = [f for f in files if not (target / f.name).is_file()]
    if missing:
        host = urllib.parse.urlsplit(missing[0].urls[0]).netloc
        log.info(f"{what} is not in {', '.join(str(d) for d in search_dirs(data))}: downloading "
                 f"{sum(f.bytes for f in missing) / 1e6:.1f} MB from {host} into {target} (checked against "
                 "its sha256; read from there next time)")
    for f in missing:
        download_file(f, target / f.name, what, data, option=option)
    return target


def deadline_for(f: RemoteFile) -> float:
    """Seconds a download of ``f`` may take: $SWARMEDGE_DOWNLOAD_DEADLINE, else max(60, bytes / 50 kB/s).

    Raises InputError when the env var is set but not a positive number.
    """
    env = os.environ.get(DEADLINE_ENV, "").strip()
    if env:
        try:
            seconds = float(env)
        except ValueError:
            seconds = 0.0
        if not seconds > 0 or seconds == float("inf"):
            raise InputError(f"{DEADLINE_ENV}={env!r} is not a number of seconds: set it to e.g. 600, or unset it")
        return seconds
    return max(MIN_DEADLINE_S, f.bytes / FLOOR_BYTES_PER_S)


def download_file(f: RemoteFile, dest: Path, what: str, data: Path | None = None,
                  deadline: float | None = None, option: str = "--data DIR") -> None:
    """Download ``f`` to ``dest``, trying each of ``f.urls`` in turn, or raise InputError.

    ``deadline`` (seconds per URL tried) defaults to :func:`deadline_for`. ``dest`` appears only
    complete and verified; on any failure, exception or SIGTERM no ``.part`` file is left behind.
    The InputError is one line naming each URL, what went wrong (with the bytes received) and
    the fix: retry, or put the file in a folder passed as --data.
    """
    limit = deadline_for(f) if deadline is None else deadline
    made = [p for p in [dest.parent, *dest.parent.parents] if not p.exists()]  # removed again if it fails
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(dest)
    errors = []
    with _sigterm_raises():
        for url in f.urls:
            try:
                with _part_file(dest) as (out, part):
                    _copy_url(url, out, f.bytes, limit, f.name)
                    out.flush()
                    _verify(part, f)
                    os.replace(part, dest)
                return
            except (urllib.error.URLError, http.client.HTTPException, OSError, _Refused) as exc:
                if isinstance(exc, urllib.error.HTTPError):
                    exc.close()  # it holds the response open
                errors.append(f"{url}: {' '.join(str(exc).split())}")
    for folder in made:  # a failed first download leaves no empty cache folders behind
        with contextlib.suppress(OSError):
            folder.rmdir()
    raise InputError(f"could not download {what} ({'; '.join(errors)}); retry later, or download "
                     f"{f.name} by hand: " + _not_found([f], what, data, short=True, option=option).args[0])


def remove_stale_parts(dest: Path) -> int:
    """Delete the ``.DEST.*.part`` files beside ``dest`` that no live download holds; return how many.

    A live download keeps an exclusive flock on its ``.part`` file; a file whose lock can be
    taken belonged to a process that died. Never raises for files it cannot open or lock.
    """
    if fcntl is None:
        return 0
    removed = 0
    for part in dest.parent.glob(f".{glob.escape(dest.name)}.*.part"):
        try:
            fd = os.open(part, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(part, fd):
                part.unlink()
                removed += 1
        except OSError:
            continue  # held by a live download, or removed meanwhile
        finally:
            os.close(fd)
    return removed


@contextmanager
def _part_file(dest: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """A new ``.DEST.*.part`` file beside ``dest``, flock-ed while open, removed unless moved away."""
    while True:
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        part = Path(name)
        if fcntl is None:
            break
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a sweep examines it
        if _same_file(part, fd):
            break
        os.close(fd)  # a sweep took it for a dead one before it was locked: take a fresh name
    with os.fdopen(fd, "wb", buffering=0) as out:  # unbuffered: blocks are 64 kB, and the .part shows what arrived
        try:
            yield out, part
        finally:
            if _same_file(part, out.fileno()):  # not yet moved into place: remove it while locked
                part.unlink()


def _same_file(path: Path, fd: int) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into SystemExit(143) meanwhile, so ``finally`` blocks remove the ``.part`` file.

    Only where the default action (die on the spot) is in place and in the main thread, where
    Python runs signal handlers; a handler the application installed is left alone.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _HttpRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """urllib's redirects (at most 10, loops cut short), but never to ftp: or other schemes."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            fp.close()
            raise _Refused(f"redirected to {newurl}, which is not an http(s) URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpRedirectsOnly)


def _copy_url(url: str, out: BinaryIO, size: int, deadline: float, name: str) -> None:
    """Write the body at ``url`` to ``out``: exactly ``size`` bytes within ``deadline`` seconds, or raise.

    Raises _Refused (wrong Content-Length, body longer or shorter than ``size``, deadline passed)
    having written at most ``size`` bytes, or urllib/http.client/OS errors from the transfer.
    """
    from tqdm import tqdm

    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
        raise _Refused("not an http(s) URL")
    start = time.monotonic()
    got = 0
    wait = min(SOCKET_TIMEOUT_S, deadline)
    with _OPENER.open(url, timeout=wait) as resp:
        announced = resp.headers.get("Content-Length")
        if announced is not None and announced.strip() != str(size):
            raise _Refused(f"the server announces {announced.strip()} bytes, expected {size}: not the known file")
        with tqdm(total=size, unit="B", unit_scale=True, desc=f"download {name}", disable=None, leave=False) as bar:
            while got < size:
                # read1 returns what has arrived (a dripping server cannot hold one read for long);
                # asking one byte past the size shows a body that runs on, without writing it
                try:
                    block = resp.read1(min(_CHUNK, size - got + 1))
                except TimeoutError:
                    raise _Refused(f"the server sent nothing for {wait:g} s: got {got} of {size} bytes") from None
                if not block:
                    break
                if got + len(block) > size:
                    raise _Refused(f"the body runs past the expected {size} bytes: not the known file")
                out.write(block)
                got += len(block)
                bar.update(len(block))
                if got < size and time.monotonic() - start > deadline:
                    raise _Refused(f"not complete within the {deadline:g} s deadline: got {got} of {size} bytes "
                                   f"(a stalled or very slow server; {DEADLINE_ENV} sets more seconds)")
            if got == size and resp.read1(1):
                raise _Refused(f"the body runs past the expected {size} bytes: not the known file")
    if got < size:
        raise _Refused(f"cut short: got {got} of {size} bytes")


def _verify(path: Path, f: RemoteFile) -> None:
    algo, expected = ("sha256", f.sha256) if f.sha256 else ("md5", f.md5)
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != expected:
        raise _Refused(f"{algo} mismatch (corrupt download): {h.hexdigest()[:12]}… != {expected[:12]}…")


def _not_found(files: list[RemoteFile], what: str, data: Path | None, short: bool = False,
               option: str = "--data DIR") -> InputError:
    names = ", ".join(f.name for f in files)
    places = ", ".join(str(d) for d in search_dirs(data))
    return InputError(f"{what} not found ({names}) in {places}; pass {option} or set SWARMEDGE_DATA "
                      "to a folder holding it" + ("" if short else ", or allow the download"))
