"""Where data files come from: --data, $SWARMEDGE_DATA, the cache, else a verified download.

Downloads show a progress bar, are checked against a known checksum and moved into the
cache atomically, so the cache never holds a partial or corrupt file.
"""

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from swarmedge.errors import InputError


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name in the data directory and the cache
    urls: tuple[str, ...]  # canonical source first, then mirrors
    sha256: str | None = None
    md5: str | None = None  # where the canonical source only publishes an md5


def cache_dir() -> Path:
    return Path(os.environ.get("SWARMEDGE_CACHE", Path.home() / ".cache" / "swarmedge"))


def search_dirs(data: Path | None = None) -> list[Path]:
    """The directories searched, in order: --data, $SWARMEDGE_DATA, the cache."""
    dirs = [Path(data)] if data else []
    if os.environ.get("SWARMEDGE_DATA"):
        dirs.append(Path(os.environ["SWARMEDGE_DATA"]))
    dirs.append(cache_dir())
    return dirs


def find_local(names: list[str], data: Path | None = None) -> Path | None:
    """The first search directory holding every one of ``names`` (relative paths)."""
    for d in search_dirs(data):
        if all((d / n).is_file() for n in names):
            return d
    return None


def fetch(files: list[RemoteFile], what: str, data: Path | None = None, download: bool = True) -> Path:
    """A directory holding all ``files``: found locally, or downloaded into the cache."""
    found = find_local([f.name for f in files], data)
    if found is not None:
        return found
    if not download:
        raise _not_found(files, what, data)
    target = cache_dir()
    for f in files:
        if not (target / f.name).is_file():
            download_file(f, target / f.name, what, data)
    return target


def download_file(f: RemoteFile, dest: Path, what: str, data: Path | None = None) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in f.urls:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                _copy_url(url, out, f.name)
            _verify(Path(tmp), f)
            os.replace(tmp, dest)
            return
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        Path(tmp).unlink(missing_ok=True)
    raise InputError(f"could not download {what} ({'; '.join(errors)}); "
                     + _not_found([f], what, data, short=True).args[0])


def _copy_url(url: str, out, name: str) -> None:
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=30) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        got = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {name}", disable=None, leave=False) as bar:
            while block := resp.read(1 << 16):
                out.write(block)
                got += len(block)
                bar.update(len(block))
        if total is not None and got != total:
            raise ValueError(f"truncated: got {got} of {total} bytes")


def _verify(path: Path, f: RemoteFile) -> None:
    algo, expected = ("sha256", f.sha256) if f.sha256 else ("md5", f.md5)
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != expected:
        raise ValueError(f"{algo} mismatch (corrupt or truncated download): {h.hexdigest()[:12]}… != {expected[:12]}…")


def _not_found(files: list[RemoteFile], what: str, data: Path | None, short: bool = False) -> InputError:
    names = ", ".join(f.name for f in files)
    places = ", ".join(str(d) for d in search_dirs(data))
    return InputError(f"{what} not found ({names}) in {places}; pass --data DIR or set SWARMEDGE_DATA "
                      "to a folder holding it" + ("" if short else ", or allow the download"))
